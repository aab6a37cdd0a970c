/* stale_suite.c — words from before the window that still hold a freed chunk's address, run in
 * CK_FORK=yes mode by test_plugin_leaks.
 *
 * The runner (main) leaves a dangling pointer in an old block: it frees a chunk whose address
 * stays in the block. A test's child then gets that chunk back from malloc. Where the test only
 * leaks it, the page of the old block is one the child never wrote: the word is stale, and the
 * leak fails. Where the test stores the block in that same slot, writing the same value again,
 * the page is copied: the block is reachable, and the test passes.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lose.h"
#include "tracemalloc-check.h"

/* Large enough for glibc to map it alone (over the 128 KiB threshold): a page no other block
 * shares, which nothing in the child writes unless a test does. */
#define HOLDER_BYTES (256 * 1024)

static void **holder; /* an old block: the runner's, from before any window */
/* The freed chunks' addresses, complemented: not pointers to them. */
static uintptr_t freed_leaked, freed_kept;

START_TEST(test_leak_over_stale_word) {
  void *p = malloc(1000); /* site:stale */
  ck_assert_msg((uintptr_t)p == ~freed_leaked, "malloc did not hand the freed chunk back");
  lose(p);
}
END_TEST

START_TEST(test_same_value_rewritten) {
  holder[1] = malloc(900);
  ck_assert_msg((uintptr_t)holder[1] == ~freed_kept, "malloc did not hand the freed chunk back");
}
END_TEST

int main(void) {
  holder = calloc(1, HOLDER_BYTES);
  void *chunk = malloc(1000);
  holder[0] = chunk; /* left dangling */
  freed_leaked = ~(uintptr_t)chunk;
  free(chunk);
  chunk = malloc(900);
  holder[1] = chunk; /* left dangling */
  freed_kept = ~(uintptr_t)chunk;
  free(chunk);
  chunk = NULL;

  Suite *s = suite_create("Stale");
  TCase *tc = tcase_create("Stale");
  tcase_add_checked_fixture(tc, TM_LEAK_FIXTURE);
  tcase_add_test(tc, test_leak_over_stale_word);
  tcase_add_test(tc, test_same_value_rewritten);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_ENV);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
