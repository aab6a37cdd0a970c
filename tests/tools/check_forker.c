/* check_forker.c — a plain Check suite (no plugin) that tests/tools runs under `tracemalloc run`:
 * in CK_FORK=yes mode each test runs in its own child, which leaves its SITE_* blocks live. */
#include <check.h>
#include <stdlib.h>

#include "run_suite.h"

static void *volatile keep[8];

START_TEST(test_one) {
  keep[0] = malloc(111); /* SITE_ONE */
  ck_assert_ptr_nonnull(keep[0]);
}
END_TEST

START_TEST(test_two) {
  keep[1] = malloc(222); /* SITE_TWO */
  ck_assert_ptr_nonnull(keep[1]);
}
END_TEST

int main(void) {
  Suite *s = suite_create("forker");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, test_one);
  tcase_add_test(tc, test_two);
  suite_add_tcase(s, tc);
  return run_suite(s);
}
