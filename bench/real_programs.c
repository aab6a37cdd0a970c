/* real_programs.c — the tracer under real programs, preloaded with TRACEMALLOC=25.
 *
 * Each program runs as installed on this machine (skipped with a message when it is not):
 *   jq        filters a generated 60,000-object JSON array
 *   sqlite3   builds, indexes and queries a 200,000-row table in memory
 *   python3   /usr/bin/python3 with PYTHONMALLOC=malloc, so its objects go through malloc: dicts,
 *             strings, a sort
 *   cc1       gcc's compiler proper on a generated 400-function C file, preprocessed beforehand
 *             (cc1 -quiet -O2: one process, so that every tool sees all of it)
 * in interleaved rounds (the order rotates every round) of:
 *   untraced
 *   traced     LD_PRELOAD=<libtracemalloc.so> TRACEMALLOC=25
 *   lsan       LD_PRELOAD=liblsan.so.0 (LeakSanitizer's runtime, what -fsanitize=leak links; it
 *              instruments no code, so preloading it is what a rebuild would run), with
 *              malloc_context_size=25 and its default frame-pointer unwinder
 *   heaptrack  `heaptrack`: the whole process tree, its interpreter process included
 * then once under valgrind (memcheck, no leak check), when these are installed. The figure is the
 * CPU time (user + system) of the program and the children it waited for, from wait4(); each
 * ratio is to the untraced run of the same round, printed as median [min..max] of the rounds.
 *
 * Usage: real_programs LIBTRACEMALLOC_SO [--quick] [--rounds R] [--no-tools]
 *        TM_BENCH_QUICK=1 is --quick (3 rounds, no valgrind). Exit status 0 when the run completed
 *        (figures are printed, not asserted), 1 when a program failed under the tracer while it
 *        ran untraced, 2 on usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "build_note.h"
#include "stats.h"
#include "subprocess.h"


#define MAX_ROUNDS 31
#define MAX_ARGS 16

enum { UNTRACED, TRACED, LSAN, HEAPTRACK, VALGRIND, NMODES };
static const char *const mode_names[NMODES] = {"untraced", "traced", "lsan", "heaptrack",
                                               "valgrind"};

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

/* Runs argv with env, stdin from stdin_path (or /dev/null), output discarded. Returns its CPU
 * time in seconds and stores its wait status, or returns -1 when it could not run. */
static double run(const char *const *argv, char *const *env, const char *stdin_path, int *status) {
  double cpu_s;
  if (bench_spawn_wait((char *const *)argv, env, stdin_path, NULL, status, &cpu_s) != 0)
    return -1;
  return cpu_s;
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
  if (bench_in_path("gcc")) { /* cc1's path, and its input preprocessed */
    FILE *f = popen("gcc -print-prog-name=cc1", "r");
    if (f != NULL) {
      if (fgets(cc1, sizeof cc1, f) != NULL)
        cc1[strcspn(cc1, "\n")] = '\0';
      pclose(f);
    }
    const char *cpp_argv[] = {"gcc", "-E", csrc, "-o", cpp_out, NULL};
    int st = 0;
    char **env = bench_env(NULL);
    if (run(cpp_argv, env, NULL, &st) < 0 || st != 0)
      snprintf(cc1, sizeof cc1, "cc1"); /* reported as not installed below */
    bench_env_free(env);
  }
  program programs[] = {
      {"jq", {"jq", "-c", "map(select(.id % 3 == 0) | {id, n: (.name | ascii_upcase), "
              "t: (.tags | join(\",\"))}) | length", json}, NULL, NULL},
      {"sqlite3", {"sqlite3", ":memory:"}, sql, NULL},
      {"python3", {"/usr/bin/python3", py}, NULL, "PYTHONMALLOC=malloc"},
      {"cc1", {cc1, "-quiet", "-O2", cpp_out, "-o", obj}, NULL, NULL},
  };
  int nprograms = (int)(sizeof programs / sizeof programs[0]);
  const char *lsan = tools ? bench_lsan_runtime() : NULL;
  char lsan_preload[1200] = "";
  if (lsan != NULL)
    snprintf(lsan_preload, sizeof lsan_preload, "LD_PRELOAD=%s", lsan);
  bool have[NMODES] = {true, true, lsan != NULL, tools && bench_in_path("heaptrack"),
                       tools && !quick && bench_in_path("valgrind")};
  bool failed = false;

  bench_print_build("real_programs");
  printf("real_programs: CPU time (user + system, with waited-for children), %d interleaved rounds;"
         " traced = LD_PRELOAD=libtracemalloc.so TRACEMALLOC=25; ratios to the untraced run of "
         "the same round, median [min..max]\n", rounds);
  for (int m = LSAN; m < NMODES; m++)
    if (!have[m])
      printf("  %s: %s\n", mode_names[m],
             !tools ? "skipped (--no-tools)"
             : m == VALGRIND && quick ? "skipped (--quick)"
                                      : "not installed, skipped");
  printf("%-9s %10s", "program", "untraced");
  for (int m = TRACED; m < NMODES; m++)
    printf("   %-21s", mode_names[m]);
  printf("\n");
  for (int p = 0; p < nprograms; p++) {
    program *pr = &programs[p];
    if (!bench_in_path(pr->argv[0])) {
      printf("%-9s skipped: %s is not installed\n", pr->name, pr->argv[0]);
      continue;
    }
    char out[700];
    snprintf(out, sizeof out, "%s/heaptrack.%s", workdir, pr->name);
    /* Each mode's extra environment, NULL-terminated: the program's own entry first. */
    const char *add[NMODES][4];
    for (int m = 0; m < NMODES; m++) {
      int n = 0;
      if (pr->extra_env != NULL)
        add[m][n++] = pr->extra_env;
      if (m == TRACED) {
        add[m][n++] = preload;
        add[m][n++] = "TRACEMALLOC=25";
      } else if (m == LSAN) {
        add[m][n++] = lsan_preload;
        add[m][n++] = "LSAN_OPTIONS=malloc_context_size=25:exitcode=0";
      }
      add[m][n] = NULL;
    }
    const char *argv_of[NMODES][MAX_ARGS + 8];
    for (int m = 0; m < NMODES; m++) {
      int n = 0;
      if (m == HEAPTRACK) {
        argv_of[m][n++] = "heaptrack";
        argv_of[m][n++] = "-o";
        argv_of[m][n++] = out;
      } else if (m == VALGRIND) {
        argv_of[m][n++] = "valgrind";
        argv_of[m][n++] = "--quiet";
        argv_of[m][n++] = "--leak-check=no";
        argv_of[m][n++] = "--trace-children=yes";
      }
      for (int j = 0; pr->argv[j] != NULL; j++)
        argv_of[m][n++] = pr->argv[j];
      argv_of[m][n] = NULL;
    }
    double t_plain[MAX_ROUNDS], ratio[NMODES][MAX_ROUNDS];
    int nratio[NMODES] = {0};
    bool ok = true, mode_ok[NMODES];
    for (int m = 0; m < NMODES; m++)
      mode_ok[m] = have[m];
    const char *in = pr->stdin_file ? sql : NULL;
    for (int k = 0; k < rounds && ok; k++) {
      double t[NMODES];
      int status[NMODES] = {0};
      for (int i = 0; i < VALGRIND; i++) { /* valgrind runs once, below */
        int m = (i + k) % VALGRIND;
        t[m] = -1;
        if (!mode_ok[m])
          continue;
        char **env = bench_env(add[m]);
        t[m] = run(argv_of[m], env, in, &status[m]);
        bench_env_free(env);
      }
      if (t[UNTRACED] < 0 || status[UNTRACED] != 0) {
        printf("%-9s skipped: it does not run here untraced (status %d)\n", pr->name,
               status[UNTRACED]);
        ok = false;
        break;
      }
      t_plain[k] = t[UNTRACED];
      for (int m = TRACED; m < VALGRIND; m++) {
        if (!mode_ok[m])
          continue;
        if (t[m] < 0 || status[m] != 0) {
          printf("%-9s %s under %s (status %d)\n", pr->name, m == TRACED ? "FAILED" : "failed",
                 mode_names[m], status[m]);
          failed |= m == TRACED;
          ok = m != TRACED;
          mode_ok[m] = false;
          continue;
        }
        ratio[m][nratio[m]++] = t[m] / t[UNTRACED];
      }
    }
    if (!ok)
      continue;
    if (mode_ok[VALGRIND]) {
      char **env = bench_env(add[VALGRIND]);
      int status = 0;
      double t = run(argv_of[VALGRIND], env, in, &status);
      bench_env_free(env);
      if (t > 0 && status == 0)
        ratio[VALGRIND][nratio[VALGRIND]++] = t / bench_median(t_plain, rounds);
    }
    printf("%-9s %8.0fms", pr->name, bench_median(t_plain, rounds) * 1e3);
    for (int m = TRACED; m < NMODES; m++)
      bench_print_ratio(ratio[m], nratio[m]);
    printf("\n");
    fflush(stdout);
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
