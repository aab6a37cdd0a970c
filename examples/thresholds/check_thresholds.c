/* check_thresholds.c — allowances, peak limits and a config file with per-test rules.
 *
 * Run with the config beside this file:
 *   TM_LEAK_CONFIG=examples/thresholds/thresholds.ini build/examples/thresholds/check_thresholds
 * Expected: the tests named *_fails fail, each for the reason its comment gives; all others pass.
 */
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <tracemalloc-check.h>

static void *volatile kept[16];
static char *volatile scratch; /* volatile: the compiler may not drop a malloc/free pair */

/* A process-wide registry: ignored by the config's ignore-functions. */
static char *registry[64];
static const char *registry_intern(const char *name) {
  for (int i = 0; i < 64; i++) {
    if (registry[i] == NULL) {
      registry[i] = strdup(name);
      return registry[i];
    }
    if (strcmp(registry[i], name) == 0)
      return registry[i];
  }
  return NULL;
}

/* 32 B kept: under the config's default threshold of 64 B. */
START_TEST(test_small_cache_passes) {
  kept[0] = malloc(32);
}
END_TEST

/* 128 B kept: over the default threshold of 64 B. */
START_TEST(test_bigger_leak_fails) {
  kept[0] = malloc(128);
}
END_TEST

/* The test raises its own allowance. */
START_TEST(test_allow_passes) {
  tm_leak_allow(4096);
  kept[0] = malloc(3000);
}
END_TEST

START_TEST(test_allow_fails) {
  tm_leak_allow(1024);
  kept[0] = malloc(2000);
}
END_TEST

/* [test:test_import_*] threshold = 8 KiB */
START_TEST(test_import_csv_passes) {
  kept[1] = malloc(6000);
}
END_TEST

START_TEST(test_import_json_fails) {
  kept[1] = malloc(10000);
}
END_TEST

/* [test:test_legacy_*] ignore = true */
START_TEST(test_legacy_parser_passes) {
  kept[2] = malloc(100000);
}
END_TEST

/* [defaults] ignore-functions = registry_intern */
START_TEST(test_registry_passes) {
  ck_assert_ptr_nonnull(registry_intern("alpha"));
  ck_assert_ptr_nonnull(registry_intern("beta"));
}
END_TEST

/* [defaults] peak-limit = 4 MiB: 8 MiB at once is too much, even when freed. */
START_TEST(test_big_temporary_fails) {
  scratch = malloc(8 << 20);
  memset(scratch, 1, 8 << 20);
  free(scratch);
}
END_TEST

/* [test:test_bulk_sort*] peak-limit = 32 MiB */
START_TEST(test_bulk_sort_passes) {
  scratch = malloc(8 << 20);
  memset(scratch, 1, 8 << 20);
  free(scratch);
}
END_TEST

/* The test sets its own peak limit. */
START_TEST(test_own_peak_limit_fails) {
  tm_leak_limit_peak(64 << 10);
  scratch = malloc(1 << 20);
  memset(scratch, 1, 1 << 20);
  free(scratch);
}
END_TEST

/* A leak a test chooses not to check. */
START_TEST(test_ignore_passes) {
  tm_leak_ignore();
  kept[3] = malloc(5000);
}
END_TEST

int main(void) {
  Suite *s = suite_create("Thresholds");
  TCase *tc = tcase_create("Rules");
  SRunner *sr;
  int failed;

  tcase_add_checked_fixture(tc, TM_LEAK_FIXTURE);
  tcase_add_test(tc, test_small_cache_passes);
  tcase_add_test(tc, test_bigger_leak_fails);
  tcase_add_test(tc, test_allow_passes);
  tcase_add_test(tc, test_allow_fails);
  tcase_add_test(tc, test_import_csv_passes);
  tcase_add_test(tc, test_import_json_fails);
  tcase_add_test(tc, test_legacy_parser_passes);
  tcase_add_test(tc, test_registry_passes);
  tcase_add_test(tc, test_big_temporary_fails);
  tcase_add_test(tc, test_bulk_sort_passes);
  tcase_add_test(tc, test_own_peak_limit_fails);
  tcase_add_test(tc, test_ignore_passes);
  suite_add_tcase(s, tc);
  sr = srunner_create(s);
  srunner_run_all(sr, CK_ENV);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
