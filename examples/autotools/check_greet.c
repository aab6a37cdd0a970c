/* check_greet.c — an ordinary Check suite: nothing in it is about leaks. test_greet_world never
 * frees its greeting, and fails for it once CHECK_LIBS come from tracemalloc-check-auto. */
#include <stdlib.h>

#include <check.h>

#include "greet.h"

START_TEST(test_greet_name) {
  char *text = greet("Ada");

  ck_assert_str_eq(text, "Hello, Ada!");
  free(text);
}
END_TEST

START_TEST(test_greet_world) {
  ck_assert_str_eq(greet("world"), "Hello, world!");
}
END_TEST

int main(void) {
  Suite *s = suite_create("Greet");
  TCase *tc = tcase_create("Core");
  SRunner *sr;
  int failed;

  tcase_add_test(tc, test_greet_name);
  tcase_add_test(tc, test_greet_world);
  suite_add_tcase(s, tc);
  sr = srunner_create(s);
  srunner_run_all(sr, CK_ENV);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
