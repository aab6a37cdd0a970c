/* reach_bench.c — what a reachability scan costs (tm_reachability_scan(), which the Check
 * plugin runs for a window whose traced bytes pass its allowance).
 *
 * The process holds N live blocks from before the window (the heap registry knows them, untraced)
 * linked in lists that a global reaches, plus 100 traced blocks made in the window: half reachable
 * from a global, half lost (a lost list). For N = 10 k, 100 k and 1 M it prints the median time of
 * 9 scans, the time per live block, and the scan's own verdict (checked: the lost half must come
 * out lost, the rest reachable). A fixed cost (reading /proc/self/maps, the loaded objects' data)
 * is shown apart, from a scan with no block. Figures are printed, not asserted.
 *   meson test --benchmark -C <builddir> -v reach_bench
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "build_note.h"
#include "tracemalloc.h"

TM_HEAP_REGISTRY;

typedef struct node {
  struct node *next;
  char payload[40];
} node;

static node *volatile old_lists;   /* the live set from before the window: reachable */
static node *volatile new_kept;    /* the window's reachable half */

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int by_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Builds a list of n nodes headed by the returned node. */
static node *list_make(size_t n) {
  node *head = NULL;
  for (size_t i = 0; i < n; i++) {
    node *x = malloc(sizeof *x);
    x->next = head;
    head = x;
  }
  return head;
}

static void list_free(node *head) {
  while (head != NULL) {
    node *next = head->next;
    free(head);
    head = next;
  }
}

__attribute__((noinline)) static void lose_list(size_t n) {
  node *volatile lost = list_make(n);
  (void)lost;
}

/* Median seconds of 9 scans; checks the verdict of the last. Returns < 0 on a wrong verdict. */
static double scan_median(size_t *lost_blocks, size_t *reachable_blocks) {
  double t[9];
  for (int i = 0; i < 9; i++) {
    GError *error = NULL;
    double t0 = now();
    tm_reachability *r = tm_reachability_scan(NULL, &error);
    t[i] = now() - t0;
    if (r == NULL) {
      fprintf(stderr, "reach_bench: %s\n", error->message);
      return -1;
    }
    size_t lost, indirect, reachable;
    tm_reachability_totals(r, TM_REACH_LOST, NULL, &lost);
    tm_reachability_totals(r, TM_REACH_INDIRECT, NULL, &indirect);
    tm_reachability_totals(r, TM_REACH_REACHABLE, NULL, &reachable);
    *lost_blocks = lost + indirect;
    *reachable_blocks = reachable;
    tm_reachability_free(r);
  }
  qsort(t, 9, sizeof *t, by_double);
  return t[4];
}

int main(void) {
  static const size_t sizes[] = {0, 10000, 100000, 1000000};
  int failed = 0;

  bench_print_build("reach_bench");
  printf("reachability scan, median of 9 (100 traced blocks in the window: 50 lost, 50 kept)\n");
  printf("%10s %12s %14s   %s\n", "live", "scan", "per live block", "verdict");
  for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
    old_lists = list_make(sizes[k]); /* before the window: registered, not traced */
    if (tm_start(8) != 0) {
      fprintf(stderr, "reach_bench: cannot start tracing\n");
      return 1;
    }
    new_kept = list_make(50);
    lose_list(50);
    size_t lost = 0, reachable = 0;
    double t = scan_median(&lost, &reachable);
    bool right = t >= 0 && lost == 50 && reachable == 50;
    printf("%10zu %9.3f ms %11.1f ns   %zu lost, %zu reachable%s\n", sizes[k], t * 1e3,
           sizes[k] ? t * 1e9 / (double)sizes[k] : 0.0, lost, reachable, right ? "" : "  WRONG");
    failed |= !right;
    tm_stop();
    list_free(new_kept);
    new_kept = NULL;
    list_free(old_lists);
    old_lists = NULL;
  }
  return failed;
}
