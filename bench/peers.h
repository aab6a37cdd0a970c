/* peers.h — runs the churn workload side by side under peer tools (valgrind memcheck, heaptrack)
 * and as a plain process, for the benchmarks' comparison with them.
 *
 * LeakSanitizer runs as its runtime preloaded (liblsan.so.0: what a -fsanitize=leak build links;
 * it instruments no code), with malloc_context_size=25.
 *
 * The protocol: the benchmark executable, started as "PEER... self --child CALLS WARMUP RESULT",
 * calls peer_child_main(), which runs the workload untraced at every depth of churn_depths and
 * writes one "depth=D ns=X" line per depth to RESULT. A peer whose program is not in PATH is
 * reported as missing (skipped), never as a failure. Not thread-safe: call from the main thread.
 */
#ifndef TM_BENCH_PEERS_H
#define TM_BENCH_PEERS_H

#include <stdbool.h>

#include "churn.h"

/* One peer, run in rounds interleaved with the other peers. */
typedef struct peer_run {
  const char *label;
  const char *const *cmd; /* the peer's command line, NULL-terminated; empty for a plain run */
  const char *const *env_add; /* more environment ("NAME=VALUE", NULL-terminated), or NULL */
  long calls;             /* timed calls per depth */
  bool missing;           /* the peer is not installed */
  bool failed;            /* a run failed; no more runs */
  int nruns;              /* runs that reported */
  double ns[CHURN_NDEPTHS][CHURN_MAX_ROUNDS];
  double cpu_s[CHURN_MAX_ROUNDS]; /* CPU time of the whole process tree (user + sys) */
  double med_ns[CHURN_NDEPTHS], med_cpu_s;
} peer_run;

typedef struct peers {
  peer_run plain, memcheck, heaptrack, lsan;
} peers;
#define NPEER_RUNS 4

/* What peers_run() is asked to do. */
typedef struct peers_params {
  long plain_calls, memcheck_calls, heaptrack_calls; /* timed calls per depth in each child */
  long warmup;                                       /* untimed calls per depth before them */
  int rounds;                                        /* runs of each peer, <= CHURN_MAX_ROUNDS */
} peers_params;

/* Runs this executable in --child mode as a plain process, under memcheck, heaptrack and LSan,
 * in interleaved rounds; fills *t with each one's runs and medians (med_* are valid when
 * nruns > 0). Prints the peers' summary lines (memcheck's error summary and leaks, heaptrack's
 * allocation count) on stdout and progress on stderr. Temporary files are removed. */
void peers_run(const peers_params *pp, peers *t);

/* The child side: runs every depth once, untraced, and writes "depth=D ns=X" lines to path.
 * root is stack_frames() in main. Returns the exit status of the child: 0, or 1 when path cannot
 * be written. */
int peer_child_main(long calls, long warmup, const char *path, int root);

/* Whole-process CPU per call of a peer's runs: all its processes, start-up and warm-up included.
 * Valid when t->nruns > 0. */
double peer_process_ns(const peer_run *t, long warmup);

#endif
