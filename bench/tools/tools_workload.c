/* tools_workload.c — the program tools_bench.c runs plain, traced, under `tracemalloc run` and
 * under heaptrack: ROUNDS rounds of allocations through 8 levels of calls over 64 call paths,
 * most freed at once, LIVE left allocated at exit. Arguments: ROUNDS (default 2000). */
#include <stdio.h>
#include <stdlib.h>

#define PATHS 64
#define PER_ROUND 1000
#define LIVE 20000

static void *live[LIVE];

__attribute__((noinline)) static void *level(unsigned path, int depth, size_t size) {
  void *p = depth == 8 ? malloc(size) : level(path, depth + 1, size + (path >> depth & 1));
  __asm__ volatile("" ::: "memory");
  return p;
}

int main(int argc, char **argv) {
  long rounds = argc > 1 ? atol(argv[1]) : 2000;
  void *batch[PER_ROUND];
  size_t kept = 0;
  for (long r = 0; r < rounds; r++) {
    for (int i = 0; i < PER_ROUND; i++)
      batch[i] = level((unsigned)(r * PER_ROUND + i) % PATHS, 0, 16 + (size_t)(i % 200));
    for (int i = 0; i < PER_ROUND; i++) {
      if (i % 100 == 0 && kept < LIVE)
        live[kept++] = batch[i];
      else
        free(batch[i]);
    }
  }
  printf("%zu blocks live\n", kept);
  return 0;
}
