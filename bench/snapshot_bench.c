/* snapshot_bench.c — the analysis benchmark: take_snapshot, statistics and compare_to
 * at 10 k, 100 k and 1 M live traces with 10 k distinct tracebacks; time and memory, the cost per
 * trace (linear growth shows as a flat column), and the ratio to a plain pass over the trace table
 * (tm__traces_copy, the copy every snapshot starts from). Target: take + compare_to <= 150 ms at 1 M.
 *
 * 10 k distinct stacks come from 14 levels of calls that each go through one of two call sites:
 * path i takes site A or B at level k by bit k of i, so every path has its own return addresses.
 * Symbols are resolved on first use and cached for the process, so the first size measured pays
 * them ("cold"); every later round is "warm". */
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "build_note.h"
#include "engine.h"
#include "tracemalloc.h"

#define DISTINCT 10000
#define LEVELS 14
#define NFRAME (2 * LEVELS + 4) /* each level is two frames: the whole path fits */

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

__attribute__((noinline)) static void *descend(unsigned path, int level, size_t size);

__attribute__((noinline)) static void *site_a(unsigned path, int level, size_t size) {
  void *p = descend(path, level + 1, size);
  __asm__ volatile("" ::: "memory");
  return p;
}

__attribute__((noinline)) static void *site_b(unsigned path, int level, size_t size) {
  void *p = descend(path, level + 1, size);
  __asm__ volatile("" ::: "memory");
  return p;
}

__attribute__((noinline)) static void *descend(unsigned path, int level, size_t size) {
  void *p;
  if (level == LEVELS)
    p = malloc(size);
  else if (path & (1u << level))
    p = site_b(path, level, size);
  else
    p = site_a(path, level, size);
  __asm__ volatile("" ::: "memory");
  return p;
}

/* Allocates blocks [from, to) of the array, spread over the distinct paths. */
static void fill(void **blocks, size_t from, size_t to) {
  for (size_t i = from; i < to; i++)
    blocks[i] = descend((unsigned)(i % DISTINCT), 0, 16 + (i % 49));
}

static void check(void *obj, GError *error) {
  if (obj == NULL) {
    fprintf(stderr, "snapshot_bench: %s\n", error ? error->message : "failed");
    exit(1);
  }
}

/* One size: returns nothing, prints one row. */
static void measure(size_t n, const char *label) {
  void **blocks = g_new0(void *, n);
  GError *error = NULL;
  tm_snapshot *old = NULL;
  tm_clear_traces();
  for (size_t half = 0; half < 2; half++) { /* one call site: the stacks stay 10 k */
    fill(blocks, half * (n / 2), half ? n : n / 2);
    if (half == 0) {
      old = tm_take_snapshot(&error);
      check(old, error);
    }
  }

  /* A plain pass: copy the table, as every snapshot does first. */
  size_t ncopy;
  int limit;
  tm__guard_enter();
  double t0 = now_ms();
  tm__raw_trace *copy = tm__traces_copy(&ncopy, &limit, NULL);
  double t_pass = now_ms() - t0;
  g_free(copy);
  tm__guard_leave();

  size_t mem0 = tm_get_tracemalloc_memory();
  t0 = now_ms();
  tm_snapshot *snap = tm_take_snapshot(&error);
  double t_take = now_ms() - t0;
  check(snap, error);
  size_t snap_mem = tm_get_tracemalloc_memory() - mem0;

  t0 = now_ms();
  tm_statistics *stats = tm_snapshot_statistics(snap, TM_KEY_LINENO, false, &error);
  double t_stats = now_ms() - t0;
  check(stats, error);

  t0 = now_ms();
  tm_statistic_diffs *diffs = tm_snapshot_compare_to(snap, old, TM_KEY_LINENO, false, &error);
  double t_cmp = now_ms() - t0;
  check(diffs, error);

  t0 = now_ms();
  tm_statistics *by_tb = tm_snapshot_statistics(snap, TM_KEY_TRACEBACK, false, &error);
  double t_tb = now_ms() - t0;
  check(by_tb, error);

  printf("%-5s %8zu traces | pass %7.2f ms | take %7.2f ms (%4.1fx pass, %5.1f ns/trace, %6.1f "
         "B/trace) | statistics %7.2f ms | compare_to %7.2f ms | take+compare_to %7.2f ms "
         "(%4.1fx pass) | by traceback %7.2f ms | %zu tracebacks\n",
         label, ncopy, t_pass, t_take, t_take / t_pass, t_take * 1e6 / (double)n,
         (double)snap_mem / (double)n, t_stats, t_cmp, t_take + t_cmp, (t_take + t_cmp) / t_pass,
         t_tb, tm_statistics_length(by_tb));
  fflush(stdout);

  tm_statistics_free(by_tb);
  tm_statistic_diffs_free(diffs);
  tm_statistics_free(stats);
  tm_snapshot_free(snap);
  tm_snapshot_free(old);
  for (size_t i = 0; i < n; i++)
    free(blocks[i]);
  g_free(blocks);
}

int main(void) {
  static const size_t sizes[] = {10000, 100000, 1000000};
  if (tm_start(NFRAME) != 0)
    return 1;
  bench_print_build("snapshot_bench");
  printf("snapshot_bench: %d distinct tracebacks of %d frames; compare_to against a snapshot of "
         "the first half; lineno keys unless said\n",
         DISTINCT, NFRAME);
  measure(sizes[0], "cold");
  for (int round = 0; round < 2; round++)
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
      measure(sizes[i], "warm");
  tm_stop();
  return 0;
}
