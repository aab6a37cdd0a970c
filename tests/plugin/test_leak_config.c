/* test_leak_config.c — the environment, the TM_LEAK_CONFIG key file, per-test rules, and their
 * order: a per-test rule beats the environment, which beats the file's [defaults]. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <check.h>

#include "../run_suite.h"
#include <glib/gstdio.h>

#include "leak_internal.h"

static char *config_path;

/* Writes text to a fresh key file and returns "TM_LEAK_CONFIG=path" (g_free). */
static char *write_config(const char *text) {
  int fd = g_file_open_tmp("tm-leak-XXXXXX.ini", &config_path, NULL);
  ck_assert_int_ge(fd, 0);
  close(fd);
  ck_assert(g_file_set_contents(config_path, text, -1, NULL));
  return g_strconcat("TM_LEAK_CONFIG=", config_path, NULL);
}

static void teardown(void) {
  if (config_path != NULL)
    g_unlink(config_path);
  g_clear_pointer(&config_path, g_free);
}

/* Loads with exactly these variables. */
static tm__leak_config *load(const char *const *env, GError **error) {
  return tm__leak_config_load((char **)env, error);
}

START_TEST(test_defaults) {
  const char *const env[] = {NULL};
  tm__leak_config *c = load(env, NULL);
  tm__leak_rules r;
  ck_assert_ptr_nonnull(c);
  ck_assert(!c->disabled);
  ck_assert_int_eq(c->nframe, 0);
  ck_assert_uint_eq(c->top, 10);
  tm__leak_config_rules_for(c, &(tm__leak_test_id){.test = "test_anything"}, &r);
  ck_assert_uint_eq(r.allowance, 0);
  ck_assert_uint_eq(r.peak_limit, 0);
  ck_assert(!r.ignore);
  tm__leak_config_free(c);
}
END_TEST

/* A setting set to the empty string is unset, whichever it is. */
START_TEST(test_empty_is_unset) {
  const char *const env[] = {"TM_LEAK_THRESHOLD=",        "TM_LEAK_THRESHOLD_BLOCKS=",
                             "TM_LEAK_REACHABLE=",        "TM_LEAK_ACCEPT_UNCHECKED=",
                             "TM_LEAK_PEAK_LIMIT=",       "TM_LEAK_NFRAME=",
                             "TM_LEAK_TOP=",              "TM_LEAK_DEFAULT_FILTERS=",
                             "TM_LEAK_DISABLE=",
                             "TM_LEAK_CONFIG=", "TM_LEAK_SUPPRESSIONS=", NULL};
  GError *error = NULL;
  tm__leak_config *c = load(env, &error);
  tm__leak_rules r;
  ck_assert_msg(c != NULL, "%s", error != NULL ? error->message : "?");
  ck_assert(!c->disabled);
  ck_assert_int_eq(c->nframe, 0);
  ck_assert_uint_eq(c->top, 10);
  tm__leak_config_rules_for(c, &(tm__leak_test_id){.test = "test_anything"}, &r);
  ck_assert_uint_eq(r.allowance, 0);
  ck_assert_uint_eq(r.allowance_blocks, SIZE_MAX);
  ck_assert_uint_eq(r.peak_limit, 0);
  ck_assert(!r.charge_reachable);
  tm__leak_config_free(c);
}
END_TEST

START_TEST(test_environment) {
  const char *const env[] = {"TM_LEAK_THRESHOLD=4 KiB", "TM_LEAK_PEAK_LIMIT=1MiB",
                             "TM_LEAK_NFRAME=16", "TM_LEAK_TOP=3", "TM_LEAK_DISABLE=yes", NULL};
  tm__leak_config *c = load(env, NULL);
  ck_assert_ptr_nonnull(c);
  ck_assert_uint_eq(c->defaults.allowance, 4096);
  ck_assert_uint_eq(c->defaults.peak_limit, 1 << 20);
  ck_assert_int_eq(c->nframe, 16);
  ck_assert_uint_eq(c->top, 3);
  ck_assert(c->disabled);
  tm__leak_config_free(c);
}
END_TEST

static const struct {
  const char *setting, *message;
} bad_env[] = {
  {"TM_LEAK_THRESHOLD=4kb", "TM_LEAK_THRESHOLD='4kb' is not a size"},
  {"TM_LEAK_PEAK_LIMIT=lots", "TM_LEAK_PEAK_LIMIT='lots' is not a size"},
  {"TM_LEAK_NFRAME=0", "TM_LEAK_NFRAME='0' is not a whole number from 1 to 1024"},
  {"TM_LEAK_NFRAME=2000", "TM_LEAK_NFRAME='2000' is not a whole number from 1 to 1024"},
  {"TM_LEAK_TOP=ten", "TM_LEAK_TOP='ten' is not a whole number"},
  {"TM_LEAK_DEFAULT_FILTERS=maybe", "TM_LEAK_DEFAULT_FILTERS='maybe' is not a boolean"},
  {"TM_LEAK_CONFIG=/nonexistent/tm-leak.ini", "TM_LEAK_CONFIG=/nonexistent/tm-leak.ini: "},
};

START_TEST(test_bad_environment) {
  const char *const env[] = {bad_env[_i].setting, NULL};
  GError *error = NULL;
  ck_assert_ptr_null(load(env, &error));
  ck_assert_ptr_nonnull(error);
  ck_assert_msg(g_str_has_prefix(error->message, bad_env[_i].message), "%s", error->message);
  g_error_free(error);
}
END_TEST

static const char rules_file[] =
  "# a comment\n"
  "[defaults]\n"
  "threshold = 1 KiB\n"
  "peak-limit = 1 MiB\n"
  "top = 5\n"
  "nframe = 24\n"
  "ignore-functions = my_cache_*;lazy_init\n"
  "allocators = xmalloc\n"
  "[test:test_big_*]\n"
  "threshold = 64 KiB\n"
  "[test:test_big_skip]\n"
  "ignore = true\n"
  "[test:test_peaky]\n"
  "peak-limit = 16 MiB\n";

START_TEST(test_key_file_rules) {
  char *setting = write_config(rules_file);
  const char *const env[] = {setting, NULL};
  tm__leak_config *c = load(env, NULL);
  tm__leak_rules r;
  ck_assert_ptr_nonnull(c);
  ck_assert_uint_eq(c->top, 5);
  ck_assert_int_eq(c->nframe, 24);
  tm__leak_config_rules_for(c, &(tm__leak_test_id){.test = "test_small"}, &r);
  ck_assert_uint_eq(r.allowance, 1024);
  ck_assert_uint_eq(r.peak_limit, 1 << 20);
  tm__leak_config_rules_for(c, &(tm__leak_test_id){.test = "test_big_one"}, &r);
  ck_assert_uint_eq(r.allowance, 65536);
  ck_assert(!r.ignore);
  tm__leak_config_rules_for(c, &(tm__leak_test_id){.test = "test_big_skip"}, &r); /* both sections apply, in file order */
  ck_assert_uint_eq(r.allowance, 65536);
  ck_assert(r.ignore);
  tm__leak_config_rules_for(c, &(tm__leak_test_id){.test = "test_peaky"}, &r);
  ck_assert_uint_eq(r.allowance, 1024);
  ck_assert_uint_eq(r.peak_limit, 16 << 20);
  tm__leak_config_rules_for(c, &(tm__leak_test_id){.test = NULL}, &r); /* no name: the defaults */
  ck_assert_uint_eq(r.allowance, 1024);
  tm__leak_config_free(c);
  g_free(setting);
}
END_TEST

START_TEST(test_precedence) {
  char *setting = write_config(rules_file);
  const char *const env[] = {setting, "TM_LEAK_THRESHOLD=2KiB", "TM_LEAK_TOP=7", NULL};
  tm__leak_config *c = load(env, NULL);
  tm__leak_rules r;
  ck_assert_ptr_nonnull(c);
  ck_assert_uint_eq(c->top, 7);                   /* environment over [defaults] */
  tm__leak_config_rules_for(c, &(tm__leak_test_id){.test = "test_small"}, &r);
  ck_assert_uint_eq(r.allowance, 2048);
  tm__leak_config_rules_for(c, &(tm__leak_test_id){.test = "test_big_one"}, &r); /* per-test rule over the environment */
  ck_assert_uint_eq(r.allowance, 65536);
  tm__leak_config_free(c);
  g_free(setting);
}
END_TEST

/* [suite:], [tcase:] and [test:] sections: the most specific wins, whatever the file order. */
static const char *const scoped_file =
  "[test:test_one]\n"
  "threshold = 3 KiB\n"
  "[tcase:Core]\n"
  "threshold = 2 KiB\n"
  "threshold-blocks = 4\n"
  "[suite:Money*]\n"
  "threshold = 1 KiB\n"
  "reachable = charge\n"
  "threshold-blocks = 9\n"
  "[defaults]\n"
  "threshold-blocks = 1\n";

START_TEST(test_scoped_rules) {
  char *setting = write_config(scoped_file);
  const char *const env[] = {setting, NULL};
  tm__leak_config *c = load(env, NULL);
  tm__leak_rules r;
  ck_assert_ptr_nonnull(c);
  tm__leak_config_rules_for(c, &(tm__leak_test_id){"Money", "Core", "test_one"}, &r);
  ck_assert_uint_eq(r.allowance, 3072);      /* test over tcase over suite */
  ck_assert_uint_eq(r.allowance_blocks, 4);  /* tcase over suite */
  ck_assert(r.charge_reachable);             /* from the suite */
  tm__leak_config_rules_for(c, &(tm__leak_test_id){"Money", "Core", "test_two"}, &r);
  ck_assert_uint_eq(r.allowance, 2048);
  tm__leak_config_rules_for(c, &(tm__leak_test_id){"MoneyMore", "Limits", "test_two"}, &r);
  ck_assert_uint_eq(r.allowance, 1024);
  ck_assert_uint_eq(r.allowance_blocks, 9);
  tm__leak_config_rules_for(c, &(tm__leak_test_id){"Other", "Limits", "test_two"}, &r);
  ck_assert_uint_eq(r.allowance, 0);
  ck_assert_uint_eq(r.allowance_blocks, 1);  /* [defaults] */
  ck_assert(!r.charge_reachable);
  tm__leak_config_rules_for(c, &(tm__leak_test_id){NULL, NULL, "test_one"}, &r); /* no names */
  ck_assert_uint_eq(r.allowance, 3072);
  tm__leak_config_free(c);
  g_free(setting);
}
END_TEST

/* Comments at the end of a line, as README's example writes them, are comments; a '#' inside a
 * value (no blank before it) is part of it. */
START_TEST(test_trailing_comments) {
  char *setting = write_config("[defaults]\n"
                               "threshold = 64 B   # bytes\n"
                               "peak-limit = 4 MiB\t# the peak\n"
                               "ignore-functions = registry_intern;my_cache_*;operator[]  # ok\n"
                               "  # a comment line, indented\n"
                               "[suite:Legacy*]\n"
                               "reachable = charge                # caches count too\r\n"
                               "[tcase:Import]   \n"
                               "threshold-blocks = 4 #\n"
                               "[test:test_a#b]\n"
                               "threshold = 8 KiB\n");
  const char *const env[] = {setting, NULL};
  GError *error = NULL;
  tm__leak_config *c = load(env, &error);
  ck_assert_msg(c != NULL, "%s", error != NULL ? error->message : "?");
  tm__leak_rules r;
  tm__leak_config_rules_for(c, &(tm__leak_test_id){"Legacy1", "Import", "test_x"}, &r);
  ck_assert_uint_eq(r.allowance, 64);
  ck_assert_uint_eq(r.peak_limit, 4 << 20);
  ck_assert(r.charge_reachable);
  ck_assert_uint_eq(r.allowance_blocks, 4);
  tm__leak_config_rules_for(c, &(tm__leak_test_id){"Other", "Other", "test_a#b"}, &r);
  ck_assert_uint_eq(r.allowance, 8192);
  ck_assert(!r.charge_reachable);
  tm__leak_config_free(c);
  g_free(setting);
}
END_TEST

/* TM_LEAK_REACHABLE and TM_LEAK_THRESHOLD_BLOCKS, and their bad values. */
START_TEST(test_reachable_and_blocks_env) {
  const char *const env[] = {"TM_LEAK_REACHABLE=charge", "TM_LEAK_THRESHOLD_BLOCKS=3", NULL};
  tm__leak_config *c = load(env, NULL);
  ck_assert_ptr_nonnull(c);
  ck_assert(c->defaults.charge_reachable);
  ck_assert_uint_eq(c->defaults.allowance_blocks, 3);
  tm__leak_config_free(c);
  const char *const unset[] = {NULL};
  c = load(unset, NULL);
  ck_assert(!c->defaults.charge_reachable);
  ck_assert_uint_eq(c->defaults.allowance_blocks, SIZE_MAX); /* any number */
  tm__leak_config_free(c);
  GError *error = NULL;
  const char *const bad[] = {"TM_LEAK_REACHABLE=sometimes", NULL};
  c = tm__leak_config_load((char **)bad, &error);
  ck_assert_ptr_null(c);
  ck_assert_str_eq(error->message, "TM_LEAK_REACHABLE='sometimes' is not a reachability rule: "
                                   "write charge or ignore");
  g_clear_error(&error);
  const char *const bad_blocks[] = {"TM_LEAK_THRESHOLD_BLOCKS=-2", NULL};
  c = tm__leak_config_load((char **)bad_blocks, &error);
  ck_assert_ptr_null(c);
  ck_assert_str_eq(error->message, "TM_LEAK_THRESHOLD_BLOCKS='-2' is not a whole number from 0 "
                                   "to 2147483647");
  g_clear_error(&error);
}
END_TEST

static const struct {
  const char *text, *message;
} bad_files[] = {
  {"[defaults]\nthreshhold = 1 KiB\n", "[defaults] has an unknown key 'threshhold'"},
  {"[default]\nthreshold = 1 KiB\n", "unknown group [default]: use [defaults], [suite:GLOB], [tcase:GLOB] or [test:GLOB]"},
  {"[defaults]\nthreshold = 1 kB\n", "[defaults] threshold='1 kB' is not a size"},
  {"[defaults]\ntop = -1\n", "[defaults] top='-1' is not a whole number"},
  {"[test:t_*]\nthreshold = big\n", "[test:t_*] threshold='big' is not a size"},
  {"[test:t_*]\nignore = sometimes\n", "[test:t_*] ignore='sometimes' is not a boolean"},
  {"[test:t_*]\nallocators = x\n", "[test:t_*] has an unknown key 'allocators'"},
  {"[test:]\nignore = true\n", "[test:] needs a name glob after 'test:'"},
  {"not a key file\n", ": "},
  {"[defaults]\nthreshold = 1 KiB\n[test:t_*]\nignore = true\n[defaults]\ntop = 3\n",
   "group [defaults] appears twice"},
  {"[test:t_*]\nignore = true\n[test:t_*]\nthreshold = 1 KiB\n", "group [test:t_*] appears twice"},
  {"[defaults]\nignore-functions = ok_*;[abc\n",
   "[defaults] ignore-functions='[abc' is not a pattern: patterns take * (any text) and ?"},
  {"[defaults]\nignore-files = src/[ab].c\n", "[defaults] ignore-files='src/[ab].c' is not a pattern"},
  {"[defaults]\nallocators = x\\*y\n", "[defaults] allocators: "},
  {"[defaults]\nthreshold = 1 KiB\n[test:t_*]\nthreshold = 2 KiB\n  threshold=3 KiB\n",
   "[test:t_*] sets 'threshold' twice: keep one"},
};

START_TEST(test_bad_file) {
  char *setting = write_config(bad_files[_i].text);
  const char *const env[] = {setting, NULL};
  GError *error = NULL;
  ck_assert_ptr_null(load(env, &error));
  ck_assert_ptr_nonnull(error);
  /* Every message names the file first, then what is wrong. */
  ck_assert_msg(g_str_has_prefix(error->message, setting), "%s", error->message);
  ck_assert_msg(strstr(error->message, bad_files[_i].message) != NULL, "%s", error->message);
  g_error_free(error);
  g_free(setting);
}
END_TEST

/* A FIFO, a directory or a device named by TM_LEAK_CONFIG is refused at once: opening a FIFO
 * nobody writes to would block the suite's constructor forever. */
START_TEST(test_config_not_regular_file_refused) {
  char *dir = g_dir_make_tmp("tm-leak-XXXXXX", NULL);
  char *fifo = g_build_filename(dir, "config.fifo", NULL);
  const char *paths[] = {fifo, dir, "/dev/null"};
  ck_assert_ptr_nonnull(dir);
  ck_assert_int_eq(mkfifo(fifo, 0600), 0);
  alarm(10); /* a blocking open fails the test instead of hanging it */
  for (size_t i = 0; i < G_N_ELEMENTS(paths); i++) {
    char *setting = g_strconcat("TM_LEAK_CONFIG=", paths[i], NULL);
    const char *const env[] = {setting, NULL};
    GError *error = NULL;
    ck_assert_ptr_null(load(env, &error));
    ck_assert_ptr_nonnull(error);
    ck_assert_msg(g_str_has_prefix(error->message, setting), "%s", error->message);
    ck_assert_msg(strstr(error->message, "not a regular file") != NULL, "%s", error->message);
    g_error_free(error);
    g_free(setting);
  }
  alarm(0);
  g_unlink(fifo);
  g_rmdir(dir);
  g_free(fifo);
  g_free(dir);
}
END_TEST

int main(void) {
  Suite *s = suite_create("leak_config");
  TCase *tc = tcase_create("config");
  int failed;

  tcase_add_checked_fixture(tc, NULL, teardown);
  tcase_add_test(tc, test_defaults);
  tcase_add_test(tc, test_environment);
  tcase_add_test(tc, test_empty_is_unset);
  tcase_add_loop_test(tc, test_bad_environment, 0, G_N_ELEMENTS(bad_env));
  tcase_add_test(tc, test_key_file_rules);
  tcase_add_test(tc, test_precedence);
  tcase_add_test(tc, test_scoped_rules);
  tcase_add_test(tc, test_trailing_comments);
  tcase_add_test(tc, test_reachable_and_blocks_env);
  tcase_add_loop_test(tc, test_bad_file, 0, G_N_ELEMENTS(bad_files));
  tcase_add_test(tc, test_config_not_regular_file_refused);
  suite_add_tcase(s, tc);
  failed = run_suite(s) != EXIT_SUCCESS;
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
