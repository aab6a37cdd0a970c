/* internal_blocks.c — what the tracer pays to keep its own heap blocks.
 *
 * Every block malloc'd while the tracer's guard is held (libdw, GLib and libunwind working for
 * the tracer) is recorded as the tracer's, and forgotten at its free, so that
 * tm_get_tracemalloc_memory() counts it and a block handed to the program is still recognized when
 * the program frees it. A first report makes tens of thousands of such allocations, in bursts.
 * This measures that bookkeeping alone, in one process, in interleaved rounds:
 *   untraced   malloc/free with the hooks idle (not tracing)
 *   internal   the same calls while tracing, with the guard held: each one recorded as the tracer's
 * The workload mimics a symbolizer's: bursts of BURST allocations of 16..512 bytes, then their frees
 * in allocation order, half of them interleaved with new allocations. Figures: CPU ns per malloc +
 * free pair, and the ratio, median [min..max] of the rounds.
 *
 * Usage: internal_blocks [--rounds R]   Exit status 0 (figures are printed, never asserted), 1 if
 * the tracer could not start, 2 on usage.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine.h"
#include "tracemalloc.h"

#define BURST 4096
#define BURSTS 64
#define MAX_ROUNDS 31

static void *(*volatile bench_malloc)(size_t) = malloc;
static void (*volatile bench_free)(void *) = free;

static double cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Runs the workload; returns CPU ns per malloc + free pair. */
static double run(uint64_t seed) {
  static void *blocks[BURST];
  uint64_t x = seed;
  double t0 = cpu_ns();
  long pairs = 0;
  for (int b = 0; b < BURSTS; b++) {
    for (int i = 0; i < BURST; i++) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      blocks[i] = bench_malloc(16 + (x % 497));
    }
    for (int i = 0; i < BURST; i++) {
      bench_free(blocks[i]);
      if (i % 2) { /* a new block among the frees, like a parser's temporary */
        blocks[i] = bench_malloc(32);
        bench_free(blocks[i]);
        pairs++;
      }
    }
    pairs += BURST;
  }
  return (cpu_ns() - t0) / (double)pairs;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  int rounds = 9;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
      rounds = atoi(argv[++i]);
    else {
      fprintf(stderr, "usage: internal_blocks [--rounds R]\n");
      return 2;
    }
  }
  if (rounds < 1)
    rounds = 1;
  if (rounds > MAX_ROUNDS)
    rounds = MAX_ROUNDS;
  double un[MAX_ROUNDS], in[MAX_ROUNDS], ratio[MAX_ROUNDS];
  size_t mem_held = 0, mem_base = 0;
  run(1); /* warm the allocator */
  for (int k = 0; k < rounds; k++) {
    for (int m = 0; m < 2; m++) {
      bool internal = (m + k) % 2 == 1; /* rotate the order */
      if (!internal) {
        un[k] = run((uint64_t)k + 1);
        continue;
      }
      if (tm_start(25) != 0) {
        fprintf(stderr, "internal_blocks: tm_start failed\n");
        return 1;
      }
      tm__guard_enter();
      in[k] = run((uint64_t)k + 1);
      mem_base = tm_get_tracemalloc_memory();
      void *held[BURST];
      for (int i = 0; i < BURST; i++)
        held[i] = bench_malloc(100);
      mem_held = tm_get_tracemalloc_memory();
      for (int i = 0; i < BURST; i++)
        bench_free(held[i]);
      tm__guard_leave();
      tm_stop();
    }
    ratio[k] = in[k] / un[k];
  }
  qsort(un, (size_t)rounds, sizeof *un, cmp_double);
  qsort(in, (size_t)rounds, sizeof *in, cmp_double);
  qsort(ratio, (size_t)rounds, sizeof *ratio, cmp_double);
  printf("internal_blocks: %d interleaved rounds of %d bursts of %d blocks; CPU ns per malloc+free "
         "pair\n",
         rounds, BURSTS, BURST);
  printf("untraced %6.1f ns   internal %6.1f ns   ratio %.2fx [%.2f..%.2f]\n", un[rounds / 2],
         in[rounds / 2], ratio[rounds / 2], ratio[0], ratio[rounds - 1]);
  printf("%d held blocks of 100 B: tm_get_tracemalloc_memory() +%.1f B per block\n", BURST,
         (double)(mem_held - mem_base) / BURST);
  return 0;
}
