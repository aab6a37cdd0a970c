/* test_stack_cache.c — a stack seen before is recognized without unwinding, and never mistaken
 * for another: the same call site reached through other callers at the same stack depth, other
 * recursion depths, another traceback limit, a signal handler, other threads. Links the internal
 * archive to read raw tracebacks and the thread's cache. */
#include <check.h>
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "run_suite.h"
#include "stack_cache.h"
#include "tracemalloc.h"

/* Exported (the binary is linked with -rdynamic) so that dladdr can name their frames. */
void *site(void);
void *via_a(void);
void *via_b(void);
void *recurse(int depth);
void *thread_a(void *arg);
void *thread_b(void *arg);
void raise_from_f1(void);
void raise_from_f2(void);

static uint32_t tb_id_of(void *p) {
  tm__raw_trace t;
  ck_assert_msg(tm__trace_find((uintptr_t)p, &t), "block %p is not traced", p);
  return t.tb_id;
}

static const char *function_of(uintptr_t ip) {
  Dl_info info;
  if (dladdr((void *)(ip - 1), &info) == 0 || info.dli_sname == NULL)
    return "?";
  return info.dli_sname;
}

/* How many frames of p's traceback are in function name. */
static int frames_in(void *p, const char *name) {
  const tm__interned_tb *tb = tm__traceback_lookup(tb_id_of(p));
  int count = 0;
  for (int i = 0; i < tb->nframe; i++)
    count += strcmp(function_of(tb->ips[i]), name) == 0;
  return count;
}

/* The calling thread's learned entry for traceback id, or NULL. */
static const tm__stack_entry *learned_entry(uint32_t id) {
  for (int i = 0; i < TM_STACK_CACHE_ENTRIES; i++)
    if (tm__stack_cache[i].ra != 0 && tm__stack_cache[i].tb == id &&
        tm__stack_cache[i].nslots < TM_STACK_CACHE_FRAMES)
      return &tm__stack_cache[i];
  return NULL;
}

__attribute__((noinline)) void *site(void) {
  void *p = malloc(24);
  __asm__ volatile("" ::: "memory"); /* a real call, not a tail call */
  return p;
}

/* Twins: the same frame layout, so site() runs at the same stack depth under either. */
__attribute__((noinline)) void *via_a(void) {
  void *p = site();
  __asm__ volatile("" ::: "memory");
  return p;
}

__attribute__((noinline)) void *via_b(void) {
  void *p = site();
  __asm__ volatile("" ::: "memory");
  return p;
}

__attribute__((noinline)) void *recurse(int depth) {
  void *p = depth == 0 ? site() : recurse(depth - 1);
  __asm__ volatile("" ::: "memory");
  return p;
}

/* Loop bounds the compiler cannot see: an unrolled loop would make each call its own call site. */
static volatile int three = 3, four = 4;

static void teardown(void) { tm_stop(); }

/* The id of p's traceback, 0 when untraced. Allocates nothing (unlike a Check assertion, whose
 * message is an allocation that could take the place of the entry a test is looking at). */
static uint32_t raw_id(void *p) {
  tm__raw_trace t;
  return tm__trace_find((uintptr_t)p, &t) ? t.tb_id : 0;
}

/* The third capture of a stack is a hit: the same id as the unwound ones, and an entry learned
 * with one slot per frame above the caller. */
START_TEST(test_repeated_stack_is_learned) {
  void *p[4];
  uint32_t ids[4];
  ck_assert_int_eq(tm_start(16), 0);
  for (int i = 0; i < four; i++)
    p[i] = via_a();
  for (int i = 0; i < 4; i++)
    ids[i] = raw_id(p[i]);
  const tm__stack_entry *found = learned_entry(ids[0]);
  tm__stack_entry e = found ? *found : (tm__stack_entry){0};
  ck_assert_ptr_nonnull(found);
  ck_assert_uint_ne(ids[0], 0);
  for (int i = 1; i < 4; i++)
    ck_assert_uint_eq(ids[i], ids[0]);
  ck_assert_uint_eq(e.nslots + 1u, tm__traceback_lookup(ids[0])->nframe);
  ck_assert_str_eq(function_of(e.ra), "site");
  for (int i = 0; i < 4; i++)
    free(p[i]);
}
END_TEST

/* via_b reaches site() at the same (return address, stack pointer) key as via_a: the slots tell
 * them apart, every time, whichever was learned. */
START_TEST(test_other_caller_same_depth) {
  ck_assert_int_eq(tm_start(16), 0);
  void *a[3], *b[3];
  for (int i = 0; i < three; i++)
    a[i] = via_a();
  uint32_t id_a = raw_id(a[2]);
  const tm__stack_entry *e = learned_entry(id_a);
  tm__stack_entry learned_a = e ? *e : (tm__stack_entry){0};
  tm__stack_entry after_b = {0};
  for (int i = 0; i < three; i++) { /* one call site: an unrolled loop would make three */
    b[i] = via_b();
    if (i == 0 && e != NULL)
      after_b = *e;
  }
  uint32_t id_b = raw_id(b[0]);
  const tm__stack_entry *e_b = learned_entry(id_b);

  ck_assert_ptr_nonnull(e);
  ck_assert_uint_ne(id_b, id_a);
  /* via_b's miss reset the very same entry to its own stack: the keys were equal. */
  ck_assert_uint_eq(after_b.ra, learned_a.ra);
  ck_assert_uint_eq(after_b.cfa, learned_a.cfa);
  ck_assert_uint_eq(after_b.tb, id_b);
  ck_assert_ptr_eq(e_b, e);
  for (int round = 0; round < three; round++) {
    void *pa = via_a(), *pb = via_b();
    ck_assert_int_eq(frames_in(pa, "via_a"), 1);
    ck_assert_int_eq(frames_in(pa, "via_b"), 0);
    ck_assert_int_eq(frames_in(pb, "via_b"), 1);
    ck_assert_int_eq(frames_in(pb, "via_a"), 0);
    free(pa);
    free(pb);
  }
  for (int i = 0; i < 3; i++) {
    ck_assert_int_eq(frames_in(a[i], "via_a"), 1);
    ck_assert_int_eq(frames_in(b[i], "via_b"), 1);
    free(a[i]);
    free(b[i]);
  }
}
END_TEST

/* Each recursion depth is its own stack, learned and then hit, always with its own depth. */
START_TEST(test_recursion_depths) {
  ck_assert_int_eq(tm_start(64), 0);
  uint32_t ids[7];
  for (int round = 0; round < three; round++) {
    for (int depth = 0; depth < 7; depth++) {
      void *p = recurse(depth);
      ck_assert_int_eq(frames_in(p, "recurse"), depth + 1);
      ck_assert_int_eq(frames_in(p, "site"), 1);
      if (round == 0)
        ids[depth] = tb_id_of(p);
      else
        ck_assert_uint_eq(tb_id_of(p), ids[depth]);
      free(p);
    }
  }
}
END_TEST

/* An entry learned under one traceback limit never answers under another. */
START_TEST(test_limit_change) {
  ck_assert_int_eq(tm_start(2), 0);
  for (int i = 0; i < three; i++) {
    void *p = via_a();
    ck_assert_uint_eq(tm__traceback_lookup(tb_id_of(p))->nframe, 2);
    free(p);
  }
  ck_assert_int_eq(tm_start(4), 0);
  for (int i = 0; i < three; i++) {
    void *p = via_a();
    ck_assert_uint_eq(tm__traceback_lookup(tb_id_of(p))->nframe, 4);
    ck_assert_int_eq(frames_in(p, "via_a"), 1);
    free(p);
  }
}
END_TEST

static void *volatile from_handler;

void on_signal(int sig);

void on_signal(int sig) {
  (void)sig;
  from_handler = site(); /* raise() is synchronous: malloc is safe here */
}

__attribute__((noinline)) void raise_from_f1(void) {
  raise(SIGUSR1);
  __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void raise_from_f2(void) {
  raise(SIGUSR1);
  __asm__ volatile("" ::: "memory");
}

/* A stack through a signal frame names the function that raised it, every time. */
START_TEST(test_signal_handler) {
  struct sigaction sa = {.sa_handler = on_signal};
  sigemptyset(&sa.sa_mask);
  ck_assert_int_eq(sigaction(SIGUSR1, &sa, NULL), 0);
  ck_assert_int_eq(tm_start(32), 0);
  for (int round = 0; round < four; round++) {
    bool first = round % 2 == 0;
    if (first)
      raise_from_f1();
    else
      raise_from_f2();
    void *p = from_handler;
    ck_assert_int_eq(frames_in(p, "on_signal"), 1);
    ck_assert_int_eq(frames_in(p, "raise_from_f1"), first ? 1 : 0);
    ck_assert_int_eq(frames_in(p, "raise_from_f2"), first ? 0 : 1);
    free(p);
  }
  signal(SIGUSR1, SIG_DFL);
}
END_TEST

/* Each thread learns its own stacks: the same site names each thread's own function. */
__attribute__((noinline)) void *thread_a(void *arg) {
  (void)arg;
  void *last = NULL;
  for (int i = 0; i < four; i++) {
    free(last);
    last = site();
    if (frames_in(last, "thread_a") != 1 || frames_in(last, "thread_b") != 0)
      return NULL;
  }
  return last;
}

__attribute__((noinline)) void *thread_b(void *arg) {
  (void)arg;
  void *last = NULL;
  for (int i = 0; i < four; i++) {
    free(last);
    last = site();
    if (frames_in(last, "thread_b") != 1 || frames_in(last, "thread_a") != 0)
      return NULL;
  }
  return last;
}

START_TEST(test_threads) {
  ck_assert_int_eq(tm_start(16), 0);
  pthread_t ta, tb;
  void *ra = NULL, *rb = NULL;
  ck_assert_int_eq(pthread_create(&ta, NULL, thread_a, NULL), 0);
  ck_assert_int_eq(pthread_create(&tb, NULL, thread_b, NULL), 0);
  ck_assert_int_eq(pthread_join(ta, &ra), 0);
  ck_assert_int_eq(pthread_join(tb, &rb), 0);
  ck_assert_ptr_nonnull(ra);
  ck_assert_ptr_nonnull(rb);
  ck_assert_int_eq(frames_in(ra, "thread_a"), 1);
  ck_assert_int_eq(frames_in(rb, "thread_b"), 1);
  free(ra);
  free(rb);
}
END_TEST

int main(void) {
  Suite *s = suite_create("stack_cache");
  TCase *tc = tcase_create("stack_cache");
  tcase_add_checked_fixture(tc, NULL, teardown);
  tcase_add_test(tc, test_repeated_stack_is_learned);
  tcase_add_test(tc, test_other_caller_same_depth);
  tcase_add_test(tc, test_recursion_depths);
  tcase_add_test(tc, test_limit_change);
  tcase_add_test(tc, test_signal_handler);
  tcase_add_test(tc, test_threads);
  suite_add_tcase(s, tc);
  return run_suite(s);
}
