/* leak_suite.c — a Check suite that test_plugin_leaks.c runs in a subprocess, in both fork modes.
 * Each test leaks in one way, or stays clean in one way. The comments "site:NAME" mark the line
 * the failure must name, and "call:NAME" the test's line that leads to it: the checker finds the
 * line numbers by these markers, so the file may be edited freely. A leaked block is handed to
 * lose(), whose volatile local keeps the compiler from dropping the allocation and whose frame is
 * gone by the teardown: nothing reachable points to the block any more.
 */
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>
#include <tracemalloc-check.h>
#include <tracemalloc.h>

#include "lose.h"

static void *before_window; /* allocated by the unchecked setup, before any window */

static void make_old_block(void) {
  before_window = malloc(64);
}

static void free_old_block(void) {
  free(before_window);
  before_window = NULL;
}

/* ---- leaks ------------------------------------------------------------------------------------ */

START_TEST(test_malloc_leak) {
  lose(malloc(24)); /* site:malloc */
}
END_TEST

START_TEST(test_calloc_leak) {
  lose(calloc(3, 8)); /* site:calloc */
}
END_TEST

START_TEST(test_realloc_leak) {
  char *p = malloc(8);
  memset(p, 0, 8);
  lose(realloc(p, 40)); /* site:realloc */
}
END_TEST

START_TEST(test_strdup_leak) {
  lose(strdup("0123456789")); /* site:strdup */
}
END_TEST

START_TEST(test_glib_leak) {
  lose(g_strdup_printf("%d-%s", 42, "glib")); /* site:g_strdup_printf */
}
END_TEST

START_TEST(test_aligned_leak) {
  void *p = NULL;
  ck_assert_int_eq(posix_memalign(&p, 64, 64), 0); /* site:posix_memalign */
  lose(p);
}
END_TEST

static void *thread_leaker(void *arg) {
  lose(malloc(48)); /* site:thread */
  return arg;
}

START_TEST(test_thread_leak) {
  pthread_t t;
  ck_assert_int_eq(pthread_create(&t, NULL, thread_leaker, NULL), 0);
  ck_assert_int_eq(pthread_join(t, NULL), 0);
}
END_TEST

__attribute__((noinline)) static char *deep_inner(size_t n) {
  char *p = malloc(n); /* site:deep */
  memset(p, 'x', n);
  return p;
}

__attribute__((noinline)) static char *deep_outer(size_t n) {
  char *p = deep_inner(n);
  p[0] = 'y';
  return p;
}

START_TEST(test_deep_leak) {
  lose(deep_outer(32)); /* call:deep */
}
END_TEST

/* Iterations 0..2; only iteration 1 leaks. */
START_TEST(test_loop_leak) {
  char *p = malloc(16); /* site:loop */
  if (_i == 1)
    lose(p);
  else
    free(p);
}
END_TEST

START_TEST(test_over_allowance) {
  tm_leak_allow(64);
  lose(malloc(100)); /* site:over */
}
END_TEST

START_TEST(test_under_allowance) {
  tm_leak_allow(64);
  lose(malloc(32));
}
END_TEST

START_TEST(test_ignored) {
  tm_leak_ignore();
  lose(malloc(1000));
}
END_TEST

START_TEST(test_many_sites) {
  for (int i = 0; i < 3; i++)
    lose(malloc(100)); /* site:many_big */
  lose(malloc(10)); /* site:many_small */
}
END_TEST

/* A test whose last act is the allocation, through a pointer: optimized, a tail call, which takes
 * the test's frame off the stack; the message still names the test's line (one line here, so
 * that every optimization level names the same one). */
static void *(*volatile tail_alloc)(size_t) = malloc;
START_TEST(test_tail_call_leak) { tail_alloc(40); /* site:tail_call */ }
END_TEST

/* Two calls on one line: two return addresses, one site in the report (as are the copies of an
 * unrolled loop's call). */
START_TEST(test_one_line_two_calls) {
  lose(malloc(48)); lose(malloc(48)); /* site:one_line */
}
END_TEST

/* The window's memory counts even when the block that preceded it is freed. */
START_TEST(test_free_old_then_leak) {
  free_old_block();
  lose(malloc(64)); /* site:free_old */
}
END_TEST

START_TEST(test_fails_and_leaks) {
  lose(malloc(77));
  ck_abort_msg("the test itself fails"); /* site:fails */
}
END_TEST

/* A list whose head is lost: the head is the root, the nodes are lost through it. */
struct node {
  struct node *next;
  char payload[24];
};

struct list {
  struct node *first;
  size_t length;
};

START_TEST(test_list_leak) {
  struct list *l = calloc(1, sizeof *l); /* site:list_head */
  for (int i = 0; i < 3; i++) {
    struct node *n = calloc(1, sizeof *n); /* site:list_node */
    n->next = l->first;
    l->first = n;
    l->length++;
  }
  lose(l);
}
END_TEST

/* A document and its node point to each other, and the document to a larger dictionary made
 * before it: nothing else points into the pair, so the document, allocated first of the two, is
 * the root, named at its own line (not the dictionary, the largest). */
START_TEST(test_back_reference_leak) {
  void **dict = calloc(128, sizeof *dict);
  void **doc = calloc(4, sizeof *doc); /* site:document */
  void **node = calloc(2, sizeof *node);
  doc[0] = node, doc[1] = dict, node[0] = doc;
  lose(doc);
}
END_TEST

/* The only pointer to the block sat in a block that was freed: freed memory is never scanned. */
START_TEST(test_freed_holder_leak) {
  void *volatile *holder = malloc(4 * sizeof *holder);
  holder[2] = malloc(40); /* site:freed_holder */
  free((void *)holder);
}
END_TEST

/* A block appended to a list kept in a global stays reachable: not a leak, unless reachable
 * growth is charged. */
static struct node *global_list;

START_TEST(test_global_list) {
  struct node *n = calloc(1, sizeof *n); /* site:global_list */
  n->next = global_list;
  global_list = n;
}
END_TEST

void *nodebug_make(size_t n); /* nodebug_lib.c, built without debug information */

/* The site is in a library without debug information: no line there, so the message names the
 * function and the test's line it was called from. */
START_TEST(test_nodebug_library_leak) {
  lose(nodebug_make(44)); /* site:nodebug */
}
END_TEST

/* A project's own allocation wrapper is looked through: the site is its caller's line. */
__attribute__((noinline)) static void *project_xmalloc(size_t n) {
  void *p = malloc(n);
  if (p == NULL)
    abort();
  return p;
}

START_TEST(test_wrapper_leak) {
  lose(project_xmalloc(33)); /* site:wrapper */
}
END_TEST

/* Wrappers that call wrappers (gnulib's xstrdup, xmemdup and xmalloc; libcork's cork_malloc and
 * the inline functions of its allocator.h) are looked through too: the site is the line that
 * called the outermost. Not tail calls, so that each keeps its frame. */
__attribute__((noinline)) static void *project_xmemdup(const void *p, size_t n) {
  void *copy = project_xmalloc(n);
  memcpy(copy, p, n);
  return copy;
}

__attribute__((noinline)) static char *project_xstrdup(const char *s) {
  char *copy = project_xmemdup(s, strlen(s) + 1);
  __asm__ volatile("" ::: "memory");
  return copy;
}

/* The outermost wrapper inlined into its caller: looked through as well. */
static inline __attribute__((always_inline)) char *project_inline_strdup(const char *s) {
  return project_xstrdup(s);
}

START_TEST(test_wrapper_chain_leak) {
  lose(project_inline_strdup("wrapped twice")); /* site:wrapper_chain */
}
END_TEST

/* A camelCase wrapper (secAlloc, xMalloc): looked through as well. */
__attribute__((noinline)) static void *secAlloc(size_t n) {
  void *p = calloc(1, n);
  if (p == NULL)
    abort();
  return p;
}

START_TEST(test_camel_wrapper_leak) {
  lose(secAlloc(19)); /* site:camel_wrapper */
}
END_TEST

/* A user function that ends in _get_type is no GLib type registration: its leak counts. */
__attribute__((noinline)) static char *mime_get_type(void) {
  char *type = strdup("text/plain"); /* site:get_type */
  type[0] = 'T';
  return type;
}

START_TEST(test_get_type_leak) {
  lose(mime_get_type());
}
END_TEST

/* A test that fails while its thread is paused leaves it paused; the next window must not. */
START_TEST(test_paused_then_fails) {
  tm_thread_pause();
  ck_abort_msg("fails while paused"); /* site:paused */
}
END_TEST

START_TEST(test_after_pause_leak) {
  lose(malloc(20)); /* site:after_pause */
}
END_TEST

/* A cache and a leak made at one line, from one call line: the same traceback. Only the lost one
 * is charged, in both fork modes. */
static void *volatile shared_cache;

__attribute__((noinline)) static void fill_or_lose(int keep) {
  void *p = malloc(48); /* site:shared */
  if (keep)
    shared_cache = p;
  else
    lose(p);
}

/* A leak at one site and a cache kept at another: by default only the leak is charged; with
 * reachable growth charged, the message counts the cache as one more site. */
static void *volatile kept_cache; /* volatile: the store and the calloc stay */

START_TEST(test_lost_and_kept) {
  lose(malloc(16)); /* site:lost_and_kept */
  kept_cache = calloc(1, 1000);
}
END_TEST

START_TEST(test_shared_key) {
  for (int i = 0; i < 2; i++)
    fill_or_lose(i == 0);
}
END_TEST

/* ---- the user's own checked fixtures run inside the window ------------------------------------ */

static void *fixture_block;

/* A cache kept in a static pointer: reachable, so not charged unless reachable growth is. */
static void fixture_alloc(void) {
  fixture_block = malloc(56); /* site:fixture */
}

static void fixture_free(void) {
  free(fixture_block);
}

START_TEST(test_with_fixture) {
  ck_assert_ptr_nonnull(fixture_block);
}
END_TEST

/* ---- clean ------------------------------------------------------------------------------------ */

START_TEST(test_clean_malloc) {
  for (int i = 1; i < 100; i++) {
    char *p = malloc((size_t)i * 7);
    p = realloc(p, (size_t)i * 13);
    free(p);
  }
}
END_TEST

START_TEST(test_clean_free_old) {
  free_old_block();
}
END_TEST

START_TEST(test_clean_print) {
  printf("printing from a test: %d %s %f\n", 42, "text", 3.5);
  fprintf(stderr, "and to stderr\n");
  fflush(stdout);
}
END_TEST

START_TEST(test_clean_files) {
  char line[256];
  FILE *f = fopen(SOURCE_FILE, "r");
  ck_assert_ptr_nonnull(f);
  while (fgets(line, sizeof line, f) != NULL)
    ;
  fclose(f);
  DIR *d = opendir(".");
  ck_assert_ptr_nonnull(d);
  while (readdir(d) != NULL)
    ;
  closedir(d);
  FILE *tmp = tmpfile();
  ck_assert_ptr_nonnull(tmp);
  fprintf(tmp, "%s\n", "scratch");
  fclose(tmp);
}
END_TEST

static void *thread_worker(void *arg) {
  for (int i = 0; i < 100; i++)
    free(malloc(32 + (size_t)i));
  return arg;
}

START_TEST(test_clean_threads) {
  pthread_t t[4];
  for (int i = 0; i < 4; i++)
    ck_assert_int_eq(pthread_create(&t[i], NULL, thread_worker, NULL), 0);
  for (int i = 0; i < 4; i++)
    ck_assert_int_eq(pthread_join(t[i], NULL), 0);
}
END_TEST

START_TEST(test_clean_glib) {
  GHashTable *h = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  GString *s = g_string_new("start");
  GPtrArray *a = g_ptr_array_new_with_free_func(g_free);
  GList *l = NULL;
  for (int i = 0; i < 500; i++) {
    g_hash_table_insert(h, g_strdup_printf("k%d", i), g_strdup_printf("v%d", i));
    g_string_append_printf(s, " %d", i);
    g_ptr_array_add(a, g_strdup_printf("e%d", i));
    l = g_list_prepend(l, GINT_TO_POINTER(i));
  }
  ck_assert_uint_eq(g_hash_table_size(h), 500);
  g_list_free(l);
  g_ptr_array_unref(a);
  g_string_free(s, TRUE);
  g_hash_table_destroy(h);
}
END_TEST

/* An empty block is a block lost: it fails with nothing allowed. */
START_TEST(test_empty_block_leak) {
  lose(malloc(0)); /* site:empty */
}
END_TEST

/* In a TCase whose TM_LEAK_FIXTURE was added with tcase_add_unchecked_fixture: it still fails. */
START_TEST(test_unchecked_leak) {
  lose(malloc(28)); /* site:unchecked */
}
END_TEST

/* In a TCase without the fixture: the in-test calls do nothing, and stderr says so. */
START_TEST(test_allow_without_fixture) {
  tm_leak_allow(64);
  lose(malloc(20));
}
END_TEST

/* A test that stops tracing, or makes the tracer forget its traces, cannot be checked: what it
 * allocated before is gone from the traces. It fails saying so, not passing with its leak. */
START_TEST(test_stops_tracing) { /* site:stops */
  lose(malloc(30));
  tm_stop();
}
END_TEST

START_TEST(test_clears_traces) { /* site:clears */
  lose(malloc(30));
  tm_clear_traces();
}
END_TEST

/* Never run: the suite that test_builds_suite builds, as Check's own tests do. */
START_TEST(test_inner) {
}
END_TEST

/* Builds and frees a suite of its own: clean, even when reachable growth is charged (the plugin
 * keeps the names it learns in its own memory, not the test's). */
START_TEST(test_builds_suite) {
  Suite *s = suite_create("Inner");
  TCase *tc = tcase_create("Inner");
  tcase_add_test(tc, test_inner);
  suite_add_tcase(s, tc);
  srunner_free(srunner_create(s));
}
END_TEST

static Suite *leak_suite(void) {
  Suite *s = suite_create("Plugin");
  TCase *leaks = tcase_create("Leaks");
  TCase *clean = tcase_create("Clean");

  tcase_add_checked_fixture(leaks, TM_LEAK_FIXTURE);
  tcase_add_unchecked_fixture(leaks, make_old_block, NULL);
  tcase_add_test(leaks, test_malloc_leak);
  tcase_add_test(leaks, test_calloc_leak);
  tcase_add_test(leaks, test_realloc_leak);
  tcase_add_test(leaks, test_strdup_leak);
  tcase_add_test(leaks, test_glib_leak);
  tcase_add_test(leaks, test_aligned_leak);
  tcase_add_test(leaks, test_thread_leak);
  tcase_add_test(leaks, test_deep_leak);
  tcase_add_loop_test(leaks, test_loop_leak, 0, 3);
  tcase_add_test(leaks, test_over_allowance);
  tcase_add_test(leaks, test_under_allowance);
  tcase_add_test(leaks, test_ignored);
  tcase_add_test(leaks, test_many_sites);
  tcase_add_test(leaks, test_one_line_two_calls);
  tcase_add_test(leaks, test_tail_call_leak);
  tcase_add_test(leaks, test_free_old_then_leak);
  tcase_add_test(leaks, test_fails_and_leaks);
  tcase_add_test(leaks, test_list_leak);
  tcase_add_test(leaks, test_back_reference_leak);
  tcase_add_test(leaks, test_freed_holder_leak);
  tcase_add_test(leaks, test_global_list);
  tcase_add_test(leaks, test_wrapper_leak);
  tcase_add_test(leaks, test_camel_wrapper_leak);
  tcase_add_test(leaks, test_wrapper_chain_leak);
  tcase_add_test(leaks, test_nodebug_library_leak);
  tcase_add_test(leaks, test_empty_block_leak);
  tcase_add_test(leaks, test_get_type_leak);
  tcase_add_test(leaks, test_paused_then_fails);
  tcase_add_test(leaks, test_after_pause_leak);
  tcase_add_test(leaks, test_shared_key);
  tcase_add_test(leaks, test_lost_and_kept);
  suite_add_tcase(s, leaks);

  TCase *fixture_ok = tcase_create("FixtureClean");
  tcase_add_checked_fixture(fixture_ok, TM_LEAK_FIXTURE);
  tcase_add_checked_fixture(fixture_ok, fixture_alloc, fixture_free);
  tcase_add_test(fixture_ok, test_with_fixture);
  suite_add_tcase(s, fixture_ok);

  TCase *fixture_leak = tcase_create("FixtureLeak");
  tcase_add_checked_fixture(fixture_leak, TM_LEAK_FIXTURE);
  tcase_add_checked_fixture(fixture_leak, fixture_alloc, NULL);
  tcase_add_test(fixture_leak, test_with_fixture);
  suite_add_tcase(s, fixture_leak);

  /* The fixture given as an unchecked one, which would run once around the TCase: it is made a
   * checked one, and each test is checked. */
  TCase *unchecked = tcase_create("Unchecked");
  tcase_add_unchecked_fixture(unchecked, TM_LEAK_FIXTURE);
  tcase_add_test(unchecked, test_unchecked_leak);
  tcase_add_test(unchecked, test_clean_malloc);
  suite_add_tcase(s, unchecked);

  TCase *misuse = tcase_create("Misuse");
  tcase_add_checked_fixture(misuse, TM_LEAK_FIXTURE);
  tcase_add_test(misuse, test_stops_tracing);
  tcase_add_test(misuse, test_clears_traces);
  suite_add_tcase(s, misuse);

  TCase *no_fixture = tcase_create("NoFixture");
  tcase_add_test(no_fixture, test_allow_without_fixture);
  suite_add_tcase(s, no_fixture);

  tcase_add_checked_fixture(clean, TM_LEAK_FIXTURE);
  tcase_add_unchecked_fixture(clean, make_old_block, NULL);
  tcase_add_test(clean, test_clean_malloc);
  tcase_add_test(clean, test_clean_free_old);
  tcase_add_test(clean, test_clean_print);
  tcase_add_test(clean, test_clean_files);
  tcase_add_test(clean, test_clean_threads);
  tcase_add_test(clean, test_clean_glib);
  tcase_add_test(clean, test_builds_suite);
  suite_add_tcase(s, clean);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(leak_suite());
  int failed;

  srunner_run_all(sr, CK_ENV);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
