/* test_plugin_openssl.c — runs openssl_suite in both fork modes: what OpenSSL 3 keeps until exit
 * (method store, DRBG, per-thread error queue) is reachable, never charged; a leaked digest
 * context and a leaked key fail at their lines, naming the root and what it points to. */
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "../run_suite.h"

#include "harness.h"

static suite_run *runs[2];
static const char *suite_src;

START_TEST(test_clean_passes) {
  const char *tests[] = {"t_digest", "t_rsa", "t_hkdf", "t_error_queue"};
  for (size_t i = 0; i < G_N_ELEMENTS(tests); i++)
    check_result(runs[_i], "Clean", tests[i], 0, 'P', NULL, NULL, "Passed");
}
END_TEST

START_TEST(test_leaks_fail) {
  check_result(runs[_i], "Leaks", "l_ctx_leak", 0, 'S', suite_src, "site:ctx", "leaked ");
  check_result(runs[_i], "Leaks", "l_key_leak", 0, 'S', suite_src, "site:key", "leaked ");
  const ck_result *r = suite_run_find(runs[_i], "Leaks", "l_key_leak", 0);
  /* The key is the root; its parts hang from it (a part whose only pointer sits in a block an
   * earlier test lost, in CK_FORK=no mode, stands as a root of its own: "; 1 more site"). */
  ck_assert_msg(strstr(r->message, "a 152 B block from EVP_PKEY_generate() at ") != NULL &&
                    strstr(r->message, " it points to;") != NULL,
                "%s", r->message);
  ck_assert_msg(strstr(runs[_i]->out, "Checks: 7, Failures: 2, Errors: 0") != NULL, "%s",
                runs[_i]->out);
}
END_TEST

int main(void) {
  const char *exe = required_env("OPENSSL_SUITE");
  Suite *s = suite_create("plugin-openssl");
  TCase *tc = tcase_create("openssl_suite");
  int failed;

  suite_src = required_env("OPENSSL_SUITE_SRC");
  runs[0] = suite_run_new(exe, "yes", NULL);
  runs[1] = suite_run_new(exe, "no", NULL);
  tcase_add_loop_test(tc, test_clean_passes, 0, 2);
  tcase_add_loop_test(tc, test_leaks_fail, 0, 2);
  suite_add_tcase(s, tc);
  failed = run_suite(s) != EXIT_SUCCESS;
  suite_run_free(runs[0]);
  suite_run_free(runs[1]);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
