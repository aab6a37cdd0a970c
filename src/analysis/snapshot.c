/* snapshot.c — take_snapshot, hand-built snapshots and filter_traces (Python's Snapshot).
 *
 * A snapshot is a flat array of traces, a parallel array of traceback indices, and the distinct
 * tracebacks. Taking one never resolves a symbol: it copies the engine's table and maps each
 * distinct stack id to the shared live traceback of that stack, so its cost is a few linear
 * passes over the traces plus one cache lookup per distinct stack.
 */
#include <stdlib.h>
#include <string.h>

#include "model.h"

/* Largest id span mapped through a flat array rather than a hash table, relative to the number
 * of traces: ids are normally dense, and a flat array is several times faster than hashing. */
#define DENSE_IDS_PER_TRACE 4u
#define DENSE_IDS_MIN 65536u

/* Allocates an empty snapshot with room for the given numbers of traces and tracebacks. */
static tm_snapshot *snapshot_alloc(int traceback_limit, size_t ntraces, size_t ntracebacks) {
  tm_snapshot *snap = g_new0(tm_snapshot, 1);
  snap->refcount = 1;
  snap->traceback_limit = traceback_limit;
  snap->traces = g_new(tm_trace, ntraces);
  snap->tb_index = g_new(uint32_t, ntraces);
  snap->traces_cap = ntraces;
  snap->tracebacks = g_new(tm_traceback *, ntracebacks);
  snap->tracebacks_cap = ntracebacks;
  return snap;
}

/* See model.h. */
tm_snapshot *tm__snapshot_new(int traceback_limit) {
  tm__guard_enter();
  tm_snapshot *snap = snapshot_alloc(traceback_limit, 0, 0);
  tm__guard_leave();
  return snap;
}

/* Appends tb to the distinct tracebacks, taking the given reference; false (tb not taken) when
 * the array cannot grow. */
static bool snapshot_try_push_traceback(tm_snapshot *snap, tm_traceback *tb) {
  if (snap->ntracebacks == snap->tracebacks_cap) {
    size_t cap = MAX(16, snap->tracebacks_cap * 2);
    tm_traceback **grown = g_try_renew(tm_traceback *, snap->tracebacks, cap);
    if (grown == NULL)
      return false;
    snap->tracebacks = grown;
    snap->tracebacks_cap = cap;
  }
  snap->tracebacks[snap->ntracebacks++] = tb;
  return true;
}

/* Appends tb to the distinct tracebacks, taking the given reference. Returns its index. */
static uint32_t snapshot_push_traceback(tm_snapshot *snap, tm_traceback *tb) {
  if (snap->ntracebacks == snap->tracebacks_cap) {
    snap->tracebacks_cap = MAX(16, snap->tracebacks_cap * 2);
    snap->tracebacks = g_renew(tm_traceback *, snap->tracebacks, snap->tracebacks_cap);
  }
  snap->tracebacks[snap->ntracebacks] = tb;
  return (uint32_t)snap->ntracebacks++;
}

/* Appends one trace whose traceback has index idx. Grows the arrays as needed. */
static void snapshot_push_trace(tm_snapshot *snap, unsigned int domain, size_t size, uint32_t idx) {
  if (snap->ntraces == snap->traces_cap) {
    snap->traces_cap = MAX(16, snap->traces_cap * 2);
    snap->traces = g_renew(tm_trace, snap->traces, snap->traces_cap);
    snap->tb_index = g_renew(uint32_t, snap->tb_index, snap->traces_cap);
  }
  snap->traces[snap->ntraces] = (tm_trace){domain, size, snap->tracebacks[idx]};
  snap->tb_index[snap->ntraces++] = idx;
}

/* See model.h. */
void tm__snapshot_add(tm_snapshot *snap, unsigned int domain, size_t size, tm_traceback *tb) {
  g_return_if_fail(snap != NULL && tb != NULL);
  tm__guard_enter();
  if (snap->tb_slots == NULL)
    snap->tb_slots = g_hash_table_new(g_direct_hash, g_direct_equal);
  uint32_t idx = GPOINTER_TO_UINT(g_hash_table_lookup(snap->tb_slots, tb));
  if (idx == 0) {
    idx = snapshot_push_traceback(snap, tm_traceback_ref(tb)) + 1;
    g_hash_table_insert(snap->tb_slots, tb, GUINT_TO_POINTER(idx));
  }
  snapshot_push_trace(snap, domain, size, idx - 1);
  tm__guard_leave();
}

/* See model.h. */
tm_snapshot *tm__snapshot_ref(tm_snapshot *snap) {
  if (snap != NULL)
    g_atomic_int_inc(&snap->refcount);
  return snap;
}

/* See tracemalloc.h. */
void tm_snapshot_free(tm_snapshot *snap) {
  if (snap == NULL || !g_atomic_int_dec_and_test(&snap->refcount))
    return;
  tm__guard_enter();
  for (size_t i = 0; i < snap->ntracebacks; i++)
    tm_traceback_free(snap->tracebacks[i]);
  g_free(snap->tracebacks);
  g_free(snap->traces);
  g_free(snap->tb_index);
  if (snap->tb_slots != NULL)
    g_hash_table_destroy(snap->tb_slots);
  g_free(snap);
  tm__guard_leave();
}

/* See tracemalloc.h. */
int tm_snapshot_get_traceback_limit(const tm_snapshot *snap) {
  return snap != NULL ? snap->traceback_limit : 0;
}

/* See tracemalloc.h. */
size_t tm_snapshot_length(const tm_snapshot *snap) {
  return snap != NULL ? snap->ntraces : 0;
}

/* See tracemalloc.h. */
const tm_trace *tm_snapshot_get(const tm_snapshot *snap, size_t i) {
  return snap != NULL && i < snap->ntraces ? &snap->traces[i] : NULL;
}

/* ---- take_snapshot --------------------------------------------------------------------------- */

/* Maps stack ids to traceback indices + 1 (0: not seen yet): a flat array when the ids are dense
 * enough, a hash table otherwise. */
typedef struct id_map {
  uint32_t *dense;   /* id => index + 1, of length ndense */
  size_t ndense;
  GHashTable *sparse; /* id => index + 1 */
} id_map;

/* Prepares a map for the ids of raw[0..n). Returns false when the dense array cannot be
 * allocated (out of memory). */
static bool id_map_init(id_map *map, const tm__raw_trace *raw, size_t n) {
  uint32_t max_id = 0;
  for (size_t i = 0; i < n; i++)
    max_id = MAX(max_id, raw[i].tb_id);
  memset(map, 0, sizeof(*map));
  if ((size_t)max_id < n * DENSE_IDS_PER_TRACE + DENSE_IDS_MIN) {
    map->ndense = (size_t)max_id + 1;
    map->dense = g_try_new0(uint32_t, map->ndense);
    return map->dense != NULL;
  }
  map->sparse = g_hash_table_new(g_direct_hash, g_direct_equal);
  return true;
}

/* Returns the index + 1 stored for id, or 0. */
static inline uint32_t id_map_get(const id_map *map, uint32_t id) {
  if (map->dense != NULL)
    return map->dense[id];
  return GPOINTER_TO_UINT(g_hash_table_lookup(map->sparse, GUINT_TO_POINTER(id)));
}

/* Stores index + 1 for id. */
static void id_map_set(id_map *map, uint32_t id, uint32_t slot) {
  if (map->dense != NULL)
    map->dense[id] = slot;
  else
    g_hash_table_insert(map->sparse, GUINT_TO_POINTER(id), GUINT_TO_POINTER(slot));
}

/* Releases the map's memory. */
static void id_map_clear(id_map *map) {
  g_free(map->dense);
  if (map->sparse != NULL)
    g_hash_table_destroy(map->sparse);
}

/* The engine's copy becomes the snapshot's trace array: a raw trace and a trace have the same
 * size, so each is converted where it lies, which spares a second array as large as the first
 * (24 MB at a million traces) and its page faults. */
G_STATIC_ASSERT(sizeof(tm__raw_trace) == sizeof(tm_trace));

/* Builds the snapshot of n raw traces, taking ownership of raw: one shared live traceback per
 * distinct stack id. Returns NULL (raw freed) when memory runs out: every allocation whose size
 * grows with the traces is a try. */
static tm_snapshot *snapshot_from_raw(tm__raw_trace *raw, size_t n, int limit) {
  tm_snapshot *snap = g_try_new0(tm_snapshot, 1);
  id_map map = {0};
  if (snap == NULL)
    goto fail;
  snap->refcount = 1;
  snap->traceback_limit = limit;
  if (!id_map_init(&map, raw, n) || (snap->tb_index = g_try_new(uint32_t, MAX(n, 1))) == NULL)
    goto fail;
  for (size_t i = 0; i < n; i++) {
    tm__raw_trace r;
    memcpy(&r, &raw[i], sizeof(r));
    uint32_t slot = id_map_get(&map, r.tb_id);
    if (slot == 0) {
      tm_traceback *tb = tm__traceback_live_try_get(tm__traceback_lookup(r.tb_id));
      if (tb == NULL)
        goto fail;
      if (!snapshot_try_push_traceback(snap, tb)) {
        tm_traceback_free(tb);
        goto fail;
      }
      slot = (uint32_t)snap->ntracebacks;
      id_map_set(&map, r.tb_id, slot);
    }
    tm_trace t = {r.domain, r.size, snap->tracebacks[slot - 1]};
    memcpy(&raw[i], &t, sizeof(t));
    snap->tb_index[i] = slot - 1;
  }
  snap->traces = (tm_trace *)(void *)raw;
  snap->ntraces = snap->traces_cap = n;
  id_map_clear(&map);
  return snap;
fail:
  id_map_clear(&map);
  free(raw); /* its first traces may already be converted: nothing in it is owned */
  tm_snapshot_free(snap);
  return NULL;
}

/* See tracemalloc.h. */
tm_snapshot *tm_take_snapshot(GError **error) {
  tm_snapshot *snap = NULL;
  size_t n = 0;
  int limit = 1;
  bool failed = false;
  tm__raw_trace *raw;
  tm__guard_enter();
  if (!tm_is_tracing()) {
    g_set_error_literal(error, TM_ERROR, TM_ERROR_NOT_TRACING,
                        "the tracemalloc module must be tracing memory allocations to take a "
                        "snapshot");
    goto out;
  }
  /* Held until every id is turned into a traceback that owns a copy of its stack: tm_stop()
   * frees the engine's stacks. */
  tm__intern_hold();
  raw = tm__traces_copy(&n, &limit, &failed);
  snap = failed ? NULL : snapshot_from_raw(raw, n, limit);
  tm__intern_release();
  if (snap == NULL) /* allocates nothing */
    tm__error_set_no_memory(error);
  else
    tm__error_spare_refill();
out:
  tm__guard_leave();
  return snap;
}

tm_snapshot *tm_peak_watch_snapshot(GError **error) {
  size_t n = 0;
  int limit = 1;
  tm__guard_enter();
  const tm__raw_trace *watched = tm__peak_watch_traces(&n, &limit);
  tm_snapshot *snap = NULL;
  if (watched == NULL) {
    g_set_error_literal(error, TM_ERROR, TM_ERROR_INVALID,
                        "traced memory has not passed the peak watch's limit");
  } else {
    tm__raw_trace *copy = malloc(MAX(n, 1) * sizeof *copy); /* snapshot_from_raw() frees it */
    if (copy != NULL) {
      memcpy(copy, watched, n * sizeof *copy);
      snap = snapshot_from_raw(copy, n, limit);
    }
    if (snap == NULL)
      g_set_error_literal(error, TM_ERROR, TM_ERROR_NO_MEMORY,
                          "out of memory: could not build the snapshot of the peak");
  }
  tm__guard_leave();
  return snap;
}

/* ---- filter_traces --------------------------------------------------------------------------- */

/* What one call of filter_traces knows about its filters: for each filter and each distinct
 * traceback of the snapshot, the result of the traceback part of the match (0: not computed yet,
 * 1: false, 2: true), and per filter a cache of fnmatch results by file name. */
typedef struct filter_ctx {
  tm_filter *const *filters;
  size_t nfilters;
  size_t ntracebacks;
  tm_traceback **tracebacks;
  uint8_t *tb_match;       /* nfilters * ntracebacks */
  GHashTable **name_cache; /* nfilters */
} filter_ctx;

/* Python's BaseFilter._match(trace) for filter k; the traceback part is computed once per
 * distinct traceback. */
static bool filter_ctx_match(filter_ctx *ctx, size_t k, unsigned int domain, uint32_t tbi) {
  const tm_filter *f = ctx->filters[k];
  uint8_t *memo = &ctx->tb_match[k * ctx->ntracebacks + tbi];
  if (!f->is_domain_filter && *memo == 0) {
    if (ctx->name_cache[k] == NULL)
      ctx->name_cache[k] = g_hash_table_new(g_direct_hash, g_direct_equal);
    *memo = tm__filter_match_traceback(f, ctx->tracebacks[tbi], ctx->name_cache[k]) ? 2 : 1;
  }
  return tm__filter_match_trace(f, domain, *memo == 2);
}

/* Python's Snapshot._filter_trace: some inclusive filter matches (when there is one) and every
 * exclusive filter matches. */
static bool filter_ctx_keep(filter_ctx *ctx, unsigned int domain, uint32_t tbi) {
  bool has_inclusive = false, included = false;
  for (size_t k = 0; k < ctx->nfilters; k++) {
    if (!ctx->filters[k]->inclusive) {
      if (!filter_ctx_match(ctx, k, domain, tbi))
        return false;
    } else if (!included) {
      has_inclusive = true;
      included = filter_ctx_match(ctx, k, domain, tbi);
    }
  }
  return !has_inclusive || included;
}

/* Checks the filter array. Returns false with TM_ERROR_INVALID when one is missing. */
static bool filters_check(tm_filter *const *filters, size_t nfilters, GError **error) {
  if (nfilters > 0 && filters == NULL) {
    g_set_error(error, TM_ERROR, TM_ERROR_INVALID, "filters is NULL but nfilters is %zu",
                nfilters);
    return false;
  }
  for (size_t k = 0; k < nfilters; k++) {
    if (filters[k] == NULL) {
      g_set_error(error, TM_ERROR, TM_ERROR_INVALID, "filters[%zu] is NULL", k);
      return false;
    }
  }
  return true;
}

/* Copies into out the traces of snap that pass, renumbering the tracebacks they keep. */
static void filter_copy(filter_ctx *ctx, const tm_snapshot *snap, tm_snapshot *out) {
  uint32_t *remap = g_new0(uint32_t, snap->ntracebacks); /* old index => new index + 1 */
  for (size_t i = 0; i < snap->ntraces; i++) {
    const tm_trace *t = &snap->traces[i];
    uint32_t tbi = snap->tb_index[i];
    if (ctx->nfilters > 0 && !filter_ctx_keep(ctx, t->domain, tbi))
      continue;
    if (remap[tbi] == 0)
      remap[tbi] = snapshot_push_traceback(out, tm_traceback_ref(snap->tracebacks[tbi])) + 1;
    out->traces[out->ntraces] = (tm_trace){t->domain, t->size, out->tracebacks[remap[tbi] - 1]};
    out->tb_index[out->ntraces++] = remap[tbi] - 1;
  }
  g_free(remap);
}

/* Gives back the unused ends of arrays sized for every trace passing. */
static void snapshot_trim(tm_snapshot *snap) {
  if (snap->ntraces < snap->traces_cap / 2) {
    snap->traces_cap = snap->ntraces;
    snap->traces = g_renew(tm_trace, snap->traces, snap->traces_cap);
    snap->tb_index = g_renew(uint32_t, snap->tb_index, snap->traces_cap);
  }
  if (snap->ntracebacks < snap->tracebacks_cap / 2) {
    snap->tracebacks_cap = snap->ntracebacks;
    snap->tracebacks = g_renew(tm_traceback *, snap->tracebacks, snap->tracebacks_cap);
  }
}

/* See tracemalloc.h. Resolves a traceback only when a filter needs its frames, and at most once
 * per filter. */
tm_snapshot *tm_snapshot_filter_traces(tm_snapshot *snap, tm_filter *const *filters,
                                       size_t nfilters, GError **error) {
  tm_snapshot *out = NULL;
  filter_ctx ctx = {filters, nfilters, 0, NULL, NULL, NULL};
  tm__guard_enter();
  if (snap == NULL) {
    g_set_error_literal(error, TM_ERROR, TM_ERROR_INVALID, "snapshot is NULL");
    goto out;
  }
  if (!filters_check(filters, nfilters, error))
    goto out;
  ctx.ntracebacks = snap->ntracebacks;
  ctx.tracebacks = snap->tracebacks;
  ctx.tb_match = g_new0(uint8_t, nfilters * snap->ntracebacks);
  ctx.name_cache = g_new0(GHashTable *, nfilters);
  out = snapshot_alloc(snap->traceback_limit, snap->ntraces, MAX(snap->ntracebacks, 1));
  filter_copy(&ctx, snap, out);
  snapshot_trim(out);
  for (size_t k = 0; k < nfilters; k++) {
    if (ctx.name_cache[k] != NULL)
      g_hash_table_destroy(ctx.name_cache[k]);
  }
  g_free(ctx.name_cache);
  g_free(ctx.tb_match);
out:
  tm__guard_leave();
  return out;
}
