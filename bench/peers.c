/* peers.c — the churn workload under peer tools and as a plain process (see peers.h). */
#include "peers.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "stats.h"
#include "subprocess.h"
#include "tracemalloc.h"


int peer_child_main(long calls, long warmup, const char *path, int root) {
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
  for (int d = 0; d < CHURN_NDEPTHS; d++) {
    uint64_t cpu;
    churn_reset(c, churn_big_sizes, 0x9E3779B97F4A7C15ULL + (uint64_t)churn_depths[d], root);
    churn_run(c, warmup, churn_depths[d]);
    cpu = churn_run(c, calls, churn_depths[d]);
    churn_empty(c);
    settle_heap();
    fprintf(f, "depth=%d ns=%.2f\n", churn_depths[d], (double)cpu / (double)calls);
  }
  fclose(f);
  free(c);
  return 0;
}

/* Reads a child's result file into ns. Returns whether every depth was there. */
static bool read_child_result(const char *path, double ns[CHURN_NDEPTHS]) {
  FILE *f = fopen(path, "r");
  int got = 0, depth;
  double v;

  if (f == NULL)
    return false;
  while (fscanf(f, " depth=%d ns=%lf", &depth, &v) == 2)
    for (int d = 0; d < CHURN_NDEPTHS; d++)
      if (churn_depths[d] == depth) {
        ns[d] = v;
        got++;
      }
  fclose(f);
  return got == CHURN_NDEPTHS;
}

/* Prints the lines of path that start with needle once valgrind's "==pid==" and leading blanks
 * are taken off, after prefix. A missing file prints nothing. */
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

/* Runs "peer... self --child calls warmup result" once and records its figures in t. */
static void peer_run_once(peer_run *t, const char *self, const char *dir, long warmup) {
  char result[PATH_MAX], logpath[PATH_MAX], scalls[32], swarm[32];
  double ns[CHURN_NDEPTHS] = {0}, cpu_s = 0;
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
  fprintf(stderr, "%s: running %s (%ld calls per depth)...\n", program_invocation_short_name,
          t->label, t->calls);
  char **env = bench_env(t->env_add);
  err = bench_spawn_wait(argv, env, NULL, logpath, &status, &cpu_s);
  bench_env_free(env);
  if (err != 0) {
    printf("%s: could not run %s: %s\n", t->label, argv[0], strerror(err));
    t->failed = true;
  } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !read_child_result(result, ns)) {
    printf("%s: the run failed (wait status 0x%x); its output:\n", t->label, (unsigned)status);
    print_matching(logpath, "", "    ");
    t->failed = true;
  } else {
    for (int d = 0; d < CHURN_NDEPTHS; d++)
      t->ns[d][t->nruns] = ns[d];
    t->cpu_s[t->nruns++] = cpu_s;
  }
}

/* Computes t's medians from its runs; nothing when it has none. */
static void peer_finish(peer_run *t) {
  if (t->nruns == 0)
    return;
  for (int d = 0; d < CHURN_NDEPTHS; d++)
    t->med_ns[d] = bench_median(t->ns[d], t->nruns);
  t->med_cpu_s = bench_median(t->cpu_s, t->nruns);
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

void peers_run(const peers_params *pp, peers *t) {
  static char dir[64], out[PATH_MAX], logopt[PATH_MAX], path[PATH_MAX], lsan_preload[PATH_MAX + 16];
  static const char *none[] = {NULL};
  static const char *memcheck[] = {"valgrind", "--tool=memcheck", "--leak-check=full", logopt,
                                   NULL};
  static const char *heaptrack[] = {"heaptrack", "-o", out, NULL};
  static const char *lsan_env[] = {lsan_preload, "LSAN_OPTIONS=malloc_context_size=25:exitcode=0",
                                   NULL};
  char self[PATH_MAX];
  ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
  peer_run *all[NPEER_RUNS] = {&t->plain, &t->memcheck, &t->heaptrack, &t->lsan};
  const char *lsan = bench_lsan_runtime();

  t->plain = (peer_run){.label = "plain", .cmd = none, .calls = pp->plain_calls};
  t->memcheck = (peer_run){.label = "memcheck", .cmd = memcheck, .calls = pp->memcheck_calls};
  t->heaptrack = (peer_run){.label = "heaptrack", .cmd = heaptrack, .calls = pp->heaptrack_calls};
  t->lsan = (peer_run){.label = "lsan", .cmd = none, .env_add = lsan_env,
                       .calls = pp->plain_calls, .missing = lsan == NULL};
  if (lsan != NULL)
    snprintf(lsan_preload, sizeof lsan_preload, "LD_PRELOAD=%s", lsan);
  snprintf(dir, sizeof dir, "/tmp/%.40s.XXXXXX", program_invocation_short_name);
  if (len < 0 || mkdtemp(dir) == NULL) {
    fprintf(stderr, "%s: /proc/self/exe or mkdtemp: %s\n", program_invocation_short_name,
            strerror(errno));
    for (int i = 0; i < NPEER_RUNS; i++)
      all[i]->failed = true;
    return;
  }
  self[len] = '\0';
  snprintf(logopt, sizeof logopt, "--log-file=%s/memcheck.vglog", dir);
  snprintf(out, sizeof out, "%s/heaptrack.%%p", dir);
  for (int i = 0; i < NPEER_RUNS; i++)
    all[i]->missing |= all[i]->cmd[0] != NULL && !bench_in_path(all[i]->cmd[0]);
  for (int r = 0; r < pp->rounds; r++)
    for (int i = 0; i < NPEER_RUNS; i++)
      if (!all[i]->missing && !all[i]->failed)
        peer_run_once(all[i], self, dir, pp->warmup);
  for (int i = 0; i < NPEER_RUNS; i++)
    peer_finish(all[i]);
  snprintf(path, sizeof path, "%s/memcheck.vglog", dir);
  print_matching(path, "ERROR SUMMARY", "memcheck (last run): ");
  print_matching(path, "definitely lost", "memcheck (last run): ");
  snprintf(path, sizeof path, "%s/heaptrack.log", dir);
  print_matching(path, "allocations:", "heaptrack (last run): ");
  remove_dir(dir);
}

double peer_process_ns(const peer_run *t, long warmup) {
  return t->med_cpu_s * 1e9 / (double)(CHURN_NDEPTHS * (t->calls + warmup));
}
