/* test_integration.c — the routes a new user takes: `meson install` then pkg-config from the
 * installed prefix, and pulling the project in as a meson subproject. Both build the same outside
 * suite (examples/meson-subproject) and check that its leaking test fails at the right line. The
 * installed CMake package and pkg-config files also build examples/cmake and examples/autotools,
 * unmodified Check suites in zero-edit mode.
 * TM_SOURCE_ROOT and TM_BUILD_ROOT come from meson. */
#include <check.h>

#include "../run_suite.h"
#include <glib.h>
#include <glib/gstdio.h>
#include <stdbool.h>
#include <stdio.h>
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

/* Installs the build under workdir/root (meson install --destdir) and relocates the copy: the
 * installed .pc files name the configured prefix, which is rewritten to where the copy is, as
 * moving an installed tree requires. (pkgconf's --define-variable would also move glib's and
 * Check's prefix; the CMake package finds its prefix from its own location.) Returns the prefix
 * and stores the libdir in *libdir; g_free() both. */
static char *install_relocated(char **libdir) {
  char *out = NULL;
  char *cmd = g_strdup_printf("meson install -C '%s' --destdir '%s/root' --no-rebuild --quiet",
                              getenv("TM_BUILD_ROOT"), workdir);
  ck_assert_msg(sh(cmd, &out) == 0, "%s\n%s", cmd, out);
  g_free(cmd);
  g_free(out);
  cmd = g_strdup_printf(
      "set -e; pc=$(dirname $(find '%s/root' -name tracemalloc-check.pc)); "
      "prefix='%s/root'$(PKG_CONFIG_PATH=$pc pkg-config --variable=prefix tracemalloc-check); "
      "for f in \"$pc\"/tracemalloc*.pc; do sed -i \"s|^prefix=.*|prefix=$prefix|\" \"$f\"; done; "
      "echo \"PREFIX=$prefix\"; echo \"LIBDIR=$(PKG_CONFIG_PATH=$pc pkg-config --variable=libdir "
      "tracemalloc)\"",
      workdir, workdir);
  ck_assert_msg(sh(cmd, &out) == 0, "%s\n%s", cmd, out);
  char *p = strstr(out, "PREFIX="), *l = strstr(out, "LIBDIR=");
  ck_assert_msg(p != NULL && l != NULL, "%s", out);
  char *prefix = g_strndup(p + strlen("PREFIX="), strcspn(p + strlen("PREFIX="), "\n"));
  *libdir = g_strndup(l + strlen("LIBDIR="), strcspn(l + strlen("LIBDIR="), "\n"));
  g_free(cmd);
  g_free(out);
  return prefix;
}

/* "FILE:LINE" of the first line of examples/DIR/FILE that contains `needle`. g_free(). */
static char *example_line(const char *dir, const char *file, const char *needle) {
  char *path = g_build_filename(getenv("TM_SOURCE_ROOT"), "examples", dir, file, NULL);
  char *text = NULL;
  ck_assert(g_file_get_contents(path, &text, NULL, NULL));
  char **lines = g_strsplit(text, "\n", -1);
  int line = 0;
  for (int i = 0; lines[i] && line == 0; i++)
    if (strstr(lines[i], needle))
      line = i + 1;
  ck_assert_msg(line > 0, "no '%s' in %s", needle, path);
  g_strfreev(lines);
  g_free(text);
  g_free(path);
  return g_strdup_printf("%s:%d", file, line);
}

/* Whether every program is on PATH; says which one is missing otherwise (the test then passes
 * without checking anything: .ci/deps installs them). */
static bool have_programs(const char *test, const char *const *programs) {
  for (; *programs != NULL; programs++) {
    char *found = g_find_program_in_path(*programs);
    g_free(found);
    if (found == NULL) {
      printf("%s: SKIPPED: '%s' is not installed (sh .ci/deps installs it)\n", test, *programs);
      return false;
    }
  }
  return true;
}

START_TEST(test_installed_pkg_config_builds_an_outside_suite) {
  char *out = NULL, *libdir = NULL;
  char *prefix = install_relocated(&libdir);
  const char *src = getenv("TM_SOURCE_ROOT");
  char *cmd = g_strdup_printf(
      "set -e; export PKG_CONFIG_PATH='%s/pkgconfig'; "
      "cc -o '%s/check_counter' '%s/examples/meson-subproject/check_counter.c' "
      "'%s/examples/meson-subproject/counter.c' -g ${TM_SANITIZE_FLAGS:-} "
      "$(pkg-config --cflags --libs tracemalloc-check)",
      libdir, workdir, src, src);
  ck_assert_msg(sh(cmd, &out) == 0, "%s\n%s", cmd, out);
  g_setenv("LD_LIBRARY_PATH", libdir, TRUE);
  char *exe = g_strdup_printf("%s/check_counter", workdir);
  check_suite_verdict(exe);
  g_unsetenv("LD_LIBRARY_PATH");
  g_free(exe);
  g_free(libdir);
  g_free(prefix);
  g_free(cmd);
  g_free(out);
}
END_TEST

/* examples/cmake: find_package(tracemalloc) from the installed prefix, tracemalloc::check-auto on
 * an unmodified suite; its leaking test fails at the strdup in queue_push(). */
START_TEST(test_installed_cmake_package_zero_edit) {
  static const char *const needs[] = {"cmake", "make", NULL};
  if (!have_programs("test_installed_cmake_package_zero_edit", needs))
    return;
  char *out = NULL, *libdir = NULL;
  char *prefix = install_relocated(&libdir);
  char *cmd = g_strdup_printf(
      "cmake -S '%s/examples/cmake' -B '%s/cmake' -DCMAKE_PREFIX_PATH='%s' "
      "-DCMAKE_EXE_LINKER_FLAGS=\"${TM_SANITIZE_FLAGS:-}\" && cmake --build '%s/cmake'",
      getenv("TM_SOURCE_ROOT"), workdir, prefix, workdir);
  ck_assert_msg(sh(cmd, &out) == 0, "%s\n%s", cmd, out);
  g_free(cmd);
  g_free(out);
  char *site = example_line("cmake", "queue.c", "strdup(text)");
  char *from = example_line("cmake", "check_queue.c", "queue_push(q, \"first\")");
  char *expected = g_strdup_printf("(^|/)%s:S:Core:test_pop_order:0: leaked 6 B in 1 block "
                                   "\\(allowed 0 B\\).* in queue_push\\(\\) called from \\S*%s[;:]",
                                   site, from);
  for (int fork = 0; fork < 2; fork++) {
    cmd = g_strdup_printf("cd '%s/cmake' && LD_LIBRARY_PATH='%s' CK_FORK=%s CK_VERBOSITY=verbose "
                          "./check_queue",
                          workdir, libdir, fork ? "yes" : "no");
    int rc = sh(cmd, &out);
    ck_assert_msg(rc == 1, "%s: exit %d:\n%s", cmd, rc, out);
    ck_assert_msg(g_regex_match_simple(expected, out, G_REGEX_MULTILINE, 0), "no '%s' in:\n%s",
                  expected, out);
    ck_assert_msg(strstr(out, ":P:Core:test_empty:0: Passed") != NULL, "%s", out);
    g_free(cmd);
    g_free(out);
  }
  /* The installed JSON module, found beside the installed libtracemalloc.so (built with
   * json-glib only). */
  if (g_strcmp0(getenv("TM_HAVE_JSON"), "1") != 0) {
    printf("test_installed_cmake_package_zero_edit: JSON part SKIPPED: built without json-glib\n");
    goto done;
  }
  cmd = g_strdup_printf("cd '%s/cmake' && LD_LIBRARY_PATH='%s' TM_LEAK_JSON='%s/cmake.jsonl' "
                        "./check_queue; cat '%s/cmake.jsonl'",
                        workdir, libdir, workdir, workdir);
  sh(cmd, &out);
  ck_assert_msg(strstr(out, "\"test\":\"test_pop_order\",\"iteration\":0,\"verdict\":\"fail\"") !=
                    NULL && strstr(out, "\"test\":\"test_empty\"") != NULL,
                "%s\n%s", cmd, out);
  g_free(cmd);
  g_free(out);
done:
  g_free(expected);
  g_free(from);
  g_free(site);
  g_free(prefix);
  g_free(libdir);
}
END_TEST

/* examples/autotools: PKG_CHECK_MODULES([CHECK], [tracemalloc-check-auto]) from the installed
 * prefix, `make check` on an unmodified suite; its leaking test fails at greet()'s malloc. */
START_TEST(test_installed_autotools_zero_edit) {
  static const char *const needs[] = {"autoreconf", "aclocal", "automake", "make", NULL};
  if (!have_programs("test_installed_autotools_zero_edit", needs))
    return;
  char *out = NULL, *libdir = NULL;
  char *prefix = install_relocated(&libdir);
  /* autoreconf writes into the source tree: work on a copy. */
  char *cmd = g_strdup_printf(
      "set -e; cp -R '%s/examples/autotools' '%s/autotools'; cd '%s/autotools'; "
      "autoreconf -fi; ./configure PKG_CONFIG_PATH='%s/pkgconfig' LDFLAGS=\"${TM_SANITIZE_FLAGS:-}\"",
      getenv("TM_SOURCE_ROOT"), workdir, workdir, libdir);
  ck_assert_msg(sh(cmd, &out) == 0, "%s\n%s", cmd, out);
  g_free(cmd);
  g_free(out);
  cmd = g_strdup_printf("cd '%s/autotools' && make check LD_LIBRARY_PATH='%s'; "
                        "cat check_greet.log", workdir, libdir);
  ck_assert_msg(sh(cmd, &out) == 0, "%s\n%s", cmd, out); /* the exit status is cat's */
  char *site = example_line("autotools", "greet.c", "malloc(size)");
  char *from = example_line("autotools", "check_greet.c", "greet(\"world\")");
  char *expected = g_strdup_printf("(^|/)%s:S:Core:test_greet_world:0: leaked 14 B in 1 block "
                                   "\\(allowed 0 B\\).* in greet\\(\\) called from \\S*%s[;:]",
                                   site, from);
  ck_assert_msg(g_regex_match_simple(expected, out, G_REGEX_MULTILINE, 0), "no '%s' in:\n%s",
                expected, out);
  ck_assert_msg(strstr(out, "FAIL check_greet (exit status: 1)") != NULL, "%s", out);
  g_free(expected);
  g_free(from);
  g_free(site);
  g_free(cmd);
  g_free(out);
  g_free(prefix);
  g_free(libdir);
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
      "block \\(allowed 0 B\\): a 16 B block at \\S*examples/money/money\\.c:16 in "
      "money_create\\(\\) called from \\S*examples/money/check_money\\.c:[0-9]+; full report "
      "on stderr\n"
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
  tcase_add_test(tc, test_installed_cmake_package_zero_edit);
  tcase_add_test(tc, test_installed_autotools_zero_edit);
  tcase_add_test(tc, test_meson_subproject_route);
  tcase_add_test(tc, test_tap_protocol_lines);
  suite_add_tcase(s, tc);
  return run_suite(s);
}
