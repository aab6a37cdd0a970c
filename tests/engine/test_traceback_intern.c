/* test_traceback_intern.c — capture skips exactly the tracer's frames, stacks are interned once,
 * truncation is recorded. Links the internal archive to read raw tracebacks. */
#include <check.h>
#include <dlfcn.h>
#include <stdint.h>
#include <malloc.h>
#include <stdlib.h>

#include "engine.h"
#include "run_suite.h"
#include "tracemalloc.h"

/* Exported (the binary is linked with -rdynamic) so that dladdr can name their frames. */
void *alloc_here(size_t n);
void *alloc_deep(int depth, size_t n);
void alloc_every_kind(void **out);

static const tm__interned_tb *traceback_of(void *p) {
  tm__raw_trace t;
  if (!tm__trace_find((uintptr_t)p, &t))
    return NULL;
  return tm__traceback_lookup(t.tb_id);
}

/* Name of the function holding a return address (the test binary is linked with -rdynamic). */
static const char *function_of(uintptr_t ip) {
  Dl_info info;
  if (dladdr((void *)(ip - 1), &info) == 0 || info.dli_sname == NULL)
    return "?";
  return info.dli_sname;
}

__attribute__((noinline)) void *alloc_here(size_t n) {
  void *p = malloc(n);
  __asm__ volatile("" ::: "memory"); /* keeps the call a real call, not a tail call */
  return p;
}

__attribute__((noinline)) void *alloc_deep(int depth, size_t n) {
  void *p = depth == 0 ? alloc_here(n) : alloc_deep(depth - 1, n);
  __asm__ volatile("" ::: "memory");
  return p;
}

static void teardown(void) { tm_stop(); }

START_TEST(test_first_frame_is_the_callers) {
  ck_assert_int_eq(tm_start(3), 0);
  void *p = alloc_deep(1, 10);
  const tm__interned_tb *tb = traceback_of(p);
  ck_assert_ptr_nonnull(tb);
  ck_assert_uint_eq(tb->nframe, 3);
  ck_assert_str_eq(function_of(tb->ips[0]), "alloc_here");
  ck_assert_str_eq(function_of(tb->ips[1]), "alloc_deep");
  ck_assert_str_eq(function_of(tb->ips[2]), "alloc_deep");
  ck_assert_uint_eq(tb->truncated, 1);
  ck_assert_uint_gt(tb->total_nframe, tb->nframe);
  free(p);
}
END_TEST

__attribute__((noinline)) void alloc_every_kind(void **out) {
  out[0] = malloc(1);
  out[1] = calloc(1, 1);
  out[2] = realloc(NULL, 1);
  out[3] = reallocarray(NULL, 1, 1);
  out[4] = aligned_alloc(64, 64);
  out[5] = memalign(64, 1);
  out[6] = valloc(1);
  out[7] = pvalloc(1);
  if (posix_memalign(&out[8], 64, 1) != 0)
    out[8] = NULL;
  out[9] = realloc(out[0], 4096); /* a moving or in-place realloc is re-traced here */
  out[0] = NULL;
  __asm__ volatile("" ::: "memory");
}

START_TEST(test_each_entry_point_skips_its_own_frame) {
  ck_assert_int_eq(tm_start(1), 0);
  void *blocks[10];
  alloc_every_kind(blocks);
  for (size_t i = 1; i < 10; i++) {
    const tm__interned_tb *tb = traceback_of(blocks[i]);
    ck_assert_msg(tb != NULL, "block %zu untraced", i);
    ck_assert_str_eq(function_of(tb->ips[0]), "alloc_every_kind");
    free(blocks[i]);
  }
}
END_TEST

START_TEST(test_same_stack_is_interned_once) {
  /* Four frames: alloc_here and three alloc_deep levels, not the caller's line (a compiler may
   * unroll the loop below into several call sites, which are several stacks). */
  ck_assert_int_eq(tm_start(4), 0);
  void *a[16];
  for (int i = 0; i < 16; i++)
    a[i] = alloc_deep(2, 8);
  tm__raw_trace t0, t1;
  ck_assert(tm__trace_find((uintptr_t)a[0], &t0));
  for (int i = 1; i < 16; i++) {
    ck_assert(tm__trace_find((uintptr_t)a[i], &t1));
    ck_assert_uint_eq(t0.tb_id, t1.tb_id);
  }
  void *other = alloc_deep(1, 8); /* one level less: its fourth frame is this test's */
  ck_assert(tm__trace_find((uintptr_t)other, &t1));
  ck_assert_uint_ne(t0.tb_id, t1.tb_id);
  ck_assert_ptr_eq(tm__traceback_lookup(t0.tb_id), tm__traceback_lookup(t0.tb_id));
  ck_assert_ptr_null(tm__traceback_lookup(0));
  ck_assert_ptr_null(tm__traceback_lookup(UINT32_MAX));
  for (int i = 0; i < 16; i++)
    free(a[i]);
  free(other);
}
END_TEST

START_TEST(test_whole_stack_when_under_limit) {
  ck_assert_int_eq(tm_start(TM_MAX_NFRAME), 0);
  void *p = alloc_deep(10, 8);
  const tm__interned_tb *tb = traceback_of(p);
  ck_assert_uint_eq(tb->truncated, 0);
  ck_assert_uint_eq(tb->total_nframe, tb->nframe);
  ck_assert_uint_ge(tb->nframe, 13); /* alloc_here, 11 x alloc_deep, the test, Check, main ... */
  free(p);
}
END_TEST

int main(void) {
  Suite *s = suite_create("traceback_intern");
  TCase *tc = tcase_create("capture");
  tcase_add_checked_fixture(tc, NULL, teardown);
  tcase_add_test(tc, test_first_frame_is_the_callers);
  tcase_add_test(tc, test_each_entry_point_skips_its_own_frame);
  tcase_add_test(tc, test_same_stack_is_interned_once);
  tcase_add_test(tc, test_whole_stack_when_under_limit);
  suite_add_tcase(s, tc);
  return run_suite(s);
}
