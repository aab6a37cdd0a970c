/* test_block_zero.c — with the heap registry on, every hook but calloc hands the program its new
 * block zeroed, all that malloc_usable_size() reports, and realloc zeroes only what lies past the
 * old block's usable size, whether tracing or not; without the
 * registry the hooks leave the memory as malloc gives it (docs/engine.md, "A block the scan will
 * read starts zeroed"). Links the shared library, as users do, and asks for the registry as the
 * Check plugin does.
 *
 * How: a block is filled with a pattern and freed, and the next allocation of the same size takes
 * the same chunk back (glibc's per-thread cache is last in, first out). Every call goes through a
 * volatile pointer, so that no compiler knows it for malloc and reasons about its contents. */
#include <check.h>
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "run_suite.h"
#include "tracemalloc.h"

TM_HEAP_REGISTRY;

#define PATTERN 0xa5

static void *(*volatile call_malloc)(size_t) = malloc;
static void *(*volatile call_realloc)(void *, size_t) = realloc;
static void *(*volatile call_memalign)(size_t, size_t) = memalign;
static void *(*volatile call_aligned_alloc)(size_t, size_t) = aligned_alloc;
static int (*volatile call_posix_memalign)(void **, size_t, size_t) = posix_memalign;
static void (*volatile call_free)(void *) = free;

/* How many of the n bytes at p are not zero. */
static size_t nonzero_bytes(const void *p, size_t n) {
  const volatile unsigned char *b = p;
  size_t count = 0;
  for (size_t i = 0; i < n; i++)
    count += b[i] != 0;
  return count;
}

/* A block of size bytes, filled with the pattern and freed; returns its address. */
static void *pattern_freed(size_t size) {
  unsigned char *p = call_malloc(size);
  ck_assert_ptr_nonnull(p);
  memset(p, PATTERN, size);
  call_free(p);
  return p;
}

static void setup(void) {
  ck_assert(tm_heap_registry_is_on());
  ck_assert_int_eq(tm_start(8), 0);
}

static void teardown(void) { tm_stop(); }

/* malloc gets back the chunk a patterned block had: it comes zeroed, at every size class. */
START_TEST(test_malloc_zeroed) {
  static const size_t sizes[] = {8, 24, 40, 56, 100, 1000, 4000, 20000};
  size_t size = sizes[_i];
  void *old = pattern_freed(size);
  unsigned char *p = call_malloc(size);
  ck_assert_ptr_eq(p, old); /* the same chunk, or the test proves nothing */
  ck_assert_uint_eq(nonzero_bytes(p, size), 0);
  call_free(p);
}
END_TEST

/* The aligned entry points too. */
START_TEST(test_aligned_zeroed) {
  void *old = pattern_freed(200), *p;
  p = call_memalign(16, 200);
  ck_assert_ptr_eq(p, old);
  ck_assert_uint_eq(nonzero_bytes(p, 200), 0);
  call_free(p);
  old = pattern_freed(208);
  p = call_aligned_alloc(16, 208);
  ck_assert_ptr_eq(p, old);
  ck_assert_uint_eq(nonzero_bytes(p, 208), 0);
  call_free(p);
  /* A larger alignment is carved out of a larger chunk, after blocks that held the pattern. */
  void *dirty[32];
  for (int i = 0; i < 32; i++)
    dirty[i] = call_malloc(600);
  for (int i = 0; i < 32; i++) {
    memset(dirty[i], PATTERN, 600);
    call_free(dirty[i]);
  }
  ck_assert_int_eq(call_posix_memalign(&p, 256, 200), 0);
  ck_assert_uint_eq((uintptr_t)p % 256, 0);
  ck_assert_uint_eq(nonzero_bytes(p, 200), 0);
  call_free(p);
}
END_TEST

/* realloc keeps what the block held and zeroes only what it gained, moved or grown in place. */
START_TEST(test_realloc_gain_zeroed) {
  unsigned char *p = call_malloc(100);
  void *held = pattern_freed(3000); /* the chunk the moving realloc below gets */
  memset(p, 0x11, 100);
  unsigned char *q = call_realloc(p, 3000);
  ck_assert_ptr_eq(q, held);
  for (size_t i = 0; i < 100; i++)
    ck_assert_uint_eq(q[i], 0x11);
  ck_assert_uint_eq(nonzero_bytes(q + 100, 2900), 0);
  memset(q, 0x22, 3000);
  q = call_realloc(q, 10); /* shrinks: keeps its first bytes */
  for (size_t i = 0; i < 10; i++)
    ck_assert_uint_eq(q[i], 0x22);
  size_t usable = malloc_usable_size(q); /* what is left of the old block: the program's still */
  q = call_realloc(q, 600);
  for (size_t i = 0; i < usable; i++)
    ck_assert_uint_eq(q[i], 0x22);
  ck_assert_uint_eq(nonzero_bytes(q + usable, 600 - usable), 0);
  call_free(q);
  q = call_realloc(NULL, 56); /* realloc(NULL, n) is malloc(n) */
  ck_assert_uint_eq(nonzero_bytes(q, 56), 0);
  call_free(q);
}
END_TEST

/* A program may use all that malloc_usable_size() reports (a string library growing into it):
 * what it wrote there is still there after a realloc; only what lies beyond is zeroed. */
START_TEST(test_realloc_keeps_usable_bytes) {
  unsigned char *p = call_malloc(10);
  size_t usable = malloc_usable_size(p);
  ck_assert_uint_ge(usable, 10);
  memset(p, 0x44, usable);
  (void)pattern_freed(1000); /* the chunk the realloc below gets */
  unsigned char *q = call_realloc(p, 1000);
  for (size_t i = 0; i < usable; i++)
    ck_assert_uint_eq(q[i], 0x44);
  ck_assert_uint_eq(nonzero_bytes(q + usable, 1000 - usable), 0);
  call_free(q);
}
END_TEST

/* Large blocks from the heap (mmap threshold raised): one zeroed by memset, one through its pages
 * given back; errno kept, and each block still usable to its last byte. */
START_TEST(test_large_zeroed) {
  static const size_t sizes[] = {200 * 1024 + 40, 3 * 1024 * 1024 + 40};
  size_t size = sizes[_i];
  ck_assert_int_eq(mallopt(M_MMAP_THRESHOLD, 64 * 1024 * 1024), 1);
  ck_assert_int_eq(mallopt(M_TRIM_THRESHOLD, 128 * 1024 * 1024), 1); /* the freed block stays */
  void *old = pattern_freed(size);
  errno = 1234;
  unsigned char *p = call_malloc(size);
  ck_assert_int_eq(errno, 1234);
  ck_assert_ptr_eq(p, old);
  ck_assert_uint_eq(nonzero_bytes(p, size), 0);
  memset(p, 0x33, size);
  ck_assert_uint_eq(p[0], 0x33);
  ck_assert_uint_eq(p[size - 1], 0x33);
  call_free(p);
}
END_TEST

/* Not tracing, the registry still on: the program's blocks are still scanned, and still zeroed. */
START_TEST(test_zeroed_while_not_tracing) {
  tm_stop();
  void *old = pattern_freed(72);
  unsigned char *p = call_malloc(72);
  ck_assert_ptr_eq(p, old);
  ck_assert_uint_eq(nonzero_bytes(p, 72), 0);
  call_free(p);
}
END_TEST

/* Without the registry nothing scans the heap, and the hooks leave the memory alone: a reused
 * chunk keeps the pattern past the words glibc's cache writes into a freed chunk. */
START_TEST(test_untouched_without_registry) {
  tm_stop();
  tm_heap_registry_disable();
  ck_assert_int_eq(tm_start(8), 0);
  void *old = pattern_freed(200);
  unsigned char *p = call_malloc(200);
  ck_assert_ptr_eq(p, old);
  ck_assert_uint_eq(nonzero_bytes(p + 32, 168), 168);
  call_free(p);
}
END_TEST

int main(void) {
  Suite *s = suite_create("block_zero");
  TCase *tc = tcase_create("registry");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_loop_test(tc, test_malloc_zeroed, 0, 8);
  tcase_add_test(tc, test_aligned_zeroed);
  tcase_add_test(tc, test_realloc_gain_zeroed);
  tcase_add_test(tc, test_realloc_keeps_usable_bytes);
  tcase_add_loop_test(tc, test_large_zeroed, 0, 2);
  tcase_add_test(tc, test_zeroed_while_not_tracing);
  suite_add_tcase(s, tc);
  /* Switches the registry off for the rest of the process: its own forked test, last. */
  TCase *off = tcase_create("no registry");
  tcase_add_checked_fixture(off, setup, teardown);
  tcase_add_test(off, test_untouched_without_registry);
  suite_add_tcase(s, off);
  return run_suite(s);
}
