/* options.c — the options stats, compare and flamegraph share, and sizes as users write them. */
#include <stdint.h>
#include <string.h>

#include "tool.h"

/* See tool.h. */
void tool_view_add_options(GOptionContext *ctx, tool_view *view, bool with_compare) {
  GOptionEntry entries[] = {
      {"key", 'k', 0, G_OPTION_ARG_STRING, &view->key,
       "Group by lineno (default), filename or traceback", "KEY"},
      {"cumulative", 'c', 0, G_OPTION_ARG_NONE, &view->cumulative,
       "Credit every frame of a traceback, not only the most recent", NULL},
      {"limit", 'l', 0, G_OPTION_ARG_INT, &view->limit, "Print the N largest (default 10, 0: all)",
       "N"},
      {"include", 'i', 0, G_OPTION_ARG_STRING_ARRAY, &view->include,
       "Keep only traces with a frame in a file matching PATTERN (fnmatch; repeatable)",
       "PATTERN"},
      {"exclude", 'x', 0, G_OPTION_ARG_STRING_ARRAY, &view->exclude,
       "Drop traces with a frame in a file matching PATTERN (fnmatch; repeatable)", "PATTERN"},
      {"traceback", 't', 0, G_OPTION_ARG_NONE, &view->traceback,
       "Print each statistic's traceback after it", NULL},
      {"source-root", 'r', 0, G_OPTION_ARG_FILENAME, &view->source_root,
       "Show the dump's files under DIR relative to it, and with --traceback their source lines "
       "(none by default: the file names come from the dump)",
       "DIR"},
      {NULL, 0, 0, 0, NULL, NULL, NULL},
      {NULL, 0, 0, 0, NULL, NULL, NULL},
  };
  if (with_compare)
    entries[7] = (GOptionEntry){"fail-over", 'f', 0, G_OPTION_ARG_STRING, &view->fail_over,
                                "Exit with status 1 when the total growth passes SIZE (512, "
                                "4KiB, 4 KiB)",
                                "SIZE"};
  view->limit = 10;
  g_option_context_add_main_entries(ctx, entries, NULL);
}

/* See tool.h. */
void tool_view_clear(tool_view *view) {
  g_free(view->key);
  g_strfreev(view->include);
  g_strfreev(view->exclude);
  g_free(view->fail_over);
  g_free(view->source_root);
  memset(view, 0, sizeof *view);
}

/* See tool.h. */
bool tool_view_check(const tool_view *view, tm_key_type *key) {
  if (view->key == NULL || strcmp(view->key, "lineno") == 0)
    *key = TM_KEY_LINENO;
  else if (strcmp(view->key, "filename") == 0)
    *key = TM_KEY_FILENAME;
  else if (strcmp(view->key, "traceback") == 0)
    *key = TM_KEY_TRACEBACK;
  else {
    tool_fail("%s: --key %s: expected lineno, filename or traceback", g_get_prgname(), view->key);
    return false;
  }
  if (view->cumulative && *key == TM_KEY_TRACEBACK) {
    tool_fail("%s: --cumulative cannot be used with --key traceback", g_get_prgname());
    return false;
  }
  if (view->source_root != NULL) {
    if (!tm_set_source_root(view->source_root)) {
      tool_fail("%s: --source-root %s: not a directory", g_get_prgname(), view->source_root);
      return false;
    }
    tool_paths_relative_to(view->source_root);
  }
  if (view->limit < 0) {
    tool_fail("%s: --limit %d: expected 0 (all) or more", g_get_prgname(), view->limit);
    return false;
  }
  return true;
}

/* See tool.h. */
tm_snapshot *tool_view_filter(const tool_view *view, tm_snapshot *snap) {
  GPtrArray *filters = g_ptr_array_new_with_free_func((GDestroyNotify)tm_filter_free);
  tm_snapshot *out = NULL;
  GError *error = NULL;
  for (int inclusive = 1; inclusive >= 0; inclusive--) {
    char **patterns = inclusive ? view->include : view->exclude;
    for (size_t i = 0; patterns != NULL && patterns[i] != NULL; i++) {
      tm_filter *f = tm_filter_new(inclusive, patterns[i], 0, true, -1, &error);
      if (f == NULL) {
        tool_fail("%s: --%s: %s", g_get_prgname(), inclusive ? "include" : "exclude",
                  error->message);
        g_error_free(error);
        g_ptr_array_unref(filters);
        return NULL;
      }
      g_ptr_array_add(filters, f);
    }
  }
  if (filters->len == 0) {
    g_ptr_array_unref(filters);
    tm_snapshot *copy = tm_snapshot_filter_traces(snap, NULL, 0, NULL);
    return copy;
  }
  out = tm_snapshot_filter_traces(snap, (tm_filter *const *)filters->pdata, filters->len, &error);
  if (out == NULL) {
    tool_fail("%s: %s", g_get_prgname(), error->message);
    g_error_free(error);
  }
  g_ptr_array_unref(filters);
  return out;
}

/* See tool.h. */
bool tool_size_parse(const char *text, size_t *out) {
  static const struct {
    const char *unit;
    unsigned shift;
  } units[] = {{"B", 0}, {"KiB", 10}, {"MiB", 20}, {"GiB", 30}, {"TiB", 40}};
  const char *p = text;
  uint64_t value = 0;
  if (text == NULL)
    return false;
  while (*p == ' ' || *p == '\t')
    p++;
  if (*p < '0' || *p > '9')
    return false;
  for (; *p >= '0' && *p <= '9'; p++) {
    if (value > (UINT64_MAX - 9) / 10)
      return false;
    value = value * 10 + (uint64_t)(*p - '0');
  }
  while (*p == ' ' || *p == '\t')
    p++;
  unsigned shift = 0;
  if (*p != '\0') {
    size_t i;
    for (i = 0; i < G_N_ELEMENTS(units); i++) {
      size_t n = strlen(units[i].unit);
      if (strncmp(p, units[i].unit, n) == 0) {
        const char *q = p + n;
        while (*q == ' ' || *q == '\t')
          q++;
        if (*q == '\0')
          break;
      }
    }
    if (i == G_N_ELEMENTS(units))
      return false;
    shift = units[i].shift;
  }
  if (shift > 0 && value > (SIZE_MAX >> shift))
    return false;
  if (value > SIZE_MAX)
    return false;
  *out = (size_t)(value << shift);
  return true;
}
