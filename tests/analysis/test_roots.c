/* test_roots.c — what tm__roots_collect() hands the reachability scan: the calling thread's stack
 * from the given stack pointer up, its static TLS, the program's globals; never the dead frames
 * below that stack pointer, also on a thread whose static TLS block sits right above its frames. */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <check.h>

#include "../run_suite.h"
#include "engine.h"
#include "roots.h"

static __thread uintptr_t tls_word = 1;
static uintptr_t global_word = 1;

typedef struct collected {
  uintptr_t sp;          /* the stack pointer the ranges were collected from */
  uintptr_t tls, global; /* addresses that must be covered */
  bool covers_sp, covers_tls, covers_global;
  bool covers_below_sp; /* a dead word below sp */
} collected;

static bool ranges_cover(const GArray *ranges, uintptr_t addr) {
  for (guint i = 0; i < ranges->len; i++) {
    const tm__range *r = &g_array_index(ranges, tm__range, i);
    if (addr >= r->lo && addr < r->hi)
      return true;
  }
  return false;
}

/* Collects the roots from this frame's stack pointer and asks about each address. */
static __attribute__((noinline)) void collect_here(collected *c) {
  c->sp = (uintptr_t)__builtin_frame_address(0);
  c->tls = (uintptr_t)&tls_word;
  c->global = (uintptr_t)&global_word;
  tm__guard_enter();
  GArray *ranges = tm__roots_collect((const void *)c->sp, false);
  tm__guard_leave();
  c->covers_sp = ranges_cover(ranges, c->sp);
  c->covers_tls = ranges_cover(ranges, c->tls);
  c->covers_global = ranges_cover(ranges, c->global);
  c->covers_below_sp = ranges_cover(ranges, c->sp - 64);
  g_array_unref(ranges);
}

static void *collect_on_thread(void *arg) {
  collect_here(arg);
  return NULL;
}

static void check_collected(const collected *c) {
  ck_assert_msg(c->covers_sp, "the stack from sp up is a root");
  ck_assert_msg(c->covers_tls, "the static TLS block is a root");
  ck_assert_msg(c->covers_global, "a global is a root");
  ck_assert_msg(!c->covers_below_sp, "the dead frames below sp (%#lx) are not roots",
                (unsigned long)c->sp);
}

START_TEST(test_main_thread) {
  collected c = {0};
  collect_here(&c);
  check_collected(&c);
}
END_TEST

/* A thread's static TLS block and descriptor lie at the top of its stack mapping, right above its
 * first frame: collected from a shallow frame, the TLS range must not reach down past sp. */
START_TEST(test_shallow_thread) {
  collected c = {0};
  pthread_t t;
  ck_assert_int_eq(pthread_create(&t, NULL, collect_on_thread, &c), 0);
  ck_assert_int_eq(pthread_join(t, NULL), 0);
  check_collected(&c);
}
END_TEST

int main(void) {
  Suite *s = suite_create("roots");
  TCase *tc = tcase_create("collect");
  tcase_add_test(tc, test_main_thread);
  tcase_add_test(tc, test_shallow_thread);
  suite_add_tcase(s, tc);
  return run_suite(s);
}
