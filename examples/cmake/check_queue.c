/* check_queue.c — an ordinary Check suite: nothing in it is about leaks. test_pop_order forgets
 * to free the string queue_pop() hands back, and fails for it once linked with
 * tracemalloc::check-auto. */
#include <stdlib.h>

#include <check.h>

#include "queue.h"

START_TEST(test_empty) {
  Queue *q = queue_new();

  ck_assert_uint_eq(queue_length(q), 0);
  ck_assert_ptr_null(queue_pop(q));
  queue_free(q);
}
END_TEST

START_TEST(test_pop_order) {
  Queue *q = queue_new();

  queue_push(q, "first");
  queue_push(q, "second");
  ck_assert_str_eq(queue_pop(q), "first");
  ck_assert_uint_eq(queue_length(q), 1);
  queue_free(q);
}
END_TEST

int main(void) {
  Suite *s = suite_create("Queue");
  TCase *tc = tcase_create("Core");
  SRunner *sr;
  int failed;

  tcase_add_test(tc, test_empty);
  tcase_add_test(tc, test_pop_order);
  suite_add_tcase(s, tc);
  sr = srunner_create(s);
  srunner_run_all(sr, CK_ENV);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
