/* test_plugin_warm.c — the runner builds the symbolizer for its children once two tests have
 * failed, never while every test passes nor after one failure. Runs warm_suite in both fork
 * modes. */
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "../run_suite.h"

#include "harness.h"

static suite_run *runs[2];

START_TEST(test_verdicts) {
  const suite_run *run = runs[_i];
  const char *src = required_env("WARM_SUITE_SRC");
  check_result(run, "Cold", "test_clean", 0, 'P', NULL, NULL, "Passed");
  check_result(run, "Cold", "test_still_cold", 0, 'P', NULL, NULL, "Passed");
  check_result(run, "Warm", "test_leak", 0, 'S', src, "site:leak",
               "leaked 24 B in 1 block (allowed 0 B)");
  check_result(run, "Warm", "test_one_failure_cold", 0, 'P', NULL, NULL, "Passed");
  check_result(run, "Warm", "test_leak_again", 0, 'S', src, "site:again",
               "leaked 32 B in 1 block (allowed 0 B)");
  check_result(run, "Warm", "test_warm", 0, 'P', NULL, NULL, "Passed");
  ck_assert_uint_eq(run->results->len, 6);
}
END_TEST

int main(void) {
  const char *exe = required_env("WARM_SUITE");
  Suite *s = suite_create("plugin-warm");
  TCase *tc = tcase_create("warm_suite");
  int failed;

  runs[0] = suite_run_new(exe, "yes", NULL);
  runs[1] = suite_run_new(exe, "no", NULL);
  tcase_add_loop_test(tc, test_verdicts, 0, 2);
  suite_add_tcase(s, tc);
  failed = run_suite(s) != EXIT_SUCCESS;
  suite_run_free(runs[0]);
  suite_run_free(runs[1]);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
