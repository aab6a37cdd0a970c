/* check_money.c — Check's money tutorial with the leak fixture: the project's demo.
 *
 * The tutorial's own test_money_create_zero never frees its Money. Run it:
 *   build/examples/money/check_money
 * and the failure line names the allocation in money.c and the test line that called it, while
 * stderr shows the traceback with source lines. Compare with CK_FORK=no: the same verdicts.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <tracemalloc-check.h>

#include "money.h"

static Money *five_dollars;

static void setup(void) {
  five_dollars = money_create(5, "USD");
}

static void teardown(void) {
  money_free(five_dollars);
}

START_TEST(test_money_create) {
  ck_assert_int_eq(money_amount(five_dollars), 5);
  ck_assert_str_eq(money_currency(five_dollars), "USD");
}
END_TEST

START_TEST(test_money_create_neg) {
  Money *m = money_create(-1, "USD");

  ck_assert_msg(m == NULL, "NULL should be returned on attempt to create with a negative amount");
}
END_TEST

START_TEST(test_money_create_zero) {
  Money *m = money_create(0, "USD");

  if (money_amount(m) != 0)
    ck_abort_msg("Zero is a valid amount of money");
}
END_TEST

static Suite *money_suite(void) {
  Suite *s = suite_create("Money");
  TCase *tc_core = tcase_create("Core");
  TCase *tc_limits = tcase_create("Limits");

  /* The leak fixture first, so that its window holds setup() and teardown() too. */
  tcase_add_checked_fixture(tc_core, TM_LEAK_FIXTURE);
  tcase_add_checked_fixture(tc_core, setup, teardown);
  tcase_add_test(tc_core, test_money_create);
  suite_add_tcase(s, tc_core);

  tcase_add_checked_fixture(tc_limits, TM_LEAK_FIXTURE);
  tcase_add_test(tc_limits, test_money_create_neg);
  tcase_add_test(tc_limits, test_money_create_zero);
  suite_add_tcase(s, tc_limits);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(money_suite());
  int number_failed;
  /* Under meson's TAP protocol (CK_TAP_LOG_FILE_NAME=-) the TAP lines carry each verdict, and a
   * non-zero exit would turn the whole run into an ERROR (meson 1.0): exit 0 there. */
  const char *tap = getenv("CK_TAP_LOG_FILE_NAME");
  bool tap_on_stdout = tap != NULL && strcmp(tap, "-") == 0;

  srunner_run_all(sr, CK_ENV); /* CK_ENV: honour CK_VERBOSITY and the log variables */
  number_failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return number_failed == 0 || tap_on_stdout ? EXIT_SUCCESS : EXIT_FAILURE;
}
