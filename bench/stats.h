/* stats.h — the figures the benchmarks print: medians, and ratios as median [min..max].
 * Not thread-safe only in that v is sorted in place: give each thread its own arrays.
 */
#ifndef TM_BENCH_STATS_H
#define TM_BENCH_STATS_H

/* Sorts v[0..n) in place and returns its median (the mean of the middle two for an even n).
 * n must be at least 1. */
double bench_median(double *v, int n);

/* Prints one ratio column of n rounds, three blanks first: "1.23x [1.20..1.30]" (median
 * [min..max], v sorted in place), "1.23x (1 run)", or "-" when n is 0. */
void bench_print_ratio(double *v, int n);

#endif
