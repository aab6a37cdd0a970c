/* auto_suite.c — zero-edit mode (linked with tracemalloc-check-auto) on a suite where one TCase
 * has no fixture and another already adds TM_LEAK_FIXTURE itself: every test is judged exactly
 * once, and a test that allocates nothing peaks at 0 B. Run by test_plugin_auto.c. "site:NAME" marks the line each failure must name. */
#include <stdlib.h>

#include <check.h>
#include <tracemalloc-check.h>

#include "lose.h"

START_TEST(test_auto_leak) {
  lose(malloc(40)); /* site:auto */
}
END_TEST

START_TEST(test_auto_clean) {
  void *volatile p = malloc(40); /* volatile: never elided, whatever the optimization */
  free(p);
}
END_TEST

START_TEST(test_auto_nothing) {
}
END_TEST

START_TEST(test_twice_leak) {
  lose(malloc(24)); /* site:twice */
}
END_TEST

START_TEST(test_twice_clean) {
  void *volatile p = malloc(24);
  free(p);
}
END_TEST

int main(void) {
  Suite *s = suite_create("Auto");
  TCase *plain = tcase_create("Plain");
  TCase *twice = tcase_create("Twice");
  SRunner *sr;
  int failed;

  tcase_add_test(plain, test_auto_leak);
  tcase_add_test(plain, test_auto_clean);
  tcase_add_test(plain, test_auto_nothing);
  suite_add_tcase(s, plain);
  tcase_add_checked_fixture(twice, TM_LEAK_FIXTURE); /* the wrap added it already */
  tcase_add_test(twice, test_twice_leak);
  tcase_add_test(twice, test_twice_clean);
  suite_add_tcase(s, twice);
  sr = srunner_create(s);
  srunner_run_all(sr, CK_ENV);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
