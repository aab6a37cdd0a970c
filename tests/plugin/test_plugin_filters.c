/* test_plugin_filters.c — each default filter removes its cache, and a real leak through the same
 * library is still caught. Runs cache_suite in both fork modes, and once more in
 * CK_FORK=yes with TM_LEAK_DEFAULT_FILTERS=0 to show that every cache is really allocated inside
 * the window (in a fresh child each cache is cold), so that no filter test is vacuous. Check's
 * message file, which only CK_FORK=no mode replaces inside the window, is traced only in a link
 * without the plugin's wraps of Check's messaging (leak_quiet.c): cache_suite_unwrapped. */
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "../run_suite.h"

#include "harness.h"

static suite_run *runs[2]; /* CK_FORK=yes, no */
static suite_run *unfiltered; /* CK_FORK=yes, TM_LEAK_DEFAULT_FILTERS=0 */
static suite_run *malloc_slices[2]; /* G_SLICE=always-malloc: every GSlice object is a block */
static suite_run *unwrapped; /* cache_suite_unwrapped, CK_FORK=no: Check's messages traced */
static const char *suite_src;

static const char *const caches[] = {
  "stdio", "tz", "locale", "nss", "loader", "thread", "quark", "type", "gslice", "check_file",
};
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

/* Without the default filters, each cache is charged: the filter above did real work. Check's
 * message file is replaced inside the window only in CK_FORK=no mode; it is tested there. */
START_TEST(test_cache_exists) {
  const char *cache = caches[_i];
  char *test = g_strconcat("test_", cache, NULL);
  const suite_run *run = unfiltered;
  if (g_str_equal(cache, "check_file"))
    run = runs[1]; /* reported below with its own run */
  if (run == unfiltered)
    check_result(run, "Caches", test, 0, 'S', NULL, NULL, "leaked ");
  g_free(test);
}
END_TEST

/* Loop index i: 0 unwrapped, where the filter is needed; 1 the plugin's own link, where Check's
 * messages are not traced at all, so that even unfiltered the new message file is not charged. */
START_TEST(test_check_file_exists) {
  const char *const env[] = {"TM_LEAK_DEFAULT_FILTERS=0", NULL};
  const char *exe = required_env(_i == 0 ? "CACHE_SUITE_UNWRAPPED" : "CACHE_SUITE");
  suite_run *run = suite_run_new(exe, "no", env);
  if (_i == 0)
    check_result(run, "Caches", "test_check_file", 0, 'S', NULL, NULL, "leaked ");
  else
    check_result(run, "Caches", "test_check_file", 0, 'P', NULL, NULL, "Passed");
  suite_run_free(run);
}
END_TEST

/* Unwrapped, the default filters still pass the message file and catch the leak beside it. */
START_TEST(test_check_file_unwrapped) {
  check_result(unwrapped, "Caches", "test_check_file", 0, 'P', NULL, NULL, "Passed");
  check_result(unwrapped, "Caches", "test_check_file_leak", 0, 'S', suite_src, "site:check_file */",
               "leaked 5 B in 1 block (allowed 0 B)");
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
  const char *head = strstr(run->err, "tracemalloc-check: test_thread_leak: leaked 5 B");
  ck_assert_msg(head != NULL, "CK_FORK=%s:\n%s", run->fork, run->err);
  ck_assert_msg(strstr(head, "; the filters ignored ") != NULL, "%s", head);
  /* A fresh child allocates the TLS of the 4 threads; in CK_FORK=no mode glibc reuses the stacks
   * test_thread left, but Check's message file is replaced in every window. */
  if (_i == 0)
    ck_assert_msg(strstr(head, "pthread_create: ") != NULL || strstr(head, "_dl_") != NULL ||
                  strstr(head, "ld-linux") != NULL, "no thread filter named in %s", head);
  else
    ck_assert_msg(strstr(head, "open_tmp_file: 472 B in 1") != NULL, "%s", head);
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
  unfiltered = suite_run_new(exe, "yes", no_filters);
  const char *const always_malloc[] = {"G_SLICE=always-malloc", NULL};
  malloc_slices[0] = suite_run_new(exe, "yes", always_malloc);
  malloc_slices[1] = suite_run_new(exe, "no", always_malloc);
  unwrapped = suite_run_new(required_env("CACHE_SUITE_UNWRAPPED"), "no", NULL);
  tcase_add_loop_test(tc, test_cache_ignored, 0, NCACHES * 2);
  tcase_add_loop_test(tc, test_leak_caught, 0, NCACHES * 2);
  tcase_add_loop_test(tc, test_cache_exists, 0, NCACHES);
  tcase_add_loop_test(tc, test_check_file_exists, 0, 2);
  tcase_add_test(tc, test_check_file_unwrapped);
  tcase_add_loop_test(tc, test_report_counts_ignored, 0, 2);
  tcase_add_loop_test(tc, test_always_malloc, 0, NCACHES * 2);
  suite_add_tcase(s, tc);
  failed = run_suite(s) != EXIT_SUCCESS;
  suite_run_free(runs[0]);
  suite_run_free(runs[1]);
  suite_run_free(unfiltered);
  suite_run_free(malloc_slices[0]);
  suite_run_free(malloc_slices[1]);
  suite_run_free(unwrapped);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
