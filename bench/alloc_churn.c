/* alloc_churn.c — the tracer benchmark of issue 2 (see ../shared/TRACER-NOTES.md).
 *
 * The workload: allocation churn over 10,000 slots. Each call picks a random slot; an empty slot
 * gets a malloc (75%) or calloc (25%) of 8..4096 bytes, a full one is realloc'ed (24.6%) or freed
 * (75.4%). In the steady state 43% of the slots are empty, so 57% of the calls allocate (43%
 * malloc/calloc, 14% realloc) and 43% free, as in the measured workload. Every call is issued D
 * frames below main (or below the thread's start function) through functions the compiler can
 * neither inline nor turn into a loop, so the tracer really has D frames to unwind.
 *
 * One run of the executable does everything, side by side:
 *   - in this process, interleaved rounds of: untraced (library linked, not started), tm_start(1),
 *     tm_start(25), at depth 5 and 30, sizes 8..4096 and 16..256; median of the rounds;
 *   - 4 threads on the machine's cores, each with its own slots, untraced / nframe=1 / nframe=25;
 *   - the tracer's own memory per live block, with 1M live 16-byte blocks from 4 call sites;
 *   - the same executable in --child mode (untraced, fewer calls) as a plain process, under
 *     valgrind memcheck and under heaptrack, each reporting its in-loop CPU time per call.
 * The figure is in-loop CPU time of the allocating thread (CLOCK_THREAD_CPUTIME_ID) divided by
 * the number of allocator calls, frees included. Ratios are to the untraced median of this run.
 *
 * Usage: alloc_churn [--quick] [--calls N] [--rounds R] [--no-tools]
 *        TM_BENCH_QUICK=1 in the environment is the same as --quick (about 10 s instead of 1 minute
 *        on 2 cores); TM_BENCH_VERBOSE=1 prints every measurement on stderr.
 * Also printed: the same workload calling glibc's __libc_* functions directly (what the idle hooks
 * cost), the call mix, the depth actually reached, and the total_nframe of a depth-30 block.
 * Exit status: 0 when the run completed (figures are reported, never asserted); 1 when the tracer
 * misbehaved (counters disagree with the live blocks, lost traces, a failed tm_start, a capture
 * shorter than the limit); 2 on usage.
 */
#include <dirent.h>
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tracemalloc.h"

/* GCC may clone a function (foo.constprop.0) whose frames the checks name; clang does not. */
#if defined(__GNUC__) && !defined(__clang__)
#define TM_NOCLONE __attribute__((noclone))
#else
#define TM_NOCLONE
#endif

/* The traceback check below uses the analysis layer; the benchmark must not depend on it landing,
 * so these references are weak: NULL when the library does not export them (yet). */
#pragma weak tm_get_object_traceback
#pragma weak tm_traceback_total_nframe
#pragma weak tm_traceback_free

extern char **environ;

#define NSLOTS 10000
#define MAX_ROUNDS 15
#define NTHREADS 4
#define MEM_SITES 4

/* ------------------------------------------------------------------------------------------------
 * Parameters
 * ---------------------------------------------------------------------------------------------- */

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

static const int depths[] = {5, 30};
#define NDEPTHS ((int)(sizeof depths / sizeof depths[0]))

typedef struct size_range {
  size_t min, max;
  const char *label;
} size_range;

static const size_range big_sizes = {8, 4096, "sizes 8..4096"};
static const size_range small_sizes = {16, 256, "sizes 16..256 (small blocks)"};

/* The in-process configurations: 0 = untraced (hooks in place, not tracing), n > 0 = tm_start(n),
 * DIRECT = glibc's __libc_* entry points called directly, bypassing the hooks: what the workload
 * costs without the library, so the untraced hooks' own cost shows. Threads run the first
 * NTRACED ones. */
#define DIRECT (-1)
static const int configs[] = {0, 1, 25, DIRECT};
#define NCONFIGS 4
#define NTRACED 3

/* glibc's own entry points (exported, not declared by its headers). */
extern void *__libc_malloc(size_t) __attribute__((malloc, alloc_size(1)));
extern void *__libc_calloc(size_t, size_t) __attribute__((malloc, alloc_size(1, 2)));
extern void *__libc_realloc(void *, size_t) __attribute__((alloc_size(2)));
extern void __libc_free(void *);

static bool misbehaved; /* set when the tracer's counters disagree with the workload */
static bool verbose;    /* TM_BENCH_VERBOSE: every measurement on stderr */

/* ------------------------------------------------------------------------------------------------
 * The churn workload
 * ---------------------------------------------------------------------------------------------- */

typedef enum { OP_MALLOC, OP_CALLOC, OP_REALLOC, OP_FREE, OP_PROBE, NOPS } op_kind;

typedef struct op {
  op_kind kind;
  uint32_t slot;
  uint32_t size;
} op;

typedef struct churn {
  void *slot[NSLOTS];    /* NULL when empty; pointers escape here, so no call is optimized away */
  uint32_t size[NSLOTS]; /* requested size of each live slot */
  size_t live_bytes;     /* sum of size[] over live slots */
  uint64_t rng;
  size_range sizes;
  int root_frames;   /* stack_frames() in main or in the thread's start function */
  int probe_depth;   /* frames below the root at the allocation site, set by OP_PROBE */
  bool direct;       /* call glibc's __libc_* functions instead of the (hooked) public ones */
  uint64_t checksum; /* bytes read back from blocks, so the touches are not dead stores */
  uint64_t nops[NOPS];
} churn;

/* Returns the number of frames on the stack of the caller, this function included. */
static __attribute__((noinline)) int stack_frames(void) {
  void *buf[512];
  return backtrace(buf, 512);
}

static inline uint64_t rng_next(uint64_t *s) {
  /* xorshift64*: cheap and the same sequence for every configuration. */
  uint64_t x = *s;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *s = x;
  return x * 0x2545F4914F6CDD1DULL;
}

/* Draws the next call: a random slot, then an operation that depends on whether it is live. */
static inline void churn_next_op(churn *c, op *o) {
  uint64_t x = rng_next(&c->rng);
  uint32_t sel = (uint32_t)(x >> 32) & 1023;

  o->slot = (uint32_t)(((x & 0xffffffffu) * NSLOTS) >> 32);
  o->size = (uint32_t)(c->sizes.min + (x >> 42) % (c->sizes.max - c->sizes.min + 1));
  if (c->slot[o->slot] == NULL)
    o->kind = sel < 768 ? OP_MALLOC : OP_CALLOC;
  else
    o->kind = sel < 252 ? OP_REALLOC : OP_FREE;
}

static __attribute__((noreturn)) void die_nomem(const char *what, size_t size) {
  fprintf(stderr, "alloc_churn: %s(%zu) returned NULL\n", what, size);
  exit(1);
}

/* Performs one call. The caller of the allocator is this frame. */
static __attribute__((noinline)) TM_NOCLONE void do_op(churn *c, const op *o) {
  unsigned char *p = c->slot[o->slot];

  switch (o->kind) {
  case OP_MALLOC:
    p = c->direct ? __libc_malloc(o->size) : malloc(o->size);
    if (p == NULL)
      die_nomem("malloc", o->size);
    p[0] = (unsigned char)o->slot;
    p[o->size - 1] = 1;
    break;
  case OP_CALLOC:
    p = c->direct ? __libc_calloc(1, o->size) : calloc(1, o->size);
    if (p == NULL)
      die_nomem("calloc", o->size);
    c->checksum += p[o->size - 1];
    p[0] = (unsigned char)o->slot;
    break;
  case OP_REALLOC:
    p = c->direct ? __libc_realloc(p, o->size) : realloc(p, o->size);
    if (p == NULL)
      die_nomem("realloc", o->size);
    p[o->size - 1] = 2;
    c->live_bytes -= c->size[o->slot];
    break;
  case OP_FREE:
    c->checksum += p[0];
    if (c->direct)
      __libc_free(p);
    else
      free(p);
    c->live_bytes -= c->size[o->slot];
    c->slot[o->slot] = NULL;
    c->nops[OP_FREE]++;
    return;
  case OP_PROBE:
  case NOPS:
    c->probe_depth = stack_frames() - c->root_frames;
    return;
  }
  c->slot[o->slot] = p;
  c->size[o->slot] = o->size;
  c->live_bytes += o->size;
  c->nops[o->kind]++;
}

/* Calls do_op() from n frames further down. The barrier after each call keeps it from being a
 * tail call, so the frames really exist. */
static __attribute__((noinline)) TM_NOCLONE void descend(churn *c, int n, const op *o) {
  if (n > 1)
    descend(c, n - 1, o);
  else
    do_op(c, o);
  __asm__ volatile("" ::: "memory");
}

static uint64_t thread_cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t wall_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Issues ncalls calls with the allocator called `depth` frames below c->root_frames. Returns the
 * CPU time of the loop in ns. The depth is computed from this frame's own depth, so it holds
 * whatever the call chain from the root is. */
static __attribute__((noinline)) uint64_t churn_run(churn *c, long ncalls, int depth) {
  int n = depth - (stack_frames() - c->root_frames) - 1;
  uint64_t t0, t1;
  op o;

  if (n < 1)
    n = 1;
  t0 = thread_cpu_ns();
  for (long i = 0; i < ncalls; i++) {
    churn_next_op(c, &o);
    descend(c, n, &o);
  }
  t1 = thread_cpu_ns();
  __asm__ volatile("" ::: "memory");
  return t1 - t0;
}

/* Returns the depth below the root at which churn_run() issues calls for `depth`. */
static __attribute__((noinline)) int churn_probe_depth(churn *c, int depth) {
  int n = depth - (stack_frames() - c->root_frames) - 1;
  op o = {.kind = OP_PROBE};

  /* Same arithmetic as churn_run(), which sits at the same depth as this function. */
  descend(c, n < 1 ? 1 : n, &o);
  return c->probe_depth;
}

/* Resets c to empty slots with the given sizes and seed. Does not free: call churn_empty first. */
static void churn_reset(churn *c, size_range sizes, uint64_t seed, int root_frames) {
  memset(c, 0, sizeof *c);
  c->sizes = sizes;
  c->rng = seed | 1;
  c->root_frames = root_frames;
}

/* Returns the heap to a comparable state between measurements. Without it the free lists a
 * measurement leaves behind shape the next one: the same calls measured 60 or 85 ns/call
 * depending on what ran before. The page faults this causes fall in the untimed warm-up. */
static void settle_heap(void) { malloc_trim(0); }

/* Frees every live slot. */
static void churn_empty(churn *c) {
  for (int i = 0; i < NSLOTS; i++) {
    if (c->direct)
      __libc_free(c->slot[i]);
    else
      free(c->slot[i]);
    c->slot[i] = NULL;
  }
  c->live_bytes = 0;
}

/* ------------------------------------------------------------------------------------------------
 * Helpers
 * ---------------------------------------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Median of v[0..n); sorts v. */
static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Half the spread of v[0..n) relative to its median, in percent; v must be sorted. */
static double spread_pct(const double *v, int n, double med) {
  return med > 0 ? 50.0 * (v[n - 1] - v[0]) / med : 0;
}

static void check_start(int nframe) {
  int err = tm_start(nframe);
  if (err != 0) {
    fprintf(stderr, "alloc_churn: tm_start(%d) failed: %s\n", nframe, tm_strerror(err));
    exit(1);
  }
}

static void print_load(const char *when) {
  char buf[128] = "?";
  FILE *f = fopen("/proc/loadavg", "r");
  if (f != NULL) {
    if (fgets(buf, sizeof buf, f) == NULL)
      strcpy(buf, "?\n");
    fclose(f);
  }
  printf("load average %s: %s", when, buf);
}

/* ------------------------------------------------------------------------------------------------
 * Single thread, in process
 * ---------------------------------------------------------------------------------------------- */

typedef struct cell {
  double ns[MAX_ROUNDS]; /* per round */
  double med, spread;
} cell;

/* Runs one measurement: warm-up then ncalls timed calls, traced with nframe (0: untraced; DIRECT:
 * bypassing the hooks).
 * Returns ns per call. Checks the tracer's counters against the live blocks. */
static double measure_single(churn *c, const params *pp, size_range sizes, int depth, int nframe) {
  int root = c->root_frames;
  uint64_t cpu;

  churn_reset(c, sizes, 0x9E3779B97F4A7C15ULL + (uint64_t)depth, root);
  c->direct = nframe == DIRECT;
  if (nframe > 0)
    check_start(nframe);
  churn_run(c, pp->warmup, depth);
  cpu = churn_run(c, pp->calls, depth);
  if (nframe > 0) {
    size_t cur = 0;
    tm_get_traced_memory(&cur, NULL);
    if (cur != c->live_bytes || tm_get_lost_traces() != 0) {
      printf("TRACER MISBEHAVES: nframe=%d depth=%d: traced memory %zu B, live blocks %zu B, "
             "lost traces %zu\n",
             nframe, depth, cur, c->live_bytes, tm_get_lost_traces());
      misbehaved = true;
    }
  }
  churn_empty(c);
  c->direct = false;
  if (nframe > 0)
    tm_stop();
  settle_heap();
  return (double)cpu / (double)pp->calls;
}

/* Fills res[depth][config] with interleaved rounds; the config order rotates every round. */
static void bench_single(churn *c, const params *pp, size_range sizes,
                         cell res[NDEPTHS][NCONFIGS]) {
  for (int r = 0; r < pp->rounds; r++)
    for (int d = 0; d < NDEPTHS; d++)
      for (int k = 0; k < NCONFIGS; k++) {
        int cfg = (k + r) % NCONFIGS;
        res[d][cfg].ns[r] = measure_single(c, pp, sizes, depths[d], configs[cfg]);
        if (verbose)
          fprintf(stderr, "  round %d %s depth=%d nframe=%d: %.1f ns/call\n", r, sizes.label,
                  depths[d], configs[cfg], res[d][cfg].ns[r]);
      }
  for (int d = 0; d < NDEPTHS; d++)
    for (int cfg = 0; cfg < NCONFIGS; cfg++) {
      cell *x = &res[d][cfg];
      x->med = median(x->ns, pp->rounds);
      x->spread = spread_pct(x->ns, pp->rounds, x->med);
    }
}

/* ------------------------------------------------------------------------------------------------
 * Threads
 * ---------------------------------------------------------------------------------------------- */

typedef struct thread_job {
  churn *c;
  pthread_barrier_t *barrier;
  const params *pp;
  int depth;
  uint64_t seed;
  uint64_t cpu_ns;
} thread_job;

static void *thread_main(void *arg) {
  thread_job *j = arg;

  churn_reset(j->c, big_sizes, j->seed, stack_frames());
  churn_run(j->c, j->pp->warmup, j->depth);
  pthread_barrier_wait(j->barrier);
  j->cpu_ns = churn_run(j->c, j->pp->thread_calls, j->depth);
  pthread_barrier_wait(j->barrier); /* end of the timed loops */
  pthread_barrier_wait(j->barrier); /* the main thread has checked the counters */
  churn_empty(j->c);
  return NULL;
}

/* Compares the traced memory with the threads' live blocks while they are all parked. The
 * threads' own start-up allocations (glibc's TLS, made by pthread_create while tracing) come on
 * top, so a small excess is expected; a deficit or a large excess is not. */
static void check_threads_counters(const churn *cs, int nframe) {
  size_t cur = 0, live = 0;

  for (int i = 0; i < NTHREADS; i++)
    live += cs[i].live_bytes;
  tm_get_traced_memory(&cur, NULL);
  if (cur < live || cur - live > 1024 * 1024) {
    printf("TRACER MISBEHAVES: %d threads, nframe=%d: traced memory %zu B, live blocks %zu B\n",
           NTHREADS, nframe, cur, live);
    misbehaved = true;
  } else if (verbose) {
    fprintf(stderr, "  threads nframe=%d: traced memory = live blocks + %zu B\n", nframe,
            cur - live);
  }
}

typedef struct thread_result {
  double wall_ns, cpu_ns; /* per call, all threads' calls together */
} thread_result;

/* One threaded measurement with NTHREADS threads, traced with nframe (0: untraced). */
static thread_result measure_threads(churn *cs, const params *pp, int depth, int nframe) {
  pthread_t tid[NTHREADS];
  thread_job job[NTHREADS];
  pthread_barrier_t barrier;
  thread_result res = {0, 0};
  uint64_t t0, t1, cpu = 0;

  pthread_barrier_init(&barrier, NULL, NTHREADS + 1);
  if (nframe > 0)
    check_start(nframe);
  for (int i = 0; i < NTHREADS; i++) {
    job[i] = (thread_job){&cs[i], &barrier, pp, depth, 0x1234567ULL * (uint64_t)(i + 1), 0};
    if (pthread_create(&tid[i], NULL, thread_main, &job[i]) != 0) {
      perror("pthread_create");
      exit(1);
    }
  }
  pthread_barrier_wait(&barrier);
  t0 = wall_ns();
  pthread_barrier_wait(&barrier);
  t1 = wall_ns();
  if (nframe > 0)
    check_threads_counters(cs, nframe);
  pthread_barrier_wait(&barrier);
  for (int i = 0; i < NTHREADS; i++) {
    pthread_join(tid[i], NULL);
    cpu += job[i].cpu_ns;
  }
  if (nframe > 0) {
    if (tm_get_lost_traces() != 0) {
      printf("TRACER MISBEHAVES: threads nframe=%d: %zu lost traces\n", nframe,
             tm_get_lost_traces());
      misbehaved = true;
    }
    tm_stop();
  }
  settle_heap();
  pthread_barrier_destroy(&barrier);
  res.wall_ns = (double)(t1 - t0) / (double)(NTHREADS * pp->thread_calls);
  res.cpu_ns = (double)cpu / (double)(NTHREADS * pp->thread_calls);
  return res;
}

typedef struct thread_cells {
  cell wall[NTRACED], cpu[NTRACED];
} thread_cells;

static void bench_threads(const params *pp, int depth, thread_cells *out) {
  churn *cs = calloc(NTHREADS, sizeof *cs);

  if (cs == NULL)
    die_nomem("calloc", NTHREADS * sizeof *cs);
  for (int r = 0; r < pp->rounds; r++)
    for (int k = 0; k < NTRACED; k++) {
      int cfg = (k + r) % NTRACED;
      thread_result tr = measure_threads(cs, pp, depth, configs[cfg]);
      out->wall[cfg].ns[r] = tr.wall_ns;
      out->cpu[cfg].ns[r] = tr.cpu_ns;
    }
  for (int cfg = 0; cfg < NTRACED; cfg++) {
    out->wall[cfg].med = median(out->wall[cfg].ns, pp->rounds);
    out->cpu[cfg].med = median(out->cpu[cfg].ns, pp->rounds);
    out->wall[cfg].spread = spread_pct(out->wall[cfg].ns, pp->rounds, out->wall[cfg].med);
    out->cpu[cfg].spread = spread_pct(out->cpu[cfg].ns, pp->rounds, out->cpu[cfg].med);
  }
  free(cs);
}

/* ------------------------------------------------------------------------------------------------
 * Tracer memory per live block
 * ---------------------------------------------------------------------------------------------- */

/* Allocates 16 bytes from one of MEM_SITES call sites. */
static __attribute__((noinline)) void *mem_site_alloc(unsigned site) {
  void *p;

  /* Distinct asm strings keep the compiler from merging the four calls into one. */
  switch (site % MEM_SITES) {
  case 0:
    p = malloc(16);
    __asm__ volatile("# site 0" ::: "memory");
    break;
  case 1:
    p = malloc(16);
    __asm__ volatile("# site 1" ::: "memory");
    break;
  case 2:
    p = malloc(16);
    __asm__ volatile("# site 2" ::: "memory");
    break;
  default:
    p = malloc(16);
    __asm__ volatile("# site 3" ::: "memory");
    break;
  }
  return p;
}

/* Checkpoints N/8, N/4, N/2, N: the tables grow by steps, so one N alone can flatter or wrong
 * the figure. */
#define MEM_STEPS 4

typedef struct mem_result {
  size_t base, after_free;
  long n[MEM_STEPS];     /* live blocks at each checkpoint */
  size_t mem[MEM_STEPS]; /* tm_get_tracemalloc_memory() there */
  double per_block;      /* at N */
} mem_result;

static mem_result bench_memory(const params *pp, int nframe) {
  void **p = malloc((size_t)pp->mem_blocks * sizeof *p);
  mem_result m;
  size_t cur = 0;

  if (p == NULL)
    die_nomem("malloc", (size_t)pp->mem_blocks * sizeof *p);
  check_start(nframe);
  m.base = tm_get_tracemalloc_memory();
  for (int k = 0; k < MEM_STEPS; k++)
    m.n[k] = pp->mem_blocks >> (MEM_STEPS - 1 - k);
  for (long i = 0, k = 0; i < pp->mem_blocks; i++) {
    p[i] = mem_site_alloc((unsigned)i);
    if (p[i] == NULL)
      die_nomem("malloc", 16);
    if (i + 1 == m.n[k])
      m.mem[k++] = tm_get_tracemalloc_memory();
  }
  tm_get_traced_memory(&cur, NULL);
  if (cur != (size_t)pp->mem_blocks * 16 || tm_get_lost_traces() != 0) {
    printf("TRACER MISBEHAVES: %ld live 16 B blocks, traced memory %zu B, lost traces %zu\n",
           pp->mem_blocks, cur, tm_get_lost_traces());
    misbehaved = true;
  }
  for (long i = 0; i < pp->mem_blocks; i++)
    free(p[i]);
  m.after_free = tm_get_tracemalloc_memory();
  tm_stop();
  free(p);
  settle_heap();
  m.per_block = ((double)m.mem[MEM_STEPS - 1] - (double)m.base) / (double)pp->mem_blocks;
  return m;
}

/* ------------------------------------------------------------------------------------------------
 * Traceback sanity check: the tracer really unwinds the whole stack at depth 30
 * ---------------------------------------------------------------------------------------------- */

static void check_traceback(churn *c) {
  tm_traceback *tb;
  void *p;

  if (tm_get_object_traceback == NULL || tm_traceback_total_nframe == NULL) {
    printf("traceback check: skipped (the analysis layer is not in the library yet)\n");
    return;
  }
  churn_reset(c, big_sizes, 42, c->root_frames);
  check_start(25);
  churn_run(c, 1, 30); /* an empty slot: one malloc at depth 30 */
  p = NULL;
  for (int i = 0; i < NSLOTS && p == NULL; i++)
    p = c->slot[i];
  tb = tm_get_object_traceback(p);
  if (tb == NULL) {
    printf("TRACER MISBEHAVES: no traceback for a block allocated at depth 30\n");
    misbehaved = true;
  } else {
    int total = tm_traceback_total_nframe(tb);
    /* At least 26: the 25 kept frames, truncated. The stack really has 30 frames below main plus
     * main and the C runtime's; an engine that does not walk past the limit reports 26. */
    printf("traceback check at nframe=25: a block allocated 30 frames below main has "
           "total_nframe=%d%s\n",
           total,
           total < 31 ? " (the whole stack has >= 31 frames: the "
                        "engine does not count frames past the limit)"
                      : "");
    if (total < 26) {
      printf("TRACER MISBEHAVES: the capture stopped before the limit of 25 frames\n");
      misbehaved = true;
    }
    tm_traceback_free(tb);
  }
  churn_empty(c);
  tm_stop();
}

/* ------------------------------------------------------------------------------------------------
 * Child mode: the workload untraced, for valgrind and heaptrack
 * ---------------------------------------------------------------------------------------------- */

/* Runs both depths once, untraced, and writes "depth=D ns=X" lines to path. */
static int child_main(long calls, long warmup, const char *path, int root) {
  churn *c = malloc(sizeof *c);
  FILE *f;

  if (c == NULL)
    die_nomem("malloc", sizeof *c);
  if (tm_is_tracing())
    tm_stop();
  f = fopen(path, "w");
  if (f == NULL) {
    perror(path);
    return 1;
  }
  for (int d = 0; d < NDEPTHS; d++) {
    uint64_t cpu;
    churn_reset(c, big_sizes, 0x9E3779B97F4A7C15ULL + (uint64_t)depths[d], root);
    churn_run(c, warmup, depths[d]);
    cpu = churn_run(c, calls, depths[d]);
    churn_empty(c);
    settle_heap();
    fprintf(f, "depth=%d ns=%.2f\n", depths[d], (double)cpu / (double)calls);
  }
  fclose(f);
  free(c);
  return 0;
}

/* ------------------------------------------------------------------------------------------------
 * Running the child under the tools
 * ---------------------------------------------------------------------------------------------- */

/* One tool, run in rounds interleaved with the other tools. */
typedef struct tool_run {
  const char *label;
  const char *const *cmd; /* the tool's command line, NULL-terminated; empty for a plain run */
  long calls;             /* timed calls per depth */
  bool missing;           /* the tool is not installed */
  bool failed;            /* a run failed; no more runs */
  int nruns;              /* runs that reported */
  double ns[NDEPTHS][MAX_ROUNDS];
  double cpu_s[MAX_ROUNDS]; /* CPU time of the whole process tree (user + sys) */
  double med_ns[NDEPTHS], med_cpu_s;
} tool_run;

static bool in_path(const char *prog) {
  const char *path = getenv("PATH");
  char buf[PATH_MAX];

  if (path == NULL)
    path = "/usr/bin:/bin";
  while (*path) {
    size_t len = strcspn(path, ":");
    if (len > 0 && snprintf(buf, sizeof buf, "%.*s/%s", (int)len, path, prog) < (int)sizeof buf &&
        access(buf, X_OK) == 0)
      return true;
    path += len + (path[len] == ':');
  }
  return false;
}

/* The environment without TRACEMALLOC, so the children start untraced. Owned by environ. */
static char **child_environ(void) {
  size_t n = 0, k = 0;
  char **env;

  while (environ[n])
    n++;
  env = calloc(n + 1, sizeof *env);
  if (env == NULL)
    die_nomem("calloc", n + 1);
  for (size_t i = 0; i < n; i++)
    if (strncmp(environ[i], "TRACEMALLOC=", 12) != 0)
      env[k++] = environ[i];
  return env;
}

/* Spawns argv with stdout and stderr to logpath, waits, and stores the status and the CPU time of
 * the whole process tree. Returns 0, or an errno value when it could not be spawned. */
static int spawn_wait(char *const argv[], const char *logpath, int *status, double *cpu_s) {
  posix_spawn_file_actions_t fa;
  char **env = child_environ();
  struct rusage ru;
  pid_t pid;
  int err;

  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, logpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  err = posix_spawnp(&pid, argv[0], &fa, NULL, argv, env);
  posix_spawn_file_actions_destroy(&fa);
  free(env);
  if (err != 0)
    return err;
  while (wait4(pid, status, 0, &ru) < 0)
    if (errno != EINTR)
      return errno;
  *cpu_s = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
  return 0;
}

static bool read_child_result(const char *path, double ns[NDEPTHS]) {
  FILE *f = fopen(path, "r");
  int got = 0, depth;
  double v;

  if (f == NULL)
    return false;
  while (fscanf(f, " depth=%d ns=%lf", &depth, &v) == 2)
    for (int d = 0; d < NDEPTHS; d++)
      if (depths[d] == depth) {
        ns[d] = v;
        got++;
      }
  fclose(f);
  return got == NDEPTHS;
}

/* Prints the lines of path that start with needle once valgrind's "==pid==" and leading blanks
 * are taken off, after prefix. */
static void print_matching(const char *path, const char *needle, const char *prefix) {
  FILE *f = fopen(path, "r");
  char line[512];

  if (f == NULL)
    return;
  while (fgets(line, sizeof line, f)) {
    const char *s = line + strspn(line, " \t");
    if (s[0] == '=' && s[1] == '=')
      s += strspn(s, "=0123456789 ");
    if (strncmp(s, needle, strlen(needle)) == 0)
      printf("%s%s", prefix, s);
  }
  fclose(f);
}

/* Runs "tool... self --child calls warmup result" once and records its figures. */
static void run_tool(tool_run *t, const char *self, const char *dir, long warmup) {
  char result[PATH_MAX], logpath[PATH_MAX], scalls[32], swarm[32];
  double ns[NDEPTHS] = {0}, cpu_s = 0;
  char *argv[16];
  int n = 0, err, status = 0;

  snprintf(result, sizeof result, "%s/%s.result", dir, t->label);
  snprintf(logpath, sizeof logpath, "%s/%s.log", dir, t->label);
  snprintf(scalls, sizeof scalls, "%ld", t->calls);
  snprintf(swarm, sizeof swarm, "%ld", warmup);
  for (int i = 0; t->cmd[i] != NULL; i++)
    argv[n++] = (char *)t->cmd[i];
  argv[n++] = (char *)self;
  argv[n++] = "--child";
  argv[n++] = scalls;
  argv[n++] = swarm;
  argv[n++] = result;
  argv[n] = NULL;
  fprintf(stderr, "alloc_churn: running %s (%ld calls per depth)...\n", t->label, t->calls);
  err = spawn_wait(argv, logpath, &status, &cpu_s);
  if (err != 0) {
    printf("%s: could not run %s: %s\n", t->label, argv[0], strerror(err));
    t->failed = true;
  } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !read_child_result(result, ns)) {
    printf("%s: the run failed (wait status 0x%x); its output:\n", t->label, (unsigned)status);
    print_matching(logpath, "", "    ");
    t->failed = true;
  } else {
    for (int d = 0; d < NDEPTHS; d++)
      t->ns[d][t->nruns] = ns[d];
    t->cpu_s[t->nruns++] = cpu_s;
  }
}

static void tool_finish(tool_run *t) {
  if (t->nruns == 0)
    return;
  for (int d = 0; d < NDEPTHS; d++)
    t->med_ns[d] = median(t->ns[d], t->nruns);
  t->med_cpu_s = median(t->cpu_s, t->nruns);
}

/* Removes the files of dir, then dir. */
static void remove_dir(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *e;
  char path[PATH_MAX];

  if (d == NULL)
    return;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    unlink(path);
  }
  closedir(d);
  rmdir(dir);
}

typedef struct tools {
  tool_run plain, memcheck, heaptrack;
} tools;

/* Runs the plain child, memcheck and heaptrack in interleaved rounds; medians in t. */
static void bench_tools(const params *pp, tools *t) {
  static char dir[] = "/tmp/alloc_churn.XXXXXX", out[PATH_MAX], logopt[PATH_MAX], path[PATH_MAX];
  static const char *none[] = {NULL};
  static const char *memcheck[] = {"valgrind", "--tool=memcheck", "--leak-check=full", logopt,
                                   NULL};
  static const char *heaptrack[] = {"heaptrack", "-o", out, NULL};
  char self[PATH_MAX];
  ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
  tool_run *all[3] = {&t->plain, &t->memcheck, &t->heaptrack};

  t->plain = (tool_run){.label = "plain", .cmd = none, .calls = pp->heaptrack_calls};
  t->memcheck = (tool_run){.label = "memcheck", .cmd = memcheck, .calls = pp->memcheck_calls};
  t->heaptrack = (tool_run){.label = "heaptrack", .cmd = heaptrack, .calls = pp->heaptrack_calls};
  if (len < 0 || mkdtemp(dir) == NULL) {
    perror("alloc_churn: /proc/self/exe or mkdtemp");
    t->plain.failed = t->memcheck.failed = t->heaptrack.failed = true;
    return;
  }
  self[len] = '\0';
  snprintf(logopt, sizeof logopt, "--log-file=%s/memcheck.vglog", dir);
  snprintf(out, sizeof out, "%s/heaptrack.%%p", dir);
  for (int i = 0; i < 3; i++)
    all[i]->missing = all[i]->cmd[0] != NULL && !in_path(all[i]->cmd[0]);
  for (int r = 0; r < pp->tool_rounds; r++)
    for (int i = 0; i < 3; i++)
      if (!all[i]->missing && !all[i]->failed)
        run_tool(all[i], self, dir, pp->child_warmup);
  for (int i = 0; i < 3; i++)
    tool_finish(all[i]);
  snprintf(path, sizeof path, "%s/memcheck.vglog", dir);
  print_matching(path, "ERROR SUMMARY", "memcheck (last run): ");
  print_matching(path, "definitely lost", "memcheck (last run): ");
  snprintf(path, sizeof path, "%s/heaptrack.log", dir);
  print_matching(path, "allocations:", "heaptrack (last run): ");
  remove_dir(dir);
}

/* ------------------------------------------------------------------------------------------------
 * Report
 * ---------------------------------------------------------------------------------------------- */

static void print_tool_cell(const tool_run *t, int d, double untraced) {
  if (t->missing)
    printf(" | %s not installed (skipped)", t->label);
  else if (t->nruns == 0)
    printf(" | %s failed", t->label);
  else
    printf(" | %s %.1f ns/call %.2fx", t->label, t->med_ns[d], t->med_ns[d] / untraced);
}

static void print_single(const char *title, cell res[NDEPTHS][NCONFIGS], const tools *t) {
  printf("\n%s, one thread: CPU ns per allocator call (median of rounds), ratio to untraced\n",
         title);
  for (int d = 0; d < NDEPTHS; d++) {
    double u = res[d][0].med;
    printf("depth=%-2d untraced %.1f ns/call", depths[d], u);
    for (int cfg = 1; cfg < NTRACED; cfg++)
      printf(" | nframe=%d %.1f ns/call %.2fx", configs[cfg], res[d][cfg].med, res[d][cfg].med / u);
    if (t != NULL) {
      print_tool_cell(&t->memcheck, d, u);
      print_tool_cell(&t->heaptrack, d, u);
    }
    printf("\n         tracer's cost over untraced: nframe=1 +%.1f ns, nframe=25 +%.1f ns; "
           "without the library (glibc directly) %.1f ns/call, so the idle hooks cost %+.1f ns\n",
           res[d][1].med - u, res[d][2].med - u, res[d][3].med, u - res[d][3].med);
    printf("         spread over rounds (half range): untraced ±%.1f%%", res[d][0].spread);
    for (int cfg = 1; cfg < NTRACED; cfg++)
      printf(" | nframe=%d ±%.1f%%", configs[cfg], res[d][cfg].spread);
    printf(" | glibc directly ±%.1f%%\n", res[d][3].spread);
  }
}

/* Whole-process CPU per call of the child: all its processes, start-up and warm-up included. */
static double tool_process_ns(const tool_run *t, const params *pp) {
  return t->med_cpu_s * 1e9 / (double)(NDEPTHS * (t->calls + pp->child_warmup));
}

static void print_tools_note(const tools *t, const params *pp, cell big[NDEPTHS][NCONFIGS]) {
  const tool_run *tool[2] = {&t->memcheck, &t->heaptrack};
  double plain;

  if (t->plain.nruns == 0)
    return;
  plain = tool_process_ns(&t->plain, pp);
  printf("         tools: the same binary in --child mode (untraced, separate processes, fewer "
         "calls; median of %d runs); without a tool it measured depth=5 %.1f, depth=30 %.1f "
         "ns/call\n",
         t->plain.nruns, t->plain.med_ns[0], t->plain.med_ns[1]);
  printf("         whole-process CPU per call, start-up included: plain %.1f ns", plain);
  for (int i = 0; i < 2; i++)
    if (tool[i]->nruns > 0)
      printf(", %s %.1f ns (%.1fx%s)", tool[i]->label, tool_process_ns(tool[i], pp),
             tool_process_ns(tool[i], pp) / plain, i == 1 ? ", its interpreter included" : "");
  printf("\n");
}

static void print_threads(const thread_cells *tc, cell big[NDEPTHS][NCONFIGS], int ncpu) {
  int d30 = NDEPTHS - 1;

  printf("\n%d threads on %d CPUs, each with its own %d slots, depth=%d, sizes 8..4096\n", NTHREADS,
         ncpu, NSLOTS, depths[d30]);
  printf("wall ns per call (all threads' calls): untraced %.1f", tc->wall[0].med);
  for (int cfg = 1; cfg < NTRACED; cfg++)
    printf(" | nframe=%d %.1f %.2fx", configs[cfg], tc->wall[cfg].med,
           tc->wall[cfg].med / tc->wall[0].med);
  printf("\nCPU ns per call (summed over threads): untraced %.1f", tc->cpu[0].med);
  for (int cfg = 1; cfg < NTRACED; cfg++)
    printf(" | nframe=%d %.1f %.2fx", configs[cfg], tc->cpu[cfg].med,
           tc->cpu[cfg].med / tc->cpu[0].med);
  printf("\n");
  for (int cfg = 1; cfg < NTRACED; cfg++) {
    double single = big[d30][cfg].med / big[d30][0].med;
    double wall = tc->wall[cfg].med / tc->wall[0].med, cpu = tc->cpu[cfg].med / tc->cpu[0].med;
    printf("nframe=%-2d threaded ratio / single-thread ratio (%.2fx): wall %.2f, CPU %.2f "
           "(target <= 1.5) %s\n",
           configs[cfg], single, wall / single, cpu / single,
           wall / single <= 1.5 ? "MET" : "MISSED");
  }
}

static void print_memory(const params *pp, const mem_result *m1, const mem_result *m25) {
  const mem_result *m[2] = {m1, m25};
  const int nf[2] = {1, 25};

  printf("\ntracer memory per live block (%ld live 16 B blocks from %d call sites; "
         "target <= 40 B plus the interned tracebacks)\n",
         pp->mem_blocks, MEM_SITES);
  for (int i = 0; i < 2; i++) {
    printf("nframe=%-2d %.1f B per block %s; tm_get_tracemalloc_memory() %zu B with none, %zu B "
           "with all, %zu B after freeing them\n          per block at",
           nf[i], m[i]->per_block, m[i]->per_block <= 40 ? "MET" : "MISSED", m[i]->base,
           m[i]->mem[MEM_STEPS - 1], m[i]->after_free);
    for (int k = 0; k < MEM_STEPS; k++)
      printf(" %ldk: %.1f B", m[i]->n[k] / 1000,
             ((double)m[i]->mem[k] - (double)m[i]->base) / (double)m[i]->n[k]);
    printf("\n");
  }
}

static void print_targets(cell big[NDEPTHS][NCONFIGS]) {
  int d30 = NDEPTHS - 1;
  double r1 = big[d30][1].med / big[d30][0].med, r25 = big[d30][2].med / big[d30][0].med;

  double u = big[d30][0].med, a1 = big[d30][1].med - u, a25 = big[d30][2].med - u;

  printf("\ntargets at depth=30: nframe=1 %.2fx (<= 1.6x) %s | nframe=25 %.2fx (<= 2.5x) %s\n", r1,
         r1 <= 1.6 ? "MET" : "MISSED", r25, r25 <= 2.5 ? "MET" : "MISSED");
  /* The targets were set against TRACER-NOTES.md's untraced 177 ns/call at depth 30; the same
   * added cost over that baseline, and the notes' bare interposer (1.56x, 2.20x of 177 ns), put
   * the figures above in scale when this run's baseline differs. */
  printf("against TRACER-NOTES' untraced baseline (177 ns/call at depth=30; here %.1f): the same "
         "added cost (+%.1f, +%.1f ns) would be %.2fx and %.2fx; the notes' bare libunwind "
         "interposer added +99 and +212 ns\n",
         u, a1, a25, (177 + a1) / 177, (177 + a25) / 177);
}

/* ------------------------------------------------------------------------------------------------
 * main
 * ---------------------------------------------------------------------------------------------- */

static void usage(void) {
  fprintf(stderr, "usage: alloc_churn [--quick] [--calls N] [--rounds R] [--no-tools]\n"
                  "       (TM_BENCH_QUICK=1 is --quick)\n");
  exit(2);
}

static void params_init(params *pp, bool quick) {
  *pp = (params){
      .quick = quick,
      .tools = true,
      .calls = quick ? 200000 : 2000000,
      .warmup = quick ? 50000 : 100000,
      .rounds = quick ? 3 : 7,
      .thread_calls = quick ? 100000 : 1000000,
      .mem_blocks = quick ? 200000 : 1000000,
      .memcheck_calls = quick ? 30000 : 300000,
      .heaptrack_calls = quick ? 100000 : 500000,
      .child_warmup = quick ? 40000 : 100000,
      .tool_rounds = quick ? 1 : 3,
  };
}

static void parse_args(params *pp, int argc, char **argv) {
  const char *q = getenv("TM_BENCH_QUICK");
  bool quick = q != NULL && *q != '\0' && strcmp(q, "0") != 0;

  for (int i = 1; i < argc; i++)
    if (strcmp(argv[i], "--quick") == 0)
      quick = true;
  params_init(pp, quick);
  verbose = getenv("TM_BENCH_VERBOSE") != NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--quick") == 0)
      continue;
    else if (strcmp(argv[i], "--no-tools") == 0)
      pp->tools = false;
    else if (strcmp(argv[i], "--calls") == 0 && i + 1 < argc)
      pp->calls = atol(argv[++i]);
    else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
      pp->rounds = atoi(argv[++i]);
    else
      usage();
  }
  if (pp->calls < 1 || pp->rounds < 1 || pp->rounds > MAX_ROUNDS)
    usage();
}

static void print_header(const params *pp, churn *c) {
  double total;

  printf("tracemalloc allocation-churn benchmark (%s mode): %d slots, %ld timed calls per "
         "measurement after %ld warm-up calls, %d interleaved rounds, median reported\n",
         pp->quick ? "quick" : "full", NSLOTS, pp->calls, pp->warmup, pp->rounds);
  printf("allocation site depth check: ");
  for (int d = 0; d < NDEPTHS; d++)
    printf("%sdepth=%d -> %d frames below main", d ? ", " : "", depths[d],
           churn_probe_depth(c, depths[d]));
  printf("\n");
  /* The op mix of one measurement, to show it is the one of TRACER-NOTES.md. */
  churn_reset(c, big_sizes, 7, c->root_frames);
  churn_run(c, pp->warmup, 5);
  memset(c->nops, 0, sizeof c->nops);
  churn_run(c, pp->calls, 5);
  churn_empty(c);
  total =
      (double)(c->nops[OP_MALLOC] + c->nops[OP_CALLOC] + c->nops[OP_REALLOC] + c->nops[OP_FREE]);
  printf("call mix: malloc %.1f%% calloc %.1f%% realloc %.1f%% free %.1f%% (allocating %.1f%%)\n",
         100 * c->nops[OP_MALLOC] / total, 100 * c->nops[OP_CALLOC] / total,
         100 * c->nops[OP_REALLOC] / total, 100 * c->nops[OP_FREE] / total,
         100 * (total - c->nops[OP_FREE]) / total);
  print_load("at start");
}

int main(int argc, char **argv) {
  int root = stack_frames(); /* also loads what backtrace() needs before anything is traced */
  static cell big[NDEPTHS][NCONFIGS], small[NDEPTHS][NCONFIGS];
  static thread_cells tc;
  tools t = {{0}, {0}, {0}};
  mem_result m1, m25;
  params pp;
  churn *c;

  if (argc == 5 && strcmp(argv[1], "--child") == 0)
    return child_main(atol(argv[2]), atol(argv[3]), argv[4], root);
  parse_args(&pp, argc, argv);
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (tm_is_tracing()) {
    printf("note: TRACEMALLOC started tracing at load; stopped, the benchmark controls it\n");
    tm_stop();
  }
  c = malloc(sizeof *c);
  if (c == NULL)
    die_nomem("malloc", sizeof *c);
  c->root_frames = root;
  print_header(&pp, c);
  check_traceback(c);

  fprintf(stderr, "alloc_churn: single thread, sizes 8..4096...\n");
  bench_single(c, &pp, big_sizes, big);
  fprintf(stderr, "alloc_churn: single thread, sizes 16..256...\n");
  bench_single(c, &pp, small_sizes, small);
  fprintf(stderr, "alloc_churn: %d threads...\n", NTHREADS);
  bench_threads(&pp, depths[NDEPTHS - 1], &tc);
  fprintf(stderr, "alloc_churn: tracer memory per block...\n");
  m1 = bench_memory(&pp, 1);
  m25 = bench_memory(&pp, 25);
  if (pp.tools)
    bench_tools(&pp, &t);

  print_single(big_sizes.label, big, pp.tools ? &t : NULL);
  if (pp.tools)
    print_tools_note(&t, &pp, big);
  print_single(small_sizes.label, small, NULL);
  print_threads(&tc, big, (int)sysconf(_SC_NPROCESSORS_ONLN));
  print_memory(&pp, &m1, &m25);
  print_targets(big);
  print_load("at end");
  if (misbehaved)
    printf("\nTHE TRACER MISBEHAVED: see the TRACER MISBEHAVES lines above\n");
  free(c);
  return misbehaved ? 1 : 0;
}
