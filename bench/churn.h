/* churn.h — the allocation-churn workload of the tracer benchmarks, and their measuring helpers.
 *
 * The workload: allocation churn over CHURN_NSLOTS slots. Each call picks a random slot; an empty
 * slot gets a malloc (75%) or calloc (25%) of sizes.min..sizes.max bytes, a full one is
 * realloc'ed (24.6%) or freed (75.4%). In the steady state 43% of the slots are empty, so 57% of
 * the calls allocate (43% malloc/calloc, 14% realloc) and 43% free. Every call is issued D frames
 * below a root frame (main, or a thread's start function) through functions the compiler can
 * neither inline nor turn into a loop, so a tracer really has D frames to unwind.
 *
 * A churn is used by one thread at a time; distinct churns are independent.
 */
#ifndef TM_BENCH_CHURN_H
#define TM_BENCH_CHURN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CHURN_NSLOTS 10000
#define CHURN_MAX_ROUNDS 15 /* the most measurements a cell or a peer keeps */

/* The depths at which the benchmarks issue their calls. */
extern const int churn_depths[];
#define CHURN_NDEPTHS 2

typedef struct churn_sizes {
  size_t min, max;
  const char *label;
} churn_sizes;

extern const churn_sizes churn_big_sizes;   /* 8..4096 */
extern const churn_sizes churn_small_sizes; /* 16..256 */

typedef enum { OP_MALLOC, OP_CALLOC, OP_REALLOC, OP_FREE, OP_PROBE, NOPS } churn_op_kind;

typedef struct churn {
  void *slot[CHURN_NSLOTS];    /* NULL when empty; pointers escape here: no call optimized away */
  uint32_t size[CHURN_NSLOTS]; /* requested size of each live slot */
  size_t live_bytes;           /* sum of size[] over live slots */
  uint64_t rng;
  churn_sizes sizes;
  int root_frames;   /* stack_frames() in main or in the thread's start function */
  int probe_depth;   /* frames below the root at the allocation site, set by OP_PROBE */
  bool direct;       /* call glibc's __libc_* functions instead of the (hooked) public ones */
  uint64_t checksum; /* bytes read back from blocks, so the touches are not dead stores */
  uint64_t nops[NOPS];
} churn;

/* Returns the number of frames on the caller's stack, this function included. The first call
 * also loads what backtrace() needs: make it before anything is traced. Thread-safe. */
int stack_frames(void);

/* Resets c to empty slots with the given sizes, seed and root depth (stack_frames() in the root
 * function). Does not free: call churn_empty() first when c holds blocks. */
void churn_reset(churn *c, churn_sizes sizes, uint64_t seed, int root_frames);

/* Issues ncalls calls with the allocator called `depth` frames below c->root_frames, counting
 * them in c->nops. Returns the in-loop CPU time of the calling thread in ns. Exits with status 1
 * when an allocation fails. */
uint64_t churn_run(churn *c, long ncalls, int depth);

/* Returns the depth below the root at which churn_run() issues calls for `depth`. */
int churn_probe_depth(churn *c, int depth);

/* Frees every live slot (with __libc_free when c->direct). */
void churn_empty(churn *c);

/* Returns the heap to a comparable state between measurements. Without it the free lists a
 * measurement leaves behind shape the next one: the same calls measured 60 or 85 ns/call
 * depending on what ran before. The page faults this causes fall in the untimed warm-up. */
void settle_heap(void);

/* Prints "<program>: <what>(<size>) returned NULL" on stderr and exits with status 1. */
__attribute__((noreturn)) void die_nomem(const char *what, size_t size);

/* CPU time of the calling thread, and monotonic wall time, in ns. */
uint64_t thread_cpu_ns(void);
uint64_t wall_ns(void);

/* One measured figure over interleaved rounds. */
typedef struct cell {
  double ns[CHURN_MAX_ROUNDS]; /* per round */
  double med, spread;
} cell;

/* Half the spread of v[0..n) relative to its median, in percent; v must be sorted. */
double spread_pct(const double *v, int n, double med);

#endif
