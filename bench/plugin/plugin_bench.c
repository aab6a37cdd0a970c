/* plugin_bench.c — what TM_LEAK_FIXTURE costs a suite (target <= 1.25x; docs/costs.md).
 *
 * Runs plugin_suite four ways, in turn, ROUNDS times each in CK_FORK=yes and in CK_FORK=no mode:
 *   plain     built without the fixture (no tracemalloc at all);
 *   empty     plain plus a checked fixture whose setup and teardown do nothing: what Check itself
 *             charges a suite for any checked fixture (in CK_FORK=no mode, a new message file
 *             per test: docs/check-internals.md#check-heap-use);
 *   disabled  built with the fixture, run with TM_LEAK_DISABLE=1: the libraries are linked and
 *             Check runs a checked fixture that does nothing (what the plugin cannot avoid);
 *   fixture   built with the fixture, enabled.
 * It prints the median wall time of each, and the median CPU time (user + system of the whole
 * process tree, from getrusage(RUSAGE_CHILDREN)), which a loaded machine moves less, and the
 * fixture's ratio to plain and to disabled.
 * Exits 1 only when a run fails (a false positive in 1000 clean tests is a bug); the ratios are
 * printed, not asserted, since a loaded machine moves them.
 * Usage: plugin_bench PLAIN FIXTURE EMPTY [ROUNDS]
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include <glib.h>

enum { PLAIN, EMPTY, DISABLED, FIXTURE, NVARIANTS };

typedef struct timing {
  double wall, cpu; /* seconds; wall < 0 when the run failed */
} timing;

static int compare_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double children_cpu(void) {
  struct rusage ru;
  getrusage(RUSAGE_CHILDREN, &ru);
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* Runs exe once; returns its wall and CPU time, wall < 0 when it failed. */
static timing run_once(const char *exe, const char *fork_mode, bool disable) {
  char *argv[] = {(char *)exe, NULL};
  char **env = g_get_environ();
  GError *error = NULL;
  int status = 0;
  gint64 start;
  double cpu0 = children_cpu();
  timing t;

  env = g_environ_setenv(env, "CK_FORK", fork_mode, TRUE);
  env = g_environ_setenv(env, "CK_VERBOSITY", "minimal", TRUE);
  env = g_environ_unsetenv(env, "TM_LEAK_CONFIG");
  env = g_environ_unsetenv(env, "TM_LEAK_THRESHOLD");
  env = disable ? g_environ_setenv(env, "TM_LEAK_DISABLE", "1", TRUE)
                : g_environ_unsetenv(env, "TM_LEAK_DISABLE");
  start = g_get_monotonic_time();
  if (!g_spawn_sync(NULL, argv, env, G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL, NULL, &status,
                    &error)) {
    fprintf(stderr, "cannot run %s: %s\n", exe, error->message);
    exit(99);
  }
  t.wall = (double)(g_get_monotonic_time() - start) / 1e6;
  t.cpu = children_cpu() - cpu0;
  g_strfreev(env);
  if (!g_spawn_check_wait_status(status, &error)) {
    fprintf(stderr, "%s (CK_FORK=%s%s) failed: %s\n", exe, fork_mode,
            disable ? ", TM_LEAK_DISABLE=1" : "", error->message);
    g_error_free(error);
    t.wall = -1;
  }
  return t;
}

static double median(double *values, int n) {
  qsort(values, n, sizeof *values, compare_double);
  return values[n / 2];
}

int main(int argc, char **argv) {
  const char *modes[] = {"yes", "no"};
  int rounds = argc > 4 ? atoi(argv[4]) : 5;
  int failed = 0;

  if (argc < 4 || rounds < 1) {
    fprintf(stderr, "usage: %s PLAIN FIXTURE EMPTY [ROUNDS]\n", argv[0]);
    return 99;
  }
  printf("plugin_bench: 1000 tests (500 trivial, 500 allocation-heavy), median of %d runs;\n"
         "  empty = plain plus a checked fixture that does nothing (Check's own price of one)\n"
         "  disabled = the fixture binary with TM_LEAK_DISABLE=1 (libraries linked, fixture idle)\n",
         rounds);
  for (size_t m = 0; m < G_N_ELEMENTS(modes); m++) {
    double *wall[NVARIANTS], *cpu[NVARIANTS], w[NVARIANTS], c[NVARIANTS];
    for (int v = 0; v < NVARIANTS; v++) {
      wall[v] = g_new(double, rounds);
      cpu[v] = g_new(double, rounds);
    }
    for (int r = 0; r < rounds; r++) {
      for (int v = 0; v < NVARIANTS; v++) {
        const char *exe = v == PLAIN ? argv[1] : v == EMPTY ? argv[3] : argv[2];
        timing t = run_once(exe, modes[m], v == DISABLED);
        wall[v][r] = t.wall;
        cpu[v][r] = t.cpu;
        failed |= t.wall < 0;
      }
    }
    for (int v = 0; v < NVARIANTS; v++) {
      w[v] = median(wall[v], rounds);
      c[v] = median(cpu[v], rounds);
      g_free(wall[v]);
      g_free(cpu[v]);
    }
    const char *what[] = {"wall", "cpu "};
    for (int k = 0; k < 2; k++) {
      const double *x = k == 0 ? w : c;
      printf("CK_FORK=%-3s %s: plain %.3f s  empty %.3f s  disabled %.3f s  TM_LEAK_FIXTURE %.3f s\n"
             "            ratio %.2fx to plain (target <= 1.25x), %.2fx to empty, %.2fx to disabled;"
             " empty/plain %.2fx\n",
             modes[m], what[k], x[PLAIN], x[EMPTY], x[DISABLED], x[FIXTURE], x[FIXTURE] / x[PLAIN],
             x[FIXTURE] / x[EMPTY], x[FIXTURE] / x[DISABLED], x[EMPTY] / x[PLAIN]);
    }
  }
  fflush(stdout);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
