/* test_plugin_cxx.c — runs cxx_suite (a Check suite in C++) in CK_FORK=yes and CK_FORK=no: clean
 * tests pass, and a leak through new fails at its line, its functions named without their
 * parameter lists ("from operator new()", "in make_node()"). */
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "../run_suite.h"
#include "harness.h"

static suite_run *runs[2];
static const char *suite_src;

static const char *const clean[] = {"t_iostream", "t_exception", "t_containers",
                                    "t_regex",    "t_thread",    "t_static_local"};

START_TEST(test_clean_passes) {
  check_result(runs[_i % 2], "Clean", clean[_i / 2], 0, 'P', NULL, NULL, "Passed");
}
END_TEST

START_TEST(test_leaks_fail) {
  const suite_run *run = runs[_i];
  check_result(run, "Leaks", "l_new", 0, 'S', suite_src, "site:new",
               "leaked 133 B in 2 blocks (allowed 0 B): a 32 B block from operator new() at ");
  check_result(run, "Leaks", "l_helper", 0, 'S', suite_src, "site:make_node",
               "leaked 83 B in 2 blocks (allowed 0 B): a 40 B block from operator new() at ");
  const ck_result *r = suite_run_find(run, "Leaks", "l_helper", 0);
  ck_assert_ptr_nonnull(strstr(r->message, "make_node() called from ")); /* maybe "(anonymous namespace)::" */
  /* A template's name without the return type the demangler puts first. */
  check_result(run, "Leaks", "l_template", 0, 'S', suite_src, "site:make_boxed",
               "leaked 8 B in 1 block (allowed 0 B): an 8 B block from operator new() at ");
  r = suite_run_find(run, "Leaks", "l_template", 0);
  ck_assert_msg(strstr(r->message, " in make_boxed<Box>() called from ") != NULL, "%s", r->message);
  check_result(run, "Leaks", "l_shared_cycle", 0, 'S', suite_src, "site:make_shared", "leaked ");
  r = suite_run_find(run, "Leaks", "l_shared_cycle", 0);
  ck_assert_msg(strstr(r->message, "make_shared<l_shared_cycle_fn(int)::C>() at ") != NULL, "%s",
                r->message);
  check_result(run, "Leaks", "l_class_new", 0, 'S', suite_src, "site:class_new",
               "leaked 24 B in 1 block (allowed 0 B): a 24 B block from ");
  r = suite_run_find(run, "Leaks", "l_class_new", 0); /* "Pooled::" unless it was inlined */
  ck_assert_msg(strstr(r->message, "operator new() at ") != NULL, "%s", r->message);
  ck_assert_msg(strstr(run->out, "Checks: 11, Failures: 5, Errors: 0") != NULL, "CK_FORK=%s:\n%s",
                run->fork, run->out);
}
END_TEST

int main(void) {
  const char *exe = required_env("CXX_SUITE");
  Suite *s = suite_create("plugin-cxx");
  TCase *tc = tcase_create("cxx_suite");

  suite_src = required_env("CXX_SUITE_SRC");
  runs[0] = suite_run_new(exe, "yes", NULL);
  runs[1] = suite_run_new(exe, "no", NULL);
  tcase_add_loop_test(tc, test_clean_passes, 0, (int)(sizeof clean / sizeof *clean) * 2);
  tcase_add_loop_test(tc, test_leaks_fail, 0, 2);
  suite_add_tcase(s, tc);
  int failed = run_suite(s) != EXIT_SUCCESS;
  suite_run_free(runs[0]);
  suite_run_free(runs[1]);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
