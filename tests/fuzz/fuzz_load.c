/* fuzz_load.c — libFuzzer target for tm_snapshot_load().
 *
 * Each input is written to a memfd and loaded through its /proc/self/fd path, exactly as a file
 * is. A load must either succeed, or fail with a TM_ERROR whose message names the file; a
 * snapshot that loads is then put through everything a user would do with it (statistics of
 * every key, formatting, compare_to, filters), so hostile dumps are also fuzzed against the
 * analysis layer. It is then dumped and loaded again twice: the second dump must repeat the first
 * byte for byte (dump and load are inverse once a file has been normalized by a load), which
 * fuzzes the writer too. AddressSanitizer turns any over-read into a crash.
 *
 * Build and run: see tests/fuzz/meson.build.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tracemalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int input_fd = -1;
static char input_path[64];

static void write_input(const uint8_t *data, size_t size) {
  if (input_fd < 0) {
    input_fd = memfd_create("fuzz_load", MFD_CLOEXEC);
    if (input_fd < 0)
      abort();
    snprintf(input_path, sizeof(input_path), "/proc/self/fd/%d", input_fd);
  }
  if (ftruncate(input_fd, 0) != 0)
    abort();
  for (size_t off = 0; off < size;) {
    ssize_t n = pwrite(input_fd, data + off, size - off, (off_t)off);
    if (n <= 0)
      abort();
    off += (size_t)n;
  }
}

static void use_statistics(tm_snapshot *snap, tm_key_type key, bool cumulative) {
  tm_statistics *st = tm_snapshot_statistics(snap, key, cumulative, NULL);
  for (size_t i = 0; i < tm_statistics_length(st); i++) {
    const tm_statistic *stat = tm_statistics_get(st, i);
    g_free(tm_statistic_format(stat));
    g_strfreev(tm_traceback_format(stat->traceback, 0, false));
    g_strfreev(tm_traceback_format(stat->traceback, -2, true));
    g_free(tm_traceback_to_string(stat->traceback));
  }
  tm_statistics_free(st);
}

static void use_snapshot(tm_snapshot *snap) {
  use_statistics(snap, TM_KEY_LINENO, false);
  use_statistics(snap, TM_KEY_FILENAME, true);
  use_statistics(snap, TM_KEY_TRACEBACK, false);
  tm_statistic_diffs *d = tm_snapshot_compare_to(snap, snap, TM_KEY_LINENO, true, NULL);
  for (size_t i = 0; i < tm_statistic_diffs_length(d); i++)
    g_free(tm_statistic_diff_format(tm_statistic_diffs_get(d, i)));
  tm_statistic_diffs_free(d);
  tm_filter *filters[2] = {tm_filter_new(false, "*.c", 0, true, -1, NULL),
                           tm_domain_filter_new(true, 0)};
  tm_snapshot *f = tm_snapshot_filter_traces(snap, filters, 2, NULL);
  use_statistics(f, TM_KEY_LINENO, false);
  tm_snapshot_free(f);
  tm_filter_free(filters[0]);
  tm_filter_free(filters[1]);
}

/* Dumps snap to path and returns the file's bytes (g_bytes_unref). */
static GBytes *dump_bytes(tm_snapshot *snap, const char *path) {
  gchar *contents;
  gsize len;
  if (!tm_snapshot_dump(snap, path, NULL) || !g_file_get_contents(path, &contents, &len, NULL))
    abort();
  return g_bytes_new_take(contents, len);
}

/* load(dump(snap)) dumps to the same bytes as snap. */
static void check_round_trip(tm_snapshot *snap) {
  static char *path;
  if (path == NULL) { /* tmpfs when there is one: the dump fsync()s */
    bool shm = g_file_test("/dev/shm", G_FILE_TEST_IS_DIR);
    path = g_strdup_printf("%s/fuzz_load-%d.dump", shm ? "/dev/shm" : g_get_tmp_dir(),
                           (int)getpid());
  }
  GBytes *first = dump_bytes(snap, path);
  tm_snapshot *again = tm_snapshot_load(path, NULL);
  if (again == NULL || tm_snapshot_length(again) != tm_snapshot_length(snap))
    abort();
  GBytes *second = dump_bytes(again, path);
  if (!g_bytes_equal(first, second))
    abort();
  g_bytes_unref(first);
  g_bytes_unref(second);
  tm_snapshot_free(again);
  unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  write_input(data, size);
  GError *err = NULL;
  tm_snapshot *snap = tm_snapshot_load(input_path, &err);
  if (snap == NULL) {
    /* Every failure is a clean TM_ERROR naming the file. */
    if (err == NULL || err->domain != TM_ERROR ||
        strncmp(err->message, input_path, strlen(input_path)) != 0 ||
        (err->code != TM_ERROR_CORRUPT && err->code != TM_ERROR_VERSION))
      abort();
    g_error_free(err);
    return 0;
  }
  if (err != NULL)
    abort();
  use_snapshot(snap);
  check_round_trip(snap);
  tm_snapshot_free(snap);
  return 0;
}
