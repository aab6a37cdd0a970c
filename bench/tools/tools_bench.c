/* tools_bench.c — the tracemalloc command's figures (README, "The tracemalloc command").
 *
 * 1. Reading and drawing: a dump of 1,000,000 traces over 10,000 distinct tracebacks (built with
 *    the internal API: 4 to 12 frames, shared callers, as a program's call tree) is read by
 *    `tracemalloc stats`, `stats --key traceback`, `flamegraph` (SVG) and `flamegraph --folded`,
 *    each timed as a whole process, best of 3. Target: under 1 s each.
 * 2. `run` against tracing itself: tools_workload plain, traced with LD_PRELOAD + TRACEMALLOC=N
 *    (no dump), and under `tracemalloc run` (the same, plus the dump at exit and the report); and
 *    under heaptrack with heaptrack_print when installed (skipped with a message otherwise). Best of
 *    3, side by side in one run.
 * Figures are printed, not asserted; a command that fails fails the benchmark.
 *   meson test --benchmark -C <builddir> -v tools_bench
 */
#include <glib.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "model.h"

#define NTRACES 1000000
#define DISTINCT 10000
#define ROUNDS 3

static const char *tool, *workload, *library;
static char *dir;

/* Runs argv in dir with extra environment (NULL-terminated "NAME=value", may be NULL), output
 * discarded; returns the wall time in ms, best of rounds; exits when it fails. */
static double timed(const char *const *argv, const char *const *extra, int rounds) {
  char **env = g_get_environ();
  for (const char *const *e = extra; e != NULL && *e != NULL; e++) {
    char **kv = g_strsplit(*e, "=", 2);
    env = g_environ_setenv(env, kv[0], kv[1], true);
    g_strfreev(kv);
  }
  double best = -1;
  for (int r = 0; r < rounds; r++) {
    int status = 0;
    GError *error = NULL;
    gint64 t0 = g_get_monotonic_time();
    gboolean ok = g_spawn_sync(dir, (char **)argv, env,
                               G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL |
                                   G_SPAWN_STDERR_TO_DEV_NULL,
                               NULL, NULL, NULL, NULL, &status, &error);
    double ms = (double)(g_get_monotonic_time() - t0) / 1000.0;
    if (!ok || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      fprintf(stderr, "tools_bench: %s failed (%s)\n", argv[0], ok ? "exit status" : error->message);
      exit(1);
    }
    if (best < 0 || ms < best)
      best = ms;
  }
  g_strfreev(env);
  return best;
}

/* The dump: traceback k calls main -> run_kK -> ... -> leaf, with its callers shared by
 * neighbouring k so that the call tree has a program's shape. */
static char *dump_build(void) {
  static const char *files[] = {"src/app.c", "src/parse.c", "src/eval.c", "src/store.c",
                                "src/net.c", "src/util.c"};
  tm_traceback **tbs = g_new(tm_traceback *, DISTINCT);
  char name[64];
  for (unsigned k = 0; k < DISTINCT; k++) {
    tm_frame frames[14];
    size_t n = 0;
    frames[n++] = (tm_frame){.filename = "libc.so.6", .function = "__libc_start_main",
                             .module = "/usr/lib/x86_64-linux-gnu/libc.so.6",
                             .flags = TM_FRAME_NO_DEBUG_INFO};
    frames[n++] = (tm_frame){.filename = "src/main.c", .lineno = 10, .function = "main",
                             .module = "/usr/bin/app"};
    unsigned depth = 2 + k % 9, key = k;
    for (unsigned d = 0; d < depth; d++) {
      unsigned width = d == 0 ? 8 : 4;
      g_snprintf(name, sizeof name, "fn_%u_%u", d, key % width);
      key /= width;
      frames[n++] = (tm_frame){.filename = files[(d + key) % G_N_ELEMENTS(files)],
                               .lineno = 20 + d * 10 + key % 7,
                               .function = g_intern_string(name), .module = "/usr/bin/app"};
    }
    g_snprintf(name, sizeof name, "leaf_%u", k);
    frames[n++] = (tm_frame){.filename = "src/alloc.c", .lineno = 100 + k % 50,
                             .function = g_intern_string(name), .module = "/usr/bin/app"};
    frames[n++] = (tm_frame){.filename = "libglib-2.0.so.0", .function = "g_malloc",
                             .module = "/usr/lib/x86_64-linux-gnu/libglib-2.0.so.0",
                             .flags = TM_FRAME_NO_DEBUG_INFO};
    tbs[k] = tm__traceback_new_frames(frames, n, (int)n, false);
  }
  tm_snapshot *snap = tm__snapshot_new(16);
  for (unsigned i = 0; i < NTRACES; i++)
    tm__snapshot_add(snap, 0, 16 + (i * 2654435761u) % 4000, tbs[(i * 7919u) % DISTINCT]);
  char *path = g_build_filename(dir, "big.dump", NULL);
  GError *error = NULL;
  if (!tm_snapshot_dump(snap, path, &error)) {
    fprintf(stderr, "tools_bench: %s\n", error->message);
    exit(1);
  }
  tm_snapshot_free(snap);
  for (unsigned k = 0; k < DISTINCT; k++)
    tm_traceback_free(tbs[k]);
  g_free(tbs);
  return path;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s TRACEMALLOC_TOOL WORKLOAD LIBTRACEMALLOC\n", argv[0]);
    return 2;
  }
  tool = argv[1];
  workload = argv[2];
  library = argv[3];
  dir = g_dir_make_tmp("tm-tools-bench-XXXXXX", NULL);

  gint64 t0 = g_get_monotonic_time();
  char *dump = dump_build();
  GStatBuf st;
  g_stat(dump, &st);
  printf("dump: %d traces, %d tracebacks, %.1f MiB, built in %.0f ms\n", NTRACES, DISTINCT,
         (double)st.st_size / (1 << 20), (double)(g_get_monotonic_time() - t0) / 1000.0);
  char *svg = g_build_filename(dir, "big.svg", NULL);
  const struct {
    const char *what;
    const char *argv[8];
  } reads[] = {
      {"stats", {tool, "stats", dump, NULL}},
      {"stats --key traceback", {tool, "stats", dump, "--key", "traceback", NULL}},
      {"flamegraph (SVG)", {tool, "flamegraph", dump, "-o", svg, NULL}},
      {"flamegraph --folded", {tool, "flamegraph", dump, "--folded", "-o", "big.folded", NULL}},
  };
  printf("\n%-24s %10s  %s\n", "command (best of 3)", "wall ms", "under 1 s");
  for (size_t i = 0; i < G_N_ELEMENTS(reads); i++) {
    double ms = timed(reads[i].argv, NULL, ROUNDS);
    printf("%-24s %10.0f  %s\n", reads[i].what, ms, ms < 1000 ? "yes" : "NO");
  }
  g_stat(svg, &st);
  printf("SVG: %.1f MiB\n", (double)st.st_size / (1 << 20));

  /* run against tracing itself. */
  char preload[4096];
  g_snprintf(preload, sizeof preload, "LD_PRELOAD=%s", library);
  const char *plain[] = {workload, NULL};
  const char *traced_env[] = {preload, "TRACEMALLOC=16", NULL};
  char *pattern = g_build_filename(dir, "w.%p.dump", NULL);
  const char *run[] = {tool, "run", "-n", "16", "-o", pattern, "--", workload, NULL};
  double t_plain = timed(plain, NULL, ROUNDS);
  double t_traced = timed(plain, traced_env, ROUNDS);
  double t_run = timed(run, NULL, ROUNDS);
  printf("\n%-44s %10s %8s\n", "tools_workload, 2 M allocations, 20 k live", "wall ms",
         "x plain");
  printf("%-44s %10.0f %8.2f\n", "plain", t_plain, 1.0);
  printf("%-44s %10.0f %8.2f\n", "traced (LD_PRELOAD, TRACEMALLOC=16), no dump", t_traced,
         t_traced / t_plain);
  printf("%-44s %10.0f %8.2f   (%.2fx traced)\n", "tracemalloc run -n 16 (dump + top lines)",
         t_run, t_run / t_plain, t_run / t_traced);
  char *heaptrack = g_find_program_in_path("heaptrack");
  char *heaptrack_print = g_find_program_in_path("heaptrack_print");
  if (heaptrack != NULL && heaptrack_print != NULL) {
    const char *ht[] = {"sh", "-c",
                        "rm -f heaptrack.*; heaptrack \"$0\" >/dev/null 2>&1 && "
                        "heaptrack_print heaptrack.*.zst >/dev/null",
                        workload, NULL};
    double t_ht = timed(ht, NULL, ROUNDS);
    printf("%-44s %10.0f %8.2f   (%.2fx traced)\n", "heaptrack PROG + heaptrack_print", t_ht,
           t_ht / t_plain, t_ht / t_traced);
  } else {
    printf("heaptrack: not installed, skipped (Debian package heaptrack)\n");
  }
  g_free(heaptrack);
  g_free(heaptrack_print);
  char *cmd = g_strdup_printf("rm -rf '%s'", dir);
  if (system(cmd) != 0)
    fprintf(stderr, "tools_bench: could not remove %s\n", dir);
  g_free(cmd);
  g_free(pattern);
  g_free(svg);
  g_free(dump);
  g_free(dir);
  return 0;
}
