/* leak_baseline.c — the baseline ratchet: a file that records what each test leaked when it was
 * recorded, so that a suite with known leaks can be checked from its first day, and fails only
 * when a test leaks more than it did, or somewhere new.
 *
 * TM_LEAK_BASELINE=file TM_LEAK_BASELINE_UPDATE=1 rewrites each test's entry from what it leaks
 * now (removing it when it leaks nothing); TM_LEAK_BASELINE=file alone checks against it. The
 * file is a key file, one group per test, sorted, so that it reads well, diffs well, and two
 * branches that touched different tests merge without conflict:
 *
 *   # tracemalloc-check baseline: what each test leaked when it was recorded. ...
 *   [check_stack/test_push_pop_forgets]
 *   bytes = 56
 *   blocks = 2
 *   site examples/zero-edit/stack.c:stack_new = 24
 *   site examples/zero-edit/stack.c:stack_push = 32
 *
 * A test is named "suite/tcase/test" when the plugin knows its suite and TCase, else
 * "program/test" (the program's file name); "#N" follows for iteration N > 0 of a loop test. A
 * site is "file:function" (the allocation site's display path and function) without its line, so
 * that an edit elsewhere in the file does not make a known leak look new.
 *
 * Updates from several test programs (or CK_FORK=yes children) at once take an exclusive flock()
 * on the file and rewrite it whole, in place.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "leak_internal.h"

#define SITE_PREFIX "site "

static const char header[] =
  "# tracemalloc-check baseline: what each test leaked when it was recorded. A test fails when it\n"
  "# leaks more bytes than its entry, or at a site its entry does not have; a test without an\n"
  "# entry is at zero. Rewrite with TM_LEAK_BASELINE_UPDATE=1 (see docs/adopting.md).\n";

struct tm__leak_baseline {
  GHashTable *entries; /* key (owned) => tm__leak_baseline_entry* (owned) */
};

static void entry_free(gpointer data) {
  tm__leak_baseline_entry *e = data;
  g_hash_table_unref(e->sites);
  g_free(e);
}

/* Parses a whole number of bytes or blocks. */
static bool parse_count(const char *path, const char *group, const char *key, const char *text,
                        size_t *out, GError **error) {
  char *end;
  guint64 v;

  errno = 0;
  v = g_ascii_strtoull(text, &end, 10);
  while (*end == ' ')
    end++;
  if (errno != 0 || end == text || *end != '\0' || text[0] == '-') {
    g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                "%s: [%s] %s='%s' is not a whole number", path, group, key, text);
    return false;
  }
  *out = (size_t)v;
  return true;
}

/* Reads the entries of a key file's text into `entries`. */
static bool parse(const char *path, const char *text, gsize len, GHashTable *entries,
                  GError **error) {
  GKeyFile *kf = g_key_file_new();
  GError *local = NULL;
  char **groups;
  bool ok = true;

  if (len > 0 && !g_key_file_load_from_data(kf, text, len, G_KEY_FILE_NONE, &local)) {
    g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_PARSE, "%s: %s", path, local->message);
    g_error_free(local);
    g_key_file_free(kf);
    return false;
  }
  groups = g_key_file_get_groups(kf, NULL);
  for (size_t i = 0; ok && groups[i] != NULL; i++) {
    char **keys = g_key_file_get_keys(kf, groups[i], NULL, NULL);
    tm__leak_baseline_entry *e = g_new0(tm__leak_baseline_entry, 1);
    e->sites = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    for (size_t k = 0; ok && keys[k] != NULL; k++) {
      char *value = g_key_file_get_value(kf, groups[i], keys[k], NULL);
      size_t n = 0;
      if (g_str_equal(keys[k], "bytes")) {
        ok = parse_count(path, groups[i], keys[k], value, &e->size, error);
      } else if (g_str_equal(keys[k], "blocks")) {
        ok = parse_count(path, groups[i], keys[k], value, &e->blocks, error);
      } else if (g_str_has_prefix(keys[k], SITE_PREFIX)) {
        ok = parse_count(path, groups[i], keys[k], value, &n, error);
        g_hash_table_insert(e->sites, g_strdup(keys[k] + strlen(SITE_PREFIX)), GSIZE_TO_POINTER(n));
      } else {
        g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_KEY_NOT_FOUND,
                    "%s: [%s] has an unknown key '%s': use bytes, blocks or 'site FILE:FUNCTION'",
                    path, groups[i], keys[k]);
        ok = false;
      }
      g_free(value);
    }
    g_strfreev(keys);
    if (ok)
      g_hash_table_replace(entries, g_strdup(groups[i]), e);
    else
      entry_free(e);
  }
  g_strfreev(groups);
  g_key_file_free(kf);
  return ok;
}

tm__leak_baseline *tm__leak_baseline_load(const char *path, GError **error) {
  tm__leak_baseline *b = g_new0(tm__leak_baseline, 1);
  char *text = NULL;
  gsize len = 0;
  GError *local = NULL;

  b->entries = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, entry_free);
  if (!g_file_get_contents(path, &text, &len, &local)) {
    if (g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOENT)) {
      g_error_free(local); /* no file yet: every test is at zero */
      return b;
    }
    g_propagate_error(error, local);
    tm__leak_baseline_free(b);
    return NULL;
  }
  bool ok = parse(path, text, len, b->entries, error);
  g_free(text);
  if (!ok) {
    tm__leak_baseline_free(b);
    return NULL;
  }
  return b;
}

void tm__leak_baseline_free(tm__leak_baseline *baseline) {
  if (baseline == NULL)
    return;
  g_hash_table_unref(baseline->entries);
  g_free(baseline);
}

const tm__leak_baseline_entry *tm__leak_baseline_lookup(const tm__leak_baseline *baseline,
                                                        const char *key) {
  return baseline != NULL ? g_hash_table_lookup(baseline->entries, key) : NULL;
}

/* Replaces what a key-file group or key name cannot hold ('[', ']', '=', control characters). */
static char *sanitize(char *s) {
  for (char *p = s; *p != '\0'; p++)
    if (*p == '[' || *p == ']' || *p == '=' || (unsigned char)*p < 0x20)
      *p = '_';
  return s;
}

char *tm__leak_baseline_key(const tm__leak_record *r) {
  const char *test = r->test != NULL ? r->test : "?";
  char *key = r->suite != NULL && r->tcase != NULL
                ? g_strdup_printf("%s/%s/%s", r->suite, r->tcase, test)
                : g_strdup_printf("%s/%s", r->program != NULL ? r->program : "?", test);
  if (r->iteration != 0) {
    char *with = g_strdup_printf("%s#%d", key, r->iteration);
    g_free(key);
    key = with;
  }
  return sanitize(key);
}

char *tm__leak_baseline_site(const tm__leak_record_root *root) {
  const char *function = root->function != NULL ? root->function : "?";
  /* gcc's clone suffixes (f.constprop.0) depend on the optimizer, not on the code. */
  return sanitize(g_strdup_printf("%s:%.*s", root->file != NULL ? root->file : "?",
                                  (int)strcspn(function, "."), function));
}

static gint compare_strings(gconstpointer a, gconstpointer b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The keys of a table, sorted. g_ptr_array_unref() (the strings are borrowed). */
static GPtrArray *sorted_keys(GHashTable *table) {
  GPtrArray *keys = g_ptr_array_new();
  GHashTableIter it;
  gpointer key;

  g_hash_table_iter_init(&it, table);
  while (g_hash_table_iter_next(&it, &key, NULL))
    g_ptr_array_add(keys, key);
  g_ptr_array_sort(keys, compare_strings);
  return keys;
}

/* The text of a baseline: the header, then the groups sorted by key, sites sorted. */
static char *serialize(GHashTable *entries) {
  GString *s = g_string_new(header);
  GPtrArray *keys = sorted_keys(entries);

  for (guint i = 0; i < keys->len; i++) {
    const char *key = g_ptr_array_index(keys, i);
    const tm__leak_baseline_entry *e = g_hash_table_lookup(entries, key);
    GPtrArray *sites = sorted_keys(e->sites);
    g_string_append_printf(s, "\n[%s]\nbytes = %zu\nblocks = %zu\n", key, e->size, e->blocks);
    for (guint j = 0; j < sites->len; j++) {
      const char *site = g_ptr_array_index(sites, j);
      g_string_append_printf(s, SITE_PREFIX "%s = %zu\n", site,
                             GPOINTER_TO_SIZE(g_hash_table_lookup(e->sites, site)));
    }
    g_ptr_array_unref(sites);
  }
  g_ptr_array_unref(keys);
  return g_string_free(s, false);
}

/* Reads all of fd from its start. g_free(). */
static char *read_all(int fd, gsize *len) {
  GString *s = g_string_new(NULL);
  char buf[4096];
  ssize_t n;
  off_t off = 0;

  while ((n = pread(fd, buf, sizeof buf, off)) > 0 || (n < 0 && errno == EINTR)) {
    if (n > 0) {
      g_string_append_len(s, buf, n);
      off += n;
    }
  }
  *len = s->len;
  return g_string_free(s, false);
}

bool tm__leak_baseline_update(const char *path, const tm__leak_record *r, GError **error) {
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  GHashTable *entries;
  char *key, *text, *old;
  gsize len = 0;
  bool ok;

  if (fd < 0) {
    g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "cannot open %s: %s", path,
                g_strerror(errno));
    return false;
  }
  while (flock(fd, LOCK_EX) != 0 && errno == EINTR)
    continue;
  entries = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, entry_free);
  old = read_all(fd, &len);
  ok = parse(path, old, len, entries, error);
  g_free(old);
  if (ok) {
    key = tm__leak_baseline_key(r);
    if (r->charged.size == 0 && r->charged.blocks == 0) {
      g_hash_table_remove(entries, key);
      g_free(key);
    } else {
      tm__leak_baseline_entry *e = g_new0(tm__leak_baseline_entry, 1);
      e->size = r->charged.size;
      e->blocks = r->charged.blocks;
      e->sites = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
      for (guint i = 0; i < r->roots->len; i++) {
        const tm__leak_record_root *root = &g_array_index(r->roots, tm__leak_record_root, i);
        char *site = tm__leak_baseline_site(root);
        size_t before = GPOINTER_TO_SIZE(g_hash_table_lookup(e->sites, site));
        g_hash_table_replace(e->sites, site, GSIZE_TO_POINTER(before + root->size));
      }
      g_hash_table_replace(entries, key, e);
    }
    text = serialize(entries);
    len = strlen(text);
    ok = ftruncate(fd, 0) == 0 && pwrite(fd, text, len, 0) == (ssize_t)len;
    if (!ok)
      g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "cannot write %s: %s",
                  path, g_strerror(errno));
    g_free(text);
  }
  g_hash_table_unref(entries);
  flock(fd, LOCK_UN);
  close(fd);
  return ok;
}
