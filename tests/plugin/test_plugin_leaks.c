/* test_plugin_leaks.c — runs leak_suite in CK_FORK=yes and CK_FORK=no and checks the verdict,
 * the file:line and the message of every test, and the stderr report. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "../run_suite.h"
#include <glib/gstdio.h>

#include "harness.h"

/* Both runs, made once in main() before Check forks the tests below. */
static suite_run *runs[2];
static const char *suite_src;

typedef struct expectation {
  const char *tcase, *test;
  int iteration;
  char type;
  const char *marker; /* site marker in leak_suite.c; NULL: not checked */
  const char *message;
} expectation;

static const expectation expected[] = {
  {"Leaks", "test_malloc_leak", 0, 'S', "site:malloc", "leaked 24 B in 1 block (allowed 0 B)"},
  {"Leaks", "test_calloc_leak", 0, 'S', "site:calloc", "leaked 24 B in 1 block (allowed 0 B)"},
  {"Leaks", "test_realloc_leak", 0, 'S', "site:realloc", "leaked 40 B in 1 block (allowed 0 B)"},
  {"Leaks", "test_strdup_leak", 0, 'S', "site:strdup", "leaked 11 B in 1 block (allowed 0 B)"},
  {"Leaks", "test_glib_leak", 0, 'S', "site:g_strdup_printf", "leaked 8 B in 1 block (allowed 0 B)"},
  {"Leaks", "test_aligned_leak", 0, 'S', "site:posix_memalign", "leaked 64 B in 1 block (allowed 0 B)"},
  {"Leaks", "test_thread_leak", 0, 'S', "site:thread", "leaked 48 B in 1 block (allowed 0 B)"},
  {"Leaks", "test_deep_leak", 0, 'S', "site:deep",
   "leaked 32 B in 1 block (allowed 0 B): a 32 B block at "},
  {"Leaks", "test_loop_leak", 0, 'P', NULL, "Passed"},
  {"Leaks", "test_loop_leak", 1, 'S', "site:loop", "leaked 16 B in 1 block (allowed 0 B)"},
  {"Leaks", "test_loop_leak", 2, 'P', NULL, "Passed"},
  {"Leaks", "test_over_allowance", 0, 'S', "site:over", "leaked 100 B in 1 block (allowed 64 B)"},
  {"Leaks", "test_under_allowance", 0, 'P', NULL, "Passed"},
  {"Leaks", "test_ignored", 0, 'P', NULL, "Passed"},
  {"Leaks", "test_many_sites", 0, 'S', "site:many_big",
   "leaked 310 B in 4 blocks (allowed 0 B): 3 blocks (300 B) at "},
  {"Leaks", "test_tail_call_leak", 0, 'S', "site:tail_call",
   "leaked 40 B in 1 block (allowed 0 B): a 40 B block "},
  {"Leaks", "test_one_line_two_calls", 0, 'S', "site:one_line",
   "leaked 96 B in 2 blocks (allowed 0 B): 2 blocks (96 B) at "},
  {"Leaks", "test_free_old_then_leak", 0, 'S', "site:free_old", "leaked 64 B in 1 block (allowed 0 B)"},
  {"Leaks", "test_fails_and_leaks", 0, 'F', "site:fails", "the test itself fails"},
  {"Leaks", "test_back_reference_leak", 0, 'S', "site:document",
   "leaked 1072 B in 3 blocks (allowed 0 B): a 32 B block at "},
  {"Leaks", "test_nodebug_library_leak", 0, 'S', "site:nodebug",
   "leaked 44 B in 1 block (allowed 0 B): a 44 B block in nodebug_make() (no line number: no "
   "debug info for it in libtm_leak_nodebug.so), called from "},
  {"Leaks", "test_empty_block_leak", 0, 'S', "site:empty",
   "leaked 0 B in 1 block (allowed 0 B): a 0 B block at "},
  {"Leaks", "test_list_leak", 0, 'S', "site:list_head",
   "leaked 112 B in 4 blocks (allowed 0 B): a 16 B block at "},
  {"Leaks", "test_freed_holder_leak", 0, 'S', "site:freed_holder",
   "leaked 40 B in 1 block (allowed 0 B): a 40 B block at "},
  {"Leaks", "test_global_list", 0, 'P', NULL, "Passed"},
  {"Leaks", "test_wrapper_leak", 0, 'S', "site:wrapper",
   "leaked 33 B in 1 block (allowed 0 B): a 33 B block from project_xmalloc() at "},
  {"Leaks", "test_camel_wrapper_leak", 0, 'S', "site:camel_wrapper",
   "leaked 19 B in 1 block (allowed 0 B): a 19 B block from secAlloc() at "},
  {"Leaks", "test_wrapper_chain_leak", 0, 'S', "site:wrapper_chain",
   "leaked 14 B in 1 block (allowed 0 B): a 14 B block from project_inline_strdup() at "},
  {"Leaks", "test_get_type_leak", 0, 'S', "site:get_type",
   "leaked 11 B in 1 block (allowed 0 B): an 11 B block from "},
  {"Leaks", "test_paused_then_fails", 0, 'F', "site:paused", "fails while paused"},
  {"Leaks", "test_after_pause_leak", 0, 'S', "site:after_pause",
   "leaked 20 B in 1 block (allowed 0 B): a 20 B block at "},
  {"Leaks", "test_shared_key", 0, 'S', "site:shared",
   "leaked 48 B in 1 block (allowed 0 B): a 48 B block at "},
  {"Leaks", "test_lost_and_kept", 0, 'S', "site:lost_and_kept",
   "leaked 16 B in 1 block (allowed 0 B): a 16 B block at "},
  {"FixtureClean", "test_with_fixture", 0, 'P', NULL, "Passed"},
  /* A cache kept in a static pointer is still reachable: not charged by default. */
  {"FixtureLeak", "test_with_fixture", 0, 'P', NULL, "Passed"},
  {"Unchecked", "test_unchecked_leak", 0, 'S', "site:unchecked",
   "leaked 28 B in 1 block (allowed 0 B): a 28 B block at "},
  {"Unchecked", "test_clean_malloc", 0, 'P', NULL, "Passed"},
  {"Misuse", "test_stops_tracing", 0, 'S', "site:stops",
   "tracemalloc-check: not checked for leaks: the test stopped tracing (tm_stop()), so what it "
   "allocated before is not known"},
  {"Misuse", "test_clears_traces", 0, 'S', "site:clears",
   "tracemalloc-check: not checked for leaks: the test made the tracer forget its traces "
   "(tm_clear_traces(), or tm_stop() and tm_start())"},
  {"NoFixture", "test_allow_without_fixture", 0, 'P', NULL, "Passed"},
  {"Clean", "test_clean_malloc", 0, 'P', NULL, "Passed"},
  {"Clean", "test_clean_free_old", 0, 'P', NULL, "Passed"},
  {"Clean", "test_clean_print", 0, 'P', NULL, "Passed"},
  {"Clean", "test_clean_files", 0, 'P', NULL, "Passed"},
  {"Clean", "test_clean_threads", 0, 'P', NULL, "Passed"},
  {"Clean", "test_clean_glib", 0, 'P', NULL, "Passed"},
  {"Clean", "test_builds_suite", 0, 'P', NULL, "Passed"},
};
#define NEXPECTED ((int)G_N_ELEMENTS(expected))

/* Loop index i: expectation i / 2 in mode i % 2. */
START_TEST(test_verdict) {
  const expectation *e = &expected[_i / 2];
  const suite_run *run = runs[_i % 2];
  check_result(run, e->tcase, e->test, e->iteration, e->type, e->marker ? suite_src : NULL,
               e->marker, e->message);
}
END_TEST

/* Every test has exactly one line, and no other line appears; stderr notes the fixture given as
 * an unchecked one, and the in-test call made where no fixture opened a window. */
START_TEST(test_summary) {
  const suite_run *run = runs[_i];
  ck_assert_msg(strstr(run->out, "Checks: 47, Failures: 31, Errors: 0") != NULL,
                "CK_FORK=%s: unexpected summary in\n%s", run->fork, run->out);
  ck_assert_uint_eq(run->results->len, NEXPECTED);
  ck_assert_msg(strstr(run->err, "tracemalloc-check: TCase \"Unchecked\": TM_LEAK_FIXTURE added "
                                 "with tcase_add_unchecked_fixture(), where a leak could never "
                                 "fail a test; it checks each test instead") != NULL,
                "CK_FORK=%s: no note of the unchecked fixture in\n%s", run->fork, run->err);
  ck_assert_msg(strstr(run->err, "tracemalloc-check: tm_leak_allow() called with no leak window "
                                 "open (outside a test, or in a TCase without TM_LEAK_FIXTURE): "
                                 "it does nothing\n") != NULL,
                "CK_FORK=%s: no note of the call without a window in\n%s", run->fork, run->err);
  ck_assert_msg(WIFEXITED(run->exit_status) && WEXITSTATUS(run->exit_status) == 1,
                "CK_FORK=%s: exit status %d", run->fork, run->exit_status);
}
END_TEST

/* With TM_LEAK_REACHABLE=charge, reachable growth is charged too: a block kept in a global list
 * and a cache kept in a static pointer fail, named as reachable. */
static const expectation charged[] = {
  {"Leaks", "test_global_list", 0, 'S', "site:global_list",
   "left 32 B in 1 block (allowed 0 B): a 32 B block still reachable at "},
  {"FixtureLeak", "test_with_fixture", 0, 'S', "site:fixture",
   "left 56 B in 1 block (allowed 0 B): a 56 B block still reachable at "},
  {"Leaks", "test_malloc_leak", 0, 'S', "site:malloc",
   "left 24 B in 1 block (allowed 0 B): a 24 B block at "},
  {"Leaks", "test_lost_and_kept", 0, 'S', "site:lost_and_kept",
   "left 1016 B in 2 blocks (allowed 0 B): a 16 B block at "},
  {"FixtureClean", "test_with_fixture", 0, 'P', NULL, "Passed"},
  {"Clean", "test_builds_suite", 0, 'P', NULL, "Passed"},
};

START_TEST(test_reachable_charged) {
  const char *const env[] = {"TM_LEAK_REACHABLE=charge", NULL};
  suite_run *run = suite_run_new(required_env("LEAK_SUITE"), _i ? "no" : "yes", env);
  for (size_t k = 0; k < G_N_ELEMENTS(charged); k++) {
    const expectation *e = &charged[k];
    check_result(run, e->tcase, e->test, e->iteration, e->type, e->marker ? suite_src : NULL,
                 e->marker, e->message);
  }
  /* The lost root leads; the charged cache, at another site, is counted after it. */
  const ck_result *r = suite_run_find(run, "Leaks", "test_lost_and_kept", 0);
  ck_assert_msg(g_str_has_suffix(r->message, "; 1 more site; full report on stderr"), "%s",
                r->message);
  suite_run_free(run);
}
END_TEST

/* A tracer started with one frame (TRACEMALLOC=1 in the environment) is raised to the plugin's
 * default: the sites are still the program's lines, past strdup() and the project's wrappers. */
START_TEST(test_short_limit_raised) {
  const char *const env[] = {"TRACEMALLOC=1", "CK_RUN_CASE=Leaks", NULL};
  suite_run *run = suite_run_new(required_env("LEAK_SUITE"), _i ? "no" : "yes", env);
  check_result(run, "Leaks", "test_strdup_leak", 0, 'S', suite_src, "site:strdup",
               "leaked 11 B in 1 block (allowed 0 B)");
  check_result(run, "Leaks", "test_wrapper_chain_leak", 0, 'S', suite_src, "site:wrapper_chain",
               "leaked 14 B in 1 block (allowed 0 B): a 14 B block from project_inline_strdup() at ");
  suite_run_free(run);
}
END_TEST

/* The called-from location is the test's own line. */
START_TEST(test_called_from) {
  /* Also when the site, in a library built without debug information, has no line. */
  static const char *const cases[][2] = {{"test_deep_leak", "call:deep"},
                                         {"test_nodebug_library_leak", "site:nodebug"}};
  const suite_run *run = runs[_i];
  for (size_t k = 0; k < G_N_ELEMENTS(cases); k++) {
    const ck_result *r = suite_run_find(run, "Leaks", cases[k][0], 0);
    char *want = g_strdup_printf("leak_suite.c:%d;",
                                 source_marker_line(suite_src, cases[k][1]));
    ck_assert_ptr_nonnull(r);
    ck_assert_msg(strstr(r->message, want) != NULL, "CK_FORK=%s: no '%s' in '%s'", run->fork,
                  want, r->message);
    g_free(want);
  }
}
END_TEST

/* A test that ends with a tail call to the allocator (no frame of its own left, once optimized)
 * is named with its line, not with Check's runner that called it. */
START_TEST(test_tail_call_named) {
  const suite_run *run = runs[_i];
  const ck_result *r = suite_run_find(run, "Leaks", "test_tail_call_leak", 0);
  char *want = g_strdup_printf("leak_suite.c:%d;", source_marker_line(suite_src, "site:tail_call"));
  ck_assert_ptr_nonnull(r);
  ck_assert_msg(strstr(r->message, want) != NULL && strstr(r->message, "srunner") == NULL,
                "CK_FORK=%s: no '%s' in '%s'", run->fork, want, r->message);
  g_free(want);
}
END_TEST

/* The stderr report: the verdict, Python's StatisticDiff line, and the traceback from the site
 * to the test function, most recent first, with source lines. */
START_TEST(test_stderr_report) {
  const suite_run *run = runs[_i];
  const char *head = strstr(run->err, "tracemalloc-check: test_deep_leak: leaked 32 B in 1 block "
                                      "(allowed 0 B)\n");
  ck_assert_msg(head != NULL, "CK_FORK=%s: no report for test_deep_leak in\n%s", run->fork,
                run->err);
  const char *top = strstr(head, "[ Lost: 32 B in 1 block ]\n#1 ");
  /* The allocation site keys Python's Statistic text (not the oldest frame, _start). */
  char *diff_line = g_strdup_printf("leak_suite.c:%d: size=32 B, count=1, average=32 B\n",
                                    source_marker_line(suite_src, "site:deep"));
  const char *diff = strstr(head, diff_line);
  g_free(diff_line);
  /* gcc may name the helpers deep_inner.constprop.0 */
  const char *inner = strstr(head, ", in deep_inner");
  const char *outer = strstr(head, ", in deep_outer");
  ck_assert_ptr_nonnull(strstr(head, "\n    char *p = malloc(n); /* site:deep */\n"));
  ck_assert_ptr_nonnull(strstr(head, "\n    char *p = deep_inner(n);\n"));
  const char *test = strstr(head, ", in test_deep_leak_fn\n    lose(deep_outer(32)); /* call:deep */\n");
  ck_assert_msg(top && diff && inner && outer && test && top < diff && diff < inner &&
                inner < outer && outer < test,
                "CK_FORK=%s: report out of shape:\n%s", run->fork, head);
}
END_TEST

/* A failed test is not charged: no report for it. Passing tests print nothing, but for the one
 * line that says what they left reachable. */
START_TEST(test_stderr_quiet) {
  const suite_run *run = runs[_i];
  ck_assert_msg(strstr(run->err, "test_fails_and_leaks") == NULL, "CK_FORK=%s:\n%s", run->fork,
                run->err);
  ck_assert_msg(strstr(run->err, "test_clean_") == NULL, "CK_FORK=%s:\n%s", run->fork, run->err);
  ck_assert_msg(strstr(run->err, "test_under_allowance") == NULL, "CK_FORK=%s:\n%s", run->fork,
                run->err);
  ck_assert_msg(strstr(run->err, "tracemalloc-check: test_global_list: +32 B in 1 block still "
                                 "reachable, not charged\n") != NULL,
                "CK_FORK=%s:\n%s", run->fork, run->err);
}
END_TEST

/* The lost root is named, with what it points to; the report has a section for each class. */
START_TEST(test_root_report) {
  const suite_run *run = runs[_i];
  const char *head = strstr(run->err, "tracemalloc-check: test_list_leak: leaked 112 B in 4 "
                                      "blocks (allowed 0 B)\n");
  ck_assert_msg(head != NULL, "CK_FORK=%s: no report for test_list_leak in\n%s", run->fork,
                run->err);
  char *root = g_strdup_printf("[ Lost: 112 B in 4 blocks ]\n#1 tests/plugin/leak_suite.c:%d: "
                               "size=112 B, count=4, average=28 B (a root of 16 B in 1 block, and "
                               "96 B in 3 blocks it points to)\n",
                               source_marker_line(suite_src, "site:list_head"));
  ck_assert_msg(strstr(head, root) != NULL, "CK_FORK=%s: no '%s' in\n%s", run->fork, root, head);
  /* The indirect group shows its traceback too, as the lost ones do. */
  int node = source_marker_line(suite_src, "site:list_node");
  char *indirect = g_strdup_printf("[ Indirectly lost (counted with their roots above): 96 B in 3 "
                                   "blocks ]\n#1 tests/plugin/leak_suite.c:%d: size=96 B, count=3, "
                                   "average=32 B\n  File \"tests/plugin/leak_suite.c\", line %d, "
                                   "in test_list_leak_fn\n",
                                   node, node);
  ck_assert_msg(strstr(head, indirect) != NULL, "CK_FORK=%s: no '%s' in\n%s", run->fork, indirect,
                head);
  g_free(indirect);
  const ck_result *r = suite_run_find(run, "Leaks", "test_list_leak", 0);
  ck_assert_msg(r != NULL && strstr(r->message, "and 96 B it points to; full report on stderr"),
                "CK_FORK=%s: %s", run->fork, r ? r->message : "(none)");
  g_free(root);
}
END_TEST

/* A bad setting fails every test with a message naming it (the tests do not run), in both modes,
 * and is reported once on stderr when the program starts. The value ends in a newline (as a YAML
 * block leaves it): written as an escape, it keeps every message on its line. */
START_TEST(test_bad_threshold) {
  const char *const env[] = {"TM_LEAK_THRESHOLD=4kb\n", NULL};
  suite_run *run = suite_run_new(required_env("LEAK_SUITE"), _i ? "no" : "yes", env);
  const char *want = "TM_LEAK_THRESHOLD='4kb\\n' is not a size: write a whole number of bytes";
  ck_assert_uint_eq(run->results->len, NEXPECTED);
  /* Reported at the test's own START_TEST line, not in the plugin's code. */
  check_result(run, "Leaks", "test_malloc_leak", 0, 'S', suite_src,
               "START_TEST(test_malloc_leak)", want);
  for (guint i = 0; i < run->results->len; i++) {
    const ck_result *r = g_ptr_array_index(run->results, i);
    if (g_str_equal(r->test, "test_fails_and_leaks") || g_str_equal(r->test, "test_paused_then_fails"))
      continue; /* fails by itself first */
    if (g_str_equal(r->tcase, "NoFixture"))
      continue; /* no fixture to report the error */
    ck_assert_msg(r->type == 'S' && g_str_has_prefix(r->message, want), "CK_FORK=%s: %s:%s: %s",
                  run->fork, r->tcase, r->test, r->message);
  }
  ck_assert_ptr_nonnull(strstr(run->out, "Checks: 47, Failures: 46, Errors: 0"));
  ck_assert_msg(g_str_has_prefix(run->err, "tracemalloc-check: TM_LEAK_THRESHOLD='4kb\\n'"), "%s",
                run->err);
  suite_run_free(run);
}
END_TEST

/* Run from a folder where the suite's relative __FILE__ leads nowhere ("/": the source root is
 * then "/" too), the START_TEST line is still named in the run's one path style, the one every
 * allocation site has: found from the executable's folder, where the compiler ran. */
START_TEST(test_start_test_path_elsewhere) {
  char *cwd = g_get_current_dir();
  const char *const env[] = {"TM_LEAK_THRESHOLD=4kb", "CK_RUN_CASE=Leaks", NULL};
  ck_assert_int_eq(chdir("/"), 0);
  suite_run *run = suite_run_new(required_env("LEAK_SUITE"), "no", env);
  ck_assert_int_eq(chdir(cwd), 0);
  const ck_result *r = suite_run_find(run, "Leaks", "test_malloc_leak", 0);
  ck_assert_msg(r != NULL, "%s", run->out);
  char *want = g_canonicalize_filename(suite_src, "/");
  ck_assert_str_eq(r->file, want + 1);
  g_free(want);
  g_free(cwd);
  suite_run_free(run);
}
END_TEST

/* Rules per TCase and per suite reach their own test only, where tests share a name: one test
 * added to TCases Strict and Lenient (a rule for Strict), and TCases named Core in suites Legacy
 * and Modern (a rule for Legacy). Loop index: the fork mode. */
START_TEST(test_shared_names) {
  char *config = NULL;
  int fd = g_file_open_tmp("tm-names-XXXXXX.ini", &config, NULL);
  ck_assert_int_ge(fd, 0);
  close(fd);
  ck_assert(g_file_set_contents(config,
                                "[tcase:Strict]\nthreshold = 64 B\n"
                                "[suite:Legacy]\nthreshold = 64 B\n", -1, NULL));
  char *setting = g_strconcat("TM_LEAK_CONFIG=", config, NULL);
  const char *const env[] = {setting, NULL};
  suite_run *run = suite_run_new(required_env("NAMES_SUITE"), _i ? "no" : "yes", env);
  check_result(run, "Strict", "test_shared", 0, 'P', NULL, NULL, "Passed");
  check_result(run, "Lenient", "test_shared", 0, 'S', NULL, NULL, "leaked 8 B in 1 block");
  check_result(run, "Core", "test_legacy", 0, 'P', NULL, NULL, "Passed");
  check_result(run, "Core", "test_modern", 0, 'S', NULL, NULL, "leaked 8 B in 1 block");
  suite_run_free(run);
  g_unlink(config);
  g_free(setting);
  g_free(config);
}
END_TEST

/* TM_LEAK_DISABLE=1: only the test that fails by itself fails. */
START_TEST(test_disabled) {
  const char *const env[] = {"TM_LEAK_DISABLE=1", NULL};
  suite_run *run = suite_run_new(required_env("LEAK_SUITE"), _i ? "no" : "yes", env);
  ck_assert_msg(strstr(run->out, "Checks: 47, Failures: 2, Errors: 0") != NULL, "%s", run->out);
  check_result(run, "Leaks", "test_fails_and_leaks", 0, 'F', NULL, NULL, "the test itself fails");
  suite_run_free(run);
}
END_TEST

/* The failure travels through Check's own channel, so the TAP and XML logs carry it too. */
START_TEST(test_logs) {
  char *dir = g_dir_make_tmp("tm-leak-logs-XXXXXX", NULL);
  char *tap = g_build_filename(dir, "log.tap", NULL), *xml = g_build_filename(dir, "log.xml", NULL);
  char *tap_env = g_strconcat("CK_TAP_LOG_FILE_NAME=", tap, NULL);
  char *xml_env = g_strconcat("CK_XML_LOG_FILE_NAME=", xml, NULL);
  const char *const env[] = {tap_env, xml_env, NULL};
  suite_run *run = suite_run_new(required_env("LEAK_SUITE"), _i ? "no" : "yes", env);
  char *tap_text = NULL, *xml_text = NULL;
  char *fn = g_strdup_printf("<fn>leak_suite.c:%d</fn>", source_marker_line(suite_src, "site:malloc"));

  ck_assert(g_file_get_contents(tap, &tap_text, NULL, NULL));
  ck_assert(g_file_get_contents(xml, &xml_text, NULL, NULL));
  ck_assert_msg(strstr(tap_text, "leak_suite.c:Leaks:test_malloc_leak: leaked 24 B in 1 block "
                                 "(allowed 0 B)") != NULL, "%s", tap_text);
  ck_assert_msg(strstr(xml_text, fn) != NULL, "no %s in %s", fn, xml_text);
  ck_assert_ptr_nonnull(strstr(xml_text, "<message>leaked 24 B in 1 block (allowed 0 B)"));
  g_unlink(tap);
  g_unlink(xml);
  g_rmdir(dir);
  g_free(fn);
  g_free(tap_text);
  g_free(xml_text);
  g_free(tap_env);
  g_free(xml_env);
  g_free(tap);
  g_free(xml);
  g_free(dir);
  suite_run_free(run);
}
END_TEST

/* CK_FORK=yes: a word the runner left pointing to a chunk it freed does not keep the test's block
 * at that address reachable, on a page the test's child never wrote; the same value written
 * again by the test does. */
START_TEST(test_stale_words) {
  suite_run *run = suite_run_new(required_env("STALE_SUITE"), "yes", NULL);
  const char *src = required_env("STALE_SUITE_SRC");
  check_result(run, "Stale", "test_leak_over_stale_word", 0, 'S', src, "site:stale",
               "leaked 1000 B in 1 block (allowed 0 B): a 1000 B block at ");
  check_result(run, "Stale", "test_same_value_rewritten", 0, 'P', NULL, NULL, "Passed");
  suite_run_free(run);
}
END_TEST

int main(void) {
  const char *exe = required_env("LEAK_SUITE");
  Suite *s = suite_create("plugin-leaks");
  TCase *tc = tcase_create("leak_suite");
  int failed;

  suite_src = required_env("LEAK_SUITE_SRC");
  runs[0] = suite_run_new(exe, "yes", NULL);
  runs[1] = suite_run_new(exe, "no", NULL);
  tcase_add_loop_test(tc, test_verdict, 0, NEXPECTED * 2);
  tcase_add_loop_test(tc, test_summary, 0, 2);
  tcase_add_loop_test(tc, test_called_from, 0, 2);
  tcase_add_loop_test(tc, test_short_limit_raised, 0, 2);
  tcase_add_loop_test(tc, test_tail_call_named, 0, 2);
  tcase_add_loop_test(tc, test_stderr_report, 0, 2);
  tcase_add_loop_test(tc, test_stderr_quiet, 0, 2);
  tcase_add_loop_test(tc, test_root_report, 0, 2);
  tcase_add_loop_test(tc, test_reachable_charged, 0, 2);
  tcase_add_loop_test(tc, test_bad_threshold, 0, 2);
  tcase_add_test(tc, test_start_test_path_elsewhere);
  tcase_add_loop_test(tc, test_shared_names, 0, 2);
  tcase_add_loop_test(tc, test_disabled, 0, 2);
  tcase_add_loop_test(tc, test_logs, 0, 2);
  tcase_add_test(tc, test_stale_words);
  suite_add_tcase(s, tc);
  failed = run_suite(s) != EXIT_SUCCESS;
  suite_run_free(runs[0]);
  suite_run_free(runs[1]);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
