/* test_stack_scrub.c — with the heap registry on, a hook leaves no copy of the block's address in
 * the stack below its caller (the scrubs of stack_cache.c, called by the hooks, the capture and the
 * trace table): a conservative scan of a frame that later lies there would take such a copy for a
 * pointer, and a leak that gets the same address once the block is freed would look reachable
 * (docs/engine.md, "No stale copy of a block's address on the stack"). Links the shared library,
 * as users do, and asks for the registry as the Check plugin does.
 *
 * How: a function fills REGION_BYTES below the test's frame with a pattern, the test calls the
 * hook, and a function of the same shape reads back what the calls below the test's frame left
 * there. The top TOP_BYTES are not read: the hook's own frame lies there, live while it ran (its
 * locals are not below it); everything deeper was the frames of the hook's calls, and must hold no
 * address inside the block. Each case runs on a hit of the stack cache (a call site seen before),
 * on a miss (a new call site), and while the trace table grows. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "run_suite.h"
#include "tracemalloc.h"

TM_HEAP_REGISTRY;

#define REGION_BYTES 12288 /* deeper than the deepest scrub (4 KiB after libunwind) */
#define TOP_BYTES 256      /* the hook's own frame */
#define REGION_WORDS (REGION_BYTES / 8)
#define PATTERN UINT64_C(0x5a5a5a5a5a5a5a5a)

#if defined(__GNUC__) && !defined(__clang__)
#define NOINLINE __attribute__((noinline, noclone))
#else
#define NOINLINE __attribute__((noinline))
#endif

static void *volatile sink;

/* Writes the pattern over the region below the caller's frame. */
NOINLINE static void region_fill(void) {
  uint64_t region[REGION_WORDS];
  volatile uint64_t *r = region;
  for (size_t i = 0; i < REGION_WORDS; i++)
    r[i] = PATTERN;
}

/* Returns how many words of the region below the caller's frame (but the top TOP_BYTES) hold an
 * address inside [block, block + size). Reads what the calls made since region_fill() left. */
NOINLINE static size_t region_copies(uintptr_t block, size_t size) {
  uint64_t region[REGION_WORDS];
  const volatile uint64_t *r = region;
  __asm__ volatile("" : "+r"(r)); /* its words are what the stack held: not the compiler's to know */
  size_t copies = 0;
  for (size_t i = 0; i < REGION_WORDS - TOP_BYTES / 8; i++)
    copies += r[i] - block < size;
  return copies;
}

/* Calls expr (an allocation of size bytes) between the fill and the read, in the caller's frame,
 * and asserts that no copy of the new block's address is left below it. */
#define ASSERT_NO_COPY(expr, size)                                                                 \
  do {                                                                                             \
    region_fill();                                                                                 \
    void *block_ = (expr);                                                                         \
    size_t copies_ = region_copies((uintptr_t)block_, (size) > 0 ? (size) : 1);                    \
    sink = block_;                                                                                 \
    ck_assert_ptr_nonnull(block_);                                                                 \
    ck_assert_msg(copies_ == 0, "%s left %zu copies of its block's address below its caller",      \
                  #expr, copies_);                                                                 \
  } while (0)

static void setup(void) {
  ck_assert(tm_heap_registry_is_on());
  ck_assert_int_eq(tm_start(25), 0);
}

static void teardown(void) { tm_stop(); }

/* The same call site again and again: the first calls miss the stack cache, the others hit. */
START_TEST(test_malloc_hit_and_miss) {
  for (int round = 0; round < 50; round++) {
    ASSERT_NO_COPY(malloc(40), 40);
    free(sink);
  }
}
END_TEST

START_TEST(test_calloc_and_realloc) {
  for (int round = 0; round < 50; round++) {
    ASSERT_NO_COPY(calloc(3, 24), 72);
    void *old = sink;
    ASSERT_NO_COPY(realloc(old, 4000), 4000); /* a move: the old block is freed */
    free(sink);
  }
}
END_TEST

/* Call sites never seen before: each capture walks the stack (reading frame rules the first
 * time), interns a new traceback. */
#define SITE(n)                                                                                    \
  NOINLINE static void *site_##n(size_t size) { return malloc(size + n); }
SITE(1) SITE(2) SITE(3) SITE(4) SITE(5) SITE(6) SITE(7) SITE(8)

START_TEST(test_new_call_sites) {
  void *(*sites[])(size_t) = {site_1, site_2, site_3, site_4, site_5, site_6, site_7, site_8};
  for (size_t i = 0; i < sizeof sites / sizeof *sites; i++) {
    ASSERT_NO_COPY(sites[i](64), 64 + i + 1);
    free(sink);
  }
}
END_TEST

/* Enough live blocks that every shard of the table grows several times: a grow maps a new array
 * and rehashes, deeper than a plain insert. */
START_TEST(test_while_the_table_grows) {
  enum { N = 40000 };
  void **blocks = calloc(N, sizeof *blocks);
  ck_assert_ptr_nonnull(blocks);
  for (size_t i = 0; i < N; i++) {
    ASSERT_NO_COPY(malloc(24), 24);
    blocks[i] = sink;
  }
  for (size_t i = 0; i < N; i++)
    free(blocks[i]);
  free(blocks);
}
END_TEST

static Suite *scrub_suite(void) {
  Suite *s = suite_create("stack_scrub");
  TCase *tc = tcase_create("core");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_malloc_hit_and_miss);
  tcase_add_test(tc, test_calloc_and_realloc);
  tcase_add_test(tc, test_new_call_sites);
  tcase_add_test(tc, test_while_the_table_grows);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return run_suite(scrub_suite()); }
