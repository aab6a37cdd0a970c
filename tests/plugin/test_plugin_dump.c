/* test_plugin_dump.c — TM_LEAK_DUMP_DIR: leak_suite runs in both fork modes with a dump directory;
 * each window that failed for its leak leaves <test>.dump there (no passing or otherwise failing
 * test does), and `tracemalloc stats` reads the leak's line from it. */
#include <glib/gstdio.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "harness.h"
#include "../run_suite.h"

static const char *suite_exe, *suite_src, *tool;

/* `tracemalloc stats path`: stdout, asserting status 0. */
static char *stats(const char *path) {
  const char *argv[] = {tool, "stats", path, NULL};
  char *out = NULL, *err = NULL;
  int status = 0;
  ck_assert(g_spawn_sync(NULL, (char **)argv, NULL, 0, NULL, NULL, &out, &err, &status, NULL));
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "stats %s: %s", path, err);
  g_free(err);
  return out;
}

static bool exists(const char *dir, const char *name) {
  char *p = g_build_filename(dir, name, NULL);
  bool ok = g_file_test(p, G_FILE_TEST_EXISTS);
  g_free(p);
  return ok;
}

START_TEST(test_dump_per_failing_window) {
  const char *mode = _i == 0 ? "yes" : "no";
  char *dir = g_dir_make_tmp("tm-leak-dump-XXXXXX", NULL);
  char *setting = g_strdup_printf("TM_LEAK_DUMP_DIR=%s", dir);
  const char *env[] = {setting, NULL};
  suite_run *run = suite_run_new(suite_exe, mode, env);

  /* Every leaking window, and only those: passing tests and the test that failed by itself
   * leave nothing. */
  guint leaking = 0;
  for (guint i = 0; i < run->results->len; i++) {
    const ck_result *r = run->results->pdata[i];
    char *name = g_strdup_printf("%s.dump", r->test);
    if (g_str_has_prefix(r->message, "leaked ") || strstr(r->message, "peak") != NULL) {
      ck_assert_msg(exists(dir, name), "CK_FORK=%s: no %s for: %s", mode, name, r->message);
      leaking++;
    } else if (strcmp(r->test, "test_with_fixture") != 0 && /* one of its two TCases leaks */
               strcmp(r->test, "test_loop_leak") != 0) {     /* one of its iterations leaks */
      ck_assert_msg(!exists(dir, name), "CK_FORK=%s: %s for: %s", mode, name, r->message);
    }
    g_free(name);
  }
  GDir *d = g_dir_open(dir, 0, NULL);
  guint files = 0;
  while (g_dir_read_name(d) != NULL)
    files++;
  g_dir_close(d);
  ck_assert_uint_gt(leaking, 5);
  ck_assert_msg(files == leaking, "CK_FORK=%s: %u files for %u leaking windows", mode, files,
                leaking);
  /* The loop test leaks in iteration 1 only: one file. */
  ck_assert(exists(dir, "test_loop_leak.dump") && !exists(dir, "test_loop_leak.2.dump"));

  /* The report says where the dump is; the command reads the leak from it. */
  char *path = g_build_filename(dir, "test_malloc_leak.dump", NULL);
  char *said = g_strdup_printf("tracemalloc-check: the window's blocks are in %s ", path);
  ck_assert_msg(strstr(run->err, said) != NULL, "CK_FORK=%s: no '%s' in\n%s", mode, said, run->err);
  char *out = stats(path);
  char *line = g_strdup_printf("leak_suite.c:%d: size=24 B, count=1, average=24 B\n",
                               source_marker_line(suite_src, "site:malloc"));
  ck_assert_msg(g_str_has_prefix(out, "[ Top 10 ]\n") && strstr(out, line) != NULL,
                "CK_FORK=%s: no '%s' in\n%s", mode, line, out);

  GDir *rm = g_dir_open(dir, 0, NULL);
  const char *n;
  while ((n = g_dir_read_name(rm)) != NULL) {
    char *p = g_build_filename(dir, n, NULL);
    g_unlink(p);
    g_free(p);
  }
  g_dir_close(rm);
  g_rmdir(dir);
  g_free(line);
  g_free(out);
  g_free(said);
  g_free(path);
  suite_run_free(run);
  g_free(setting);
  g_free(dir);
}
END_TEST

/* An unusable directory: one line on stderr, the verdicts unchanged. */
START_TEST(test_dump_dir_missing) {
  const char *env[] = {"TM_LEAK_DUMP_DIR=/nonexistent/tm-leak-dumps", NULL};
  suite_run *run = suite_run_new(suite_exe, "yes", env);
  ck_assert_msg(strstr(run->err, "tracemalloc-check: TM_LEAK_DUMP_DIR=/nonexistent/tm-leak-dumps: "
                                 "cannot write test_malloc_leak.dump there: No such file or "
                                 "directory\n") != NULL,
                "%s", run->err);
  ck_assert_msg(strstr(run->out, "Checks: 47, Failures: 31, Errors: 0") != NULL, "%s", run->out);
  suite_run_free(run);
}
END_TEST

int main(void) {
  suite_exe = required_env("LEAK_SUITE");
  suite_src = required_env("LEAK_SUITE_SRC");
  tool = required_env("TRACEMALLOC_TOOL");
  Suite *s = suite_create("plugin-dump");
  TCase *tc = tcase_create("dump");
  tcase_set_timeout(tc, 300);
  tcase_add_loop_test(tc, test_dump_per_failing_window, 0, 2);
  tcase_add_test(tc, test_dump_dir_missing);
  suite_add_tcase(s, tc);
  return run_suite(s);
}
