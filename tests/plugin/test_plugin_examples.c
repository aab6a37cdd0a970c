/* test_plugin_examples.c — the checker for examples/: runs one example suite in both
 * fork modes and checks every test's verdict, site and message, the summary, and the stderr
 * report. Usage (meson passes these): EXAMPLE_EXE=... EXAMPLE_SRC=dir [EXAMPLE_CONFIG=ini]
 * test_plugin_examples money|glib|thresholds|zero-edit
 *
 * Sites are given as a file of the example and a piece of its source line, so that the examples
 * carry no test markers.
 */
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "../run_suite.h"

#include "harness.h"

typedef struct expectation {
  const char *tcase, *test;
  char type;
  const char *site_file; /* in EXAMPLE_SRC; NULL: site not checked */
  const char *site_code; /* a piece of the site's source line */
  const char *message;   /* prefix */
} expectation;

typedef struct example {
  const char *name;
  const expectation *expected;
  size_t nexpected;
  const char *summary;
  const char *stderr_text[4]; /* must appear on stderr, NULL-terminated */
} example;

static const expectation money[] = {
  {"Core", "test_money_create", 'P', NULL, NULL, "Passed"},
  {"Limits", "test_money_create_neg", 'P', NULL, NULL, "Passed"},
  {"Limits", "test_money_create_zero", 'S', "money.c", "m = malloc(sizeof(Money));",
   "leaked 16 B in 1 block (allowed 0 B): a 16 B block at "},
};

static const expectation glib[] = {
  {"Containers", "test_hash_table", 'P', NULL, NULL, "Passed"},
  {"Containers", "test_string", 'P', NULL, NULL, "Passed"},
  {"Containers", "test_ptr_array", 'P', NULL, NULL, "Passed"},
  {"Containers", "test_list_and_quarks", 'P', NULL, NULL, "Passed"},
  /* The table is the root of what leaked: its arrays and the strings it owns hang from it. */
  {"Containers", "test_forgotten_table", 'S', "check_glib.c",
   "GHashTable *names = g_hash_table_new_full(", "leaked 202 B in 5 blocks (allowed 0 B): a 96 B "
   "block from g_hash_table_new_full() at "},
};

static const expectation thresholds[] = {
  {"Rules", "test_small_cache_passes", 'P', NULL, NULL, "Passed"},
  {"Rules", "test_bigger_leak_fails", 'S', "check_thresholds.c", "lose(malloc(128));",
   "leaked 128 B in 1 block (allowed 64 B)"},
  {"Rules", "test_allow_passes", 'P', NULL, NULL, "Passed"},
  {"Rules", "test_allow_fails", 'S', "check_thresholds.c", "lose(malloc(2000));",
   "leaked 2000 B in 1 block (allowed 1024 B)"},
  {"Rules", "test_import_csv_passes", 'P', NULL, NULL, "Passed"},
  {"Rules", "test_import_json_fails", 'S', "check_thresholds.c", "lose(malloc(10000));",
   "leaked 10000 B in 1 block (allowed 8192 B)"},
  {"Rules", "test_legacy_parser_passes", 'P', NULL, NULL, "Passed"},
  {"Rules", "test_registry_passes", 'P', NULL, NULL, "Passed"},
  /* In CK_FORK=no mode the peak also holds Check's own few KiB of bookkeeping: 8196 KiB. */
  /* A failure without an allocation site is reported at the test's own START_TEST line. */
  {"Rules", "test_big_temporary_fails", 'S', "check_thresholds.c",
   "START_TEST(test_big_temporary_fails)", "peak 819"},
  {"Rules", "test_bulk_sort_passes", 'P', NULL, NULL, "Passed"},
  {"Rules", "test_own_peak_limit_fails", 'S', "check_thresholds.c",
   "START_TEST(test_own_peak_limit_fails)", "peak 10"},
  {"Rules", "test_ignore_passes", 'P', NULL, NULL, "Passed"},
};

static const expectation zero_edit[] = {
  {"Core", "test_empty", 'P', NULL, NULL, "Passed"},
  {"Core", "test_push_pop", 'P', NULL, NULL, "Passed"},
  /* The stack is the root; its array is lost through it. */
  {"Core", "test_push_pop_forgets", 'S', "stack.c", "Stack *s = calloc(1, sizeof *s);",
   "leaked 56 B in 2 blocks (allowed 0 B): a 24 B block at "},
};

static const example examples[] = {
  {"money", money, G_N_ELEMENTS(money), "Checks: 3, Failures: 1, Errors: 0",
   {"tracemalloc-check: test_money_create_zero: leaked 16 B in 1 block (allowed 0 B)\n",
    "\n    m = malloc(sizeof(Money));\n", "\n    Money *m = money_create(0, \"USD\");\n", NULL}},
  {"glib", glib, G_N_ELEMENTS(glib), "Checks: 5, Failures: 1, Errors: 0",
   {"tracemalloc-check: test_forgotten_table: leaked 202 B in 5 blocks (allowed 0 B)\n",
    "[ Indirectly lost (counted with their roots above): 106 B in 4 blocks ]\n", NULL}},
  {"thresholds", thresholds, G_N_ELEMENTS(thresholds), "Checks: 12, Failures: 5, Errors: 0",
   {"tracemalloc-check: test_import_json_fails: leaked 10000 B in 1 block (allowed 8192 B)\n",
    " over the limit of 4096 KiB\n",
    /* The peak's sites, from the traces when the peak watch fired (the lowest limit of any rule:
     * 64 KiB here, set by the test itself). */
    "[ At the peak: the largest sites when traced memory first passed 64.0 KiB ]\n#1 "
    "examples/thresholds/check_thresholds.c:", NULL}},
  {"zero-edit", zero_edit, G_N_ELEMENTS(zero_edit), "Checks: 3, Failures: 1, Errors: 0",
   {"tracemalloc-check: test_push_pop_forgets: leaked 56 B in 2 blocks (allowed 0 B)\n",
    "[ Lost: 56 B in 2 blocks ]\n", " (a root of 24 B in 1 block, and 32 B in 1 block it "
    "points to)\n", NULL}},
};

static const example *ex;
static suite_run *runs[2];

/* Loop index i: expectation i / 2 in mode i % 2. */
START_TEST(test_verdict) {
  const expectation *e = &ex->expected[_i / 2];
  char *src = NULL;
  if (e->site_file != NULL)
    src = g_build_filename(required_env("EXAMPLE_SRC"), e->site_file, NULL);
  check_result(runs[_i % 2], e->tcase, e->test, 0, e->type, src, e->site_code, e->message);
  g_free(src);
}
END_TEST

START_TEST(test_summary) {
  const suite_run *run = runs[_i];
  ck_assert_msg(strstr(run->out, ex->summary) != NULL, "CK_FORK=%s: expected '%s' in\n%s",
                run->fork, ex->summary, run->out);
  ck_assert_uint_eq(run->results->len, ex->nexpected);
}
END_TEST

START_TEST(test_report) {
  const suite_run *run = runs[_i];
  for (const char *const *t = ex->stderr_text; *t != NULL; t++)
    ck_assert_msg(strstr(run->err, *t) != NULL, "CK_FORK=%s: no '%s' on stderr:\n%s", run->fork,
                  *t, run->err);
}
END_TEST

int main(int argc, char **argv) {
  const char *config = g_getenv("EXAMPLE_CONFIG");
  char *setting = config ? g_strconcat("TM_LEAK_CONFIG=", config, NULL) : NULL;
  const char *const env[] = {setting, NULL};
  Suite *s;
  TCase *tc;
  int failed;

  for (size_t i = 0; argc == 2 && i < G_N_ELEMENTS(examples); i++)
    if (g_str_equal(argv[1], examples[i].name))
      ex = &examples[i];
  if (ex == NULL) {
    g_printerr("usage: %s money|glib|thresholds|zero-edit\n", argv[0]);
    return 99;
  }
  runs[0] = suite_run_new(required_env("EXAMPLE_EXE"), "yes", env);
  runs[1] = suite_run_new(required_env("EXAMPLE_EXE"), "no", env);
  s = suite_create("plugin-examples");
  tc = tcase_create(ex->name);
  tcase_add_loop_test(tc, test_verdict, 0, (int)ex->nexpected * 2);
  tcase_add_loop_test(tc, test_summary, 0, 2);
  tcase_add_loop_test(tc, test_report, 0, 2);
  suite_add_tcase(s, tc);
  failed = run_suite(s) != EXIT_SUCCESS;
  suite_run_free(runs[0]);
  suite_run_free(runs[1]);
  g_free(setting);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
