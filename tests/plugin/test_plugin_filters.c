/* test_plugin_filters.c — one-time caches of the C library, the loader, GLib and Check never fail
 * a test, and a real leak through the same library is still caught. Runs cache_suite in both fork
 * modes; with reachable growth charged, where the name filters alone must pass them; without the
 * default filters, where reachability alone must pass the caches that stay
 * reachable from the library's globals; and in CK_FORK=yes with reachable growth charged and no
 * filters, to show that every cache is really allocated inside the window (in a fresh child each
 * cache is cold), so that no test is vacuous. Check's message file, which only CK_FORK=no mode
 * replaces inside the window, is traced only in a link without the plugin's wraps of Check's
 * messaging (leak_quiet.c): cache_suite_unwrapped. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "../run_suite.h"

#include "harness.h"

static suite_run *runs[2]; /* CK_FORK=yes, no */
static suite_run *unfiltered; /* CK_FORK=yes, TM_LEAK_DEFAULT_FILTERS=0, reachable charged */
static suite_run *names_off[2]; /* TM_LEAK_DEFAULT_FILTERS=0: reachability alone */
static suite_run *charged[2]; /* TM_LEAK_REACHABLE=charge: the name filters alone pass caches */
static suite_run *malloc_slices[2]; /* G_SLICE=always-malloc: every GSlice object is a block */
static suite_run *unwrapped; /* cache_suite_unwrapped, CK_FORK=no, reachable charged: Check's
                               * messages traced, and only the filters pass them */
static const char *suite_src;

static const char *const caches[] = {
  "stdio", "tz", "locale", "nss", "loader", "thread", "quark", "type", "gslice", "check_file",
  "localtime", "strerror", "getaddrinfo", "errno_text", "wide",
};

/* The caches whose blocks the scan cannot reach: link maps chained from maps the loader made
 * before relocation, and the TLS of thread stacks glibc keeps for reuse. Only the name filters
 * pass them. */
static bool needs_names(const char *cache) {
  return g_str_equal(cache, "loader") || g_str_equal(cache, "thread");
}

/* Caches that allocate nothing inside the window in a fresh child: GLib's quark block has room
 * left from start-up, GSlice hands out malloc blocks in processes that use the plugin, and Check's
 * message file is replaced inside the window only in CK_FORK=no mode. */
static bool cold_in_window(const char *cache) {
  return g_str_equal(cache, "quark") || g_str_equal(cache, "gslice") ||
         g_str_equal(cache, "check_file");
}
#define NCACHES ((int)G_N_ELEMENTS(caches))

/* Loop index i: cache i / 2 in mode i % 2. The cache alone passes. */
START_TEST(test_cache_ignored) {
  const char *cache = caches[_i / 2];
  char *test = g_strconcat("test_", cache, NULL);
  check_result(runs[_i % 2], "Caches", test, 0, 'P', NULL, NULL, "Passed");
  g_free(test);
}
END_TEST

/* The twin leaks 5 bytes through g_strdup after filling the same cache: exactly those are
 * charged, at the twin's line. */
START_TEST(test_leak_caught) {
  const char *cache = caches[_i / 2];
  char *test = g_strdup_printf("test_%s_leak", cache);
  char *marker = g_strdup_printf("site:%s */", cache);
  check_result(runs[_i % 2], "Caches", test, 0, 'S', suite_src, marker,
               "leaked 5 B in 1 block (allowed 0 B)");
  g_free(marker);
  g_free(test);
}
END_TEST

/* Without the default filters and with reachable growth charged, each cache is charged: the
 * window really holds it, and what passed it above did real work. */
START_TEST(test_cache_exists) {
  const char *cache = caches[_i];
  char *test = g_strconcat("test_", cache, NULL);
  if (!cold_in_window(cache))
    check_result(unfiltered, "Caches", test, 0, 'S', NULL, NULL, "left ");
  g_free(test);
}
END_TEST

/* Without the default filters, reachability alone passes every cache that the library keeps in
 * its globals, whatever its functions are named and whatever debug information is installed;
 * each twin's leak is still caught at its line. Loop index i: cache i / 2 in mode i % 2. */
START_TEST(test_reachability_alone) {
  const char *cache = caches[_i / 2];
  const suite_run *run = names_off[_i % 2];
  char *test = g_strconcat("test_", cache, NULL);
  char *twin = g_strdup_printf("test_%s_leak", cache);
  char *marker = g_strdup_printf("site:%s */", cache);
  if (!needs_names(cache)) {
    check_result(run, "Caches", test, 0, 'P', NULL, NULL, "Passed");
    check_result(run, "Caches", twin, 0, 'S', suite_src, marker,
                 "leaked 5 B in 1 block (allowed 0 B): a 5 B block from g_strdup() at ");
  } else {
    check_result(run, "Caches", test, 0, 'S', NULL, NULL, "leaked ");
  }
  g_free(marker);
  g_free(twin);
  g_free(test);
}
END_TEST

/* Caches whose blocks glibc allocates only in internal functions, which have names only with its
 * debug symbols (docs/plugin.md): in charge mode, only the name filters pass them. */
static bool needs_libc_debug_symbols(const char *cache) {
  return g_str_equal(cache, "localtime") || g_str_equal(cache, "getaddrinfo");
}

/* With reachable growth charged, the default filters pass every cache, with or without glibc's
 * debug symbols but for those that need them, and each twin is charged its 5 bytes at its line.
 * Loop index i: cache i / 2 in mode i % 2. */
START_TEST(test_cache_charged_ignored) {
  const char *cache = caches[_i / 2];
  const suite_run *run = charged[_i % 2];
  char *test = g_strconcat("test_", cache, NULL);
  char *twin = g_strdup_printf("test_%s_leak", cache);
  char *marker = g_strdup_printf("site:%s */", cache);
  if (!needs_libc_debug_symbols(cache))
    check_result(run, "Caches", test, 0, 'P', NULL, NULL, "Passed");
  check_result(run, "Caches", twin, 0, 'S', suite_src, marker, NULL);
  g_free(marker);
  g_free(twin);
  g_free(test);
}
END_TEST

/* Loop index i: 0 unwrapped, where the filter is needed when reachable growth is charged; 1 the
 * plugin's own link, where Check's messages are not traced at all, so that even unfiltered the new
 * message file is not charged. */
START_TEST(test_check_file_exists) {
  const char *const env[] = {"TM_LEAK_DEFAULT_FILTERS=0", "TM_LEAK_REACHABLE=charge", NULL};
  const char *exe = required_env(_i == 0 ? "CACHE_SUITE_UNWRAPPED" : "CACHE_SUITE");
  suite_run *run = suite_run_new(exe, "no", env);
  if (_i == 0)
    check_result(run, "Caches", "test_check_file", 0, 'S', NULL, NULL, "left ");
  else
    check_result(run, "Caches", "test_check_file", 0, 'P', NULL, NULL, "Passed");
  suite_run_free(run);
}
END_TEST

/* Unwrapped, the default filters still pass the message file and catch the leak beside it. */
START_TEST(test_check_file_unwrapped) {
  check_result(unwrapped, "Caches", "test_check_file", 0, 'P', NULL, NULL, "Passed");
  check_result(unwrapped, "Caches", "test_check_file_leak", 0, 'S', suite_src, "site:check_file */",
               "left 5 B in 1 block (allowed 0 B)");
}
END_TEST

/* With G_SLICE=always-malloc the GSlice filter is off (its blocks are objects then), and the
 * verdicts stay the same. */
START_TEST(test_always_malloc) {
  const suite_run *run = malloc_slices[_i % 2];
  const char *cache = caches[_i / 2];
  char *test = g_strconcat("test_", cache, NULL);
  char *twin = g_strdup_printf("test_%s_leak", cache);
  char *marker = g_strdup_printf("site:%s */", cache);
  check_result(run, "Caches", test, 0, 'P', NULL, NULL, "Passed");
  check_result(run, "Caches", twin, 0, 'S', suite_src, marker,
               "leaked 5 B in 1 block (allowed 0 B)");
  g_free(marker);
  g_free(twin);
  g_free(test);
}
END_TEST

/* The report says how much the filters removed (in CK_FORK=no mode, from the unwrapped link). */
START_TEST(test_report_counts_ignored) {
  const suite_run *run = _i == 0 ? runs[0] : unwrapped;
  const char *head = strstr(run->err, _i == 0 ? "tracemalloc-check: test_thread_leak: leaked 5 B"
                                              : "tracemalloc-check: test_thread_leak: left 5 B");
  ck_assert_msg(head != NULL, "CK_FORK=%s:\n%s", run->fork, run->err);
  ck_assert_msg(strstr(head, "; the filters ignored ") != NULL, "%s", head);
  /* A fresh child allocates the TLS of the 4 threads; in CK_FORK=no mode glibc reuses the stacks
   * test_thread left, but Check's message file is replaced in every window. */
  if (_i == 0)
    ck_assert_msg(strstr(head, "pthread_create: ") != NULL || strstr(head, "_dl_") != NULL ||
                  strstr(head, "ld-linux") != NULL, "no thread filter named in %s", head);
  else
    ck_assert_msg(strstr(head, "open_tmp_file: 472 B in 1 block\n") != NULL, "%s", head);
}
END_TEST

int main(void) {
  const char *exe = required_env("CACHE_SUITE");
  const char *const no_filters[] = {"TM_LEAK_DEFAULT_FILTERS=0", NULL};
  Suite *s = suite_create("plugin-filters");
  TCase *tc = tcase_create("cache_suite");
  int failed;

  suite_src = required_env("CACHE_SUITE_SRC");
  runs[0] = suite_run_new(exe, "yes", NULL);
  runs[1] = suite_run_new(exe, "no", NULL);
  const char *const charged_unfiltered[] = {"TM_LEAK_DEFAULT_FILTERS=0",
                                            "TM_LEAK_REACHABLE=charge", NULL};
  unfiltered = suite_run_new(exe, "yes", charged_unfiltered);
  names_off[0] = suite_run_new(exe, "yes", no_filters);
  names_off[1] = suite_run_new(exe, "no", no_filters);
  const char *const always_malloc[] = {"G_SLICE=always-malloc", NULL};
  malloc_slices[0] = suite_run_new(exe, "yes", always_malloc);
  malloc_slices[1] = suite_run_new(exe, "no", always_malloc);
  const char *const charged_env[] = {"TM_LEAK_REACHABLE=charge", NULL};
  unwrapped = suite_run_new(required_env("CACHE_SUITE_UNWRAPPED"), "no", charged_env);
  charged[0] = suite_run_new(exe, "yes", charged_env);
  charged[1] = suite_run_new(exe, "no", charged_env);
  tcase_add_loop_test(tc, test_cache_ignored, 0, NCACHES * 2);
  tcase_add_loop_test(tc, test_leak_caught, 0, NCACHES * 2);
  tcase_add_loop_test(tc, test_cache_exists, 0, NCACHES);
  tcase_add_loop_test(tc, test_reachability_alone, 0, NCACHES * 2);
  tcase_add_loop_test(tc, test_check_file_exists, 0, 2);
  tcase_add_test(tc, test_check_file_unwrapped);
  tcase_add_loop_test(tc, test_report_counts_ignored, 0, 2);
  tcase_add_loop_test(tc, test_always_malloc, 0, NCACHES * 2);
  tcase_add_loop_test(tc, test_cache_charged_ignored, 0, NCACHES * 2);
  suite_add_tcase(s, tc);
  failed = run_suite(s) != EXIT_SUCCESS;
  suite_run_free(runs[0]);
  suite_run_free(runs[1]);
  suite_run_free(unfiltered);
  suite_run_free(names_off[0]);
  suite_run_free(names_off[1]);
  suite_run_free(malloc_slices[0]);
  suite_run_free(malloc_slices[1]);
  suite_run_free(unwrapped);
  suite_run_free(charged[0]);
  suite_run_free(charged[1]);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
