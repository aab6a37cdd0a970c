/* supp_suite.c — a Check suite whose leaks go through functions that a team's Valgrind and
 * LeakSanitizer suppression files already name (suppressions/legacy.supp, vendor-lsan.txt). Run
 * by test_plugin_suppress with TM_LEAK_SUPPRESSIONS or a config file naming them. */
#include <stdlib.h>

#include <check.h>

#include "tracemalloc-check.h"

#include "lose.h"

void *legacy_cache_fill(size_t n);
void *vendor_intern(size_t n);
void *reachable_only_fill(size_t n);

/* Exported and not inlined, so that their frames carry these names. */
__attribute__((noinline)) void *legacy_cache_fill(size_t n) {
  void *p = malloc(n);
  __asm__ volatile("" ::: "memory");
  return p;
}

__attribute__((noinline)) void *vendor_intern(size_t n) {
  void *p = malloc(n);
  __asm__ volatile("" ::: "memory");
  return p;
}

__attribute__((noinline)) void *reachable_only_fill(size_t n) {
  void *p = malloc(n); /* site:reachable_only */
  __asm__ volatile("" ::: "memory");
  return p;
}

START_TEST(test_legacy) {
  lose(legacy_cache_fill(32));
}
END_TEST

START_TEST(test_vendor) {
  lose(vendor_intern(16));
}
END_TEST

/* match-leak-kinds: reachable does not cover a lost (definite) block. */
START_TEST(test_reachable_only) {
  lose(reachable_only_fill(8));
}
END_TEST

/* A block still reachable from a global: charged only with TM_LEAK_REACHABLE=charge, and then
 * covered by the reachable-only suppression. */
static void *volatile kept_global;

START_TEST(test_reachable_kept) {
  kept_global = reachable_only_fill(12); /* site:reachable_kept */
}
END_TEST

START_TEST(test_real_leak) {
  lose(legacy_cache_fill(32));
  lose(vendor_intern(16));
  lose(vendor_intern(16));
  lose(malloc(24)); /* site:real */
}
END_TEST

int main(void) {
  Suite *s = suite_create("Suppressions");
  TCase *tc = tcase_create("Supp");
  SRunner *sr;
  int failed;

  tcase_add_checked_fixture(tc, TM_LEAK_FIXTURE);
  tcase_add_test(tc, test_legacy);
  tcase_add_test(tc, test_vendor);
  tcase_add_test(tc, test_reachable_only);
  tcase_add_test(tc, test_reachable_kept);
  tcase_add_test(tc, test_real_leak);
  suite_add_tcase(s, tc);
  sr = srunner_create(s);
  srunner_run_all(sr, CK_ENV);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
