/* real_programs.c — the tracer under real programs, preloaded with TRACEMALLOC=25.
 *
 * Each program runs as installed on this machine (skipped with a message when it is not):
 *   jq        filters a generated 60,000-object JSON array
 *   sqlite3   builds, indexes and queries a 200,000-row table in memory
 *   python3   /usr/bin/python3 with PYTHONMALLOC=malloc, so its objects go through malloc: dicts,
 *             strings, a sort
 *   cc1       gcc's compiler proper on a generated 400-function C file, preprocessed beforehand
 *             (cc1 -quiet -O2: one process, so that every tool sees all of it)
 * in interleaved rounds of: untraced, LD_PRELOAD=<libtracemalloc.so> TRACEMALLOC=25; then once
 * under heaptrack and under valgrind (memcheck, no leak check) when they are installed. The
 * figure is the CPU time (user + system) of the program and the children it waited for, from
 * wait4(); ratios are to the untraced median of this run, traced ones as median [min..max] of the
 * per-round ratios.
 *
 * Usage: real_programs LIBTRACEMALLOC_SO [--quick] [--rounds R] [--no-tools]
 *        TM_BENCH_QUICK=1 is --quick (3 rounds, no valgrind). Exit status 0 when the run completed
 *        (figures are printed, not asserted), 1 when a program failed under the tracer while it
 *        ran untraced, 2 on usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define MAX_ROUNDS 31
#define MAX_ARGS 16

typedef struct program {
  const char *name;
  const char *argv[MAX_ARGS]; /* argv[0] is looked up in PATH unless absolute; "@" = the work dir */
  const char *stdin_file;     /* relative to the work dir, or NULL */
  const char *extra_env;      /* one more NAME=VALUE, or NULL */
} program;

static char workdir[] = "/tmp/tm-real-XXXXXX";

static bool write_file(const char *name, void (*gen)(FILE *)) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", workdir, name);
  FILE *f = fopen(path, "w");
  if (f == NULL)
    return false;
  gen(f);
  return fclose(f) == 0;
}

static void gen_json(FILE *f) {
  fputs("[", f);
  for (int i = 0; i < 60000; i++)
    fprintf(f, "%s{\"id\":%d,\"name\":\"item %d\",\"tags\":[\"t%d\",\"u%d\"],\"v\":%d.5}",
            i ? "," : "", i, i, i % 17, i % 5, i);
  fputs("]\n", f);
}

static void gen_sql(FILE *f) {
  fputs("CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, grp INTEGER, v REAL);\n"
        "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 200000)\n"
        "INSERT INTO t SELECT i, 'name ' || i || hex(randomblob(8)), i % 97, i * 1.5 FROM c;\n"
        "CREATE INDEX t_name ON t(name);\n"
        "SELECT grp, count(*), sum(v), max(name) FROM t GROUP BY grp ORDER BY 3 DESC LIMIT 3;\n"
        "SELECT count(DISTINCT substr(name, 1, 9)) FROM t;\n",
        f);
}

static void gen_py(FILE *f) {
  fputs("d = {}\n"
        "for i in range(200000):\n"
        "    d['key%d' % i] = [i, str(i) * 3, {'x': i}]\n"
        "s = sorted(d.items(), key=lambda kv: kv[1][1])\n"
        "print(len(s), sum(len(v[1]) for k, v in s[:1000]))\n",
        f);
}

static void gen_c(FILE *f) {
  fputs("#include <stdlib.h>\n#include <string.h>\nstruct node { struct node *next; int v; char "
        "name[16]; };\n",
        f);
  for (int i = 0; i < 400; i++)
    fprintf(f,
            "int f%d(struct node *n, int k) {\n"
            "  int s = %d;\n"
            "  for (int j = 0; j < k; j++) {\n"
            "    struct node *m = malloc(sizeof *m);\n"
            "    if (!m) return -1;\n"
            "    m->next = n; m->v = j * %d + s; memcpy(m->name, \"abc\", 4);\n"
            "    n = m; s += n->v %% (j + %d);\n"
            "    if (s > %d) s -= f%d(n->next, k / 2);\n"
            "  }\n"
            "  while (n) { struct node *x = n->next; s ^= n->v; free(n); n = x; }\n"
            "  return s;\n"
            "}\n",
            i, i, i + 3, i + 1, 1000 + i, i > 0 ? i - 1 : 0);
}

/* Runs argv with env, stdin from stdin_path (or /dev/null), stdout and stderr to /dev/null.
 * Returns its CPU time in seconds and stores its exit status, or returns -1 when it could not run. */
static double run(const char *const *argv, char *const *env, const char *stdin_path, int *status) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, stdin_path ? stdin_path : "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid;
  int err = posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, env);
  posix_spawn_file_actions_destroy(&fa);
  if (err != 0)
    return -1;
  struct rusage ru;
  if (wait4(pid, status, 0, &ru) != pid)
    return -1;
  return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
         ru.ru_stime.tv_usec / 1e6;
}

/* The environment: ours without LD_PRELOAD / TRACEMALLOC, plus up to three more entries. */
static char **make_env(const char *a, const char *b, const char *c) {
  size_t n = 0;
  while (environ[n] != NULL)
    n++;
  char **env = calloc(n + 4, sizeof *env);
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (strncmp(environ[i], "LD_PRELOAD=", 11) != 0 && strncmp(environ[i], "TRACEMALLOC=", 12) != 0)
      env[k++] = environ[i];
  if (a)
    env[k++] = (char *)a;
  if (b)
    env[k++] = (char *)b;
  if (c)
    env[k++] = (char *)c;
  env[k] = NULL;
  return env;
}

static bool installed(const char *cmd) {
  if (cmd[0] == '/')
    return access(cmd, X_OK) == 0;
  const char *path = getenv("PATH");
  if (path == NULL)
    return false;
  char buf[1024];
  for (const char *p = path; *p;) {
    const char *e = strchr(p, ':');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    snprintf(buf, sizeof buf, "%.*s/%s", (int)len, p, cmd);
    if (access(buf, X_OK) == 0)
      return true;
    p += len + (e != NULL);
  }
  return false;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median_of(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv) {
  const char *lib = NULL;
  bool quick = getenv("TM_BENCH_QUICK") != NULL && strcmp(getenv("TM_BENCH_QUICK"), "1") == 0;
  bool tools = true;
  int rounds = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--quick") == 0)
      quick = true;
    else if (strcmp(argv[i], "--no-tools") == 0)
      tools = false;
    else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
      rounds = atoi(argv[++i]);
    else if (lib == NULL && argv[i][0] != '-')
      lib = argv[i];
    else
      lib = NULL, i = argc;
  }
  if (lib == NULL) {
    fprintf(stderr, "usage: real_programs LIBTRACEMALLOC_SO [--quick] [--rounds R] [--no-tools]\n");
    return 2;
  }
  if (rounds <= 0)
    rounds = quick ? 3 : 5;
  if (rounds > MAX_ROUNDS)
    rounds = MAX_ROUNDS;
  char preload[1200];
  char abs_lib[1024];
  if (realpath(lib, abs_lib) == NULL) {
    fprintf(stderr, "real_programs: %s: %s\n", lib, strerror(errno));
    return 2;
  }
  snprintf(preload, sizeof preload, "LD_PRELOAD=%s", abs_lib);
  if (mkdtemp(workdir) == NULL) {
    perror("real_programs: mkdtemp");
    return 1;
  }
  char json[600], sql[600], py[600], csrc[600], obj[600], cpp_out[600], cc1[600] = "cc1";
  snprintf(json, sizeof json, "%s/in.json", workdir);
  snprintf(sql, sizeof sql, "%s/in.sql", workdir);
  snprintf(py, sizeof py, "%s/in.py", workdir);
  snprintf(csrc, sizeof csrc, "%s/in.c", workdir);
  snprintf(obj, sizeof obj, "%s/in.s", workdir);
  snprintf(cpp_out, sizeof cpp_out, "%s/in.i", workdir);
  if (!write_file("in.json", gen_json) || !write_file("in.sql", gen_sql) ||
      !write_file("in.py", gen_py) || !write_file("in.c", gen_c)) {
    perror("real_programs: writing inputs");
    return 1;
  }
  if (installed("gcc")) { /* cc1's path, and its input preprocessed */
    FILE *f = popen("gcc -print-prog-name=cc1", "r");
    if (f != NULL) {
      if (fgets(cc1, sizeof cc1, f) != NULL)
        cc1[strcspn(cc1, "\n")] = '\0';
      pclose(f);
    }
    const char *cpp_argv[] = {"gcc", "-E", csrc, "-o", cpp_out, NULL};
    int st = 0;
    char **env = make_env(NULL, NULL, NULL);
    if (run(cpp_argv, env, NULL, &st) < 0 || st != 0)
      snprintf(cc1, sizeof cc1, "cc1"); /* reported as not installed below */
    free(env);
  }
  program programs[] = {
      {"jq", {"jq", "-c", "map(select(.id % 3 == 0) | {id, n: (.name | ascii_upcase), "
              "t: (.tags | join(\",\"))}) | length", json}, NULL, NULL},
      {"sqlite3", {"sqlite3", ":memory:"}, sql, NULL},
      {"python3", {"/usr/bin/python3", py}, NULL, "PYTHONMALLOC=malloc"},
      {"cc1", {cc1, "-quiet", "-O2", cpp_out, "-o", obj}, NULL, NULL},
  };
  int nprograms = (int)(sizeof programs / sizeof programs[0]);
  bool have_heaptrack = tools && installed("heaptrack");
  bool have_valgrind = tools && !quick && installed("valgrind");
  bool failed = false;

  printf("real_programs: CPU time (user + system, with waited-for children), %d interleaved rounds;"
         " traced = LD_PRELOAD=libtracemalloc.so TRACEMALLOC=25\n", rounds);
  if (!have_heaptrack)
    printf("  heaptrack: %s\n", tools ? "not installed, skipped" : "skipped (--no-tools)");
  if (!have_valgrind)
    printf("  valgrind: %s\n",
           !tools ? "skipped (--no-tools)" : quick ? "skipped (--quick)" : "not installed, skipped");
  printf("%-9s %10s   %-20s %10s %10s\n", "program", "untraced", "traced", "heaptrack",
         "valgrind");
  for (int p = 0; p < nprograms; p++) {
    program *pr = &programs[p];
    if (!installed(pr->argv[0])) {
      printf("%-9s skipped: %s is not installed\n", pr->name, pr->argv[0]);
      continue;
    }
    char **plain = make_env(pr->extra_env, NULL, NULL);
    char **traced = make_env(pr->extra_env, preload, "TRACEMALLOC=25");
    double t_plain[MAX_ROUNDS], ratio[MAX_ROUNDS];
    int status = 0;
    bool ok = true;
    for (int k = 0; k < rounds && ok; k++) {
      double a, b;
      int st2 = 0;
      if (k % 2 == 0) {
        a = run(pr->argv, plain, pr->stdin_file ? sql : NULL, &status);
        b = run(pr->argv, traced, pr->stdin_file ? sql : NULL, &st2);
      } else {
        b = run(pr->argv, traced, pr->stdin_file ? sql : NULL, &st2);
        a = run(pr->argv, plain, pr->stdin_file ? sql : NULL, &status);
      }
      if (a < 0 || status != 0) {
        printf("%-9s skipped: it does not run here untraced (status %d)\n", pr->name, status);
        ok = false;
      } else if (b < 0 || st2 != 0) {
        printf("%-9s FAILED under the tracer (status %d)\n", pr->name, st2);
        failed = true;
        ok = false;
      } else {
        t_plain[k] = a;
        ratio[k] = b / a;
      }
    }
    if (ok) {
      double lo = ratio[0], hi = ratio[0];
      for (int k = 1; k < rounds; k++) {
        lo = ratio[k] < lo ? ratio[k] : lo;
        hi = ratio[k] > hi ? ratio[k] : hi;
      }
      double base = median_of(t_plain, rounds);
      printf("%-9s %8.0fms   %5.2fx [%4.2f..%4.2f]", pr->name, base * 1e3, median_of(ratio, rounds),
             lo, hi);
      const char *targv[MAX_ARGS + 8];
      if (have_heaptrack) {
        int n = 0;
        targv[n++] = "heaptrack";
        targv[n++] = "-o";
        char out[700];
        snprintf(out, sizeof out, "%s/heaptrack.%s", workdir, pr->name);
        targv[n++] = out;
        for (int j = 0; pr->argv[j] != NULL; j++)
          targv[n++] = pr->argv[j];
        targv[n] = NULL;
        double t = run(targv, plain, pr->stdin_file ? sql : NULL, &status);
        if (t > 0 && status == 0)
          printf(" %9.2fx", t / base);
        else
          printf(" %10s", "failed");
      } else {
        printf(" %10s", "-");
      }
      if (have_valgrind) {
        int n = 0;
        targv[n++] = "valgrind";
        targv[n++] = "--quiet";
        targv[n++] = "--leak-check=no";
        targv[n++] = "--trace-children=yes";
        for (int j = 0; pr->argv[j] != NULL; j++)
          targv[n++] = pr->argv[j];
        targv[n] = NULL;
        double t = run(targv, plain, pr->stdin_file ? sql : NULL, &status);
        if (t > 0 && status == 0)
          printf(" %9.2fx", t / base);
        else
          printf(" %10s", "failed");
      } else {
        printf(" %10s", "-");
      }
      printf("\n");
      fflush(stdout);
    }
    free(plain);
    free(traced);
  }
  /* Clean up the work dir. */
  const char *names[] = {"in.json", "in.sql", "in.py", "in.c", "in.i", "in.s"};
  char path[700];
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    snprintf(path, sizeof path, "%s/%s", workdir, names[i]);
    unlink(path);
  }
  const char *ht[] = {"jq", "sqlite3", "python3", "cc1"};
  for (size_t i = 0; i < 4; i++) {
    snprintf(path, sizeof path, "%s/heaptrack.%s.zst", workdir, ht[i]);
    unlink(path);
    snprintf(path, sizeof path, "%s/heaptrack.%s.gz", workdir, ht[i]);
    unlink(path);
  }
  rmdir(workdir);
  return failed ? 1 : 0;
}
