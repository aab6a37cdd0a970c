/* test_plugin_world.c — runs world_suite in both fork modes: every clean test passes, whatever
 * caches the C library, GLib and the test itself keep, with threads still running; every leak
 * fails at its line; the same with the suite run on a thread other than main's; and the report of a
 * test that made stderr wide-oriented still reaches it. */
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "../run_suite.h"

#include "harness.h"

/* CK_FORK=yes, no; then the same with the suite run on a thread of its own (WORLD_SUITE_THREAD). */
static suite_run *runs[4];
static suite_run *wide_runs[2]; /* TCase Wide alone, CK_FORK=yes and no */
static const char *suite_src;

static const char *const clean[] = {
  "t_setenv", "t_atexit", "t_key", "t_live_thread", "t_regex", "t_iconv", "t_locale_time",
  "t_nss", "t_syslog", "t_dlopen", "t_glib_misc", "t_gobject", "t_thread_pool", "t_stdio",
  "t_live_pool_thread", "t_unknown_errno", "t_dlopen_tls", "t_mmap_pool", "t_sigaltstack",
  "t_busy_worker", "t_busy_worker_join", "t_blocked_worker", "t_blocked_worker_join",
  "t_shared_map", "t_daemon_global", "t_main_frame", "t_shm_pool", "t_sbrk_pool",
};

START_TEST(test_clean_passes) {
  check_result(runs[_i % 4], "Clean", clean[_i / 4], 0, 'P', NULL, NULL, "Passed");
}
END_TEST

/* Caches kept in statics, grown by every iteration. */
START_TEST(test_static_caches_pass) {
  for (int i = 0; i < 3; i++) {
    check_result(runs[_i], "Clean", "t_realloc_growth", i, 'P', NULL, NULL, "Passed");
    check_result(runs[_i], "Clean", "t_glib_hash_global", i, 'P', NULL, NULL, "Passed");
  }
}
END_TEST

START_TEST(test_leaks_fail) {
  const suite_run *run = runs[_i];
  check_result(run, "Leaks", "l_strdup", 0, 'S', suite_src, "site:strdup",
               "leaked 5 B in 1 block (allowed 0 B): a 5 B block from ");
  check_result(run, "Leaks", "l_glib_list", 0, 'S', suite_src, "site:list",
               "leaked 78 B in 6 blocks (allowed 0 B): a 24 B block from g_list_prepend() at ");
  check_result(run, "Leaks", "l_thread_leak", 0, 'S', suite_src, "site:thread",
               "leaked 12 B in 1 block (allowed 0 B): a 12 B block from ");
  check_result(run, "Leaks", "l_getline", 0, 'S', suite_src, "site:getline",
               "leaked 120 B in 1 block (allowed 0 B): a 120 B block from ");
  check_result(run, "Leaks", "l_stale_word", 0, 'S', suite_src, "site:stale",
               "leaked 28 B in 1 block (allowed 0 B): a 28 B block at ");
  check_result(run, "Leaks", "l_worker_leak", 0, 'S', suite_src, "site:worker",
               "leaked 15 B in 1 block (allowed 0 B): a 15 B block from ");
  check_result(run, "Leaks", "l_fragmented_heap", 0, 'S', suite_src, "site:fragmented",
               "leaked 97.7 KiB in 1 block (allowed 0 B): a 97.7 KiB block at ");
  check_result(run, "Wide", "l_wide_stderr", 0, 'S', suite_src, "site:wide",
               "leaked 21 B in 1 block (allowed 0 B): a 21 B block at ");
  check_result(run, "Leaks", "l_equal_sites", 0, 'S', suite_src, "site:equal-first",
               "leaked 48 B in 2 blocks (allowed 0 B): a 24 B block at ");
  check_result(run, "Leaks", "l_reset_peak", 0, 'S', suite_src, "START_TEST(l_reset_peak)",
               "peak 64.0 KiB over the limit of 16.0 KiB");
  check_result(run, "Leaks", "l_busy_bystander", 0, 'S', suite_src, "site:bystander",
               "leaked 44 B in 1 block (allowed 0 B): a 44 B block at ");
  check_result(run, "Leaks", "l_module_ctor", 0, 'S', getenv("CTOR_LEAK_MODULE_SRC"), "site:ctor",
               "leaked 40 B in 1 block (allowed 0 B): a 40 B block at ");
  check_result(run, "Leaks", "l_altstack_handler", 0, 'S', suite_src, "site:altstack",
               "leaked 36 B in 1 block (allowed 0 B): a 36 B block at ");
  check_result(run, "Leaks", "l_end_pointer", 0, 'S', suite_src, "site:end",
               "leaked 64 B in 1 block (allowed 0 B): a 64 B block at ");
  ck_assert_msg(strstr(run->out, "Checks: 50, Failures: 14, Errors: 0") != NULL, "run %d, CK_FORK=%s:\n%s",
                _i, run->fork, run->out);
}
END_TEST

/* A block the test stores into one that an unchecked fixture allocated in the runner (in
 * CK_FORK=no mode, between two windows) is reachable through it. */
START_TEST(test_kept_box_passes) {
  check_result(runs[_i], "Kept", "t_store_in_kept", 0, 'P', NULL, NULL, "Passed");
}
END_TEST

/* TCase Wide alone: its test makes stderr wide-oriented, and the plugin's report still reaches it,
 * in bytes, after the test's wide text. */
START_TEST(test_wide_stderr_report) {
  const suite_run *run = wide_runs[_i];
  check_result(run, "Wide", "l_wide_stderr", 0, 'S', suite_src, "site:wide",
               "leaked 21 B in 1 block (allowed 0 B): a 21 B block at ");
  ck_assert_msg(strstr(run->err, "wide stderr\ntracemalloc-check: l_wide_stderr: leaked 21 B") != NULL,
                "CK_FORK=%s: no report after the test's wide text on stderr (%zu bytes there)",
                run->fork, strlen(run->err));
}
END_TEST

int main(void) {
  const char *exe = required_env("WORLD_SUITE");
  Suite *s = suite_create("plugin-world");
  TCase *tc = tcase_create("world_suite");
  int failed;

  suite_src = required_env("WORLD_SUITE_SRC");
  static const char *const threaded[] = {"WORLD_SUITE_THREAD=1", NULL};
  runs[0] = suite_run_new(exe, "yes", NULL);
  runs[1] = suite_run_new(exe, "no", NULL);
  runs[2] = suite_run_new(exe, "yes", threaded);
  runs[3] = suite_run_new(exe, "no", threaded);
  tcase_add_loop_test(tc, test_clean_passes, 0, (int)G_N_ELEMENTS(clean) * 4);
  tcase_add_loop_test(tc, test_static_caches_pass, 0, 4);
  static const char *const wide_alone[] = {"CK_RUN_CASE=Wide", NULL};
  wide_runs[0] = suite_run_new(exe, "yes", wide_alone);
  wide_runs[1] = suite_run_new(exe, "no", wide_alone);
  tcase_add_loop_test(tc, test_leaks_fail, 0, 4);
  tcase_add_loop_test(tc, test_kept_box_passes, 0, 4);
  tcase_add_loop_test(tc, test_wide_stderr_report, 0, 2);
  suite_add_tcase(s, tc);
  failed = run_suite(s) != EXIT_SUCCESS;
  for (size_t i = 0; i < G_N_ELEMENTS(runs); i++)
    suite_run_free(runs[i]);
  for (size_t i = 0; i < G_N_ELEMENTS(wide_runs); i++)
    suite_run_free(wide_runs[i]);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
