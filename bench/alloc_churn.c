/* alloc_churn.c — the tracer benchmark: what tracing costs an allocating program, in time and
 * memory, side by side with the program untraced and under valgrind memcheck and heaptrack.
 *
 * The workload is churn.h's allocation churn. One run of the executable does everything:
 *   - in this process, interleaved rounds of: untraced (library linked, not started), tm_start(1),
 *     tm_start(25), at depth 5 and 30, sizes 8..4096 and 16..256; median of the rounds;
 *   - 4 threads on the machine's cores, each with its own slots, untraced / nframe=1 / nframe=25;
 *   - the tracer's own memory per live block, with 1M live 16-byte blocks from 4 call sites;
 *   - the same executable in --child mode (untraced, fewer calls) as a plain process, under
 *     valgrind memcheck and under heaptrack, each reporting its in-loop CPU time per call
 *     (peers.c).
 * The figure is in-loop CPU time of the allocating thread (CLOCK_THREAD_CPUTIME_ID) divided by
 * the number of allocator calls, frees included. Ratios are to the untraced median of this run.
 * churn_report.c prints them; docs/costs.md explains what they mean for the design.
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
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc_churn.h"
#include "build_note.h"
#include "churn.h"
#include "churn_report.h"
#include "peers.h"
#include "stats.h"
#include "tracemalloc.h"

/* The traceback check below uses the analysis layer; the benchmark must not depend on it landing,
 * so these references are weak: NULL when the library does not export them (yet). */
#pragma weak tm_get_object_traceback
#pragma weak tm_traceback_total_nframe
#pragma weak tm_traceback_free

const int configs[NCONFIGS] = {0, 1, 25, DIRECT};

static bool misbehaved; /* set when the tracer's counters disagree with the workload */
static bool verbose;    /* TM_BENCH_VERBOSE: every measurement on stderr */

/* Starts tracing with nframe frames; exits with status 1 when tm_start fails. */
static void check_start(int nframe) {
  int err = tm_start(nframe);
  if (err != 0) {
    fprintf(stderr, "alloc_churn: tm_start(%d) failed: %s\n", nframe, tm_strerror(err));
    exit(1);
  }
}

/* ------------------------------------------------------------------------------------------------
 * Single thread, in process
 * ---------------------------------------------------------------------------------------------- */

/* Runs one measurement: warm-up then ncalls timed calls, traced with nframe (0: untraced; DIRECT:
 * bypassing the hooks).
 * Returns ns per call. Checks the tracer's counters against the live blocks. */
static double measure_single(churn *c, const params *pp, churn_sizes sizes, int depth, int nframe) {
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
static void bench_single(churn *c, const params *pp, churn_sizes sizes,
                         cell res[CHURN_NDEPTHS][NCONFIGS]) {
  for (int r = 0; r < pp->rounds; r++)
    for (int d = 0; d < CHURN_NDEPTHS; d++)
      for (int k = 0; k < NCONFIGS; k++) {
        int cfg = (k + r) % NCONFIGS;
        res[d][cfg].ns[r] = measure_single(c, pp, sizes, churn_depths[d], configs[cfg]);
        if (verbose)
          fprintf(stderr, "  round %d %s depth=%d nframe=%d: %.1f ns/call\n", r, sizes.label,
                  churn_depths[d], configs[cfg], res[d][cfg].ns[r]);
      }
  for (int d = 0; d < CHURN_NDEPTHS; d++)
    for (int cfg = 0; cfg < NCONFIGS; cfg++) {
      cell *x = &res[d][cfg];
      x->med = bench_median(x->ns, pp->rounds);
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

  churn_reset(j->c, churn_big_sizes, j->seed, stack_frames());
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
    out->wall[cfg].med = bench_median(out->wall[cfg].ns, pp->rounds);
    out->cpu[cfg].med = bench_median(out->cpu[cfg].ns, pp->rounds);
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
  churn_reset(c, churn_big_sizes, 42, c->root_frames);
  check_start(25);
  churn_run(c, 1, 30); /* an empty slot: one malloc at depth 30 */
  p = NULL;
  for (int i = 0; i < CHURN_NSLOTS && p == NULL; i++)
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
  if (pp->calls < 1 || pp->rounds < 1 || pp->rounds > CHURN_MAX_ROUNDS)
    usage();
}

static void print_header(const params *pp, churn *c) {
  double total;

  bench_print_build("alloc_churn");
  printf("tracemalloc allocation-churn benchmark (%s mode): %d slots, %ld timed calls per "
         "measurement after %ld warm-up calls, %d interleaved rounds, median reported\n",
         pp->quick ? "quick" : "full", CHURN_NSLOTS, pp->calls, pp->warmup, pp->rounds);
  printf("allocation site depth check: ");
  for (int d = 0; d < CHURN_NDEPTHS; d++)
    printf("%sdepth=%d -> %d frames below main", d ? ", " : "", churn_depths[d],
           churn_probe_depth(c, churn_depths[d]));
  printf("\n");
  /* The op mix of one measurement, to show it is the one described in churn.h. */
  churn_reset(c, churn_big_sizes, 7, c->root_frames);
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
  static cell big[CHURN_NDEPTHS][NCONFIGS], small[CHURN_NDEPTHS][NCONFIGS];
  static thread_cells tc;
  peers t = {{0}, {0}, {0}, {0}};
  mem_result m1, m25;
  params pp;
  churn *c;

  if (argc == 5 && strcmp(argv[1], "--child") == 0)
    return peer_child_main(atol(argv[2]), atol(argv[3]), argv[4], root);
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
  bench_single(c, &pp, churn_big_sizes, big);
  fprintf(stderr, "alloc_churn: single thread, sizes 16..256...\n");
  bench_single(c, &pp, churn_small_sizes, small);
  fprintf(stderr, "alloc_churn: %d threads...\n", NTHREADS);
  bench_threads(&pp, churn_depths[CHURN_NDEPTHS - 1], &tc);
  fprintf(stderr, "alloc_churn: tracer memory per block...\n");
  m1 = bench_memory(&pp, 1);
  m25 = bench_memory(&pp, 25);
  if (pp.tools) {
    peers_params peer_pp = {.plain_calls = pp.heaptrack_calls,
                            .memcheck_calls = pp.memcheck_calls,
                            .heaptrack_calls = pp.heaptrack_calls,
                            .warmup = pp.child_warmup,
                            .rounds = pp.tool_rounds};
    peers_run(&peer_pp, &t);
  }

  print_single(churn_big_sizes.label, big, pp.tools ? &t : NULL);
  if (pp.tools)
    print_peers_note(&t, &pp);
  print_single(churn_small_sizes.label, small, NULL);
  print_threads(&tc, big, (int)sysconf(_SC_NPROCESSORS_ONLN));
  print_memory(&pp, &m1, &m25);
  print_targets(big);
  print_load("at end");
  if (misbehaved)
    printf("\nTHE TRACER MISBEHAVED: see the TRACER MISBEHAVES lines above\n");
  free(c);
  return misbehaved ? 1 : 0;
}
