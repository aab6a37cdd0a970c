/* leak_names.c — which Suite and TCase each test belongs to, and where its START_TEST is.
 *
 * Check's API gives a running fixture only the test's name (tcase_name()), and its objects are
 * opaque (docs/check-internals.md, "Names inside fixtures"). The suite's own calls of
 * suite_create, suite_add_tcase, tcase_create and _tcase_add_test (the expansion of
 * tcase_add_test and its variants) are made from the user's objects, so the plugin's link flags
 * (-Wl,--wrap=...) send them here first. _tcase_add_test receives START_TEST's TTest, which holds
 * the test's __FILE__ and __LINE__: a failure that has no allocation site (a peak limit, a
 * configuration error) is reported there, in the user's code.
 *
 * TM_LEAK_FIXTURE passed to tcase_add_unchecked_fixture is added as a checked fixture (with a
 * note on stderr): unchecked, no leak could fail a test.
 *
 * The __real_ references are weak: a program linked without the flags never calls the wraps, and
 * still links. The zero-edit mode (leak_auto.c) defines tm__leak_auto_fixture, which makes the
 * tcase_create wrap add TM_LEAK_FIXTURE to every TCase.
 *
 * The suite is built on one thread before it runs; lookups happen in fixtures, after. The tables
 * are the plugin's own memory, kept with the thread paused (tm_thread_pause()): a test that builds
 * a suite of its own (Check's own tests do) is not charged with them.
 */
#include <check.h>
#include <stdio.h>

#include "leak_internal.h"
#include "tracemalloc-check.h"

Suite *__real_suite_create(const char *name) __attribute__((weak));
void __real_suite_add_tcase(Suite *s, TCase *tc) __attribute__((weak));
TCase *__real_tcase_create(const char *name) __attribute__((weak));
void __real__tcase_add_test(TCase *tc, const TTest *ttest, int _signal, int allowed_exit_value,
                            int start, int end) __attribute__((weak));
void __real_tcase_add_unchecked_fixture(TCase *tc, SFun setup, SFun teardown)
  __attribute__((weak));
Suite *__wrap_suite_create(const char *name);
void __wrap_suite_add_tcase(Suite *s, TCase *tc);
TCase *__wrap_tcase_create(const char *name);
void __wrap__tcase_add_test(TCase *tc, const TTest *ttest, int _signal, int allowed_exit_value,
                            int start, int end);
void __wrap_tcase_add_unchecked_fixture(TCase *tc, SFun setup, SFun teardown);
/* Check's runner logs each test before running it (check_log.c), in the runner, before any fork;
 * TF is Check's internal record of a test in a TCase, whose first member is its TTest. */
typedef struct TF TF;
void __real_log_test_start(SRunner *sr, TCase *tc, TF *tfun) __attribute__((weak));
void __wrap_log_test_start(SRunner *sr, TCase *tc, TF *tfun);

/* Defined by leak_auto.c, in the zero-edit archive. */
extern const int tm__leak_auto_fixture __attribute__((weak));

static GHashTable *suite_names; /* Suite* => interned name */
static GHashTable *tcases;      /* TCase* => tcase_entry* */
static GHashTable *tests;       /* interned test name => tm__leak_test_info*, the last added */
static GPtrArray *all_tests;    /* every tm__leak_test_info*, in the order added */
/* The test Check's runner started last (log_test_start): its TCase and TTest, or NULL. */
static const void *running_tcase, *running_ttest;

typedef struct tcase_entry {
  const char *name, *suite;
} tcase_entry;

static void tables_init(void) {
  if (tcases != NULL)
    return;
  suite_names = g_hash_table_new(g_direct_hash, g_direct_equal);
  tcases = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
  tests = g_hash_table_new(g_str_hash, g_str_equal);
  all_tests = g_ptr_array_new_with_free_func(g_free);
}

/* The canonical path of file (relative) taken from dir, when a file is there; else NULL. g_free(). */
static char *file_from(const char *dir, const char *file) {
  char *joined = g_build_filename(dir, file, NULL);
  char *canonical = g_canonicalize_filename(joined, NULL);
  g_free(joined);
  if (g_file_test(canonical, G_FILE_TEST_IS_REGULAR))
    return canonical;
  g_free(canonical);
  return NULL;
}

/* START_TEST's __FILE__ as the compiler saw it, made absolute, so that it is shown in the run's
 * one path style (leak_paths.c) like every allocation site, whose path the debug information
 * gives whole. A relative path is relative to the directory the compiler ran in: the working
 * directory when the suite runs where it was built, else the directory of the executable or one
 * above it (meson compiles from the build directory's top, make from the executable's folder).
 * Left as it is when none has the file. */
static const char *file_path(const char *file) {
  if (g_path_is_absolute(file))
    return g_intern_string(file);
  char *cwd = g_get_current_dir();
  char *found = file_from(cwd, file);
  g_free(cwd);
  char *exe = found == NULL ? g_file_read_link("/proc/self/exe", NULL) : NULL;
  char *dir = exe != NULL ? g_path_get_dirname(exe) : NULL;
  for (int up = 0; dir != NULL && found == NULL && up < 8; up++) {
    found = file_from(dir, file);
    char *parent = g_path_get_dirname(dir);
    bool top = g_str_equal(parent, dir);
    g_free(dir);
    dir = top ? (g_free(parent), NULL) : parent;
  }
  g_free(dir);
  g_free(exe);
  const char *interned = g_intern_string(found != NULL ? found : file);
  g_free(found);
  return interned;
}

Suite *__wrap_suite_create(const char *name) {
  Suite *s = __real_suite_create(name);
  tm_thread_pause(); /* the plugin's tables, not the suite's memory (see the top) */
  tables_init();
  if (s != NULL && name != NULL)
    g_hash_table_insert(suite_names, s, (gpointer)g_intern_string(name));
  tm_thread_resume();
  return s;
}

void __wrap_suite_add_tcase(Suite *s, TCase *tc) {
  tm_thread_pause();
  tables_init();
  tcase_entry *e = g_hash_table_lookup(tcases, tc);
  if (e != NULL && e->suite == NULL)
    e->suite = g_hash_table_lookup(suite_names, s);
  /* Tests added before the TCase joined its suite learn the suite now: this TCase's, not every
   * TCase's of the same name. */
  for (guint i = 0; e != NULL && i < all_tests->len; i++) {
    tm__leak_test_info *info = g_ptr_array_index(all_tests, i);
    if (info->tcase_id == tc && info->suite == NULL)
      info->suite = e->suite;
  }
  tm_thread_resume();
  __real_suite_add_tcase(s, tc);
}

TCase *__wrap_tcase_create(const char *name) {
  TCase *tc = __real_tcase_create(name);
  tm_thread_pause();
  tables_init();
  if (tc != NULL) {
    tcase_entry *e = g_new0(tcase_entry, 1);
    e->name = name != NULL ? g_intern_string(name) : NULL;
    g_hash_table_insert(tcases, tc, e);
  }
  tm_thread_resume();
  if (tc != NULL && &tm__leak_auto_fixture != NULL && tm__leak_auto_fixture)
    tcase_add_checked_fixture(tc, TM_LEAK_FIXTURE); /* the TCase's own list: the suite's memory */
  return tc;
}

void __wrap__tcase_add_test(TCase *tc, const TTest *ttest, int _signal, int allowed_exit_value,
                            int start, int end) {
  tm_thread_pause();
  tables_init();
  if (ttest != NULL && ttest->name != NULL) {
    const tcase_entry *e = g_hash_table_lookup(tcases, tc);
    tm__leak_test_info *info = g_new0(tm__leak_test_info, 1);
    info->test = g_intern_string(ttest->name);
    info->tcase = e != NULL ? e->name : NULL;
    info->suite = e != NULL ? e->suite : NULL;
    info->file = ttest->file != NULL ? file_path(ttest->file) : NULL;
    info->line = ttest->line;
    info->loop_start = start;
    info->tcase_id = tc;
    info->ttest_id = ttest;
    g_ptr_array_add(all_tests, info);
    g_hash_table_insert(tests, (gpointer)info->test, info); /* the last one added wins */
  }
  tm_thread_resume();
  __real__tcase_add_test(tc, ttest, _signal, allowed_exit_value, start, end);
}

void __wrap_log_test_start(SRunner *sr, TCase *tc, TF *tfun) {
  running_tcase = tc;
  running_ttest = tfun != NULL ? *(const TTest *const *)(const void *)tfun : NULL;
  if (__real_log_test_start != NULL)
    __real_log_test_start(sr, tc, tfun);
}

tm__leak_test_info tm__leak_test_lookup(const char *test_name) {
  tm__leak_test_info none = {.test = test_name};
  const tm__leak_test_info *info = NULL;
  if (tests == NULL || test_name == NULL)
    return none;
  for (guint i = all_tests->len; running_ttest != NULL && info == NULL && i-- > 0;) {
    const tm__leak_test_info *candidate = g_ptr_array_index(all_tests, i);
    if (candidate->ttest_id == running_ttest && candidate->tcase_id == running_tcase &&
        g_str_equal(candidate->test, test_name))
      info = candidate;
  }
  if (info == NULL)
    info = g_hash_table_lookup(tests, test_name);
  return info != NULL ? *info : none;
}

/* TM_LEAK_FIXTURE as an unchecked fixture would run once around the whole TCase, in the runner,
 * where Check drops a teardown's failure: no leak could ever fail a test. It is added as a
 * checked fixture instead, which is what the user meant, and stderr says so. */
void __wrap_tcase_add_unchecked_fixture(TCase *tc, SFun setup, SFun teardown) {
  if (setup == tm_leak_setup && teardown == tm_leak_teardown) {
    tm_thread_pause();
    tables_init();
    const tcase_entry *e = g_hash_table_lookup(tcases, tc);
    tm_thread_resume();
    fprintf(tm__leak_stderr(),
            "tracemalloc-check: TCase \"%s\": TM_LEAK_FIXTURE added with "
            "tcase_add_unchecked_fixture(), where a leak could never fail a test; it checks "
            "each test instead, as with tcase_add_checked_fixture()\n",
            e != NULL && e->name != NULL ? e->name : "(unnamed)");
    tcase_add_checked_fixture(tc, setup, teardown);
    return;
  }
  __real_tcase_add_unchecked_fixture(tc, setup, teardown);
}
