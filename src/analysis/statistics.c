/* statistics.c — Python's Snapshot.statistics and Snapshot.compare_to.
 *
 * Grouping runs in two steps so that its cost follows the distinct tracebacks, not the traces:
 * one linear pass sums size and count per distinct traceback of the snapshot (each trace already
 * carries its traceback's index), then each distinct traceback is resolved and credited to its
 * key(s) in a hash table keyed by (filename, lineno) sequences, as Python's dict of Traceback
 * keys is. The lists own a reference to each key traceback their entries point to.
 */
#include <stdlib.h>

#include "model.h"

struct tm_statistics {
  size_t n;
  tm_statistic *items; /* owned; items[i].traceback is an owned reference */
};

struct tm_statistic_diffs {
  size_t n;
  tm_statistic_diff *items; /* owned; items[i].traceback is an owned reference */
};

/* One group of Python's _group_by: its key traceback (an owned reference) and its totals. */
typedef struct group_entry {
  tm_traceback *key;
  size_t size;
  size_t count;
} group_entry;

/* The result of _group_by: the groups, and an index from key to group. */
typedef struct grouping {
  GArray *entries;   /* group_entry */
  GHashTable *index; /* key traceback (by its frames) => entry index + 1 */
} grouping;

/* Size and count of the traces sharing one traceback. */
typedef struct tb_total {
  size_t size;
  size_t count;
} tb_total;

/* GHashTable adaptors for tracebacks compared as Python compares Traceback keys. */
static guint key_hash(gconstpointer tb) {
  return tm__traceback_key_hash(tb);
}

static gboolean key_equal(gconstpointer a, gconstpointer b) {
  return tm__traceback_key_equal(a, b);
}

/* Prepares an empty grouping. */
static void grouping_init(grouping *g) {
  g->entries = g_array_new(FALSE, FALSE, sizeof(group_entry));
  g->index = g_hash_table_new(key_hash, key_equal);
}

/* Releases a grouping, dropping the references of the keys still in it. */
static void grouping_clear(grouping *g) {
  for (guint i = 0; i < g->entries->len; i++)
    tm_traceback_free(g_array_index(g->entries, group_entry, i).key);
  g_array_free(g->entries, TRUE);
  g_hash_table_destroy(g->index);
}

/* Credits size and count to the group equal to probe. A new group's key is tb when tb is not
 * NULL (a new reference is taken), else a copy of probe's single frame, a frame of owner. */
static void grouping_add(grouping *g, const tm_traceback *probe, tm_traceback *tb,
                         const tm_traceback *owner, size_t size, size_t count) {
  guint slot = GPOINTER_TO_UINT(g_hash_table_lookup(g->index, probe));
  if (slot == 0) {
    tm_traceback *key =
        tb != NULL ? tm_traceback_ref(tb) : tm__traceback_new_key(probe->frames, owner);
    group_entry e = {key, 0, 0};
    g_array_append_val(g->entries, e);
    slot = g->entries->len;
    g_hash_table_insert(g->index, e.key, GUINT_TO_POINTER(slot));
  }
  group_entry *e = &g_array_index(g->entries, group_entry, slot - 1);
  e->size += size;
  e->count += count;
}

/* Credits a traceback's totals to the lineno or filename key of one of its frames. The filename
 * key is Python's (filename, 0): a frame with no line and no function. */
static void grouping_add_frame(grouping *g, const tm_frame *frame, const tm_traceback *owner,
                               tm_key_type key_type, size_t size, size_t count) {
  tm_traceback probe;
  tm_frame key = *frame;
  if (key_type == TM_KEY_FILENAME) {
    key = (tm_frame){.filename = frame->filename,
                     .flags = frame->flags & (TM_FRAME_NO_DEBUG_INFO | TM_FRAME_UNKNOWN)};
  }
  tm__traceback_probe_init(&probe, &key);
  grouping_add(g, &probe, NULL, owner, size, count);
}

/* Credits one distinct traceback's totals to its key (or, cumulative, to the key of every frame:
 * a frame repeated by recursion counts each time, as in Python). */
static void grouping_add_traceback(grouping *g, tm_traceback *tb, tm_key_type key_type,
                                   bool cumulative, const tb_total *t) {
  size_t n;
  const tm_frame *frames;
  if (key_type == TM_KEY_TRACEBACK) {
    grouping_add(g, tb, tb, tb, t->size, t->count);
  } else if (!cumulative) {
    grouping_add_frame(g, tm__traceback_most_recent(tb), tb, key_type, t->size, t->count);
  } else {
    frames = tm__traceback_frames(tb, &n);
    for (size_t i = 0; i < n; i++)
      grouping_add_frame(g, &frames[i], tb, key_type, t->size, t->count);
  }
}

/* Python's Snapshot._group_by(key_type, cumulative), into g (initialized here). */
static void group_by(const tm_snapshot *snap, tm_key_type key_type, bool cumulative, grouping *g) {
  tb_total *totals = g_new0(tb_total, snap->ntracebacks);
  for (size_t i = 0; i < snap->ntraces; i++) {
    tb_total *t = &totals[snap->tb_index[i]];
    t->size += snap->traces[i].size;
    t->count++;
  }
  grouping_init(g);
  for (size_t k = 0; k < snap->ntracebacks; k++) {
    if (totals[k].count > 0)
      grouping_add_traceback(g, snap->tracebacks[k], key_type, cumulative, &totals[k]);
  }
  g_free(totals);
}

/* Checks the arguments common to statistics and compare_to. Returns false with
 * TM_ERROR_INVALID, and Python's messages for a bad key type. */
static bool group_args_check(const tm_snapshot *snap, tm_key_type key_type, bool cumulative,
                             GError **error) {
  if (snap == NULL) {
    g_set_error_literal(error, TM_ERROR, TM_ERROR_INVALID, "snapshot is NULL");
    return false;
  }
  if (key_type != TM_KEY_FILENAME && key_type != TM_KEY_LINENO && key_type != TM_KEY_TRACEBACK) {
    g_set_error(error, TM_ERROR, TM_ERROR_INVALID, "unknown key_type: %d", (int)key_type);
    return false;
  }
  if (cumulative && key_type == TM_KEY_TRACEBACK) {
    g_set_error_literal(error, TM_ERROR, TM_ERROR_INVALID,
                        "cumulative mode cannot be used with key type 'traceback'");
    return false;
  }
  return true;
}

/* Descending order of a <=> b. */
#define DESC(a, b) ((a) > (b) ? -1 : (a) < (b) ? 1 : 0)

/* Statistic._sort_key, descending: size, count, traceback. */
static int statistic_compare(const void *pa, const void *pb) {
  const tm_statistic *a = pa, *b = pb;
  int c = DESC(a->size, b->size);
  if (c == 0)
    c = DESC(a->count, b->count);
  return c != 0 ? c : -tm__traceback_compare(a->traceback, b->traceback);
}

/* |v| without overflow. */
static uint64_t magnitude(int64_t v) {
  return v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
}

/* StatisticDiff._sort_key, descending: |size_diff|, size, |count_diff|, count, traceback. */
static int statistic_diff_compare(const void *pa, const void *pb) {
  const tm_statistic_diff *a = pa, *b = pb;
  int c = DESC(magnitude(a->size_diff), magnitude(b->size_diff));
  if (c == 0)
    c = DESC(a->size, b->size);
  if (c == 0)
    c = DESC(magnitude(a->count_diff), magnitude(b->count_diff));
  if (c == 0)
    c = DESC(a->count, b->count);
  return c != 0 ? c : -tm__traceback_compare(a->traceback, b->traceback);
}

/* See tracemalloc.h. */
tm_statistics *tm_snapshot_statistics(tm_snapshot *snap, tm_key_type key_type, bool cumulative,
                                      GError **error) {
  tm_statistics *stats = NULL;
  grouping g;
  tm__guard_enter();
  if (!group_args_check(snap, key_type, cumulative, error))
    goto out;
  group_by(snap, key_type, cumulative, &g);
  stats = g_new0(tm_statistics, 1);
  stats->n = g.entries->len;
  stats->items = g_new(tm_statistic, stats->n);
  for (size_t i = 0; i < stats->n; i++) {
    group_entry *e = &g_array_index(g.entries, group_entry, i);
    stats->items[i] = (tm_statistic){e->key, e->size, e->count};
  }
  g_array_set_size(g.entries, 0); /* the keys now belong to stats */
  grouping_clear(&g);
  if (stats->n > 1)
    qsort(stats->items, stats->n, sizeof(tm_statistic), statistic_compare);
out:
  tm__guard_leave();
  return stats;
}

/* See tracemalloc.h. */
size_t tm_statistics_length(const tm_statistics *stats) {
  return stats != NULL ? stats->n : 0;
}

/* See tracemalloc.h. */
const tm_statistic *tm_statistics_get(const tm_statistics *stats, size_t i) {
  return stats != NULL && i < stats->n ? &stats->items[i] : NULL;
}

/* See tracemalloc.h. */
void tm_statistics_free(tm_statistics *stats) {
  if (stats == NULL)
    return;
  tm__guard_enter();
  for (size_t i = 0; i < stats->n; i++)
    tm_traceback_free((tm_traceback *)stats->items[i].traceback);
  g_free(stats->items);
  g_free(stats);
  tm__guard_leave();
}

/* Python's _compare_grouped_stats: a diff per new group (against the old group of the same key,
 * if any), then one per old group left, with size 0 and negative diffs. Moves every key
 * reference it uses out of the groupings into diffs. */
static void diffs_fill(tm_statistic_diffs *diffs, grouping *new_g, grouping *old_g) {
  bool *matched = g_new0(bool, old_g->entries->len);
  for (guint i = 0; i < new_g->entries->len; i++) {
    group_entry *e = &g_array_index(new_g->entries, group_entry, i);
    guint slot = GPOINTER_TO_UINT(g_hash_table_lookup(old_g->index, e->key));
    size_t old_size = 0, old_count = 0;
    if (slot != 0) {
      group_entry *o = &g_array_index(old_g->entries, group_entry, slot - 1);
      old_size = o->size;
      old_count = o->count;
      matched[slot - 1] = true;
    }
    diffs->items[diffs->n++] = (tm_statistic_diff){
        e->key, e->size, (int64_t)e->size - (int64_t)old_size, e->count,
        (int64_t)e->count - (int64_t)old_count};
    e->key = NULL;
  }
  for (guint i = 0; i < old_g->entries->len; i++) {
    group_entry *o = &g_array_index(old_g->entries, group_entry, i);
    if (matched[i])
      continue;
    diffs->items[diffs->n++] =
        (tm_statistic_diff){o->key, 0, -(int64_t)o->size, 0, -(int64_t)o->count};
    o->key = NULL;
  }
  g_free(matched);
}

/* See tracemalloc.h. */
tm_statistic_diffs *tm_snapshot_compare_to(tm_snapshot *snap, tm_snapshot *old,
                                           tm_key_type key_type, bool cumulative,
                                           GError **error) {
  tm_statistic_diffs *diffs = NULL;
  grouping new_g, old_g;
  tm__guard_enter();
  if (!group_args_check(snap, key_type, cumulative, error))
    goto out;
  if (old == NULL) {
    g_set_error_literal(error, TM_ERROR, TM_ERROR_INVALID, "old snapshot is NULL");
    goto out;
  }
  group_by(snap, key_type, cumulative, &new_g);
  group_by(old, key_type, cumulative, &old_g);
  diffs = g_new0(tm_statistic_diffs, 1);
  diffs->items = g_new(tm_statistic_diff, new_g.entries->len + old_g.entries->len);
  diffs_fill(diffs, &new_g, &old_g);
  grouping_clear(&new_g); /* frees only the old keys that matched a new one */
  grouping_clear(&old_g);
  if (diffs->n > 1)
    qsort(diffs->items, diffs->n, sizeof(tm_statistic_diff), statistic_diff_compare);
out:
  tm__guard_leave();
  return diffs;
}

/* See tracemalloc.h. */
size_t tm_statistic_diffs_length(const tm_statistic_diffs *diffs) {
  return diffs != NULL ? diffs->n : 0;
}

/* See tracemalloc.h. */
const tm_statistic_diff *tm_statistic_diffs_get(const tm_statistic_diffs *diffs, size_t i) {
  return diffs != NULL && i < diffs->n ? &diffs->items[i] : NULL;
}

/* See tracemalloc.h. */
void tm_statistic_diffs_free(tm_statistic_diffs *diffs) {
  if (diffs == NULL)
    return;
  tm__guard_enter();
  for (size_t i = 0; i < diffs->n; i++)
    tm_traceback_free((tm_traceback *)diffs->items[i].traceback);
  g_free(diffs->items);
  g_free(diffs);
  tm__guard_leave();
}
