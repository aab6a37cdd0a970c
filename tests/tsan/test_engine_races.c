/* test_engine_races.c — the engine's shared structures under ThreadSanitizer: the sharded trace
 * tables (with lock-free slot prefetches racing their growth), the traceback interning (with
 * resets, as tm_stop() does them, racing captures and readers), the per-thread stack cache fed by
 * real captures, the address bitmap of the tracer's own blocks (with sums and resets racing), and
 * the resident-memory count racing maps and unmaps.
 *
 * TSan replaces malloc and cannot see through our hooks, so this program compiles the engine's
 * table, interning, capture and cache files directly (tests/tsan/meson.build) and no hook: the
 * structures are driven by calls, from many threads at once. Any report fails the test
 * (TSAN_OPTIONS=halt_on_error=1 exitcode=66). Plain asserts, no Check: Check forks and uses
 * timers that TSan would have to follow too, and nothing here needs its isolation.
 */
#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>

#include "addr_bitmap.h"
#include "engine.h"
#include "guard.h"
#include "runtime.h"
#include "scratch.h"
#include "trace_table.h"
#include "traceback_intern.h"

#define THREADS 4
#define ROUNDS 20000

/* What runtime.h's capture reads (tracemalloc.c defines them in the library). */
atomic_int tm__traceback_limit = 8;
atomic_int tm__hooks_active = 1; /* tracing, no heap registry */

static tm__table table;
static atomic_bool stop_resets;

/* ---- tables ------------------------------------------------------------------------------------ */

static void *table_worker(void *arg) {
  uintptr_t base = ((uintptr_t)arg + 1) << 32;
  for (int i = 0; i < ROUNDS; i++) {
    uintptr_t key = base + (uintptr_t)(i % 512) * 16;
    uint64_t hash = tm__hash_ptr(key), meta, old;
    bool failed;
    tm__shard *s = tm__table_shard(&table, hash);
    tm__lock_acquire(&s->lock);
    if (i % 3 == 2)
      tm__shard_remove_unlocked(s, key, hash, &meta);
    else
      tm__shard_put_unlocked(s, key, hash, tm__meta_pack((size_t)i, 1), &old, &failed);
    tm__lock_release(&s->lock);
  }
  return NULL;
}

/* What tm__trace_prefetch_slot() (traces.c) does: a shard's array and mask read without its lock. */
static atomic_bool stop_prefetch;

static void *prefetch_worker(void *arg) {
  (void)arg;
  uint64_t sink = 0;
  while (!atomic_load(&stop_prefetch)) {
    for (uintptr_t key = 1u << 20; key < (1u << 20) + 4096 * 16; key += 16) {
      uint64_t hash = tm__hash_ptr(key);
      const tm__shard *s = tm__table_shard(&table, hash);
      tm__entry *slots = __atomic_load_n(&s->slots, __ATOMIC_RELAXED);
      size_t mask = __atomic_load_n(&s->mask, __ATOMIC_RELAXED);
      if (slots != NULL)
        __builtin_prefetch(&slots[tm__slot_home(mask, key, hash)], 1);
      sink += mask;
    }
  }
  return (void *)(uintptr_t)(sink & 1);
}

/* ---- the address bitmap, and the resident count ---------------------------------------------- */

static tm__bitmap bitmap;
static atomic_bool stop_bitmap_readers;

static void *bitmap_worker(void *arg) {
  uintptr_t t = (uintptr_t)arg, base = (uintptr_t)0x500000000000;
  for (int i = 0; i < ROUNDS; i++) {
    uintptr_t key = base + 16 * ((uintptr_t)(i % 4096) * THREADS + t); /* words shared by all */
    if (i % 3 == 2)
      tm__bitmap_remove(&bitmap, key, 16);
    else
      tm__bitmap_add(&bitmap, key, 16);
    (void)tm__bitmap_contains(&bitmap, key + 16);
  }
  return NULL;
}

static void *bitmap_reader(void *arg) {
  (void)arg;
  size_t sink = 0;
  for (int k = 0; !atomic_load(&stop_bitmap_readers); k++) {
    sink += tm__bitmap_bytes(&bitmap);
    if (k % 16 == 0)
      tm__bitmap_reset(&bitmap);
    sink += tm__resident_bytes();
  }
  return (void *)(uintptr_t)(sink & 1);
}

static void *map_worker(void *arg) {
  (void)arg;
  for (int i = 0; i < 2000; i++) {
    size_t size = (size_t)4096 << (i % 5); /* parked classes, page-aligned, given back */
    char *p = tm__map(size);
    assert(p != NULL && p[size - 1] == 0);
    p[0] = 1;
    p[size - 1] = 1;
    tm__unmap(p, size);
  }
  return NULL;
}

/* ---- interning, captures and resets --------------------------------------------------------- */

static __attribute__((noinline)) uint32_t capture_here(void) {
  tm__guard_depth++;
  uint32_t id = tm__capture();
  tm__guard_depth--;
  return id;
}

static __attribute__((noinline)) uint32_t capture_deeper(int depth) {
  uint32_t id = depth == 0 ? capture_here() : capture_deeper(depth - 1);
  __asm__ volatile("" ::: "memory");
  return id;
}

/* Workers that captured stay alive to the end: libunwind frees its per-thread cache with a key
 * destructor that runs after TSan has torn the exiting thread's state down (a crash inside TSan). */
static atomic_int workers_done;

static void *intern_worker(void *arg) {
  uintptr_t salt = (uintptr_t)arg << 40;
  uintptr_t ips[16];
  for (int i = 0; i < ROUNDS; i++) {
    for (int k = 0; k < 16; k++)
      ips[k] = salt + (uintptr_t)(i % 700) * 32 + (uintptr_t)k; /* stacks seen again and again */
    tm__guard_depth++;
    uint32_t id = tm__intern(ips, 16, false, 16, NULL);
    tm__guard_depth--;
    (void)id;
    if (i % 8 == 0)
      (void)capture_deeper(i % 5); /* the stack cache and the capture buffer */
  }
  atomic_fetch_add(&workers_done, 1);
  for (;;)
    pause();
  return NULL;
}

/* Reads ids back as the analysis layer does: under tm__intern_hold(). */
static void *reader_worker(void *arg) {
  (void)arg;
  for (int i = 0; i < ROUNDS / 4; i++) {
    tm__intern_hold();
    for (uint32_t id = 1; id < 64; id++) {
      const tm__interned_tb *tb = tm__traceback_lookup(id);
      if (tb != NULL)
        assert(tb->nframe <= 16 || tb->nframe <= TM_MAX_NFRAME);
    }
    tm__intern_release();
  }
  return NULL;
}

static void *reset_worker(void *arg) {
  (void)arg;
  while (!atomic_load(&stop_resets)) {
    tm__intern_reset(); /* tm_stop(): frees every stack while captures go on */
    for (volatile int spin = 0; spin < 20000; spin++)
      ;
  }
  return NULL;
}

int main(void) {
  pthread_t threads[THREADS], reader, resetter, prefetcher;
  pthread_create(&prefetcher, NULL, prefetch_worker, NULL);
  for (uintptr_t t = 0; t < THREADS; t++)
    pthread_create(&threads[t], NULL, table_worker, (void *)t);
  for (int t = 0; t < THREADS; t++)
    pthread_join(threads[t], NULL);
  atomic_store(&stop_prefetch, true);
  pthread_join(prefetcher, NULL);
  pthread_create(&reader, NULL, bitmap_reader, NULL);
  for (uintptr_t t = 0; t < THREADS; t++)
    pthread_create(&threads[t], NULL, t % 2 ? map_worker : bitmap_worker, (void *)t);
  for (int t = 0; t < THREADS; t++)
    pthread_join(threads[t], NULL);
  atomic_store(&stop_bitmap_readers, true);
  pthread_join(reader, NULL);
  pthread_create(&resetter, NULL, reset_worker, NULL);
  pthread_create(&reader, NULL, reader_worker, NULL);
  for (uintptr_t t = 0; t < THREADS; t++)
    pthread_create(&threads[t], NULL, intern_worker, (void *)(t + 1));
  while (atomic_load(&workers_done) < THREADS)
    sched_yield();
  atomic_store(&stop_resets, true);
  pthread_join(resetter, NULL);
  pthread_join(reader, NULL);
  printf("engine races: tables and prefetches, the address bitmap, maps and the resident count, "
         "interning with resets, captures: no report\n");
  return 0;
}
