/* test_hooks.c — every entry of the malloc family records the exact size and forgets it on free;
 * realloc in all its shapes; errno, alignment and failures are the program's own. Links the shared
 * library, as users do. */
#include <check.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "run_suite.h"
#include "tracemalloc.h"

/* Keeps the compiler from eliding a malloc/free pair whose block is never used. */
static inline void *escape(void *p) {
  __asm__ volatile("" : : "g"(p) : "memory");
  return p;
}

/* Never a constant: keeps -Walloc-size-larger-than quiet about sizes meant to fail. */
static volatile size_t huge = SIZE_MAX - 4096;

static size_t traced(void) {
  size_t current;
  tm_get_traced_memory(&current, NULL);
  return current;
}

static void setup(void) { ck_assert_int_eq(tm_start(8), 0); }

static void teardown(void) { tm_stop(); }

/* Asserts that allocating through `expr` adds exactly `size` traced bytes, and free removes them. */
#define CHECK_ENTRY(expr, size)                                                                    \
  do {                                                                                             \
    size_t before_ = traced();                                                                     \
    void *p_ = escape(expr);                                                                             \
    ck_assert_ptr_nonnull(p_);                                                                     \
    ck_assert_uint_eq(traced() - before_, (size));                                                 \
    free(p_);                                                                                      \
    ck_assert_uint_eq(traced(), before_);                                                          \
  } while (0)

static void *via_posix_memalign(size_t alignment, size_t size) {
  void *p = NULL;
  return posix_memalign(&p, alignment, size) == 0 ? p : NULL;
}

START_TEST(test_each_entry_point_records_exact_size) {
  CHECK_ENTRY(malloc(123), 123);
  CHECK_ENTRY(malloc(0), 0);
  CHECK_ENTRY(calloc(7, 13), 91);
  CHECK_ENTRY(realloc(NULL, 77), 77);
  CHECK_ENTRY(reallocarray(NULL, 6, 11), 66);
  CHECK_ENTRY(via_posix_memalign(64, 1000), 1000);
  CHECK_ENTRY(aligned_alloc(256, 512), 512);
  CHECK_ENTRY(memalign(128, 300), 300);
  CHECK_ENTRY(valloc(4000), 4000);
  CHECK_ENTRY(pvalloc(5000), 5000);
  CHECK_ENTRY(strdup("twelve chars"), 13);
}
END_TEST

START_TEST(test_realloc_grow_shrink_move) {
  size_t base = traced();
  char *p = malloc(16);
  memcpy(p, "0123456789abcde", 16);
  p = realloc(p, 64); /* grow */
  ck_assert_uint_eq(traced() - base, 64);
  ck_assert_str_eq(p, "0123456789abcde");
  p = realloc(p, 8); /* shrink */
  ck_assert_uint_eq(traced() - base, 8);
  char *blocker = escape(malloc(64)); /* makes an in-place grow unlikely */
  p = realloc(p, 1 << 20);    /* move */
  ck_assert_uint_eq(traced() - base, (1u << 20) + 64);
  ck_assert_int_eq(memcmp(p, "01234567", 8), 0);
  free(blocker);
  free(p);
  ck_assert_uint_eq(traced(), base);
}
END_TEST

START_TEST(test_realloc_zero_frees) {
  size_t base = traced();
  void *p = escape(malloc(40));
  ck_assert_uint_eq(traced() - base, 40);
  void *q = realloc(p, 0); /* glibc frees p and returns NULL */
  ck_assert_ptr_null(q);
  ck_assert_uint_eq(traced(), base);
}
END_TEST

START_TEST(test_failed_realloc_keeps_old_trace) {
  size_t base = traced();
  void *p = escape(malloc(32));
  errno = 0;
  void *q = realloc(p, huge);
  ck_assert_ptr_null(q);
  ck_assert_int_eq(errno, ENOMEM);
  ck_assert_uint_eq(traced() - base, 32); /* p is still live and still traced */
  errno = 0;
  q = reallocarray(p, huge / 2, 4); /* overflows */
  ck_assert_ptr_null(q);
  ck_assert_int_eq(errno, ENOMEM);
  ck_assert_uint_eq(traced() - base, 32);
  free(p);
  ck_assert_uint_eq(traced(), base);
}
END_TEST

START_TEST(test_huge_sizes_fail_cleanly) {
  size_t base = traced();
  errno = 0;
  ck_assert_ptr_null(malloc(huge));
  ck_assert_int_eq(errno, ENOMEM);
  errno = 0;
  ck_assert_ptr_null(calloc(huge / 2, 3));
  ck_assert_int_eq(errno, ENOMEM);
  void *p = (void *)0x1;
  ck_assert_int_eq(posix_memalign(&p, 64, huge), ENOMEM);
  ck_assert_ptr_eq(p, (void *)0x1); /* untouched on failure */
  ck_assert_int_eq(posix_memalign(&p, 3, 64), EINVAL);
  ck_assert_uint_eq(traced(), base);
  ck_assert_uint_eq(tm_get_lost_traces(), 0);
}
END_TEST

START_TEST(test_errno_preserved_on_success) {
  for (int e = 1; e < 4; e++) {
    errno = e * 7;
    void *p = escape(malloc(100 * (size_t)e));
    ck_assert_int_eq(errno, e * 7);
    p = realloc(p, 10000);
    ck_assert_int_eq(errno, e * 7);
    free(p);
    ck_assert_int_eq(errno, e * 7);
    p = escape(calloc(3, 3));
    free(p);
    ck_assert_int_eq(errno, e * 7);
  }
}
END_TEST

START_TEST(test_alignment_preserved) {
  static const size_t aligns[] = {16, 64, 256, 4096, 65536};
  for (size_t i = 0; i < sizeof aligns / sizeof *aligns; i++) {
    void *a = aligned_alloc(aligns[i], aligns[i] * 2);
    void *m = memalign(aligns[i], 24);
    void *p = NULL;
    ck_assert_int_eq(posix_memalign(&p, aligns[i], 24), 0);
    ck_assert_uint_eq((uintptr_t)a % aligns[i], 0);
    ck_assert_uint_eq((uintptr_t)m % aligns[i], 0);
    ck_assert_uint_eq((uintptr_t)p % aligns[i], 0);
    free(a);
    free(m);
    free(p);
  }
  long page = sysconf(_SC_PAGESIZE);
  void *v = valloc(10), *pv = pvalloc(10);
  ck_assert_uint_eq((uintptr_t)v % (uintptr_t)page, 0);
  ck_assert_uint_eq((uintptr_t)pv % (uintptr_t)page, 0);
  free(v);
  free(pv);
  for (size_t n = 1; n < 300; n += 7) {
    void *q = malloc(n);
    ck_assert_uint_eq((uintptr_t)q % 16, 0); /* glibc's MALLOC_ALIGNMENT on x86_64 */
    ck_assert_uint_ge(malloc_usable_size(q), n);
    free(q);
  }
}
END_TEST

START_TEST(test_untraced_blocks_freed_while_tracing) {
  tm_stop();
  void *before = escape(malloc(1000));
  ck_assert_int_eq(tm_start(4), 0);
  size_t base = traced();
  free(before); /* never traced: must not move the counters */
  ck_assert_uint_eq(traced(), base);
  void *p = escape(realloc(escape(malloc(0)), 10)); /* malloc(0) then a realloc of a traced zero-size block */
  ck_assert_uint_eq(traced() - base, 10);
  free(p);
}
END_TEST

/* Allocations of a thread with the smallest stack glibc accepts. */
static void *small_stack_thread(void *arg) {
  size_t *out = arg;
  void *blocks[16];
  for (int i = 0; i < 16; i++)
    blocks[i] = escape(malloc(100 + (size_t)i));
  out[0] = traced();
  for (int i = 0; i < 16; i++)
    free(blocks[i]);
  return NULL;
}

/* The tracer's own stack use does not grow with the traceback limit: a thread with a 16 KiB stack
 * (PTHREAD_STACK_MIN) is traced with TM_MAX_NFRAME frames and does not overflow its stack. */
START_TEST(test_small_stack_thread_traced_with_max_frames) {
  pthread_attr_t attr;
  pthread_t thread;
  size_t seen[1] = {0};
  ck_assert_int_eq(tm_start(TM_MAX_NFRAME), 0);
  size_t base = traced();
  ck_assert_int_eq(pthread_attr_init(&attr), 0);
  ck_assert_int_eq(pthread_attr_setstacksize(&attr, 16384), 0);
  ck_assert_int_eq(pthread_create(&thread, &attr, small_stack_thread, seen), 0);
  ck_assert_int_eq(pthread_join(thread, NULL), 0);
  ck_assert_uint_ge(seen[0], base + 16 * 100);
  ck_assert_uint_eq(tm_get_lost_traces(), 0);
  /* Each thread's working block (~20 KiB) is given back when it exits. */
  size_t memory = tm_get_tracemalloc_memory();
  for (int i = 0; i < 64; i++) {
    ck_assert_int_eq(pthread_create(&thread, &attr, small_stack_thread, seen), 0);
    ck_assert_int_eq(pthread_join(thread, NULL), 0);
  }
  ck_assert_uint_le(tm_get_tracemalloc_memory(), memory + 256 * 1024);
  pthread_attr_destroy(&attr);
}
END_TEST

START_TEST(test_not_tracing_records_nothing) {
  tm_stop();
  void *p = escape(malloc(100));
  size_t current = 1, peak = 1;
  tm_get_traced_memory(&current, &peak);
  ck_assert_uint_eq(current, 0);
  ck_assert_uint_eq(peak, 0);
  free(p);
}
END_TEST

/* mmap(), munmap() and mremap() are interposed too (the program's own anonymous memory is a root
 * of the reachability scan): what they return, errno, and the memory itself stay the system's. */
START_TEST(test_mapping_calls_unchanged) {
  const size_t page = (size_t)sysconf(_SC_PAGESIZE);
  ck_assert_int_eq(tm_start(4), 0);
  size_t before = traced();
  errno = 0;
  ck_assert_ptr_eq(mmap(NULL, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), MAP_FAILED);
  ck_assert_int_eq(errno, EINVAL);
  errno = 0;
  ck_assert_ptr_eq(mmap(NULL, page, PROT_READ, MAP_PRIVATE, -1, 0), MAP_FAILED); /* no file */
  ck_assert_int_eq(errno, EBADF);
  errno = 0;
  ck_assert_int_eq(munmap((void *)1, page), -1); /* not page-aligned */
  ck_assert_int_eq(errno, EINVAL);
  errno = 0;
  ck_assert_ptr_eq(mremap((void *)1, page, 2 * page, MREMAP_MAYMOVE), MAP_FAILED);
  ck_assert_int_eq(errno, EINVAL);
  errno = 12345;
  char *p = mmap(NULL, 3 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ck_assert_ptr_ne(p, MAP_FAILED);
  ck_assert_int_eq(errno, 12345); /* a success leaves errno alone */
  ck_assert_uint_eq((uintptr_t)p % page, 0);
  memset(p, 0x5a, 3 * page);
  ck_assert_int_eq(munmap(p + page, page), 0); /* a hole in the middle */
  ck_assert_int_eq(p[0], 0x5a);
  ck_assert_int_eq(p[2 * page], 0x5a);
  char *q = mremap(p, page, 4 * page, MREMAP_MAYMOVE);
  ck_assert_ptr_ne(q, MAP_FAILED);
  ck_assert_int_eq(q[page - 1], 0x5a); /* moved with its contents */
  ck_assert_int_eq(q[4 * page - 1], 0);
  ck_assert_int_eq(errno, 12345);
  ck_assert_int_eq(munmap(q, 4 * page), 0);
  ck_assert_int_eq(munmap(p + 2 * page, page), 0);
  ck_assert_uint_eq(traced(), before); /* mappings are not blocks */
  tm_stop();
}
END_TEST

int main(void) {
  Suite *s = suite_create("hooks");
  TCase *tc = tcase_create("entry_points");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_each_entry_point_records_exact_size);
  tcase_add_test(tc, test_realloc_grow_shrink_move);
  tcase_add_test(tc, test_realloc_zero_frees);
  tcase_add_test(tc, test_failed_realloc_keeps_old_trace);
  tcase_add_test(tc, test_huge_sizes_fail_cleanly);
  tcase_add_test(tc, test_errno_preserved_on_success);
  tcase_add_test(tc, test_alignment_preserved);
  tcase_add_test(tc, test_untraced_blocks_freed_while_tracing);
  tcase_add_test(tc, test_not_tracing_records_nothing);
  tcase_add_test(tc, test_small_stack_thread_traced_with_max_frames);
  tcase_add_test(tc, test_mapping_calls_unchanged);
  suite_add_tcase(s, tc);
  return run_suite(s);
}
