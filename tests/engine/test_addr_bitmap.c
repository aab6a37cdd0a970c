/* test_addr_bitmap.c — the address bitmap that keeps the tracer's own blocks: membership, the
 * byte count, reset, neighbours in one word, threads, and a forked child. Links the internal
 * archive. */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "addr_bitmap.h"
#include "run_suite.h"

/* Each test uses a bitmap of its own (static: zero-filled is empty). Fake addresses are fine: the
 * bitmap never dereferences what it records. */
static tm__bitmap bm;

static void setup(void) { tm__bitmap_reset(&bm); }

START_TEST(test_add_contains_remove) {
  uintptr_t a = 0x5555aaaa0010;
  ck_assert(!tm__bitmap_contains(&bm, a));
  ck_assert(tm__bitmap_add(&bm, a, 32));
  ck_assert(tm__bitmap_contains(&bm, a));
  ck_assert(!tm__bitmap_add(&bm, a, 32)); /* already there: not counted twice */
  ck_assert_uint_eq(tm__bitmap_bytes(&bm), 32);
  ck_assert(tm__bitmap_remove(&bm, a, 32));
  ck_assert(!tm__bitmap_contains(&bm, a));
  ck_assert(!tm__bitmap_remove(&bm, a, 32)); /* a second free of it is not the tracer's */
  ck_assert_uint_eq(tm__bitmap_bytes(&bm), 0);
}
END_TEST

START_TEST(test_neighbours_are_distinct) {
  /* 16-byte granules: the 64 blocks share one word, and each bit is its own. */
  uintptr_t base = 0x7f0012340000;
  for (uintptr_t i = 0; i < 64; i += 2)
    ck_assert(tm__bitmap_add(&bm, base + 16 * i, 16));
  for (uintptr_t i = 0; i < 64; i++)
    ck_assert_int_eq(tm__bitmap_contains(&bm, base + 16 * i), i % 2 == 0);
  ck_assert_uint_eq(tm__bitmap_bytes(&bm), 32 * 16);
  ck_assert(tm__bitmap_remove(&bm, base + 16 * 4, 16));
  ck_assert(tm__bitmap_contains(&bm, base + 16 * 2));
  ck_assert(tm__bitmap_contains(&bm, base + 16 * 6));
  ck_assert_uint_eq(tm__bitmap_bytes(&bm), 31 * 16);
}
END_TEST

START_TEST(test_leaves_and_mids_apart) {
  /* Addresses in different leaves (1 MiB apart) and different mids (16 GiB apart). */
  uintptr_t a = 0x10000, b = 0x10000 + (1u << 20), c = (uintptr_t)1 << 40, d = ((uintptr_t)1 << 47) - 16;
  ck_assert(tm__bitmap_add(&bm, a, 1));
  ck_assert(tm__bitmap_add(&bm, b, 2));
  ck_assert(tm__bitmap_add(&bm, c, 4));
  ck_assert(tm__bitmap_add(&bm, d, 8));
  ck_assert(tm__bitmap_contains(&bm, a) && tm__bitmap_contains(&bm, b));
  ck_assert(tm__bitmap_contains(&bm, c) && tm__bitmap_contains(&bm, d));
  ck_assert(!tm__bitmap_contains(&bm, a + (2u << 20)));
  ck_assert(!tm__bitmap_may_contain(&bm, a + ((uintptr_t)1 << 36)));
  ck_assert(tm__bitmap_may_contain(&bm, b + 16));
  ck_assert_uint_eq(tm__bitmap_bytes(&bm), 15);
  tm__bitmap_reset(&bm);
  ck_assert(!tm__bitmap_contains(&bm, a) && !tm__bitmap_contains(&bm, d));
  ck_assert_uint_eq(tm__bitmap_bytes(&bm), 0);
  ck_assert(tm__bitmap_add(&bm, c, 4)); /* a reset bitmap is usable again */
  ck_assert_uint_eq(tm__bitmap_bytes(&bm), 4);
}
END_TEST

START_TEST(test_out_of_range_is_refused) {
  uintptr_t far = (uintptr_t)1 << TM_BITMAP_ADDR_BITS;
  ck_assert(!tm__bitmap_add(&bm, far, 8));
  ck_assert(!tm__bitmap_contains(&bm, far));
  ck_assert(!tm__bitmap_remove(&bm, far, 8));
  ck_assert_uint_eq(tm__bitmap_bytes(&bm), 0);
}
END_TEST

#define THREADS 4
#define PER_THREAD 20000

/* Thread t owns every THREADS-th granule of one shared range, so all threads write the same words
 * at once: a lost update would lose another thread's bit. */
static void *churn(void *arg) {
  uintptr_t t = (uintptr_t)arg, base = 0x600000000000;
  for (int round = 0; round < 3; round++) {
    for (uintptr_t i = 0; i < PER_THREAD; i++)
      if (!tm__bitmap_add(&bm, base + 16 * (i * THREADS + t), 16))
        return (void *)1;
    for (uintptr_t i = 0; i < PER_THREAD; i += 2)
      if (!tm__bitmap_remove(&bm, base + 16 * (i * THREADS + t), 16))
        return (void *)1;
    if (round < 2)
      for (uintptr_t i = 1; i < PER_THREAD; i += 2)
        if (!tm__bitmap_remove(&bm, base + 16 * (i * THREADS + t), 16))
          return (void *)1;
  }
  return NULL;
}

START_TEST(test_threads_share_words) {
  pthread_t th[THREADS];
  for (uintptr_t t = 0; t < THREADS; t++)
    ck_assert_int_eq(pthread_create(&th[t], NULL, churn, (void *)t), 0);
  for (int t = 0; t < THREADS; t++) {
    void *rc;
    pthread_join(th[t], &rc);
    ck_assert_ptr_null(rc);
  }
  /* After the last round, the odd blocks of every thread are in, the even ones out. */
  uintptr_t base = 0x600000000000;
  for (uintptr_t i = 0; i < PER_THREAD * THREADS; i++)
    ck_assert_int_eq(tm__bitmap_contains(&bm, base + 16 * i), (i / THREADS) % 2 == 1);
  ck_assert_uint_eq(tm__bitmap_bytes(&bm), (size_t)THREADS * PER_THREAD / 2 * 16);
}
END_TEST

static atomic_int adder_stop;

static void *adder(void *arg) {
  uintptr_t base = (uintptr_t)arg;
  while (!atomic_load(&adder_stop))
    for (uintptr_t i = 0; i < 4096; i++) {
      tm__bitmap_add(&bm, base + 16 * i, 16);
      tm__bitmap_remove(&bm, base + 16 * i, 16);
    }
  return NULL;
}

START_TEST(test_fork_child_sees_consistent_bits) {
  uintptr_t base = 0x610000000000;
  for (uintptr_t i = 0; i < 1000; i++)
    tm__bitmap_add(&bm, base + 32 * i, 32);
  /* Another thread flips bits of another range while we fork. */
  pthread_t th;
  ck_assert_int_eq(pthread_create(&th, NULL, adder, (void *)(base + (64u << 20))), 0);
  for (int k = 0; k < 20; k++) {
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
      int bad = 0;
      for (uintptr_t i = 0; i < 1000; i++)
        bad += !tm__bitmap_contains(&bm, base + 32 * i) || tm__bitmap_contains(&bm, base + 32 * i + 16);
      /* The child goes on using it: its own changes. */
      bad += !tm__bitmap_remove(&bm, base, 32);
      bad += tm__bitmap_contains(&bm, base);
      bad += !tm__bitmap_add(&bm, base + 16, 16);
      _exit(bad == 0 ? 0 : 1);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  atomic_store(&adder_stop, 1);
  pthread_join(th, NULL);
  /* The children's changes are theirs alone. */
  ck_assert(tm__bitmap_contains(&bm, base));
  ck_assert(!tm__bitmap_contains(&bm, base + 16));
}
END_TEST

static Suite *bitmap_suite(void) {
  Suite *s = suite_create("addr_bitmap");
  TCase *tc = tcase_create("core");
  tcase_add_checked_fixture(tc, setup, NULL);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_add_contains_remove);
  tcase_add_test(tc, test_neighbours_are_distinct);
  tcase_add_test(tc, test_leaves_and_mids_apart);
  tcase_add_test(tc, test_out_of_range_is_refused);
  tcase_add_test(tc, test_threads_share_words);
  tcase_add_test(tc, test_fork_child_sees_consistent_bits);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return run_suite(bitmap_suite()); }
