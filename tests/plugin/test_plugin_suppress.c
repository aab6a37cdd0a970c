/* test_plugin_suppress.c — a team's Valgrind and LeakSanitizer suppression files, given through
 * TM_LEAK_SUPPRESSIONS, make supp_suite's known leaks pass in both fork modes, while a real leak
 * still fails at its line and its report counts what each suppression removed. A broken file
 * fails every test with an error naming the file and line. */
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <glib/gstdio.h>

#include "../run_suite.h"

#include "harness.h"

static suite_run *runs[2]; /* CK_FORK=yes, no */
static suite_run *broken;  /* a file with an unknown Memcheck kind */
static suite_run *charged[2]; /* TM_LEAK_REACHABLE=charge, with and without the files */
static const char *suite_src;
static char *bad_path;

START_TEST(test_suppressed_leaks_pass) {
  check_result(runs[_i], "Supp", "test_legacy", 0, 'P', NULL, NULL, "Passed");
  check_result(runs[_i], "Supp", "test_vendor", 0, 'P', NULL, NULL, "Passed");
}
END_TEST

/* match-leak-kinds: reachable does not cover a lost (definite) block. */
START_TEST(test_other_kind_not_suppressed) {
  check_result(runs[_i], "Supp", "test_reachable_only", 0, 'S', suite_src,
               "site:reachable_only", "leaked 8 B in 1 block (allowed 0 B)");
}
END_TEST

/* A reachable block, charged with TM_LEAK_REACHABLE=charge, is covered by the reachable-only
 * suppression (and fails without it); the lost block at the same site still is not. */
START_TEST(test_reachable_kind_suppressed) {
  check_result(runs[_i], "Supp", "test_reachable_kept", 0, 'P', NULL, NULL, "Passed");
  check_result(charged[0], "Supp", "test_reachable_kept", 0, 'P', NULL, NULL, "Passed");
  check_result(charged[0], "Supp", "test_reachable_only", 0, 'S', suite_src,
               "site:reachable_only", "left 8 B in 1 block (allowed 0 B)");
  check_result(charged[1], "Supp", "test_reachable_kept", 0, 'S', suite_src,
               "site:reachable_only", "left 12 B in 1 block (allowed 0 B)");
}
END_TEST

START_TEST(test_real_leak_fails_and_counts) {
  check_result(runs[_i], "Supp", "test_real_leak", 0, 'S', suite_src, "site:real",
               "leaked 24 B in 1 block (allowed 0 B)");
  const char *err = runs[_i]->err;
  ck_assert_msg(strstr(err, " legacy-cache: 32 B in 1") != NULL, "CK_FORK=%s:\n%s",
                runs[_i]->fork, err);
  ck_assert_msg(strstr(err, " leak:^vendor_: 32 B in 2") != NULL, "CK_FORK=%s:\n%s",
                runs[_i]->fork, err);
}
END_TEST

START_TEST(test_broken_file_fails_every_test) {
  char *want = g_strdup_printf("TM_LEAK_SUPPRESSIONS: %s:3: unknown Memcheck kind 'Leek'",
                               bad_path);
  const char *tests[] = {"test_legacy", "test_vendor", "test_reachable_only",
                         "test_reachable_kept", "test_real_leak"};
  for (size_t i = 0; i < G_N_ELEMENTS(tests); i++)
    check_result(broken, "Supp", tests[i], 0, 'S', NULL, NULL, want);
  g_free(want);
}
END_TEST

int main(void) {
  const char *exe = required_env("SUPP_SUITE");
  const char *dir = required_env("SUPP_DIR");
  char *list = g_strdup_printf("TM_LEAK_SUPPRESSIONS=%s/legacy.supp:%s/vendor-lsan.txt", dir, dir);
  const char *env[] = {list, NULL};
  char *tmp = g_dir_make_tmp("tm-supp-XXXXXX", NULL);
  suite_src = required_env("SUPP_SUITE_SRC");
  runs[0] = suite_run_new(exe, "yes", env);
  runs[1] = suite_run_new(exe, "no", env);
  bad_path = g_build_filename(tmp, "bad.supp", NULL);
  g_file_set_contents(bad_path, "{\n   typo\n   Memcheck:Leek\n   fun:malloc\n}\n", -1, NULL);
  char *bad = g_strdup_printf("TM_LEAK_SUPPRESSIONS=%s", bad_path);
  const char *bad_env[] = {bad, NULL};
  broken = suite_run_new(exe, "yes", bad_env);
  g_unlink(bad_path);
  g_rmdir(tmp);
  const char *charge_env[] = {list, "TM_LEAK_REACHABLE=charge", NULL};
  const char *charge_only[] = {"TM_LEAK_REACHABLE=charge", NULL};
  charged[0] = suite_run_new(exe, "yes", charge_env);
  charged[1] = suite_run_new(exe, "yes", charge_only);

  Suite *s = suite_create("plugin_suppress");
  TCase *tc = tcase_create("suppressions");
  tcase_add_loop_test(tc, test_suppressed_leaks_pass, 0, 2);
  tcase_add_loop_test(tc, test_other_kind_not_suppressed, 0, 2);
  tcase_add_loop_test(tc, test_real_leak_fails_and_counts, 0, 2);
  tcase_add_loop_test(tc, test_reachable_kind_suppressed, 0, 2); /* runs[_i]: both modes */
  tcase_add_test(tc, test_broken_file_fails_every_test);
  suite_add_tcase(s, tc);
  int status = run_suite(s);
  suite_run_free(runs[0]);
  suite_run_free(runs[1]);
  suite_run_free(broken);
  suite_run_free(charged[0]);
  suite_run_free(charged[1]);
  g_free(bad);
  g_free(bad_path);
  g_free(tmp);
  g_free(list);
  return status;
}
