/* run_suite.h — the one main every test program of ours shares. */
#ifndef TM_RUN_SUITE_H
#define TM_RUN_SUITE_H

#include <check.h>
#include <stdlib.h>

/* Runs one suite with CK_ENV (so CK_FORK, CK_VERBOSITY and the log variables apply); returns the
 * process exit status for meson's exit-code protocol. */
static inline int run_suite(Suite *s) {
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_ENV);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif /* TM_RUN_SUITE_H */
