/* alloc_churn.h — what the allocation-churn benchmark measures in process, shared by its
 * measurements (alloc_churn.c) and its report (churn_report.c). */
#ifndef TM_BENCH_ALLOC_CHURN_H
#define TM_BENCH_ALLOC_CHURN_H

#include <stdbool.h>
#include <stddef.h>

#include "churn.h"

#define NTHREADS 4
#define MEM_SITES 4
/* Checkpoints N/8, N/4, N/2, N: the tables grow by steps, so one N alone can flatter or wrong
 * the figure. */
#define MEM_STEPS 4

typedef struct params {
  bool quick;
  bool tools;           /* run memcheck / heaptrack / plain child */
  long calls;           /* timed calls per single-thread measurement */
  long warmup;          /* untimed calls before each measurement (fills the slots) */
  int rounds;           /* interleaved rounds; the median is reported */
  long thread_calls;    /* timed calls per thread in the threaded measurement */
  long mem_blocks;      /* live blocks for the memory-per-block figure */
  long memcheck_calls;  /* timed calls per depth under valgrind */
  long heaptrack_calls; /* timed calls per depth under heaptrack and in the plain child */
  long child_warmup;    /* untimed calls per depth before the tools' timed calls */
  int tool_rounds;      /* runs of each tool; the median is reported */
} params;

/* The in-process configurations: 0 = untraced (hooks in place, not tracing), n > 0 = tm_start(n),
 * DIRECT = glibc's __libc_* entry points called directly, bypassing the hooks: what the workload
 * costs without the library, so the untraced hooks' own cost shows. Threads run the first
 * NTRACED ones. */
#define DIRECT (-1)
#define NCONFIGS 4
#define NTRACED 3
extern const int configs[NCONFIGS];

typedef struct thread_cells {
  cell wall[NTRACED], cpu[NTRACED];
} thread_cells;

typedef struct mem_result {
  size_t base, after_free;
  long n[MEM_STEPS];     /* live blocks at each checkpoint */
  size_t mem[MEM_STEPS]; /* tm_get_tracemalloc_memory() there */
  double per_block;      /* at N */
} mem_result;

#endif
