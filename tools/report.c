/* report.c — `tracemalloc stats` and `tracemalloc compare`: Python's text, printed through the
 * library's own format functions (tm_statistic_format, tm_statistic_diff_format,
 * tm_traceback_format), so a line reads exactly as Python prints the same statistic:
 *
 *   stats:    print("[ Top 10 ]"); for stat in top_stats[:10]: print(stat)
 *   compare:  print("[ Top 10 differences ]"); for stat in top_stats[:10]: print(stat)
 *   --traceback (stats), Python's "Get the traceback of a memory block":
 *             print("%s memory blocks: %.1f KiB" % (stat.count, stat.size / 1024))
 *             for line in stat.traceback.format(): print(line)
 *   --traceback (compare): print(stat), then the traceback's lines.
 * With --source-root DIR the file names under DIR print relative to it (the library formats the
 * line; the leading "DIR/" of its file name is dropped).
 */
#include <stdlib.h>
#include <string.h>

#include "tool.h"

/* "DIR/" of tool_paths_relative_to(), or NULL. */
static char *relative_root;

/* See tool.h. */
void tool_paths_relative_to(const char *dir) {
  g_free(relative_root);
  relative_root = NULL;
  if (dir == NULL)
    return;
  char *abs = g_canonicalize_filename(dir, NULL);
  char *real = realpath(abs, NULL);
  relative_root = g_strconcat(real != NULL ? real : abs, g_str_has_suffix(abs, "/") ? "" : "/",
                              NULL);
  free(real);
  g_free(abs);
}

/* Prints line with the leading root dropped from its file name: at its start (a statistic) or
 * after '  File "' (a traceback line). */
static void line_print(const char *line, FILE *out) {
  static const char file_prefix[] = "  File \"";
  size_t n = relative_root != NULL ? strlen(relative_root) : 0;
  if (n > 0 && strncmp(line, relative_root, n) == 0)
    fprintf(out, "%s\n", line + n);
  else if (n > 0 && g_str_has_prefix(line, file_prefix) &&
           strncmp(line + strlen(file_prefix), relative_root, n) == 0)
    fprintf(out, "%s%s\n", file_prefix, line + strlen(file_prefix) + n);
  else
    fprintf(out, "%s\n", line);
}

/* Prints the lines of tb.format(), as Python (oldest frame first). */
static void traceback_print(const tm_traceback *tb, FILE *out) {
  char **lines = tm_traceback_format(tb, 0, false);
  for (size_t i = 0; lines != NULL && lines[i] != NULL; i++)
    line_print(lines[i], out);
  g_strfreev(lines);
}

/* How many of n statistics --limit prints (0: all). */
static size_t shown(int limit, size_t n) {
  return limit == 0 || (size_t)limit > n ? n : (size_t)limit;
}

/* Prints statistics; returns false after printing one line when they cannot be computed. */
static bool statistics_print(tm_snapshot *snap, tm_key_type key, bool cumulative, int limit,
                             bool with_traceback, FILE *out) {
  GError *error = NULL;
  tm_statistics *stats = tm_snapshot_statistics(snap, key, cumulative, &error);
  if (stats == NULL) {
    tool_fail("%s: %s", g_get_prgname(), error->message);
    g_error_free(error);
    return false;
  }
  size_t n = shown(limit, tm_statistics_length(stats));
  fprintf(out, "[ Top %d ]\n", limit == 0 ? (int)n : limit);
  for (size_t i = 0; i < n; i++) {
    const tm_statistic *stat = tm_statistics_get(stats, i);
    if (with_traceback) {
      fprintf(out, "%zu memory blocks: %.1f KiB\n", stat->count, (double)stat->size / 1024);
      traceback_print(stat->traceback, out);
    } else {
      char *line = tm_statistic_format(stat);
      line_print(line, out);
      g_free(line);
    }
  }
  tm_statistics_free(stats);
  return true;
}

/* See tool.h. */
void tool_top_lines_print(tm_snapshot *snap, int limit, FILE *out) {
  statistics_print(snap, TM_KEY_LINENO, false, limit, false, out);
}

/* See tool.h. */
int tool_stats_main(int argc, char **argv) {
  tool_view view = {0};
  tm_key_type key;
  int rc = TOOL_EXIT_USAGE;
  GOptionContext *ctx = g_option_context_new("FILE");
  g_option_context_set_summary(ctx, "Prints Python's statistics of a dump (Snapshot.statistics).");
  tool_view_add_options(ctx, &view, false);
  if (!tool_parse(ctx, &argc, &argv) || !tool_view_check(&view, &key))
    goto out;
  if (argc != 2) {
    rc = tool_fail("%s: expected one dump file, got %d (see %s --help)", g_get_prgname(),
                   argc - 1, g_get_prgname());
    goto out;
  }
  tm_snapshot *snap = tool_snapshot_load(argv[1]);
  if (snap == NULL)
    goto out;
  tm_snapshot *filtered = tool_view_filter(&view, snap);
  if (filtered != NULL &&
      statistics_print(filtered, key, view.cumulative, view.limit, view.traceback, stdout))
    rc = TOOL_EXIT_OK;
  tm_snapshot_free(filtered);
  tm_snapshot_free(snap);
out:
  tool_view_clear(&view);
  return rc;
}

/* See tool.h. */
int tool_compare_main(int argc, char **argv) {
  tool_view view = {0};
  tm_key_type key;
  size_t fail_over = 0;
  int rc = TOOL_EXIT_USAGE;
  tm_snapshot *snaps[2] = {NULL, NULL}, *filtered[2] = {NULL, NULL};
  tm_statistic_diffs *diffs = NULL;
  GError *error = NULL;
  GOptionContext *ctx = g_option_context_new("NEW OLD");
  g_option_context_set_summary(ctx, "Prints Python's differences between two dumps "
                                    "(Snapshot.compare_to): what NEW holds more than OLD.");
  tool_view_add_options(ctx, &view, true);
  if (!tool_parse(ctx, &argc, &argv) || !tool_view_check(&view, &key))
    goto out;
  if (view.fail_over != NULL && !tool_size_parse(view.fail_over, &fail_over)) {
    rc = tool_fail("%s: --fail-over '%s' is not a size: write 512, 4KiB or 4 KiB (units B, KiB, "
                   "MiB, GiB, TiB)",
                   g_get_prgname(), view.fail_over);
    goto out;
  }
  if (argc != 3) {
    rc = tool_fail("%s: expected two dump files, NEW and OLD, got %d (see %s --help)",
                   g_get_prgname(), argc - 1, g_get_prgname());
    goto out;
  }
  for (int i = 0; i < 2; i++) {
    if ((snaps[i] = tool_snapshot_load(argv[i + 1])) == NULL ||
        (filtered[i] = tool_view_filter(&view, snaps[i])) == NULL)
      goto out;
  }
  diffs = tm_snapshot_compare_to(filtered[0], filtered[1], key, view.cumulative, &error);
  if (diffs == NULL) {
    rc = tool_fail("%s: %s", g_get_prgname(), error->message);
    g_error_free(error);
    goto out;
  }
  size_t n = shown(view.limit, tm_statistic_diffs_length(diffs));
  printf("[ Top %d differences ]\n", view.limit == 0 ? (int)n : view.limit);
  for (size_t i = 0; i < n; i++) {
    const tm_statistic_diff *d = tm_statistic_diffs_get(diffs, i);
    char *line = tm_statistic_diff_format(d);
    line_print(line, stdout);
    g_free(line);
    if (view.traceback)
      traceback_print(d->traceback, stdout);
  }
  rc = TOOL_EXIT_OK;
  if (view.fail_over != NULL) {
    /* The growth of the whole (filtered) snapshot, whatever the key: cumulative statistics count
     * a block once per frame, so the total comes from the traces. */
    int64_t total = 0;
    for (int i = 0; i < 2; i++)
      for (size_t t = 0; t < tm_snapshot_length(filtered[i]); t++)
        total += (i == 0 ? 1 : -1) * (int64_t)tm_snapshot_get(filtered[i], t)->size;
    if (total > 0 && (uint64_t)total > fail_over) {
      char *grew = tm_format_size(total, true), *limit = tm_format_size((int64_t)fail_over, false);
      fflush(stdout);
      fprintf(stderr, "tracemalloc: compare: grew by %s, more than --fail-over %s\n", grew, limit);
      g_free(grew);
      g_free(limit);
      rc = TOOL_EXIT_GREW;
    }
  }
out:
  tm_statistic_diffs_free(diffs);
  for (int i = 0; i < 2; i++) {
    tm_snapshot_free(filtered[i]);
    tm_snapshot_free(snaps[i]);
  }
  tool_view_clear(&view);
  return rc;
}
