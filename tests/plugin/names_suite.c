/* names_suite.c — tests that share a name: one START_TEST added to two TCases ("Strict" and
 * "Lenient", of suite "Shared"), and two TCases named "Core" in suites "Legacy" and "Modern",
 * each with a test of its own added before the TCase joins its suite. Every test leaks 8 bytes.
 * test_plugin_leaks.c runs it with rules per TCase and per suite (TM_LEAK_CONFIG), each of which
 * must reach its own test only. */
#include <stdlib.h>

#include <check.h>
#include <tracemalloc-check.h>

#include "lose.h"

START_TEST(test_shared) { lose(malloc(8)); }
END_TEST
START_TEST(test_legacy) { lose(malloc(8)); }
END_TEST
START_TEST(test_modern) { lose(malloc(8)); }
END_TEST

/* A TCase named name, with the fixture and test, added to suite s once the test is in. */
static void tcase_with(Suite *s, const char *name, const TTest *test) {
  TCase *tc = tcase_create(name);
  tcase_add_checked_fixture(tc, TM_LEAK_FIXTURE);
  _tcase_add_test(tc, test, 0, 0, 0, 1);
  suite_add_tcase(s, tc);
}

int main(void) {
  Suite *shared = suite_create("Shared");
  tcase_with(shared, "Strict", test_shared);
  tcase_with(shared, "Lenient", test_shared);
  Suite *legacy = suite_create("Legacy"), *modern = suite_create("Modern");
  tcase_with(legacy, "Core", test_legacy);
  tcase_with(modern, "Core", test_modern);
  SRunner *sr = srunner_create(shared);
  srunner_add_suite(sr, legacy);
  srunner_add_suite(sr, modern);
  srunner_run_all(sr, CK_ENV);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
