/* test_integration.c — the routes a new user takes: `meson install` then pkg-config from the
 * installed prefix, and pulling the project in as a meson subproject. Both build the same outside
 * suite (examples/meson-subproject) and check that its leaking test fails at the right line.
 * TM_SOURCE_ROOT and TM_BUILD_ROOT come from meson. */
#include <check.h>

#include "../run_suite.h"
#include <glib.h>
#include <glib/gstdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static char *workdir;

static void setup(void) {
  GError *error = NULL;
  workdir = g_dir_make_tmp("tm-integration-XXXXXX", &error);
  ck_assert_msg(workdir != NULL, "%s", error ? error->message : "?");
}

static void remove_tree(const char *path) {
  char *argv[] = {"rm", "-rf", (char *)path, NULL};
  g_spawn_sync(NULL, argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL, NULL);
}

static void teardown(void) {
  remove_tree(workdir);
  g_free(workdir);
}

/* Runs a shell command line; returns its exit status and stores stdout+stderr in *output. */
static int sh(const char *command, char **output) {
  char *argv[] = {"/bin/sh", "-c", (char *)command, NULL};
  char *out = NULL, *err = NULL;
  int status = -1;
  GError *error = NULL;
  ck_assert_msg(g_spawn_sync(NULL, argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err, &status,
                             &error),
                "%s: %s", command, error ? error->message : "?");
  char *both = g_strconcat(out, err, NULL);
  g_free(out);
  g_free(err);
  if (output)
    *output = both;
  else
    g_free(both);
  return g_spawn_check_wait_status(status, NULL) ? 0 : (WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

/* "counter.c:LINE" of the malloc that check_counter's test_describe leaks. */
static char *leak_site(void) {
  char *path = g_build_filename(getenv("TM_SOURCE_ROOT"), "examples", "meson-subproject",
                                "counter.c", NULL);
  char *text = NULL;
  ck_assert(g_file_get_contents(path, &text, NULL, NULL));
  char **lines = g_strsplit(text, "\n", -1);
  int line = 0;
  for (int i = 0; lines[i] && line == 0; i++)
    if (strstr(lines[i], "malloc(64)"))
      line = i + 1;
  ck_assert_int_gt(line, 0);
  g_strfreev(lines);
  g_free(text);
  g_free(path);
  return g_strdup_printf("counter.c:%d:S:Core:test_describe:0: leaked 64 B in 1 block", line);
}

/* Runs the built suite; it must fail test_describe only, at the leak's line. */
static void check_suite_verdict(const char *exe) {
  char *cmd = g_strdup_printf("CK_VERBOSITY=verbose '%s'", exe), *out = NULL;
  int rc = sh(cmd, &out);
  char *site = leak_site();
  ck_assert_msg(rc == 1, "exit %d:\n%s", rc, out);
  ck_assert_msg(strstr(out, site) != NULL, "no '%s' in:\n%s", site, out);
  ck_assert_msg(strstr(out, ":P:Core:test_add:0: Passed") != NULL, "test_add did not pass:\n%s",
                out);
  g_free(site);
  g_free(out);
  g_free(cmd);
}

START_TEST(test_installed_pkg_config_builds_an_outside_suite) {
  char *out = NULL;
  char *cmd = g_strdup_printf("meson install -C '%s' --destdir '%s/root' --no-rebuild --quiet",
                              getenv("TM_BUILD_ROOT"), workdir);
  ck_assert_msg(sh(cmd, &out) == 0, "%s\n%s", cmd, out);
  g_free(cmd);
  g_free(out);
  /* The .pc files name the configured prefix; relocate it under the DESTDIR. (pkgconf's
   * --define-prefix guesses the prefix from lib/pkgconfig, which Debian's multiarch libdir,
   * lib/x86_64-linux-gnu/pkgconfig, defeats.) */
  const char *src = getenv("TM_SOURCE_ROOT");
  cmd = g_strdup_printf(
      "set -e; pc=$(dirname $(find '%s/root' -name tracemalloc-check.pc)); "
      "export PKG_CONFIG_PATH=$pc; "
      "prefix='%s/root'$(pkg-config --variable=prefix tracemalloc-check); "
      "cc -o '%s/check_counter' '%s/examples/meson-subproject/check_counter.c' "
      "'%s/examples/meson-subproject/counter.c' -g ${TM_SANITIZE_FLAGS:-} "
      "$(pkg-config --define-variable=prefix=$prefix --cflags --libs tracemalloc-check); "
      "echo \"LIBDIR=$(pkg-config --define-variable=prefix=$prefix --variable=libdir tracemalloc)\"",
      workdir, workdir, workdir, src, src);
  ck_assert_msg(sh(cmd, &out) == 0, "%s\n%s", cmd, out);
  char *libdir = strstr(out, "LIBDIR=");
  ck_assert_ptr_nonnull(libdir);
  libdir = g_strstrip(g_strdup(libdir + strlen("LIBDIR=")));
  g_setenv("LD_LIBRARY_PATH", libdir, TRUE);
  char *exe = g_strdup_printf("%s/check_counter", workdir);
  check_suite_verdict(exe);
  g_unsetenv("LD_LIBRARY_PATH");
  g_free(exe);
  g_free(libdir);
  g_free(cmd);
  g_free(out);
}
END_TEST

START_TEST(test_meson_subproject_route) {
  char *out = NULL;
  char *cmd = g_strdup_printf("meson setup '%s/build' '%s/examples/meson-subproject' && "
                              "meson compile -C '%s/build'",
                              workdir, getenv("TM_SOURCE_ROOT"), workdir);
  ck_assert_msg(sh(cmd, &out) == 0, "%s\n%s", cmd, out);
  char *exe = g_strdup_printf("%s/build/check_counter", workdir);
  check_suite_verdict(exe);
  g_free(exe);
  g_free(cmd);
  g_free(out);
}
END_TEST

/* meson's TAP protocol reads these lines: each test's verdict, the leak on its not-ok line. */
START_TEST(test_tap_protocol_lines) {
  char *out = NULL;
  char *cmd = g_strdup_printf("cd '%s' && CK_TAP_LOG_FILE_NAME=- CK_VERBOSITY=silent '%s' 2>/dev/null",
                              workdir, getenv("CHECK_MONEY"));
  ck_assert_int_eq(sh(cmd, &out), 0); /* exit 0: TAP carries the failure */
  /* Passing lines carry Check's __FILE__ (as compiled); the failing one, the allocation site. */
  const char *expected =
      "^ok 1 - \\S*examples/money/check_money\\.c:Core:test_money_create: Passed\n"
      "ok 2 - \\S*examples/money/check_money\\.c:Limits:test_money_create_neg: Passed\n"
      "not ok 3 - \\S*examples/money/money\\.c:Limits:test_money_create_zero: leaked 16 B in 1 "
      "block \\(allowed 0 B\\) allocated in money_create\\(\\) called from "
      "\\S*examples/money/check_money\\.c:[0-9]+; full report on stderr\n"
      "1\\.\\.3\n$";
  ck_assert_msg(g_regex_match_simple(expected, out, 0, 0), "expected:\n%s\ngot:\n%s", expected,
                out);
  g_free(cmd);
  g_free(out);
}
END_TEST

int main(void) {
  Suite *s = suite_create("integration");
  TCase *tc = tcase_create("new_user");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 900);
  tcase_add_test(tc, test_installed_pkg_config_builds_an_outside_suite);
  tcase_add_test(tc, test_meson_subproject_route);
  tcase_add_test(tc, test_tap_protocol_lines);
  suite_add_tcase(s, tc);
  return run_suite(s);
}
