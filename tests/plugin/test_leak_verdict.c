/* test_leak_verdict.c — the verdict is a pure function of the filtered growth and the rules. */
#include <stdlib.h>

#include <check.h>

#include "../run_suite.h"

#include "leak_internal.h"

static const struct {
  tm__leak_growth growth;
  tm__leak_rules rules;
  unsigned verdict;
} cases[] = {
#define R(a, p, i) {.allowance = (a), .allowance_blocks = SIZE_MAX, .peak_limit = (p), .ignore = (i)}
#define RB(a, b) {.allowance = (a), .allowance_blocks = (b)}
  /* size, blocks, peak       allowance, peak_limit, ignore */
  {{0, 0, 0}, R(0, 0, false), TM__LEAK_PASS},
  {{1, 1, 1}, R(0, 0, false), TM__LEAK_LEAKED},
  {{16, 1, 16}, R(16, 0, false), TM__LEAK_PASS},            /* at the allowance */
  {{17, 1, 17}, R(16, 0, false), TM__LEAK_LEAKED},          /* one byte over */
  {{0, 0, 4096}, R(0, 4096, false), TM__LEAK_PASS},         /* at the peak limit */
  {{0, 0, 4097}, R(0, 4096, false), TM__LEAK_PEAK_EXCEEDED},
  {{0, 0, (size_t)1 << 40}, R(0, 0, false), TM__LEAK_PASS}, /* 0: no peak limit */
  {{100, 2, 9000}, R(50, 4096, false), TM__LEAK_LEAKED | TM__LEAK_PEAK_EXCEEDED},
  {{100, 2, 9000}, R(50, 4096, true), TM__LEAK_PASS},       /* ignored */
  {{0, 3, 0}, R(0, 0, false), TM__LEAK_LEAKED},             /* three malloc(0): blocks lost */
  {{0, 3, 0}, R(16, 0, false), TM__LEAK_PASS},              /* an allowance in bytes: they fit */
  {{SIZE_MAX, 1, SIZE_MAX}, {SIZE_MAX, SIZE_MAX, SIZE_MAX, false, false}, TM__LEAK_PASS},
  {{0, 3, 0}, RB(0, 2), TM__LEAK_LEAKED},                   /* three malloc(0): over 2 blocks */
  {{64, 2, 0}, RB(64, 2), TM__LEAK_PASS},                   /* at both allowances */
  {{64, 3, 0}, RB(1024, 2), TM__LEAK_LEAKED},               /* bytes fit, blocks do not */
#undef R
#undef RB
};

START_TEST(test_judge) {
  unsigned v = tm__leak_judge(&cases[_i].growth, &cases[_i].rules);
  ck_assert_msg(v == cases[_i].verdict, "case %d: verdict %u, expected %u", _i, v,
                cases[_i].verdict);
}
END_TEST

/* Filtering only removes traces: whatever passes unfiltered passes with less growth. The fixture
 * skips symbolization on that property. */
START_TEST(test_monotonic) {
  tm__leak_rules rules = {.allowance = 100, .allowance_blocks = SIZE_MAX, .peak_limit = 1000};
  for (size_t size = 0; size <= 200; size += 7) {
    tm__leak_growth big = {size, 1, 500}, small = {size / 2, 1, 500};
    if (tm__leak_judge(&big, &rules) == TM__LEAK_PASS)
      ck_assert_uint_eq(tm__leak_judge(&small, &rules), TM__LEAK_PASS);
  }
}
END_TEST

int main(void) {
  Suite *s = suite_create("leak_verdict");
  TCase *tc = tcase_create("judge");
  int failed;

  tcase_add_loop_test(tc, test_judge, 0, G_N_ELEMENTS(cases));
  tcase_add_test(tc, test_monotonic);
  suite_add_tcase(s, tc);
  failed = run_suite(s) != EXIT_SUCCESS;
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
