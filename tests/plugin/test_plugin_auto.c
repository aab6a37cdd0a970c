/* test_plugin_auto.c — zero-edit mode judges every test once, also where the suite adds the
 * fixture itself; a test that allocates nothing passes the smallest peak limit (Check's own
 * messages are not the test's, in either fork mode). Runs auto_suite in both fork modes; the
 * verdicts also with the suite linked -Wl,--exclude-libs,ALL (the heap registry asked for by an ELF
 * note alone), with glibc mapping every block on its own (M_MMAP_THRESHOLD 0: a freed block
 * is unmapped at once), and with the suite started with stderr closed (Check's message file then
 * gets descriptor 2, and the plugin must not write its notes there). */
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "../run_suite.h"

#include "harness.h"

static suite_run *runs[8], *peak_runs[2];

static int count(const char *haystack, const char *needle) {
  int n = 0;
  for (const char *p = strstr(haystack, needle); p != NULL; p = strstr(p + 1, needle))
    n++;
  return n;
}

START_TEST(test_verdicts) {
  const suite_run *run = runs[_i];
  const char *src = required_env("AUTO_SUITE_SRC");
  check_result(run, "Plain", "test_auto_leak", 0, 'S', src, "site:auto",
               "leaked 40 B in 1 block (allowed 0 B)");
  check_result(run, "Plain", "test_auto_clean", 0, 'P', NULL, NULL, "Passed");
  check_result(run, "Plain", "test_auto_nothing", 0, 'P', NULL, NULL, "Passed");
  check_result(run, "Twice", "test_twice_leak", 0, 'S', src, "site:twice",
               "leaked 24 B in 1 block (allowed 0 B)");
  check_result(run, "Twice", "test_twice_clean", 0, 'P', NULL, NULL, "Passed");
  ck_assert_uint_eq(run->results->len, 5);
  ck_assert_ptr_nonnull(strstr(run->out, "Checks: 5, Failures: 2, Errors: 0"));
}
END_TEST

START_TEST(test_peak_limit_of_one_byte) {
  const suite_run *run = peak_runs[_i];
  const char *src = required_env("AUTO_SUITE_SRC");
  check_result(run, "Plain", "test_auto_nothing", 0, 'P', NULL, NULL, "Passed");
  check_result(run, "Plain", "test_auto_leak", 0, 'S', src, "site:auto",
               "leaked 40 B in 1 block (allowed 0 B); peak 40 B over the limit of 1 B: ");
  check_result(run, "Twice", "test_twice_leak", 0, 'S', src, "site:twice",
               "leaked 24 B in 1 block (allowed 0 B); peak 24 B over the limit of 1 B: ");
  check_result(run, "Plain", "test_auto_clean", 0, 'S', NULL, NULL,
               "peak 40 B over the limit of 1 B in test test_auto_clean at ");
  check_result(run, "Twice", "test_twice_clean", 0, 'S', NULL, NULL,
               "peak 24 B over the limit of 1 B in test test_twice_clean at ");
  ck_assert_ptr_nonnull(strstr(run->out, "Checks: 5, Failures: 4, Errors: 0"));
}
END_TEST

START_TEST(test_one_report_each) {
  const suite_run *run = runs[_i];
  ck_assert_int_eq(count(run->err, "tracemalloc-check: test_auto_leak: leaked"), 1);
  ck_assert_int_eq(count(run->err, "tracemalloc-check: test_twice_leak: leaked"), 1);
}
END_TEST

int main(void) {
  const char *exe = required_env("AUTO_SUITE");
  Suite *s = suite_create("plugin-auto");
  TCase *tc = tcase_create("auto_suite");
  int failed;

  runs[0] = suite_run_new(exe, "yes", NULL);
  runs[1] = suite_run_new(exe, "no", NULL);
  runs[2] = suite_run_new(required_env("AUTO_SUITE_HIDDEN"), "yes", NULL);
  runs[3] = suite_run_new(required_env("AUTO_SUITE_HIDDEN"), "no", NULL);
  const char *const mmapped_env[] = {"GLIBC_TUNABLES=glibc.malloc.mmap_threshold=0", NULL};
  runs[4] = suite_run_new(exe, "yes", mmapped_env);
  runs[5] = suite_run_new(exe, "no", mmapped_env);
  runs[6] = suite_run_new_full(exe, "yes", NULL, true);
  runs[7] = suite_run_new_full(exe, "no", NULL, true);
  const char *const peak_env[] = {"TM_LEAK_PEAK_LIMIT=1", NULL};
  peak_runs[0] = suite_run_new(exe, "yes", peak_env);
  peak_runs[1] = suite_run_new(exe, "no", peak_env);
  tcase_add_loop_test(tc, test_verdicts, 0, (int)G_N_ELEMENTS(runs));
  tcase_add_loop_test(tc, test_one_report_each, 0, 2);
  tcase_add_loop_test(tc, test_peak_limit_of_one_byte, 0, 2);
  suite_add_tcase(s, tc);
  failed = run_suite(s) != EXIT_SUCCESS;
  for (size_t i = 0; i < G_N_ELEMENTS(runs); i++)
    suite_run_free(runs[i]);
  suite_run_free(peak_runs[0]);
  suite_run_free(peak_runs[1]);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
