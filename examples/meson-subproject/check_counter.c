/* A two-test suite: test_describe forgets to free what counter_describe() returned. */
#include <check.h>
#include <stdlib.h>
#include <tracemalloc-check.h>

#include "counter.h"

START_TEST(test_add) {
  Counter *c = counter_new("hits");
  counter_add(c, 2);
  ck_assert_int_eq(counter_value(c), 2);
  counter_free(c);
}
END_TEST

START_TEST(test_describe) {
  Counter *c = counter_new("hits");
  char *text = counter_describe(c);
  ck_assert_str_eq(text, "hits=0");
  counter_free(c); /* text is never freed */
}
END_TEST

int main(void) {
  Suite *s = suite_create("Counter");
  TCase *tc = tcase_create("Core");
  tcase_add_checked_fixture(tc, TM_LEAK_FIXTURE);
  tcase_add_test(tc, test_add);
  tcase_add_test(tc, test_describe);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_ENV);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
