/* test_tool_run.c — `tracemalloc run` on a program that forks and execs, then `stats` and
 * `compare` on its dumps: file:line, sizes, counts, exit statuses, and every error case. */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <unistd.h>

#include "run_suite.h"
#include "tool_harness.h"

static const char *tool, *forker, *forker_src;

/* "SRC:LINE" of a SITE marker of forker.c. */
static char *site(const char *marker) {
  char *comment = g_strdup_printf("/* %s */", marker);
  char *s = g_strdup_printf("%s:%d", forker_src, tool_marker_line(forker_src, comment));
  g_free(comment);
  return s;
}

/* Runs `tracemalloc run -o DIR/%e.%p.%n.dump [opts] -- forker [arg]`. */
static tool_run run_forker(const char *dir, const char *opt, const char *arg) {
  char *pattern = g_build_filename(dir, "%e.%p.%n.dump", NULL);
  const char *argv[10];
  int n = 0;
  argv[n++] = tool;
  argv[n++] = "run";
  argv[n++] = "-o";
  argv[n++] = pattern;
  if (opt != NULL)
    argv[n++] = opt;
  argv[n++] = "--";
  argv[n++] = forker;
  if (arg != NULL)
    argv[n++] = arg;
  argv[n] = NULL;
  tool_run r = tool_spawn(NULL, argv);
  g_free(pattern);
  return r;
}

/* `tracemalloc stats DUMP --include *forker.c [more]`: stdout; asserts exit status 0. */
static char *stats_of(const char *dump, const char *more) {
  const char *argv[] = {tool, "stats", dump, "--include", "*forker.c", more, NULL};
  tool_run r = tool_spawn(NULL, argv);
  ck_assert_msg(r.status == 0, "stats %s: status %d, %s", dump, r.status, r.err);
  ck_assert_str_eq(r.err, "");
  g_free(r.err);
  return r.out;
}

/* The one dump among files whose forker.c statistics are exactly expect; NULL when none. */
static const char *dump_with(GPtrArray *files, const char *expect) {
  for (guint i = 0; i < files->len; i++) {
    char *out = stats_of(files->pdata[i], NULL);
    bool same = strcmp(out, expect) == 0;
    g_free(out);
    if (same)
      return files->pdata[i];
  }
  return NULL;
}

START_TEST(test_run_follows_fork_and_exec) {
  char *dir = tool_tmpdir();
  tool_run r = run_forker(dir, NULL, NULL);
  ck_assert_msg(r.status == 0, "status %d: %s", r.status, r.err);
  ck_assert_msg(strstr(r.err, "tracemalloc: 3 dumps written\n") != NULL, "%s", r.err);
  GPtrArray *files = tool_files(dir, ".dump");
  ck_assert_int_eq(files->len, 3);
  char *parent = site("SITE_PARENT"), *child = site("SITE_CHILD"), *exec = site("SITE_EXEC");
  char *expect_parent =
      g_strdup_printf("[ Top 10 ]\n%s: size=1000 B, count=10, average=100 B\n", parent);
  char *expect_child = g_strdup_printf("[ Top 10 ]\n%s: size=1000 B, count=10, average=100 B\n"
                                       "%s: size=1000 B, count=5, average=200 B\n",
                                       parent, child);
  char *expect_exec =
      g_strdup_printf("[ Top 10 ]\n%s: size=900 B, count=3, average=300 B\n", exec);
  const char *pd = dump_with(files, expect_parent), *cd = dump_with(files, expect_child),
             *ed = dump_with(files, expect_exec);
  ck_assert_msg(pd != NULL && cd != NULL && ed != NULL, "parent %s child %s exec %s", pd, cd, ed);
  /* The report names every dump, and shows the program's own top lines. */
  for (guint i = 0; i < files->len; i++)
    ck_assert_msg(strstr(r.err, strrchr(files->pdata[i], '/') + 1) != NULL, "%s", r.err);
  char *top = g_strdup_printf("(pid %s, exit):\n[ Top 10 ]\n", strchr(strrchr(pd, '/'), '.') + 1);
  *strchr(top + 5, '.') = '\0';
  char *top_full = g_strdup_printf("%s, exit):\n[ Top 10 ]\n", top);
  ck_assert_msg(strstr(r.err, top_full) != NULL, "no '%s' in %s", top_full, r.err);
  ck_assert_msg(strstr(r.err, expect_parent + strlen("[ Top 10 ]\n")) != NULL, "%s", r.err);
  g_free(top);
  g_free(top_full);

  /* --traceback: Python's "Get the traceback of a memory block". */
  char *src_dir = g_path_get_dirname(forker_src);
  char *root = g_strdup_printf("--source-root=%s", src_dir);
  const char *tb_argv[] = {tool, "stats", ed, "--include", "*forker.c", "--traceback", root, NULL};
  tool_run tb = tool_spawn(NULL, tb_argv);
  ck_assert_int_eq(tb.status, 0);
  char *out = tb.out;
  g_free(tb.err);
  g_free(root);
  g_free(src_dir);
  int exec_line = tool_marker_line(forker_src, "/* SITE_EXEC */");
  /* With --source-root: file names relative to it, and source lines. */
  char *expect = g_strdup_printf(
      "[ Top 10 ]\n3 memory blocks: 0.9 KiB\n  File \"forker.c\", line %d, in exec_blocks\n"
      "    keep[40 + i] = malloc(300); /* SITE_EXEC */\n",
      exec_line);
  ck_assert_msg(g_str_has_prefix(out, expect), "got:\n%s\nexpected first:\n%s", out, expect);
  g_free(out);
  g_free(expect);
  /* Without: the names as recorded, and no source line (a dump is data). */
  out = stats_of(ed, "--traceback");
  expect = g_strdup_printf("[ Top 10 ]\n3 memory blocks: 0.9 KiB\n"
                           "  File \"%s\", line %d, in exec_blocks\n",
                           forker_src, exec_line);
  ck_assert_str_eq(out, expect);
  g_free(out);
  g_free(expect);

  /* --key filename, --cumulative (every frame credited: main's calls too), --exclude. */
  char *av_file[] = {(char *)tool, "stats", (char *)cd, "--key", "filename", "--include",
                     "*forker.c", NULL};
  tool_run k = tool_spawn(NULL, (const char *const *)av_file);
  ck_assert_int_eq(k.status, 0);
  expect = g_strdup_printf("[ Top 10 ]\n%s:0: size=2000 B, count=15, average=133 B\n", forker_src);
  ck_assert_str_eq(k.out, expect);
  g_free(expect);
  tool_run_clear(&k);
  char *call_parent = site("CALL_PARENT"), *call_child = site("CALL_CHILD");
  out = stats_of(cd, "--cumulative");
  const char *lines[] = {call_parent, parent, call_child, child};
  for (size_t i = 0; i < G_N_ELEMENTS(lines); i++) {
    char *line = g_strdup_printf("\n%s: size=1000 B, count=%d, average=%d B\n", lines[i],
                                 i < 2 ? 10 : 5, i < 2 ? 100 : 200);
    ck_assert_msg(strstr(out, line) != NULL, "no '%s' in\n%s", line + 1, out);
    g_free(line);
  }
  g_free(out);
  g_free(call_parent);
  g_free(call_child);
  const char *av_ex[] = {tool, "stats", cd, "--exclude", "*forker.c", "--limit", "0", NULL};
  k = tool_spawn(NULL, av_ex);
  ck_assert_int_eq(k.status, 0);
  ck_assert_msg(g_str_has_prefix(k.out, "[ Top ") && strstr(k.out, "forker.c") == NULL, "%s", k.out);
  tool_run_clear(&k);

  /* compare: the child holds what the parent does, plus its own. */
  const char *argv[] = {tool, "compare", cd, pd, "--include", "*forker.c", NULL};
  tool_run c = tool_spawn(NULL, argv);
  ck_assert_int_eq(c.status, 0);
  expect = g_strdup_printf("[ Top 10 differences ]\n"
                           "%s: size=1000 B (+1000 B), count=5 (+5), average=200 B\n"
                           "%s: size=1000 B (+0 B), count=10 (+0), average=100 B\n",
                           child, parent);
  ck_assert_str_eq(c.out, expect);
  g_free(expect);
  tool_run_clear(&c);

  g_free(expect_parent);
  g_free(expect_child);
  g_free(expect_exec);
  g_free(parent);
  g_free(child);
  g_free(exec);
  g_ptr_array_unref(files);
  tool_run_clear(&r);
  tool_rmdir(dir);
  g_free(dir);
}
END_TEST

/* Two runs of `forker grow N`: dumps to compare. */
static void grow_dumps(const char *dir, char **old_dump, char **new_dump) {
  for (int i = 0; i < 2; i++) {
    char *sub = g_build_filename(dir, i == 0 ? "old" : "new", NULL);
    g_mkdir(sub, 0700);
    char *pattern = g_build_filename(sub, "%e.%p.%n.dump", NULL);
    const char *argv[] = {tool, "run", "-o", pattern, "--", forker, "grow", i == 0 ? "3" : "7",
                          NULL};
    tool_run r = tool_spawn(NULL, argv);
    ck_assert_msg(r.status == 0, "%s", r.err);
    GPtrArray *files = tool_files(sub, ".dump");
    ck_assert_int_eq(files->len, 1);
    *(i == 0 ? old_dump : new_dump) = g_strdup(files->pdata[0]);
    g_ptr_array_unref(files);
    tool_run_clear(&r);
    g_free(pattern);
    g_free(sub);
  }
}

START_TEST(test_compare_fail_over) {
  char *dir = tool_tmpdir(), *old_dump = NULL, *new_dump = NULL;
  grow_dumps(dir, &old_dump, &new_dump);
  char *grow = site("SITE_GROW");
  char *line = g_strdup_printf(
      "[ Top 10 differences ]\n%s: size=7168 B (+4096 B), count=7 (+4), average=1024 B\n", grow);
  static const struct {
    const char *size;
    int status;
  } cases[] = {{"4KiB", 0}, {"4 KiB", 0}, {"4096", 0}, {"4095", 1}, {"1 KiB", 1}, {"0", 1},
               {"4 KB", 2}, {"4k", 2},    {"KiB", 2},  {"-1", 2},   {"4 KiB x", 2}};
  for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
    const char *argv[] = {tool, "compare", new_dump, old_dump, "--include", "*forker.c",
                          "--fail-over", cases[i].size, NULL};
    tool_run r = tool_spawn(NULL, argv);
    ck_assert_msg(r.status == cases[i].status, "--fail-over '%s': status %d, expected %d: %s",
                  cases[i].size, r.status, cases[i].status, r.err);
    if (cases[i].status == 2) {
      ck_assert_str_eq(r.out, "");
      ck_assert_int_eq(tool_count_lines(r.err), 1);
      ck_assert_msg(strstr(r.err, "is not a size") != NULL, "%s", r.err);
    } else {
      ck_assert_str_eq(r.out, line);
      ck_assert_int_eq(tool_count_lines(r.err), cases[i].status);
    }
    tool_run_clear(&r);
  }
  /* Without --include, the rest of the program is there too, the growth stays first. */
  const char *argv[] = {tool, "compare", new_dump, old_dump, "--limit", "1", NULL};
  tool_run r = tool_spawn(NULL, argv);
  ck_assert_int_eq(r.status, 0);
  char *first = g_strdup_printf(
      "[ Top 1 differences ]\n%s: size=7168 B (+4096 B), count=7 (+4), average=1024 B\n", grow);
  ck_assert_str_eq(r.out, first);
  g_free(first);
  tool_run_clear(&r);
  g_free(line);
  g_free(grow);
  g_free(old_dump);
  g_free(new_dump);
  tool_rmdir(dir);
  tool_rmdir(dir);
  g_free(dir);
}
END_TEST

START_TEST(test_run_crash_dumps) {
  char *dir = tool_tmpdir();
  tool_run r = run_forker(dir, NULL, "crash");
  ck_assert_int_eq(r.status, 128 + SIGSEGV);
  ck_assert_msg(strstr(r.err, ", SIGSEGV)") != NULL, "%s", r.err);
  ck_assert_msg(strstr(r.err, "was killed by SIGSEGV") != NULL, "%s", r.err);
  GPtrArray *files = tool_files(dir, ".dump");
  ck_assert_int_eq(files->len, 1);
  char *out = stats_of(files->pdata[0], NULL), *parent = site("SITE_PARENT");
  char *expect = g_strdup_printf("[ Top 10 ]\n%s: size=1000 B, count=10, average=100 B\n", parent);
  ck_assert_str_eq(out, expect);
  g_free(expect);
  g_free(parent);
  g_free(out);
  g_ptr_array_unref(files);
  tool_run_clear(&r);
  tool_rmdir(dir);
  g_free(dir);
}
END_TEST

START_TEST(test_run_peak) {
  char *dir = tool_tmpdir();
  tool_run r = run_forker(dir, "--peak", "peak");
  ck_assert_msg(r.status == 0, "%s", r.err);
  ck_assert_msg(strstr(r.err, ", peak)") != NULL, "%s", r.err);
  GPtrArray *files = tool_files(dir, ".dump");
  ck_assert_int_eq(files->len, 1);
  char *out = stats_of(files->pdata[0], NULL), *peak = site("SITE_PEAK");
  char *parent = site("SITE_PARENT");
  char *expect = g_strdup_printf("[ Top 10 ]\n%s: size=1000 KiB, count=100, average=10.0 KiB\n"
                                 "%s: size=1000 B, count=10, average=100 B\n",
                                 peak, parent);
  ck_assert_str_eq(out, expect);
  g_free(expect);
  g_free(peak);
  g_free(parent);
  g_free(out);
  g_ptr_array_unref(files);
  tool_run_clear(&r);
  tool_rmdir(dir);
  g_free(dir);
}
END_TEST

/* Waits until dir holds n complete dumps (30 s at most): a name is reserved empty, and the dump
 * renamed over it once written. */
static bool dumps_wait(const char *dir, guint n) {
  for (int i = 0; i < 3000; i++) {
    GPtrArray *files = tool_files(dir, ".dump");
    guint complete = 0;
    for (guint f = 0; f < files->len; f++) {
      GStatBuf st;
      if (g_stat(files->pdata[f], &st) == 0 && st.st_size > 0)
        complete++;
    }
    g_ptr_array_unref(files);
    if (complete >= n)
      return true;
    g_usleep(10000);
  }
  return false;
}

START_TEST(test_run_signal) {
  char *dir = tool_tmpdir();
  char *pattern = g_build_filename(dir, "%e.%p.%n.dump", NULL);
  const char *argv[] = {tool, "run", "--signal", "SIGUSR2", "-o", pattern, "--", forker, "wait",
                        NULL};
  GPid pid;
  int out_fd, err_fd;
  GError *error = NULL;
  ck_assert(g_spawn_async_with_pipes(NULL, (char **)argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD, NULL,
                                     NULL, &pid, NULL, &out_fd, &err_fd, &error));
  char buf[64] = "";
  ck_assert_int_gt(read(out_fd, buf, sizeof buf - 1), 0); /* "ready": tracing, blocks live */
  ck_assert_str_eq(buf, "ready\n");
  kill(pid, SIGUSR2); /* passed on to the program */
  ck_assert_msg(dumps_wait(dir, 1), "no dump after SIGUSR2");
  kill(pid, SIGTERM);
  int status;
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert(WIFEXITED(status));
  ck_assert_int_eq(WEXITSTATUS(status), 128 + SIGTERM);
  GString *err = g_string_new(NULL);
  ssize_t n;
  while ((n = read(err_fd, buf, sizeof buf)) > 0)
    g_string_append_len(err, buf, n);
  ck_assert_msg(strstr(err->str, "tracemalloc: 2 dumps written\n") != NULL, "%s", err->str);
  ck_assert_msg(strstr(err->str, ", signal)\n") != NULL, "%s", err->str);
  ck_assert_msg(strstr(err->str, ", SIGTERM)\n") != NULL, "%s", err->str);
  GPtrArray *files = tool_files(dir, ".dump");
  ck_assert_int_eq(files->len, 2);
  char *parent = site("SITE_PARENT");
  char *expect = g_strdup_printf("[ Top 10 ]\n%s: size=1000 B, count=10, average=100 B\n", parent);
  for (guint i = 0; i < files->len; i++) {
    /* "ready" was printed through forker.c: stdout's buffer is there too. */
    char *out = stats_of(files->pdata[i], NULL);
    ck_assert_msg(strstr(out, expect + strlen("[ Top 10 ]\n")) != NULL, "%s", out);
    g_free(out);
  }
  g_free(expect);
  g_free(parent);
  g_ptr_array_unref(files);
  g_string_free(err, true);
  close(out_fd);
  close(err_fd);
  g_spawn_close_pid(pid);
  g_free(pattern);
  tool_rmdir(dir);
  g_free(dir);
}
END_TEST

/* A Check suite in CK_FORK=yes mode: a dump per test child and one of the runner. */
START_TEST(test_run_check_suite) {
  const char *suite = tool_env("CHECK_FORKER"), *src = tool_env("CHECK_FORKER_SRC");
  char *dir = tool_tmpdir();
  char *pattern = g_build_filename(dir, "%e.%p.%n.dump", NULL);
  const char *argv[] = {tool, "run", "-o", pattern, "--", "env", "CK_FORK=yes", suite, NULL};
  tool_run r = tool_spawn(NULL, argv);
  ck_assert_msg(r.status == 0, "%s", r.err);
  GPtrArray *files = tool_files(dir, ".dump");
  /* env, exec'ed into the suite (same pid: one dump), and its two test children. */
  ck_assert_msg(files->len == 3, "%u dumps: %s", files->len, r.err);
  int found = 0;
  for (guint i = 0; i < files->len; i++) {
    const char *av[] = {tool, "stats", files->pdata[i], "--include", "*check_forker.c", NULL};
    tool_run s = tool_spawn(NULL, av);
    ck_assert_int_eq(s.status, 0);
    char *one = g_strdup_printf("%s:%d: size=111 B, count=1, average=111 B\n", src,
                                tool_marker_line(src, "/* SITE_ONE */"));
    char *two = g_strdup_printf("%s:%d: size=222 B, count=1, average=222 B\n", src,
                                tool_marker_line(src, "/* SITE_TWO */"));
    found |= (strstr(s.out, one) != NULL) | (strstr(s.out, two) != NULL) << 1;
    g_free(one);
    g_free(two);
    tool_run_clear(&s);
  }
  ck_assert_int_eq(found, 3);
  g_ptr_array_unref(files);
  g_free(pattern);
  tool_run_clear(&r);
  tool_rmdir(dir);
  g_free(dir);
}
END_TEST

/* Each error: one line on stderr, nothing on stdout, status 2. */
static void expect_error(const char *const *argv, const char *needle) {
  tool_run r = tool_spawn(NULL, argv);
  ck_assert_msg(r.status == 2, "%s %s: status %d (%s)", argv[1], argv[2], r.status, r.err);
  ck_assert_msg(tool_count_lines(r.err) == 1 && g_str_has_prefix(r.err, "tracemalloc: "),
                "not one line: %s", r.err);
  ck_assert_msg(strstr(r.err, needle) != NULL, "no '%s' in %s", needle, r.err);
  ck_assert_str_eq(r.out, "");
  tool_run_clear(&r);
}

START_TEST(test_errors) {
  char *dir = tool_tmpdir();
  char *missing = g_build_filename(dir, "missing.dump", NULL);
  char *corrupt = g_build_filename(dir, "corrupt.dump", NULL);
  char *garbage = g_build_filename(dir, "garbage.dump", NULL);
  ck_assert(g_file_set_contents(garbage, "not a dump at all, not at all\n", -1, NULL));
  ck_assert(g_file_set_contents(corrupt, "TMDUMP\x01\x00\x04\x03\x02\x01", 12, NULL));
  const char *e1[] = {tool, "stats", missing, NULL};
  expect_error(e1, "missing.dump");
  const char *e2[] = {tool, "stats", corrupt, NULL};
  expect_error(e2, "corrupt.dump");
  const char *e3[] = {tool, "stats", garbage, NULL};
  expect_error(e3, "garbage.dump");
  const char *e4[] = {tool, "stats", "--bogus", garbage, NULL};
  expect_error(e4, "--bogus");
  const char *e5[] = {tool, "compare", garbage, missing, NULL};
  expect_error(e5, "garbage.dump");
  const char *e6[] = {tool, "flamegraph", missing, NULL};
  expect_error(e6, "missing.dump");
  const char *e7[] = {tool, "stats", "--key", "nope", garbage, NULL};
  expect_error(e7, "--key nope");
  const char *e8[] = {tool, "stats", NULL};
  expect_error(e8, "expected one dump file");
  const char *e9[] = {tool, "frobnicate", NULL};
  expect_error(e9, "unknown command 'frobnicate'");
  const char *e10[] = {tool, "run", "--", "/nonexistent/prog", NULL};
  expect_error(e10, "no such program");
  const char *e11[] = {tool, "run", "--signal", "SIGNOPE", "--", "true", NULL};
  expect_error(e11, "--signal SIGNOPE");
  const char *e12[] = {tool, "run", "-n", "0", "--", "true", NULL};
  expect_error(e12, "--nframe 0");
  const char *e13[] = {tool, "run", NULL};
  expect_error(e13, "no program to run");
  const char *e14[] = {tool, "compare", garbage, garbage, "--fail-over", "4 KB", NULL};
  expect_error(e14, "'4 KB' is not a size");
  const char *e15[] = {tool, "stats", "--limit", "x", garbage, NULL};
  expect_error(e15, "--limit");
  const char *e16[] = {tool, "stats", "--include", "[", garbage, NULL};
  expect_error(e16, "garbage.dump"); /* the file is read first */
  const char *e17[] = {tool, "run", "-o", "/nonexistent/dir/%p.dump", "--", "true", NULL};
  expect_error(e17, "does not exist");
  g_free(missing);
  g_free(corrupt);
  g_free(garbage);
  tool_rmdir(dir);
  g_free(dir);
}
END_TEST

START_TEST(test_help) {
  const char *none[] = {tool, NULL};
  tool_run r = tool_spawn(NULL, none);
  ck_assert_int_eq(r.status, 2);
  ck_assert_str_eq(r.out, "");
  for (const char *const *c = (const char *const[]){"run ", "stats ", "compare ", "flamegraph ",
                                                       NULL};
       *c != NULL; c++)
    ck_assert_msg(strstr(r.err, *c) != NULL, "help lacks %s", *c);
  tool_run_clear(&r);
  const char *help[] = {tool, "--help", NULL};
  r = tool_spawn(NULL, help);
  ck_assert_int_eq(r.status, 0);
  ck_assert_str_eq(r.err, "");
  ck_assert_msg(strstr(r.out, "Commands:") != NULL, "%s", r.out);
  tool_run_clear(&r);
  static const char *const commands[] = {"run", "stats", "compare", "flamegraph"};
  for (size_t i = 0; i < G_N_ELEMENTS(commands); i++) {
    const char *argv[] = {tool, commands[i], "--help", NULL};
    r = tool_spawn(NULL, argv);
    ck_assert_int_eq(r.status, 0);
    char *usage = g_strdup_printf("tracemalloc %s [OPTION", commands[i]);
    ck_assert_msg(strstr(r.out, usage) != NULL, "%s", r.out);
    g_free(usage);
    tool_run_clear(&r);
  }
}
END_TEST

/* Progress: on a terminal (script(1) gives a pseudo-terminal) the line shows and is erased at the
 * end; with stderr on a pipe nothing shows. TRACEMALLOC_PROGRESS_AFTER_MS=0 shows it at once. */
START_TEST(test_progress) {
  char *script = g_find_program_in_path("script");
  if (script == NULL) {
    fprintf(stderr, "test_progress: no script(1) (util-linux): progress on a terminal not tested\n");
    return;
  }
  char *dir = tool_tmpdir();
  tool_run r = run_forker(dir, NULL, "grow");
  GPtrArray *files = tool_files(dir, ".dump");
  ck_assert_uint_ge(files->len, 1);
  g_setenv("TRACEMALLOC_PROGRESS_AFTER_MS", "0", true);
  char *cmd = g_strdup_printf("'%s' stats '%s' >/dev/null", tool, (char *)files->pdata[0]);
  const char *argv[] = {script, "-qec", cmd, "/dev/null", NULL};
  tool_run t = tool_spawn(NULL, argv);
  ck_assert_int_eq(t.status, 0);
  char *shown = g_strdup_printf("\rtracemalloc: reading %s... ", (char *)files->pdata[0]);
  ck_assert_msg(strstr(t.out, shown) != NULL && strstr(t.out, "\r\033[K") != NULL, "%s", t.out);
  const char *plain[] = {tool, "stats", files->pdata[0], NULL};
  tool_run q = tool_spawn(NULL, plain);
  ck_assert_int_eq(q.status, 0);
  ck_assert_str_eq(q.err, "");
  g_unsetenv("TRACEMALLOC_PROGRESS_AFTER_MS");
  tool_run_clear(&q);
  tool_run_clear(&t);
  tool_run_clear(&r);
  g_free(shown);
  g_free(cmd);
  g_free(script);
  g_ptr_array_unref(files);
  tool_rmdir(dir);
  g_free(dir);
}
END_TEST

int main(void) {
  tool = getenv("TRACEMALLOC_TOOL");
  forker = getenv("FORKER");
  forker_src = getenv("FORKER_SRC");
  if (tool == NULL || forker == NULL || forker_src == NULL) {
    fprintf(stderr, "TRACEMALLOC_TOOL, FORKER and FORKER_SRC must be set (meson test does)\n");
    return 99;
  }
  Suite *s = suite_create("tool_run");
  TCase *tc = tcase_create("run");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_run_follows_fork_and_exec);
  tcase_add_test(tc, test_compare_fail_over);
  tcase_add_test(tc, test_run_crash_dumps);
  tcase_add_test(tc, test_run_peak);
  tcase_add_test(tc, test_run_signal);
  tcase_add_test(tc, test_run_check_suite);
  tcase_add_test(tc, test_errors);
  tcase_add_test(tc, test_help);
  tcase_add_test(tc, test_progress);
  suite_add_tcase(s, tc);
  return run_suite(s);
}
