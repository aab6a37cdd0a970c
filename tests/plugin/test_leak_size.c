/* test_leak_size.c — sizes as users write them (TM_LEAK_THRESHOLD and the config file). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "../run_suite.h"

#include "leak_internal.h"

static const struct {
  const char *text;
  size_t value;
} good[] = {
  {"0", 0}, {"512", 512}, {"4KiB", 4096}, {"4 KiB", 4096}, {"1MiB", 1048576},
  {"1 MiB", 1048576}, {"2GiB", (size_t)2 << 30}, {"1TiB", (size_t)1 << 40}, {"17 B", 17},
  {"17B", 17}, {"  64 KiB  ", 65536}, {"\t8\t", 8}, {"18446744073709551615", SIZE_MAX},
  {"16\n", 16}, {"\r\n4 KiB\r\n", 4096}, /* the line break a YAML block leaves */
};

static const char *const bad[] = {
  "", " ", "4kb", "4 kib", "4K", "4 KB", "1.5KiB", "-1", "+1", "KiB", "4 KiB x", "4 Ki B",
  "0x10", "1e3", "18446744073709551616", "16777216TiB", "4KiBB", "4 MiBi",
};

START_TEST(test_good) {
  size_t out = 12345;
  GError *error = NULL;
  ck_assert_msg(tm__leak_parse_size("TM_LEAK_THRESHOLD", good[_i].text, &out, &error),
                "'%s' rejected: %s", good[_i].text, error ? error->message : "");
  ck_assert_msg(out == good[_i].value, "'%s' gave %zu", good[_i].text, out);
}
END_TEST

START_TEST(test_bad) {
  size_t out = 12345;
  GError *error = NULL;
  ck_assert_msg(!tm__leak_parse_size("TM_LEAK_THRESHOLD", bad[_i], &out, &error), "'%s' accepted",
                bad[_i]);
  ck_assert_uint_eq(out, 12345);
  ck_assert_ptr_nonnull(error);
  /* The message names the variable and the value, and shows the accepted forms. */
  char *want = g_strdup_printf("TM_LEAK_THRESHOLD='%s' is not a size", bad[_i]);
  ck_assert_msg(g_str_has_prefix(error->message, want), "%s", error->message);
  ck_assert_ptr_nonnull(strstr(error->message, "512, 4KiB, 4 KiB or 1MiB"));
  g_free(want);
  g_error_free(error);
}
END_TEST

START_TEST(test_null) {
  size_t out = 1;
  ck_assert(!tm__leak_parse_size("X", NULL, &out, NULL));
  ck_assert_uint_eq(out, 1);
}
END_TEST

int main(void) {
  Suite *s = suite_create("leak_size");
  TCase *tc = tcase_create("parse");
  int failed;

  tcase_add_loop_test(tc, test_good, 0, G_N_ELEMENTS(good));
  tcase_add_loop_test(tc, test_bad, 0, G_N_ELEMENTS(bad));
  tcase_add_test(tc, test_null);
  suite_add_tcase(s, tc);
  failed = run_suite(s) != EXIT_SUCCESS;
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
