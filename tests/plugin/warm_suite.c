/* warm_suite.c — a Check suite that test_plugin_warm.c runs in a subprocess, in both fork modes.
 * While every test passes, or one has failed, the runner never loads the symbolizer; once a second
 * test has failed (and at least one in 50), the children of the tests after it start with the
 * symbolizer module already mapped, inherited from the runner, which resolved its own stack
 * between the tests. A "site:" comment marks the line
 * the failure must name.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>
#include <tracemalloc-check.h>

#include "lose.h"

/* Whether the symbolizer module is mapped into this process. */
static bool symbolizer_mapped(void) {
  char *maps = NULL;
  ck_assert(g_file_get_contents("/proc/self/maps", &maps, NULL, NULL));
  bool mapped = strstr(maps, "/libtracemalloc-symbols.so") != NULL;
  g_free(maps);
  return mapped;
}

START_TEST(test_clean) {
  free(malloc(24));
}
END_TEST

START_TEST(test_still_cold) {
  ck_assert_msg(!symbolizer_mapped(), "the symbolizer was loaded while every test passed");
}
END_TEST

/* After one failure: in a test's child (CK_FORK=yes), not inherited; with CK_FORK=no the report
 * ran in this very process, which has the module loaded. */
START_TEST(test_one_failure_cold) {
  const char *fork_mode = getenv("CK_FORK");
  if (fork_mode == NULL || strcmp(fork_mode, "no") != 0)
    ck_assert_msg(!symbolizer_mapped(), "the symbolizer was loaded after one failure");
}
END_TEST

START_TEST(test_leak) {
  lose(malloc(24)); /* site:leak */
}
END_TEST

START_TEST(test_leak_again) {
  lose(malloc(32)); /* site:again */
}
END_TEST

START_TEST(test_warm) {
  ck_assert_msg(symbolizer_mapped(), "the symbolizer is not loaded after a failed test");
}
END_TEST

int main(void) {
  Suite *s = suite_create("warm");
  TCase *cold = tcase_create("Cold");
  tcase_add_checked_fixture(cold, TM_LEAK_FIXTURE);
  tcase_add_test(cold, test_clean);
  tcase_add_test(cold, test_still_cold);
  suite_add_tcase(s, cold);
  TCase *warm = tcase_create("Warm");
  tcase_add_checked_fixture(warm, TM_LEAK_FIXTURE);
  tcase_add_test(warm, test_leak);
  tcase_add_test(warm, test_one_failure_cold);
  tcase_add_test(warm, test_leak_again);
  tcase_add_test(warm, test_warm);
  suite_add_tcase(s, warm);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_ENV);
  srunner_free(sr);
  return EXIT_SUCCESS; /* verdicts are read from the output */
}
