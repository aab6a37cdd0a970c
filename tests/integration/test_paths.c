/* test_paths.c — the source root (TM_LEAK_SOURCE_ROOT, MESON_SOURCE_ROOT, the source folder a
 * meson, CMake or autoconf build directory names, the git toplevel, the working directory) and paths shown relative to it;
 * then one suite run from three working directories (and a fourth outside any project), whose
 * failure line and stderr report must be the same byte for byte. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <glib/gstdio.h>

#include "../run_suite.h"
#include "leak_internal.h"

static char *tmp;

static void setup(void) {
  tmp = g_dir_make_tmp("tm-paths-XXXXXX", NULL);
  ck_assert_ptr_nonnull(tmp);
}

static void teardown(void) {
  char *argv[] = {"rm", "-rf", tmp, NULL};
  g_spawn_sync(NULL, argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL, NULL);
  g_free(tmp);
}

/* Runs the search from BUILD/tests under tmp, with BUILD/FILE holding contents: the root found
 * must be expected. */
static void expect_root_from(const char *build, const char *file, const char *contents,
                             const char *expected) {
  char *env_empty[] = {"TM_LEAK_SOURCE_ROOT=", NULL};
  char *run = g_build_filename(tmp, build, "tests", NULL);
  char *path = g_build_filename(tmp, build, file, NULL);
  char *dir = g_path_get_dirname(path);
  ck_assert_int_eq(g_mkdir_with_parents(run, 0755), 0);
  ck_assert_int_eq(g_mkdir_with_parents(dir, 0755), 0);
  ck_assert(g_file_set_contents(path, contents, -1, NULL));
  char *root = tm__leak_source_root_find(env_empty, run);
  ck_assert_str_eq(root, expected);
  g_free(root);
  g_free(dir);
  g_free(path);
  g_free(run);
}

START_TEST(test_root_precedence) {
  char *proj = g_build_filename(tmp, "proj", NULL);
  char *sub = g_build_filename(proj, "build", "x", NULL);
  char *git = g_build_filename(proj, ".git", NULL);
  ck_assert_int_eq(g_mkdir_with_parents(sub, 0755), 0);
  char *env_tm[] = {"TM_LEAK_SOURCE_ROOT=/srv/src/", "MESON_SOURCE_ROOT=/other", NULL};
  char *env_meson[] = {"MESON_SOURCE_ROOT=../..", NULL};
  char *env_empty[] = {"TM_LEAK_SOURCE_ROOT=", NULL};
  char *root;

  root = tm__leak_source_root_find(env_tm, sub);
  ck_assert_str_eq(root, "/srv/src");
  g_free(root);
  root = tm__leak_source_root_find(env_meson, sub); /* relative: from the working directory */
  ck_assert_str_eq(root, proj);
  g_free(root);
  root = tm__leak_source_root_find(env_empty, sub); /* no .git yet: the working directory */
  ck_assert_str_eq(root, sub);
  g_free(root);
  ck_assert(g_file_set_contents(git, "gitdir: /elsewhere\n", -1, NULL)); /* a worktree's .git */
  root = tm__leak_source_root_find(env_empty, sub);
  ck_assert_str_eq(root, proj);
  g_free(root);
  /* A build directory anywhere names its source folder: meson's (meson test runs tests there),
   * CMake's cache (ctest runs a test in its folder of the build tree), autoconf's config.status,
   * whose srcdir is relative to it (make check in a release tarball, built in place or apart). */
  char *json = g_strdup_printf("{\"meson_version\": {}, \"directories\": {\"source\": \"%s\", "
                               "\"build\": \"%s/out\"}}", proj, tmp);
  expect_root_from("out", "meson-info/meson-info.json", json, proj);
  char *cache = g_strdup_printf("# This is the CMakeCache file.\nCMAKE_BUILD_TYPE:STRING=\n"
                                "CMAKE_HOME_DIRECTORY:INTERNAL=%s\n", proj);
  expect_root_from("cm", "CMakeCache.txt", cache, proj);
  char *pkg = g_build_filename(tmp, "pkg-1.0", NULL);
  expect_root_from("pkg-1.0", "config.status", "#! /bin/sh\nac_pwd='/x'\nsrcdir='.'\n", pkg);
  expect_root_from("pkg-1.0", "config.status", "srcdir='../proj'\n", proj);
  g_free(pkg);
  g_free(cache);
  g_free(json);
  g_free(git);
  g_free(sub);
  g_free(proj);
}
END_TEST

START_TEST(test_display_path) {
  ck_assert_str_eq(tm__leak_display_path_in("/src/proj", "/src/proj/lib/a.c"), "lib/a.c");
  ck_assert_str_eq(tm__leak_display_path_in("/src/proj", "/src/proj/build/../lib/a.c"), "lib/a.c");
  ck_assert_str_eq(tm__leak_display_path_in("/src/proj", "/src/project/a.c"), "/src/project/a.c");
  ck_assert_str_eq(tm__leak_display_path_in("/src/proj", "/usr/include/x.h"), "/usr/include/x.h");
  ck_assert_str_eq(tm__leak_display_path_in("/src/proj", "./string/strdup.c"),
                   "./string/strdup.c");
  ck_assert_str_eq(tm__leak_display_path_in("/", "/a/b.c"), "a/b.c");
  ck_assert_ptr_null(tm__leak_display_path_in("/src", NULL));
  char *in = g_strdup_printf("  File \"%s/lib/x.c\", line 3, in f", tm__leak_source_root());
  char *line = tm__leak_display_traceback_line(in);
  ck_assert_str_eq(line, "  File \"lib/x.c\", line 3, in f");
  g_free(line);
  g_free(in);
  line = tm__leak_display_traceback_line("    m = malloc(4);");
  ck_assert_str_eq(line, "    m = malloc(4);");
  g_free(line);
}
END_TEST

/* Runs check_money from `cwd` with the given extra variable (or none) and no inherited root;
 * returns stdout's failure line and all of stderr, joined. */
static char *run_money(const char *cwd, const char *extra) {
  char **env = g_get_environ();
  env = g_environ_unsetenv(env, "MESON_SOURCE_ROOT");
  env = g_environ_unsetenv(env, "TM_LEAK_SOURCE_ROOT");
  env = g_environ_setenv(env, "CK_VERBOSITY", "normal", TRUE);
  env = g_environ_setenv(env, "CK_FORK", "yes", TRUE);
  if (extra != NULL) {
    char **kv = g_strsplit(extra, "=", 2);
    env = g_environ_setenv(env, kv[0], kv[1], TRUE);
    g_strfreev(kv);
  }
  char *argv[] = {(char *)getenv("CHECK_MONEY"), NULL};
  char *out = NULL, *err = NULL;
  GError *error = NULL;
  ck_assert_msg(g_spawn_sync(cwd, argv, env, G_SPAWN_DEFAULT, NULL, NULL, &out, &err, NULL, &error),
                "%s", error ? error->message : "?");
  char *line = strstr(out, ":S:");
  ck_assert_msg(line != NULL, "%s", out);
  while (line > out && line[-1] != '\n')
    line--;
  char *both = g_strdup_printf("%.*s\n%s", (int)strcspn(line, "\n"), line, err);
  g_free(out);
  g_free(err);
  g_strfreev(env);
  return both;
}

START_TEST(test_same_report_from_three_directories) {
  const char *src = getenv("TM_SOURCE_ROOT"), *build = getenv("TM_BUILD_ROOT");
  char *root_env = g_strdup_printf("TM_LEAK_SOURCE_ROOT=%s", src);
  char *meson_env = g_strdup_printf("MESON_SOURCE_ROOT=%s", src);
  char *from_root = run_money(src, NULL); /* git toplevel, or the working directory */
  char *from_build = run_money(build, NULL); /* as `meson test` runs it: meson-info */
  char *from_meson_env = run_money(tmp, meson_env);
  char *from_tmp = run_money(tmp, root_env);
  char *absolute = run_money(tmp, NULL); /* outside the tree: absolute paths */

  ck_assert_msg(g_str_has_prefix(from_root, "examples/money/money.c:16:S:Limits:"
                                            "test_money_create_zero:0: leaked 16 B in 1 block "
                                            "(allowed 0 B): a 16 B block at "
                                            "examples/money/money.c:16 in money_create() called "
                                            "from examples/money/check_money.c:"),
                "%s", from_root);
  ck_assert_msg(strstr(from_root, "\n#1 examples/money/money.c:16: size=16 B") != NULL, "%s",
                from_root);
  ck_assert_msg(strstr(from_root, "\n  File \"examples/money/money.c\", line 16, in "
                                  "money_create\n") != NULL, "%s", from_root);
  ck_assert_str_eq(from_build, from_root);
  ck_assert_str_eq(from_meson_env, from_root);
  ck_assert_str_eq(from_tmp, from_root);
  char *abs_site = g_strdup_printf("%s/examples/money/money.c:16:S:", src);
  ck_assert_msg(g_str_has_prefix(absolute, abs_site), "%s", absolute);
  g_free(abs_site);
  g_free(absolute);
  g_free(from_tmp);
  g_free(from_build);
  g_free(from_meson_env);
  g_free(from_root);
  g_free(meson_env);
  g_free(root_env);
}
END_TEST

int main(void) {
  Suite *s = suite_create("leak_paths");
  TCase *tc = tcase_create("paths");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_root_precedence);
  tcase_add_test(tc, test_display_path);
  tcase_add_test(tc, test_same_report_from_three_directories);
  suite_add_tcase(s, tc);
  return run_suite(s);
}
