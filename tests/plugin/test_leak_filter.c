/* test_leak_filter.c — the plugin's filters and allocation site on live tracebacks: each pattern
 * kind, the per-traceback verdict cache forgetting its answers when a pattern is added, and the
 * site looking through allocator wrappers. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "../run_suite.h"
#include "leak_internal.h"
#include "tracemalloc.h"

/* Exported and not inlined, so that their frames carry these names. */
void *my_cache_fill(size_t n);
void *xwrap_make(size_t n);
void *use_wrapper(size_t n);

__attribute__((noinline)) void *my_cache_fill(size_t n) {
  void *p = malloc(n);
  __asm__ volatile("" ::: "memory");
  return p;
}

__attribute__((noinline)) void *xwrap_make(size_t n) {
  void *p = malloc(n);
  __asm__ volatile("" ::: "memory");
  return p;
}

__attribute__((noinline)) void *use_wrapper(size_t n) {
  void *p = xwrap_make(n); /* site:use_wrapper */
  __asm__ volatile("" ::: "memory");
  return p;
}

static void setup(void) { ck_assert_int_eq(tm_start(16), 0); }

static void teardown(void) { tm_stop(); }

START_TEST(test_function_pattern_and_cache_invalidation) {
  void *p = my_cache_fill(24);
  tm_traceback *tb = tm_get_object_traceback(p);
  ck_assert_ptr_nonnull(tb);
  tm__leak_filters *filters = tm__leak_filters_new();
  ck_assert_ptr_null(tm__leak_filters_match(filters, tb)); /* answer cached: no pattern matches */
  ck_assert_ptr_null(tm__leak_filters_match(filters, tb));
  tm__leak_filters_add_function(filters, "my_cache_*");
  const char *why = tm__leak_filters_match(filters, tb); /* the cached answer was dropped */
  ck_assert_ptr_nonnull(why);
  ck_assert_str_eq(why, "my_cache_*");
  tm__leak_filters_free(filters);
  tm_traceback_free(tb);
  free(p);
}
END_TEST

START_TEST(test_file_and_module_patterns) {
  /* Patterns match any frame, and a whole stack reaches __libc_start_main: keep two frames. */
  ck_assert_int_eq(tm_start(2), 0);
  void *p = my_cache_fill(8);
  char *s = strdup("through libc");
  tm_traceback *mine = tm_get_object_traceback(p), *libc = tm_get_object_traceback(s);
  tm__leak_filters *filters = tm__leak_filters_new();
  tm__leak_filters_add_module(filters, "*libc.so*");
  ck_assert_ptr_null(tm__leak_filters_match(filters, mine));
  ck_assert_str_eq(tm__leak_filters_match(filters, libc), "*libc.so*"); /* strdup's frame */
  tm__leak_filters_add_file(filters, "*tests/plugin/test_leak_filter.c");
  ck_assert_str_eq(tm__leak_filters_match(filters, mine), "*tests/plugin/test_leak_filter.c");
  tm__leak_filters_free(filters);
  tm_traceback_free(mine);
  tm_traceback_free(libc);
  free(s);
  free(p);
}
END_TEST

START_TEST(test_site_looks_through_allocators) {
  void *p = use_wrapper(32);
  tm_traceback *tb = tm_get_object_traceback(p);
  tm__leak_filters *filters = tm__leak_filters_new();
  const tm_frame *site = tm__leak_site(filters, tb);
  ck_assert_ptr_nonnull(site);
  ck_assert_str_eq(site->function, "xwrap_make"); /* malloc is a known wrapper, xwrap_ not yet */
  tm__leak_filters_add_allocator(filters, "xwrap_*");
  site = tm__leak_site(filters, tb);
  ck_assert_str_eq(site->function, "use_wrapper");
  ck_assert_msg(g_str_has_suffix(site->filename, "tests/plugin/test_leak_filter.c"), "%s",
                site->filename);
  tm__leak_filters_free(filters);
  tm_traceback_free(tb);
  free(p);
}
END_TEST

/* Named like an allocation wrapper, and called from this file's own code: looked through with
 * no configuration. */
void *cork_alloc_xmalloc(size_t n);
__attribute__((noinline)) void *cork_alloc_xmalloc(size_t n) {
  void *p = malloc(n);
  if (p == NULL)
    abort();
  return p;
}

__attribute__((noinline)) static void *use_cork(size_t n) {
  void *p = cork_alloc_xmalloc(n); /* site:use_cork */
  memset(p, 0, n);
  return p;
}

START_TEST(test_site_looks_through_named_wrappers) {
  void *p = use_cork(24);
  tm_traceback *tb = tm_get_object_traceback(p);
  tm__leak_filters *filters = tm__leak_filters_new();
  const tm_frame *site = tm__leak_site(filters, tb);
  ck_assert_ptr_nonnull(site);
  ck_assert_msg(g_str_has_prefix(site->function, "use_cork"), "%s", site->function); /* .constprop */
  tm__leak_filters_free(filters);
  tm_traceback_free(tb);
  free(p);
}
END_TEST

int main(void) {
  Suite *s = suite_create("leak_filter");
  TCase *tc = tcase_create("filters");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_function_pattern_and_cache_invalidation);
  tcase_add_test(tc, test_file_and_module_patterns);
  tcase_add_test(tc, test_site_looks_through_allocators);
  tcase_add_test(tc, test_site_looks_through_named_wrappers);
  suite_add_tcase(s, tc);
  return run_suite(s);
}
