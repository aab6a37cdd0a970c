/* test_traceback_intern.c — capture skips exactly the tracer's frames, stacks are interned once,
 * truncation is recorded. Links the internal archive to read raw tracebacks. */
#include <check.h>
#include <dlfcn.h>
#include <stdint.h>
#include <malloc.h>
#include <stdlib.h>

#include "engine.h"
#include "run_suite.h"
#include "traceback_intern.h"
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
#if defined(__GNUC__) && !defined(__clang__)
#define NOINLINE __attribute__((noinline, noclone))
#else
#define NOINLINE __attribute__((noinline))
#endif

static const char *function_of(uintptr_t ip) {
  Dl_info info;
  if (dladdr((void *)(ip - 1), &info) == 0 || info.dli_sname == NULL)
    return "?";
  return info.dli_sname;
}

NOINLINE void *alloc_here(size_t n) {
  void *p = malloc(n);
  __asm__ volatile("" ::: "memory"); /* keeps the call a real call, not a tail call */
  return p;
}

/* noclone: a clone (alloc_deep.constprop.0) is a local symbol, which dladdr() does not name. */
NOINLINE void *alloc_deep(int depth, size_t n) {
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

/* Interns n distinct synthetic stacks of 32 frames (~300 bytes each). */
static void intern_many(uint32_t n, uintptr_t salt) {
  uintptr_t ips[32];
  for (uint32_t i = 0; i < n; i++) {
    for (int k = 0; k < 32; k++)
      ips[k] = salt + (uintptr_t)i * 64 + (uintptr_t)k;
    ck_assert_uint_ne(tm__intern(ips, 32, false, 32, NULL), 0);
  }
}

/* The first intern of a stack makes its id (fresh); later ones find it. */
START_TEST(test_fresh_only_when_made) {
  ck_assert_int_eq(tm_start(1), 0);
  uintptr_t a[3] = {0xa1, 0xa2, 0xa3}, b[3] = {0xb1, 0xb2, 0xb3};
  bool fresh = false;
  uint32_t id = tm__intern(a, 3, false, 3, &fresh);
  ck_assert_uint_ne(id, 0);
  ck_assert(fresh);
  ck_assert_uint_eq(tm__intern(a, 3, false, 3, &fresh), id);
  ck_assert(!fresh);
  ck_assert_uint_ne(tm__intern(b, 3, false, 3, &fresh), id);
  ck_assert(fresh);
  ck_assert_uint_eq(tm__intern(a, 3, false, 3, &fresh), id);
  ck_assert(!fresh);
  tm_stop();
}
END_TEST

static uint64_t rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

/* Stacks are known by their hash alone (docs/engine.md, "Interning"): stacks that differ only in
 * their shape, or a prefix of another, or in pairs of frames chosen so that a linear hash (a
 * rotate-xor chain) would give both the same value, each get their own id, and every id's stored
 * stack is the one interned under it. */
START_TEST(test_stacks_told_apart) {
  ck_assert_int_eq(tm_start(1), 0);
  uintptr_t a[4] = {0x401a10, 0x401b20, 0x401c30, 0x401d40};
  uint32_t plain = tm__intern(a, 3, false, 3, NULL);
  uint32_t cut = tm__intern(a, 3, true, 4, NULL);
  uint32_t cut_deeper = tm__intern(a, 3, true, 9, NULL);
  uint32_t longer = tm__intern(a, 4, false, 4, NULL);
  ck_assert_uint_ne(plain, 0);
  ck_assert_uint_ne(plain, cut);
  ck_assert_uint_ne(plain, cut_deeper);
  ck_assert_uint_ne(cut, cut_deeper);
  ck_assert_uint_ne(plain, longer);
  ck_assert_uint_eq(tm__traceback_lookup(cut)->truncated, 1);
  ck_assert_uint_eq(tm__traceback_lookup(cut_deeper)->total_nframe, 9);
  ck_assert_uint_eq(tm__traceback_lookup(longer)->nframe, 4);

  enum { PAIRS = 20000, DEPTH = 8 };
  static uint32_t ids[2 * PAIRS];
  uintptr_t ips[DEPTH];
  for (int round = 0; round < 2; round++) /* the second round finds every stack again */
    for (uint32_t k = 0; k < 2 * PAIRS; k++) {
      uint64_t d = (k / 2 + 1) * UINT64_C(0x10001);
      for (int i = 0; i < DEPTH; i++)
        ips[i] = 0x400000 + (uintptr_t)i * 0x1000 + (k / 2) * 16;
      if (k % 2 == 1) { /* the same value under h = rotl(h, 7) ^ ip */
        ips[2] ^= (uintptr_t)d;
        ips[3] ^= (uintptr_t)rotl64(d, 7);
      }
      uint32_t id = tm__intern(ips, DEPTH, false, DEPTH, NULL);
      ck_assert_uint_ne(id, 0);
      if (round == 0)
        ids[k] = id;
      ck_assert_uint_eq(id, ids[k]);
      const tm__interned_tb *tb = tm__traceback_lookup(id);
      ck_assert_uint_eq(tb->nframe, DEPTH);
      ck_assert_mem_eq(tb->ips, ips, sizeof ips);
    }
  for (uint32_t k = 0; k < 2 * PAIRS; k += 2)
    ck_assert_uint_ne(ids[k], ids[k + 1]);
  tm_stop();
}
END_TEST

/* tm_stop() frees the interned tracebacks, as Python's stop() clears its traceback table: the
 * tracer's memory goes back to what it was, and ids start again from 1. */
START_TEST(test_stop_frees_interned_tracebacks) {
  ck_assert_int_eq(tm_start(1), 0);
  void *p = alloc_here(10);
  size_t before = tm_get_tracemalloc_memory();
  intern_many(100000, 0x10000000); /* ~30 MiB of stacks */
  size_t full = tm_get_tracemalloc_memory();
  ck_assert_uint_ge(full, before + (20u << 20));
  tm_stop();
  size_t after = tm_get_tracemalloc_memory();
  ck_assert_msg(after < before + (1u << 20), "%zu KiB stay after tm_stop (%zu MiB when full)",
                (after - before) >> 10, (full - before) >> 20);
  ck_assert_ptr_null(tm__traceback_lookup(5000));
  ck_assert_int_eq(tm_start(1), 0);
  uintptr_t ips[2] = {0x1234, 0x5678};
  ck_assert_uint_lt(tm__intern(ips, 2, false, 2, NULL), 100); /* ids start again from 1 */
  free(p);
}
END_TEST

/* One call site: with a limit of 2 frames, every call records the same stack. */
static __attribute__((noinline)) void *known_site(void) {
  void *p = alloc_here(8);
  __asm__ volatile("" ::: "memory");
  return p;
}

/* A call site whose stack and id the thread's caches remember is traced with its own traceback
 * after tm_stop() freed the tracebacks and other stacks took the ids. */
START_TEST(test_call_site_traced_again_after_stop) {
  ck_assert_int_eq(tm_start(2), 0);
  void *blocks[8];
  for (int i = 0; i < 8; i++) /* seen again and again: the stack cache learns it */
    blocks[i] = known_site();
  tm__raw_trace t;
  ck_assert(tm__trace_find((uintptr_t)blocks[7], &t));
  for (int i = 0; i < 8; i++)
    free(blocks[i]);
  tm_stop();
  ck_assert_int_eq(tm_start(2), 0);
  intern_many(t.tb_id + 10, 0x20000000); /* its old id now names another stack */
  void *p = known_site();
  const tm__interned_tb *tb = traceback_of(p);
  ck_assert_ptr_nonnull(tb);
  ck_assert_str_eq(function_of(tb->ips[0]), "alloc_here");
  free(p);
}
END_TEST

/* When ids run out, a new call site is not traced but counted as a lost trace (and a warning is
 * written once); a stack interned before keeps being traced; tm_stop() gives the ids back. */
START_TEST(test_ids_run_out_as_lost_traces) {
  ck_assert_int_eq(tm_start(2), 0);
  void *p = known_site(); /* interned before the ids run out */
  free(p);
  uint32_t old = tm__intern_set_id_limit(64);
  uintptr_t ips[2] = {0x4321, 0x8765};
  int fresh = 0;
  for (; fresh <= 64 && tm__intern(ips, 2, false, 2, NULL) != 0; fresh++)
    ips[0] += 16; /* a new stack each time, until no id is left */
  ck_assert_int_le(fresh, 64);
  size_t lost = tm_get_lost_traces();
  p = alloc_deep(3, 8); /* a new stack */
  ck_assert_uint_eq(tm_get_lost_traces(), lost + 1);
  ck_assert_ptr_null(traceback_of(p));
  free(p);
  p = known_site(); /* a known stack is still traced */
  ck_assert_ptr_nonnull(traceback_of(p));
  free(p);
  tm_stop();
  ck_assert_int_eq(tm_start(2), 0);
  p = alloc_deep(3, 8);
  ck_assert_ptr_nonnull(traceback_of(p));
  free(p);
  tm__intern_set_id_limit(old);
}
END_TEST

int main(void) {
  Suite *s = suite_create("traceback_intern");
  TCase *tc = tcase_create("capture");
  tcase_add_checked_fixture(tc, NULL, teardown);
  tcase_add_test(tc, test_fresh_only_when_made);
  tcase_add_test(tc, test_stacks_told_apart);
  tcase_add_test(tc, test_stop_frees_interned_tracebacks);
  tcase_add_test(tc, test_call_site_traced_again_after_stop);
  tcase_add_test(tc, test_ids_run_out_as_lost_traces);
  tcase_add_test(tc, test_first_frame_is_the_callers);
  tcase_add_test(tc, test_each_entry_point_skips_its_own_frame);
  tcase_add_test(tc, test_same_stack_is_interned_once);
  tcase_add_test(tc, test_whole_stack_when_under_limit);
  suite_add_tcase(s, tc);
  return run_suite(s);
}
