/* record_suite.c — a suite for the plugin's records (test_plugin_records): JSON Lines, GitHub
 * annotations and the baseline. test_baseline_leak leaks LEAK_SIZE bytes (default 64) at site A,
 * or at site B when LEAK_SITE=b, so that one program can leak more, less or elsewhere. */
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "tracemalloc-check.h"

#include "lose.h"

void *leak_at_a(size_t n);
void *leak_at_b(size_t n);

/* Exported and not inlined, so that their frames carry these names. */
__attribute__((noinline)) void *leak_at_a(size_t n) {
  void *p = malloc(n); /* site:a */
  __asm__ volatile("" ::: "memory");
  return p;
}

__attribute__((noinline)) void *leak_at_b(size_t n) {
  void *p = malloc(n); /* site:b */
  __asm__ volatile("" ::: "memory");
  return p;
}

START_TEST(test_clean) {
  char *volatile p = malloc(100);
  free(p);
}
END_TEST

START_TEST(test_leak) {
  lose(malloc(24)); /* site:leak */
}
END_TEST

/* Iteration i leaks 8 * i bytes: iteration 0 leaves nothing. */
START_TEST(test_loop) {
  if (_i > 0)
    lose(malloc(8 * (size_t)_i)); /* site:loop */
}
END_TEST

START_TEST(test_ignored) {
  tm_leak_ignore();
  lose(malloc(10));
}
END_TEST

START_TEST(test_fails_first) {
  lose(malloc(10));
  ck_abort_msg("failing on its own");
}
END_TEST

/* A loop from 5: iteration i leaks i bytes. */
START_TEST(test_loop_from_5) {
  lose(malloc((size_t)_i)); /* site:loop5 */
}
END_TEST

/* A lost node that owns a second block: one lost root and one indirectly lost block. */
START_TEST(test_indirect) {
  void **node = malloc(16); /* site:indirect */
  node[0] = malloc(40);
  lose(node);
}
END_TEST

START_TEST(test_baseline_leak) {
  const char *size = getenv("LEAK_SIZE"), *site = getenv("LEAK_SITE");
  size_t n = size != NULL ? (size_t)atoi(size) : 64;
  lose(site != NULL && strcmp(site, "b") == 0 ? leak_at_b(n) : leak_at_a(n));
}
END_TEST

int main(void) {
  Suite *s = suite_create("Records");
  TCase *tc = tcase_create("Rec");
  SRunner *sr;
  int failed;

  tcase_add_checked_fixture(tc, TM_LEAK_FIXTURE);
  tcase_add_test(tc, test_clean);
  tcase_add_test(tc, test_leak);
  tcase_add_loop_test(tc, test_loop, 0, 3);
  tcase_add_test(tc, test_ignored);
  tcase_add_test(tc, test_fails_first);
  tcase_add_loop_test(tc, test_loop_from_5, 5, 7);
  tcase_add_test(tc, test_indirect);
  tcase_add_test(tc, test_baseline_leak);
  suite_add_tcase(s, tc);
  sr = srunner_create(s);
  srunner_run_all(sr, CK_ENV);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
