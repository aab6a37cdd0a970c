/* check_stack.c — an ordinary Check suite: no TM_LEAK_FIXTURE line, nothing about leaks.
 *
 * Linked with dependency('tracemalloc-check-auto'), every TCase gets the leak fixture through
 * -Wl,--wrap=tcase_create (zero-edit mode), and test_push_pop_forgets fails for the
 * stack it never frees.
 */
#include <stdlib.h>

#include <check.h>

#include "stack.h"

START_TEST(test_empty) {
  Stack *s = stack_new();
  int v;

  ck_assert_uint_eq(stack_size(s), 0);
  ck_assert(!stack_pop(s, &v));
  stack_free(s);
}
END_TEST

START_TEST(test_push_pop) {
  Stack *s = stack_new();
  int v;

  for (int i = 0; i < 100; i++)
    stack_push(s, i);
  ck_assert(stack_pop(s, &v));
  ck_assert_int_eq(v, 99);
  stack_free(s);
}
END_TEST

START_TEST(test_push_pop_forgets) {
  Stack *s = stack_new();
  int v;

  stack_push(s, 1);
  ck_assert(stack_pop(s, &v));
  ck_assert_int_eq(v, 1);
}
END_TEST

static Suite *stack_suite(void) {
  Suite *s = suite_create("Stack");
  TCase *tc = tcase_create("Core");

  tcase_add_test(tc, test_empty);
  tcase_add_test(tc, test_push_pop);
  tcase_add_test(tc, test_push_pop_forgets);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(stack_suite());
  int failed;

  srunner_run_all(sr, CK_ENV);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
