/* stats.c — medians and ratio columns for the benchmarks (see stats.h). */
#include "stats.h"

#include <stdio.h>
#include <stdlib.h>

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

double bench_median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

void bench_print_ratio(double *v, int n) {
  if (n == 0)
    printf("   %-21s", "-");
  else if (n == 1)
    printf("   %5.2fx %-15s", v[0], "(1 run)");
  else {
    double med = bench_median(v, n); /* sorted: the extremes are at both ends */
    printf("   %5.2fx [%5.2f..%5.2f]", med, v[0], v[n - 1]);
  }
}
