/* churn_report.h — the allocation-churn benchmark's report: the figures measured by alloc_churn.c
 * and peers.c, printed on stdout with their ratios and targets. Every function only prints. */
#ifndef TM_BENCH_CHURN_REPORT_H
#define TM_BENCH_CHURN_REPORT_H

#include "alloc_churn.h"
#include "peers.h"

/* Prints "load average <when>: " and the content of /proc/loadavg ("?" when unreadable). */
void print_load(const char *when);

/* One thread's figures for one size range: per depth, every configuration's median and its ratio
 * to untraced, the peers' when t is not NULL, the added costs and the spreads. */
void print_single(const char *title, cell res[CHURN_NDEPTHS][NCONFIGS], const peers *t);

/* How the peers' figures were obtained and their whole-process CPU per call. */
void print_peers_note(const peers *t, const params *pp);

/* The threaded figures and their ratios to the single-thread ones (big: sizes 8..4096). */
void print_threads(const thread_cells *tc, cell big[CHURN_NDEPTHS][NCONFIGS], int ncpu);

/* The tracer's memory per live block at nframe=1 and nframe=25. */
void print_memory(const params *pp, const mem_result *m1, const mem_result *m25);

/* The depth-30 ratios against their targets, and the same added cost over the design baseline. */
void print_targets(cell big[CHURN_NDEPTHS][NCONFIGS]);

#endif
