/* test_foreign_malloc.c — under valgrind the plugin's hooks never see an allocation (valgrind
 * serves malloc), so no window could be checked: every test says so, at its own START_TEST line,
 * instead of passing unchecked; TM_LEAK_ACCEPT_UNCHECKED=1 lets such a run pass, saying so on
 * stderr for each test. Runs examples/money under `valgrind -q` in both fork modes; skipped when
 * valgrind is not installed, or when it cannot read the build's debug information. */
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <glib.h>

#include <stdbool.h>
#include <stdio.h>

#include "../run_suite.h"

static char *valgrind;

/* Runs the money example under valgrind; returns its stdout and stderr joined, NULL when it
 * could not be started. */
static char *spawn_valgrind(const char *fork_mode, bool accept) {
  char *argv[] = {valgrind, "-q", (char *)getenv("CHECK_MONEY"), NULL};
  char **envp = g_get_environ();
  char *out = NULL, *err = NULL;
  int status = 0;
  envp = g_environ_setenv(envp, "CK_FORK", fork_mode, TRUE);
  envp = g_environ_setenv(envp, "CK_VERBOSITY", "verbose", TRUE);
  envp = g_environ_unsetenv(envp, "TM_LEAK_ACCEPT_UNCHECKED");
  if (accept)
    envp = g_environ_setenv(envp, "TM_LEAK_ACCEPT_UNCHECKED", "1", TRUE);
  bool ran =
      g_spawn_sync(NULL, argv, envp, G_SPAWN_DEFAULT, NULL, NULL, &out, &err, &status, NULL);
  char *both = ran ? g_strconcat(out, "\n--stderr--\n", err, NULL) : NULL;
  g_free(out);
  g_free(err);
  g_strfreev(envp);
  return both;
}

static char *run_under_valgrind(const char *fork_mode, bool accept) {
  char *both = spawn_valgrind(fork_mode, accept);
  ck_assert(both != NULL);
  return both;
}

START_TEST(test_every_window_says_unchecked) {
  char *text = run_under_valgrind(_i ? "no" : "yes", false);
  const char *tests[] = {"Core:test_money_create", "Limits:test_money_create_neg",
                         "Limits:test_money_create_zero"};
  ck_assert_msg(strstr(text, "0%: Checks: 3, Failures: 3, Errors: 0") != NULL, "%s", text);
  for (size_t i = 0; i < G_N_ELEMENTS(tests); i++) {
    char *want = g_strdup_printf(":S:%s:0: tracemalloc-check: not checked for leaks: malloc is "
                                 "served by valgrind", tests[i]);
    ck_assert_msg(strstr(text, want) != NULL, "no '%s' in\n%s", want, text);
    g_free(want);
  }
  /* At the test's own START_TEST line. */
  char *source = NULL;
  ck_assert(g_file_get_contents(getenv("MONEY_TESTS_SRC"), &source, NULL, NULL));
  int line = 1;
  for (const char *p = source; p < strstr(source, "START_TEST(test_money_create_zero)"); p++)
    line += *p == '\n';
  char *at = g_strdup_printf("check_money.c:%d:S:Limits:test_money_create_zero:0: ", line);
  ck_assert_msg(strstr(text, at) != NULL, "no '%s' in\n%s", at, text);
  g_free(at);
  g_free(source);
  g_free(text);
}
END_TEST

START_TEST(test_accepted_unchecked) {
  char *text = run_under_valgrind(_i ? "no" : "yes", true);
  ck_assert_msg(strstr(text, "100%: Checks: 3, Failures: 0, Errors: 0") != NULL, "%s", text);
  ck_assert_msg(strstr(text, "tracemalloc-check: test_money_create_zero: not checked for leaks: "
                             "malloc is served by valgrind\n") != NULL, "%s", text);
  g_free(text);
}
END_TEST

int main(void) {
  valgrind = g_find_program_in_path("valgrind");
  if (valgrind == NULL) {
    printf("valgrind is not installed: skipped\n");
    return 77;
  }
  /* valgrind gives up on debug information newer than it reads (3.19 on clang 14's DWARF 5): the
   * run never reaches the program, which says nothing of the plugin. */
  char *probe = spawn_valgrind("no", true);
  bool gave_up = probe != NULL && strstr(probe, "I can't recover") != NULL;
  if (gave_up)
    printf("valgrind cannot run %s here (it gave up reading its debug information): skipped\n%s\n",
           getenv("CHECK_MONEY"), probe);
  g_free(probe);
  if (gave_up) {
    g_free(valgrind);
    return 77;
  }
  Suite *s = suite_create("plugin-foreign");
  TCase *tc = tcase_create("valgrind");
  tcase_set_timeout(tc, 120);
  tcase_add_loop_test(tc, test_every_window_says_unchecked, 0, 2);
  tcase_add_loop_test(tc, test_accepted_unchecked, 0, 2);
  suite_add_tcase(s, tc);
  int rc = run_suite(s);
  g_free(valgrind);
  return rc;
}
