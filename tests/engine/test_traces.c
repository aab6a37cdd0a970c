/* test_traces.c — the heap registry follows every free, also one made by code the tracer calls
 * with its guard held (the loader inside a dlopen() of the tracer's, libc inside a report), for a
 * block of the program's. A registered address left behind would shadow the next block malloc
 * puts there: the scan would take pointers to that block for the stale one's, and call it lost.
 * Links the internal archive for the guard. */
#include <check.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "engine.h"
#include "runtime.h"
#include "run_suite.h"
#include "tracemalloc.h"

TM_HEAP_REGISTRY;

static void *volatile kept; /* a global: what it points to is reachable */

/* The classification of the block at p in a new scan, and how many blocks the scan lists there. */
static tm_reach reach_of(void *p, size_t *listed) {
  tm_reachability *r = tm_reachability_scan(NULL, NULL);
  ck_assert_ptr_nonnull(r);
  tm_reach reach = TM_REACH_LOST;
  *listed = 0;
  for (size_t i = 0; i < tm_reachability_length(r); i++) {
    const tm_reach_block *b = tm_reachability_get(r, i);
    if (b->ptr == (uintptr_t)p) {
      reach = b->reach;
      (*listed)++;
    }
  }
  tm_reachability_free(r);
  return reach;
}

/* Keeps p in a global and checks that the scan calls it reachable and lists one block there. */
static void assert_reachable_once(void *p) {
  kept = p;
  size_t listed;
  ck_assert_int_eq(reach_of(p, &listed), TM_REACH_REACHABLE);
  ck_assert_uint_eq(listed, 1);
  kept = NULL;
}

/* Loop index 0: the block was registered (from before the window); 1: traced in it. */
START_TEST(test_free_under_guard_forgets_block) {
  ck_assert_int_eq(tm_start(8), 0);
  void *p = malloc(1000);
  if (_i == 0)
    tm_clear_traces(); /* p stays known, registered */
  size_t traced_before;
  tm_get_traced_memory(&traced_before, NULL);
  tm__guard_enter(); /* as when libc frees p on the tracer's behalf */
  free(p);
  tm__guard_leave();
  size_t traced_after;
  tm_get_traced_memory(&traced_after, NULL);
  ck_assert_uint_eq(traced_after, _i == 0 ? traced_before : traced_before - 1000);
  void *q = malloc(1000); /* glibc's tcache hands the same chunk back */
  ck_assert_ptr_eq(q, p);
  assert_reachable_once(q);
  free(q);
  tm_stop();
}
END_TEST

/* A program's block that code the tracer calls grows (with the guard held) stays the program's:
 * scanned, so what only it points to stays reachable. Built on a thread that is gone by the scan,
 * so that no live frame holds a copy of the pointer. */
static uintptr_t hidden_target; /* complemented: not a pointer to the block */

static void *grow_under_guard(void *registered) {
  void **p = malloc(4 * sizeof *p);
  if (registered != NULL)
    tm_clear_traces();
  void *target = malloc(48); /* traced; only p points to it */
  p[0] = target;
  hidden_target = ~(uintptr_t)target;
  tm__guard_enter();
  p = realloc(p, 4096);
  tm__guard_leave();
  kept = p;
  return NULL;
}

/* Loop index 0: the block grown was traced in the window; 1: registered before it. */
START_TEST(test_realloc_under_guard_stays_programs) {
  ck_assert_int_eq(tm_start(8), 0);
  pthread_t t;
  ck_assert_int_eq(pthread_create(&t, NULL, grow_under_guard, _i ? &t : NULL), 0);
  ck_assert_int_eq(pthread_join(t, NULL), 0);
  size_t listed;
  ck_assert_int_eq(reach_of((void *)~hidden_target, &listed), TM_REACH_REACHABLE);
  ck_assert_uint_eq(listed, 1);
  void **p = kept;
  kept = NULL;
  free(p[0]);
  free(p);
  tm_stop();
}
END_TEST

/* Should a free ever go unseen (a library's own allocator under malloc, a path no hook covers), a
 * registered entry is left at an address that malloc hands out again: the scan takes the traced
 * block, the newer, and not the stale entry, for that address. */
START_TEST(test_stale_entry_does_not_shadow) {
  ck_assert_int_eq(tm_start(8), 0);
  void *p = malloc(200);
  tm__record_untraced(p, 200); /* as a stale registration at the same address would be */
  assert_reachable_once(p);
  free(p);
  tm_stop();
}
END_TEST

int main(void) {
  Suite *s = suite_create("traces");
  TCase *tc = tcase_create("registry");
  tcase_add_loop_test(tc, test_free_under_guard_forgets_block, 0, 2);
  tcase_add_loop_test(tc, test_realloc_under_guard_stays_programs, 0, 2);
  tcase_add_test(tc, test_stale_entry_does_not_shadow);
  suite_add_tcase(s, tc);
  return run_suite(s);
}
