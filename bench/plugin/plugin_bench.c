/* plugin_bench.c — what TM_LEAK_FIXTURE costs a suite (issue 4; target <= 1.25x).
 *
 * Runs plugin_suite built plain and built with the fixture, alternately, ROUNDS times each in
 * CK_FORK=yes and in CK_FORK=no mode, and prints the median wall time of each and their ratio.
 * Exits 1 only when a run fails (a false positive in 1000 clean tests is a bug); the ratio is
 * printed, not asserted, since a loaded machine moves it.
 * Usage: plugin_bench PLAIN FIXTURE [ROUNDS]
 */
#include <stdio.h>
#include <stdlib.h>

#include <glib.h>

static int compare_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Runs exe once; returns its wall time in seconds, or a negative value when it failed. */
static double run_once(const char *exe, const char *fork_mode) {
  char *argv[] = {(char *)exe, NULL};
  char **env = g_get_environ();
  GError *error = NULL;
  int status = 0;
  gint64 start;
  double seconds;

  env = g_environ_setenv(env, "CK_FORK", fork_mode, TRUE);
  env = g_environ_setenv(env, "CK_VERBOSITY", "minimal", TRUE);
  env = g_environ_unsetenv(env, "TM_LEAK_CONFIG");
  env = g_environ_unsetenv(env, "TM_LEAK_THRESHOLD");
  start = g_get_monotonic_time();
  if (!g_spawn_sync(NULL, argv, env, G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL, NULL, &status,
                    &error)) {
    fprintf(stderr, "cannot run %s: %s\n", exe, error->message);
    exit(99);
  }
  seconds = (double)(g_get_monotonic_time() - start) / 1e6;
  g_strfreev(env);
  if (!g_spawn_check_wait_status(status, &error)) {
    fprintf(stderr, "%s (CK_FORK=%s) failed: %s\n", exe, fork_mode, error->message);
    g_error_free(error);
    return -1;
  }
  return seconds;
}

int main(int argc, char **argv) {
  const char *modes[] = {"yes", "no"};
  int rounds = argc > 3 ? atoi(argv[3]) : 5;
  int failed = 0;

  if (argc < 3 || rounds < 1) {
    fprintf(stderr, "usage: %s PLAIN FIXTURE [ROUNDS]\n", argv[0]);
    return 99;
  }
  printf("plugin_bench: 1000 tests (500 trivial, 500 allocation-heavy), median of %d runs\n",
         rounds);
  for (size_t m = 0; m < G_N_ELEMENTS(modes); m++) {
    double *plain = g_new(double, rounds), *fixture = g_new(double, rounds);
    for (int r = 0; r < rounds; r++) {
      plain[r] = run_once(argv[1], modes[m]);
      fixture[r] = run_once(argv[2], modes[m]);
      failed |= plain[r] < 0 || fixture[r] < 0;
    }
    qsort(plain, rounds, sizeof *plain, compare_double);
    qsort(fixture, rounds, sizeof *fixture, compare_double);
    double p = plain[rounds / 2], f = fixture[rounds / 2];
    printf("CK_FORK=%-3s  plain %.3f s   TM_LEAK_FIXTURE %.3f s   ratio %.2fx (target <= 1.25x)\n",
           modes[m], p, f, f / p);
    g_free(plain);
    g_free(fixture);
  }
  fflush(stdout);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
