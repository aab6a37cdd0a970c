/* test_plugin_records.c — the plugin's records for CI, through real suites:
 *   - TM_LEAK_JSON: record_suite (CK_FORK=yes) and supp_suite (CK_FORK=no), three copies of each
 *     run at once, append to one file; every line must parse (json-glib) as one object per test
 *     window, with the numbers, roots and tracebacks of each;
 *   - GITHUB_ACTIONS=true: the exact ::error line of a leak, path relative to the source root;
 *   - TM_LEAK_BASELINE: record, then the same leak passes, a bigger one and one at a new site
 *     fail, a smaller one is reported; a new test starts at zero; the file is sorted and
 *     rewriting it is stable.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "../run_suite.h"

#include "harness.h"

static char *tmp;
static const char *suite_src;

/* ---- JSON Lines ------------------------------------------------------------------------------ */

static JsonArray *lines;  /* of JsonObject, every line of the file */
static char *json_text;

static gint64 member_int(JsonObject *o, const char *path1, const char *path2) {
  if (path2 == NULL)
    return json_object_get_int_member(o, path1);
  return json_object_get_int_member(json_object_get_object_member(o, path1), path2);
}

/* The line of program/test/iteration; fails when there is not exactly `copies` of them. */
static JsonObject *find_line(const char *program, const char *test, int iteration, int copies) {
  JsonObject *found = NULL;
  int n = 0;
  for (guint i = 0; i < json_array_get_length(lines); i++) {
    JsonObject *o = json_array_get_object_element(lines, i);
    if (g_str_equal(json_object_get_string_member(o, "program"), program) &&
        g_str_equal(json_object_get_string_member(o, "test"), test) &&
        json_object_get_int_member(o, "iteration") == iteration) {
      found = o;
      n++;
    }
  }
  ck_assert_msg(n == copies, "%d lines for %s/%s#%d, expected %d, in:\n%s", n, program, test,
                iteration, copies, json_text);
  return found;
}

START_TEST(test_json_lines_parse) {
  /* 3 x record_suite (11 windows) + 3 x supp_suite (5 windows) */
  ck_assert_int_eq(json_array_get_length(lines), 3 * 11 + 3 * 5);
}
END_TEST

START_TEST(test_json_leak_record) {
  JsonObject *o = find_line("record_suite", "test_leak", 0, 3);
  ck_assert_str_eq(json_object_get_string_member(o, "verdict"), "fail");
  ck_assert(json_object_get_boolean_member(o, "leaked"));
  ck_assert_str_eq(json_object_get_string_member(o, "suite"), "Records");
  ck_assert_str_eq(json_object_get_string_member(o, "tcase"), "Rec");
  ck_assert_int_eq(member_int(o, "lost", "bytes"), 24);
  ck_assert_int_eq(member_int(o, "lost", "blocks"), 1);
  ck_assert_int_eq(member_int(o, "charged", "bytes"), 24);
  ck_assert_int_eq(member_int(o, "indirect", "bytes"), 0);
  ck_assert_int_eq(member_int(o, "allowed", NULL), 0);
  ck_assert_int_ge(member_int(o, "peak", NULL), 24);
  ck_assert_str_eq(json_object_get_string_member(o, "file"), "tests/plugin/record_suite.c");
  ck_assert_int_eq(member_int(o, "line", NULL), source_marker_line(suite_src, "site:leak"));
  ck_assert(g_str_has_prefix(json_object_get_string_member(o, "message"),
                             "leaked 24 B in 1 block (allowed 0 B)"));
  JsonArray *roots = json_object_get_array_member(o, "roots");
  ck_assert_int_eq(json_array_get_length(roots), 1);
  JsonObject *root = json_array_get_object_element(roots, 0);
  ck_assert_str_eq(json_object_get_string_member(root, "function"), "test_leak_fn");
  ck_assert_int_eq(member_int(root, "bytes", NULL), 24);
  JsonArray *tb = json_object_get_array_member(root, "traceback");
  ck_assert_int_ge(json_array_get_length(tb), 1);
  JsonObject *frame = json_array_get_object_element(tb, json_array_get_length(tb) - 1);
  ck_assert_str_eq(json_object_get_string_member(frame, "function"), "test_leak_fn");
  ck_assert_str_eq(json_object_get_string_member(frame, "file"), "tests/plugin/record_suite.c");
}
END_TEST

START_TEST(test_json_other_windows) {
  JsonObject *o = find_line("record_suite", "test_clean", 0, 3);
  ck_assert_str_eq(json_object_get_string_member(o, "verdict"), "pass");
  ck_assert_int_eq(member_int(o, "lost", "bytes"), 0);
  ck_assert_int_eq(json_array_get_length(json_object_get_array_member(o, "roots")), 0);
  ck_assert_int_ge(member_int(o, "peak", NULL), 100);
  for (int i = 0; i < 3; i++) { /* iteration i leaks 8 * i bytes */
    o = find_line("record_suite", "test_loop", i, 3);
    ck_assert_int_eq(member_int(o, "lost", "bytes"), 8 * i);
    ck_assert_str_eq(json_object_get_string_member(o, "verdict"), i == 0 ? "pass" : "fail");
  }
  for (int i = 5; i < 7; i++) { /* a loop from 5 is numbered from 5 */
    o = find_line("record_suite", "test_loop_from_5", i, 3);
    ck_assert_int_eq(member_int(o, "lost", "bytes"), i);
  }
  o = find_line("record_suite", "test_indirect", 0, 3); /* a root and what it owns */
  ck_assert_int_eq(member_int(o, "lost", "bytes"), 16);
  ck_assert_int_eq(member_int(o, "indirect", "bytes"), 40);
  ck_assert_int_eq(member_int(o, "charged", "bytes"), 56);
  ck_assert_int_eq(member_int(o, "charged", "blocks"), 2);
  JsonArray *roots = json_object_get_array_member(o, "roots");
  ck_assert_int_eq(json_array_get_length(roots), 1);
  JsonObject *root = json_array_get_object_element(roots, 0);
  ck_assert_int_eq(member_int(root, "bytes", NULL), 56);
  ck_assert_int_eq(member_int(root, "line", NULL), source_marker_line(suite_src, "site:indirect"));
  o = find_line("record_suite", "test_ignored", 0, 3);
  ck_assert_str_eq(json_object_get_string_member(o, "verdict"), "ignored");
  o = find_line("record_suite", "test_fails_first", 0, 3);
  ck_assert_str_eq(json_object_get_string_member(o, "verdict"), "skipped");
  /* The CK_FORK=no program: the suppressions' counts by name. */
  o = find_line("supp_suite", "test_real_leak", 0, 3);
  ck_assert_int_eq(member_int(o, "lost", "bytes"), 24);
  ck_assert_int_eq(member_int(o, "filtered", "bytes"), 64);
  JsonArray *by = json_object_get_array_member(json_object_get_object_member(o, "filtered"), "by");
  gint64 legacy = -1;
  for (guint i = 0; i < json_array_get_length(by); i++) {
    JsonObject *b = json_array_get_object_element(by, i);
    if (g_str_equal(json_object_get_string_member(b, "pattern"), "legacy-cache"))
      legacy = json_object_get_int_member(b, "bytes");
  }
  ck_assert_int_eq(legacy, 32);
  o = find_line("supp_suite", "test_legacy", 0, 3);
  ck_assert_str_eq(json_object_get_string_member(o, "verdict"), "pass");
}
END_TEST

/* Runs the six programs at once, all appending to one file, and parses it. */
static void json_run(void) {
  char *path = g_build_filename(tmp, "records.jsonl", NULL);
  char *supp_dir = g_path_get_dirname(suite_src);
  char *cmd = g_strdup_printf(
      "for i in 1 2 3; do "
      "TM_LEAK_JSON='%s' CK_FORK=yes '%s' >/dev/null 2>&1 & "
      "TM_LEAK_JSON='%s' CK_FORK=no TM_LEAK_SUPPRESSIONS='%s/suppressions/legacy.supp:"
      "%s/suppressions/vendor-lsan.txt' '%s' >/dev/null 2>&1 & "
      "done; wait",
      path, required_env("RECORD_SUITE"), path, supp_dir, supp_dir, required_env("SUPP_SUITE"));
  char *argv[] = {"/bin/sh", "-c", cmd, NULL};
  char **env = g_environ_unsetenv(g_get_environ(), "TM_LEAK_BASELINE");
  if (!g_spawn_sync(NULL, argv, env, G_SPAWN_DEFAULT, NULL, NULL, NULL, NULL, NULL, NULL) ||
      !g_file_get_contents(path, &json_text, NULL, NULL)) {
    fprintf(stderr, "cannot run the suites or read %s\n", path);
    exit(99);
  }
  lines = json_array_new();
  char **split = g_strsplit(json_text, "\n", -1);
  for (char **l = split; *l != NULL; l++) {
    if (**l == '\0')
      continue;
    JsonParser *parser = json_parser_new();
    GError *error = NULL;
    if (!json_parser_load_from_data(parser, *l, -1, &error) ||
        !JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser))) {
      fprintf(stderr, "not a JSON object (%s): %s\n", error ? error->message : "?", *l);
      exit(1);
    }
    json_array_add_object_element(lines, json_object_ref(json_node_get_object(
                                             json_parser_get_root(parser))));
    g_object_unref(parser);
  }
  g_strfreev(split);
  g_strfreev(env);
  g_free(cmd);
  g_free(supp_dir);
  g_free(path);
}

/* ---- GitHub annotations ---------------------------------------------------------------------- */

START_TEST(test_github_annotation) {
  const char *env[] = {"GITHUB_ACTIONS=true", NULL};
  suite_run *run = suite_run_new(required_env("RECORD_SUITE"), _i ? "no" : "yes", env);
  char *want = g_strdup_printf(
      "\n::error file=tests/plugin/record_suite.c,line=%d,title=test_leak%%3A leak::leaked 24 B "
      "in 1 block (allowed 0 B): a 24 B block at tests/plugin/record_suite.c:%d; full report on "
      "stderr\n",
      source_marker_line(suite_src, "site:leak"), source_marker_line(suite_src, "site:leak"));
  ck_assert_msg(strstr(run->err, want) != NULL, "no '%s' in:\n%s", want, run->err);
  ck_assert_msg(strstr(run->out, "::error") == NULL, "%s", run->out); /* stdout stays Check's */
  g_free(want);
  /* One per failing window: test_leak, test_loop #1 and #2, test_loop_from_5 #5 and #6,
   * test_indirect, test_baseline_leak. */
  int n = 0;
  for (const char *p = run->err; (p = strstr(p, "::error ")) != NULL; p++)
    n++;
  ck_assert_int_eq(n, 7);
  suite_run_free(run);
}
END_TEST

/* ---- baseline -------------------------------------------------------------------------------- */

/* Runs record_suite with the baseline file and the extra settings; returns the run. */
static suite_run *baseline_run(const char *fork, const char *a, const char *b, const char *c) {
  char *file = g_strdup_printf("TM_LEAK_BASELINE=%s/baseline.ini", tmp);
  const char *env[] = {file, a, b, c, NULL};
  suite_run *run = suite_run_new(required_env("RECORD_SUITE"), fork, env);
  g_free(file);
  return run;
}

static char *baseline_text(void) {
  char *path = g_build_filename(tmp, "baseline.ini", NULL), *text = NULL;
  ck_assert(g_file_get_contents(path, &text, NULL, NULL));
  g_free(path);
  return text;
}

START_TEST(test_baseline_ratchet) {
  const char *fork = _i ? "no" : "yes";
  char *path = g_build_filename(tmp, "baseline.ini", NULL);
  g_unlink(path);

  /* Recording: every leak is accepted, the file holds one sorted group per leaking window. */
  suite_run *run = baseline_run(fork, "TM_LEAK_BASELINE_UPDATE=1", NULL, NULL);
  check_result(run, "Rec", "test_leak", 0, 'P', NULL, NULL, "Passed");
  check_result(run, "Rec", "test_baseline_leak", 0, 'P', NULL, NULL, "Passed");
  suite_run_free(run);
  char *text = baseline_text();
  const char *expected =
      "\n[Records/Rec/test_baseline_leak]\nbytes = 64\nblocks = 1\n"
      "site tests/plugin/record_suite.c:leak_at_a = 64\n"
      "\n[Records/Rec/test_indirect]\nbytes = 56\nblocks = 2\n"
      "site tests/plugin/record_suite.c:test_indirect_fn = 56\n"
      "\n[Records/Rec/test_leak]\nbytes = 24\nblocks = 1\n"
      "site tests/plugin/record_suite.c:test_leak_fn = 24\n"
      "\n[Records/Rec/test_loop#1]\nbytes = 8\nblocks = 1\n"
      "site tests/plugin/record_suite.c:test_loop_fn = 8\n"
      "\n[Records/Rec/test_loop#2]\nbytes = 16\nblocks = 1\n"
      "site tests/plugin/record_suite.c:test_loop_fn = 16\n"
      "\n[Records/Rec/test_loop_from_5#5]\nbytes = 5\nblocks = 1\n"
      "site tests/plugin/record_suite.c:test_loop_from_5_fn = 5\n"
      "\n[Records/Rec/test_loop_from_5#6]\nbytes = 6\nblocks = 1\n"
      "site tests/plugin/record_suite.c:test_loop_from_5_fn = 6\n";
  ck_assert_msg(g_str_has_prefix(text, "# tracemalloc-check baseline") &&
                    g_str_has_suffix(text, expected),
                "expected a file ending with:\n%s\ngot:\n%s", expected, text);

  /* The same leak passes; recording again gives the same file. */
  run = baseline_run(fork, NULL, NULL, NULL);
  check_result(run, "Rec", "test_leak", 0, 'P', NULL, NULL, "Passed");
  check_result(run, "Rec", "test_loop", 2, 'P', NULL, NULL, "Passed");
  check_result(run, "Rec", "test_baseline_leak", 0, 'P', NULL, NULL, "Passed");
  ck_assert_msg(strstr(run->err, "below its baseline") == NULL, "%s", run->err);
  suite_run_free(run);
  run = baseline_run(fork, "TM_LEAK_BASELINE_UPDATE=1", NULL, NULL);
  suite_run_free(run);
  char *again = baseline_text();
  ck_assert_str_eq(again, text);
  g_free(again);

  /* A bigger leak fails. */
  run = baseline_run(fork, "LEAK_SIZE=100", NULL, NULL);
  check_result(run, "Rec", "test_baseline_leak", 0, 'S', suite_src, "site:a",
               "leaked 100 B in 1 block (allowed 0 B): a 100 B block at "
               "tests/plugin/record_suite.c:");
  const ck_result *r = suite_run_find(run, "Rec", "test_baseline_leak", 0);
  ck_assert_msg(g_str_has_suffix(r->message, "; over its baseline of 64 B; full report on stderr"),
                "%s", r->message);
  suite_run_free(run);

  /* The same size at a new site fails. */
  run = baseline_run(fork, "LEAK_SITE=b", NULL, NULL);
  check_result(run, "Rec", "test_baseline_leak", 0, 'S', suite_src, "site:b", "leaked 64 B");
  r = suite_run_find(run, "Rec", "test_baseline_leak", 0);
  ck_assert_msg(g_str_has_suffix(r->message, "; at tests/plugin/record_suite.c:leak_at_b, a site "
                                             "its baseline does not have; full report on stderr"),
                "%s", r->message);
  suite_run_free(run);

  /* A smaller leak passes and is reported. */
  run = baseline_run(fork, "LEAK_SIZE=40", NULL, NULL);
  check_result(run, "Rec", "test_baseline_leak", 0, 'P', NULL, NULL, "Passed");
  ck_assert_msg(strstr(run->err, "tracemalloc-check: test_baseline_leak: 24 B below its baseline: "
                                 "run with TM_LEAK_BASELINE_UPDATE=1 to tighten\n") != NULL,
                "%s", run->err);
  suite_run_free(run);

  /* A test without an entry starts at zero: drop test_leak's group by hand, reorder the rest. */
  char **groups = g_strsplit(strchr(text, '\n') != NULL ? text : "", "\n[", -1);
  GString *edited = g_string_new(groups[0]);
  for (int i = g_strv_length(groups) - 1; i >= 1; i--) /* reversed order */
    if (!g_str_has_prefix(groups[i], "Records/Rec/test_leak]"))
      g_string_append_printf(edited, "\n[%s%s", groups[i],
                             g_str_has_suffix(groups[i], "\n") ? "" : "\n");
  ck_assert(g_file_set_contents(path, edited->str, -1, NULL));
  run = baseline_run(fork, NULL, NULL, NULL);
  check_result(run, "Rec", "test_leak", 0, 'S', suite_src, "site:leak",
               "leaked 24 B in 1 block (allowed 0 B): a 24 B block at ");
  const ck_result *leak = suite_run_find(run, "Rec", "test_leak", 0);
  ck_assert_msg(g_str_has_suffix(leak->message, "; not in the baseline (Records/Rec/test_leak); "
                                                "full report on stderr"),
                "%s", leak->message);
  check_result(run, "Rec", "test_baseline_leak", 0, 'P', NULL, NULL, "Passed");
  suite_run_free(run);
  /* Recording over the reordered file gives back the sorted one, test_leak included. */
  run = baseline_run(fork, "TM_LEAK_BASELINE_UPDATE=1", NULL, NULL);
  suite_run_free(run);
  again = baseline_text();
  ck_assert_str_eq(again, text);
  g_free(again);
  g_string_free(edited, true);
  g_strfreev(groups);
  g_free(text);
  g_unlink(path);
  g_free(path);
}
END_TEST

/* Two programs recording into one file at once, twice each: every group of both is there. */
START_TEST(test_baseline_parallel_update) {
  char *path = g_build_filename(tmp, "parallel.ini", NULL);
  char *cmd = g_strdup_printf(
      "for i in 1 2; do "
      "TM_LEAK_BASELINE='%s' TM_LEAK_BASELINE_UPDATE=1 CK_FORK=yes '%s' >/dev/null 2>&1 & "
      "TM_LEAK_BASELINE='%s' TM_LEAK_BASELINE_UPDATE=1 CK_FORK=no '%s' >/dev/null 2>&1 & "
      "done; wait",
      path, required_env("RECORD_SUITE"), path, required_env("SUPP_SUITE"));
  char *argv[] = {"/bin/sh", "-c", cmd, NULL};
  char *text = NULL;
  ck_assert(g_spawn_sync(NULL, argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, NULL, NULL, NULL, NULL));
  ck_assert(g_file_get_contents(path, &text, NULL, NULL));
  const char *groups[] = {
    "\n[Records/Rec/test_baseline_leak]\n", "\n[Records/Rec/test_indirect]\n",
    "\n[Records/Rec/test_leak]\n", "\n[Records/Rec/test_loop#1]\n", "\n[Records/Rec/test_loop#2]\n",
    "\n[Records/Rec/test_loop_from_5#5]\n", "\n[Records/Rec/test_loop_from_5#6]\n",
    "\n[Suppressions/Supp/test_legacy]\n", "\n[Suppressions/Supp/test_reachable_only]\n",
    "\n[Suppressions/Supp/test_real_leak]\n", "\n[Suppressions/Supp/test_vendor]\n",
  };
  const char *last = text;
  for (size_t i = 0; i < G_N_ELEMENTS(groups); i++) { /* each once, in sorted order */
    const char *at = strstr(text, groups[i]);
    ck_assert_msg(at != NULL && at >= last && strstr(at + 1, groups[i]) == NULL,
                  "%s missing, repeated or out of order in:\n%s", groups[i], text);
    last = at;
  }
  g_free(text);
  g_free(cmd);
  g_unlink(path);
  g_free(path);
}
END_TEST

/* A broken baseline fails every test with the file and key named. */
START_TEST(test_baseline_errors) {
  char *path = g_build_filename(tmp, "baseline.ini", NULL);
  ck_assert(g_file_set_contents(path, "[Records/Rec/test_leak]\nbytes = lots\n", -1, NULL));
  suite_run *run = baseline_run("yes", NULL, NULL, NULL);
  char *want = g_strdup_printf("TM_LEAK_BASELINE: %s: [Records/Rec/test_leak] "
                               "bytes='lots' is not a whole number", path);
  check_result(run, "Rec", "test_clean", 0, 'S', NULL, NULL, want);
  suite_run_free(run);
  g_free(want);
  run = baseline_run("yes", "TM_LEAK_BASELINE_UPDATE=maybe", NULL, NULL);
  check_result(run, "Rec", "test_clean", 0, 'S', NULL, NULL,
               "TM_LEAK_BASELINE_UPDATE='maybe' is not a boolean");
  suite_run_free(run);
  g_unlink(path);
  g_free(path);
}
END_TEST

int main(void) {
  suite_src = required_env("RECORD_SUITE_SRC");
  tmp = g_dir_make_tmp("tm-records-XXXXXX", NULL);
  json_run();

  Suite *s = suite_create("plugin_records");
  TCase *tc = tcase_create("records");
  tcase_set_timeout(tc, 240);
  tcase_add_test(tc, test_json_lines_parse);
  tcase_add_test(tc, test_json_leak_record);
  tcase_add_test(tc, test_json_other_windows);
  tcase_add_loop_test(tc, test_github_annotation, 0, 2);
  tcase_add_loop_test(tc, test_baseline_ratchet, 0, 2);
  tcase_add_test(tc, test_baseline_parallel_update);
  tcase_add_test(tc, test_baseline_errors);
  suite_add_tcase(s, tc);
  int status = run_suite(s);
  json_array_unref(lines);
  g_free(json_text);
  char *argv[] = {"rm", "-rf", tmp, NULL};
  g_spawn_sync(NULL, argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL, NULL);
  g_free(tmp);
  return status;
}
