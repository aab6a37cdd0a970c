/* test_snapshot.c — snapshots built by hand (CPython's test_create_snapshot) and taken live: the
 * test's own allocations appear under this file, line and function, grouped, diffed and filtered.
 */
#include <stdlib.h>

#include "analysis_fixtures.h"

/* GCC may clone a function (foo.constprop.0) whose frames the checks name; clang does not. */
#if defined(__GNUC__) && !defined(__clang__)
#define TM_NOCLONE __attribute__((noclone))
#else
#define TM_NOCLONE
#endif

START_TEST(test_create_snapshot) {
  tm_traceback *tb = tb_raw(10, "a.py", 2, NULL);
  tm_snapshot *s = tm__snapshot_new(5);
  tm__snapshot_add(s, 0, 5, tb);
  tm_traceback_free(tb); /* the snapshot holds its own reference */
  ck_assert_int_eq(tm_snapshot_get_traceback_limit(s), 5);
  ck_assert_uint_eq(tm_snapshot_length(s), 1);
  const tm_trace *t = tm_snapshot_get(s, 0);
  ck_assert_uint_eq(t->domain, 0);
  ck_assert_uint_eq(t->size, 5);
  ck_assert_int_eq(tm_traceback_total_nframe(t->traceback), 10);
  ck_assert_uint_eq(tm_traceback_length(t->traceback), 1);
  ck_assert_frame(t->traceback, 0, "a.py", 2);
  ck_assert_ptr_null(tm_snapshot_get(s, 1));
  tm_snapshot_free(s);
}
END_TEST

/* Traces keep their order and domain; a traceback added twice is stored once. */
START_TEST(test_snapshot_add_dedup) {
  tm_snapshot *s1, *s2;
  create_snapshots(&s1, &s2);
  ck_assert_uint_eq(tm_snapshot_length(s1), 6);
  ck_assert_uint_eq(s1->ntracebacks, 4);
  ck_assert_ptr_eq(tm_snapshot_get(s1, 0)->traceback, tm_snapshot_get(s1, 2)->traceback);
  ck_assert_ptr_ne(tm_snapshot_get(s1, 0)->traceback, tm_snapshot_get(s1, 3)->traceback);
  const unsigned int domains[] = {0, 0, 0, 1, 2, 3};
  const size_t sizes[] = {10, 10, 10, 2, 66, 7};
  for (size_t i = 0; i < 6; i++) {
    ck_assert_uint_eq(tm_snapshot_get(s1, i)->domain, domains[i]);
    ck_assert_uint_eq(tm_snapshot_get(s1, i)->size, sizes[i]);
    ck_assert_ptr_eq(tm_snapshot_get(s1, i)->traceback, s1->tracebacks[s1->tb_index[i]]);
  }
  /* shared between snapshots by reference: freeing one leaves the other intact */
  tm_snapshot_free(s1);
  ck_assert_frame(tm_snapshot_get(s2, 0)->traceback, 1, "a.py", 2);
  tm_snapshot_free(s2);
}
END_TEST

START_TEST(test_snapshot_refcount_and_null) {
  tm_snapshot *s = tm__snapshot_new(1);
  ck_assert_ptr_eq(tm__snapshot_ref(s), s);
  tm_snapshot_free(s);
  ck_assert_uint_eq(tm_snapshot_length(s), 0); /* one reference left */
  tm_snapshot_free(s);
  tm_snapshot_free(NULL);
  ck_assert_uint_eq(tm_snapshot_length(NULL), 0);
  ck_assert_ptr_null(tm_snapshot_get(NULL, 0));
  ck_assert_int_eq(tm_snapshot_get_traceback_limit(NULL), 0);
}
END_TEST

START_TEST(test_take_snapshot_not_tracing) {
  GError *err = NULL;
  ck_assert(!tm_is_tracing());
  ck_assert_ptr_null(tm_take_snapshot(&err));
  ck_assert(g_error_matches(err, TM_ERROR, TM_ERROR_NOT_TRACING));
  ck_assert_str_eq(err->message,
                   "the tracemalloc module must be tracing memory allocations to take a snapshot");
  g_error_free(err);
  ck_assert_ptr_null(tm_take_snapshot(NULL));
}
END_TEST

/* ---- live ------------------------------------------------------------------------------------ */

#define NBLOCKS 3
static unsigned int alloc_line;

/* Allocates n blocks of size bytes at one recorded line. */
__attribute__((noinline)) TM_NOCLONE static void alloc_blocks(void **out, size_t n, size_t size) {
  /* One malloc call site: an unrolled loop would have several return addresses, i.e. several
   * stacks, which is what the test must not see. */
#ifdef __clang__
#pragma clang loop unroll(disable)
#endif
  for (size_t i = 0; i < n; i++) {
    alloc_line = __LINE__ + 1;
    out[i] = malloc(size);
  }
}

/* Returns the lineno statistic of this file's alloc_blocks line, or NULL. */
static const tm_statistic *find_site(const tm_statistics *st) {
  for (size_t i = 0; i < tm_statistics_length(st); i++) {
    const tm_statistic *s = tm_statistics_get(st, i);
    const tm_frame *f = tm_traceback_get(s->traceback, 0);
    if (g_str_has_suffix(f->filename, "tests/analysis/test_snapshot.c") && f->lineno == alloc_line)
      return s;
  }
  return NULL;
}

static void live_setup(void) {
  ck_assert_int_eq(tm_start(16), 0);
}

static void live_teardown(void) {
  tm_stop();
}

START_TEST(test_live_snapshot_names_this_file) {
  void *blocks[NBLOCKS];
  alloc_blocks(blocks, NBLOCKS, 1000);
  GError *err = NULL;
  tm_snapshot *snap = tm_take_snapshot(&err);
  ck_assert_ptr_nonnull(snap);
  ck_assert_int_eq(tm_snapshot_get_traceback_limit(snap), 16);
  tm_statistics *st = tm_snapshot_statistics(snap, TM_KEY_LINENO, false, &err);
  const tm_statistic *site = find_site(st);
  ck_assert_msg(site != NULL, "no statistic for tests/analysis/test_snapshot.c:%u", alloc_line);
  ck_assert_uint_eq(site->size, NBLOCKS * 1000);
  ck_assert_uint_eq(site->count, NBLOCKS);
  ck_assert_str_eq(tm_traceback_get(site->traceback, 0)->function, "alloc_blocks");
  char *text = tm_statistic_format(site);
  char *tail = g_strdup_printf("tests/analysis/test_snapshot.c:%u: size=3000 B, count=3, average=1000 B",
                               alloc_line);
  ck_assert_msg(g_str_has_suffix(text, tail), "got '%s'", text);
  g_free(tail);
  g_free(text);
  /* the three blocks share one traceback object, the one get_object_traceback gives */
  tm_traceback *tb = tm_get_object_traceback(blocks[0]);
  size_t sharing = 0;
  for (size_t i = 0; i < tm_snapshot_length(snap); i++)
    sharing += tm_snapshot_get(snap, i)->traceback == tb;
  ck_assert_uint_eq(sharing, NBLOCKS);
  tm_traceback_free(tb);
  tm_statistics_free(st);
  tm_snapshot_free(snap);
  for (size_t i = 0; i < NBLOCKS; i++)
    free(blocks[i]);
}
END_TEST

/* The analysis layer's own allocations are never traced: a snapshot taken right after another
 * (with statistics computed in between) holds exactly the same traces. */
START_TEST(test_live_snapshot_untraced_work) {
  void *blocks[NBLOCKS];
  alloc_blocks(blocks, NBLOCKS, 10);
  tm_snapshot *s1 = tm_take_snapshot(NULL);
  size_t traced;
  tm_get_traced_memory(&traced, NULL);
  tm_statistics *st = tm_snapshot_statistics(s1, TM_KEY_TRACEBACK, false, NULL);
  tm_traceback *tb = tm_get_object_traceback(blocks[0]);
  char **lines = tm_traceback_format(tb, 0, true);
  char *text = tm_statistic_format(tm_statistics_get(st, 0));
  tm_filter *f = tm_filter_new(true, "*", 0, true, -1, NULL);
  tm_snapshot *filtered = tm_snapshot_filter_traces(s1, &f, 1, NULL);
  tm_snapshot *s2 = tm_take_snapshot(NULL);
  size_t traced_after;
  tm_get_traced_memory(&traced_after, NULL);
  ck_assert_uint_eq(traced_after, traced);
  ck_assert_uint_ge(tm_snapshot_length(s1), NBLOCKS);
  ck_assert_uint_eq(tm_snapshot_length(s2), tm_snapshot_length(s1));
  tm_statistic_diffs *d = tm_snapshot_compare_to(s2, s1, TM_KEY_TRACEBACK, false, NULL);
  for (size_t i = 0; i < tm_statistic_diffs_length(d); i++) {
    ck_assert_int_eq(tm_statistic_diffs_get(d, i)->size_diff, 0);
    ck_assert_int_eq(tm_statistic_diffs_get(d, i)->count_diff, 0);
  }
  g_strfreev(lines);
  g_free(text);
  tm_traceback_free(tb);
  tm_filter_free(f);
  tm_snapshot_free(filtered);
  tm_statistic_diffs_free(d);
  tm_statistics_free(st);
  tm_snapshot_free(s1);
  tm_snapshot_free(s2);
  for (size_t i = 0; i < NBLOCKS; i++)
    free(blocks[i]);
}
END_TEST

/* compare_to between two live snapshots shows the blocks allocated in between, then freed. */
START_TEST(test_live_compare_to) {
  void *blocks[NBLOCKS];
  tm_snapshot *before = tm_take_snapshot(NULL);
  alloc_blocks(blocks, NBLOCKS, 4096);
  tm_snapshot *after = tm_take_snapshot(NULL);
  tm_statistic_diffs *d = tm_snapshot_compare_to(after, before, TM_KEY_LINENO, false, NULL);
  const tm_statistic_diff *top = tm_statistic_diffs_get(d, 0);
  ck_assert_ptr_nonnull(top);
  ck_assert_uint_eq(tm_traceback_get(top->traceback, 0)->lineno, alloc_line);
  ck_assert_int_eq(top->size_diff, NBLOCKS * 4096);
  ck_assert_int_eq(top->count_diff, NBLOCKS);
  tm_statistic_diffs_free(d);
  for (size_t i = 0; i < NBLOCKS; i++)
    free(blocks[i]);
  tm_snapshot *freed = tm_take_snapshot(NULL);
  d = tm_snapshot_compare_to(freed, after, TM_KEY_LINENO, false, NULL);
  top = tm_statistic_diffs_get(d, 0);
  ck_assert_uint_eq(tm_traceback_get(top->traceback, 0)->lineno, alloc_line);
  ck_assert_uint_eq(top->size, 0);
  ck_assert_int_eq(top->size_diff, -NBLOCKS * 4096);
  ck_assert_int_eq(top->count_diff, -NBLOCKS);
  tm_statistic_diffs_free(d);
  tm_snapshot_free(before);
  tm_snapshot_free(after);
  tm_snapshot_free(freed);
}
END_TEST

/* A filter on this file's allocation line keeps our blocks, on the most recent frame or on any
 * frame; excluding the line removes them and nothing else. (Filtering on the file alone with
 * all_frames would match every trace: main() is in this file.) */
START_TEST(test_live_filter_this_file) {
  void *blocks[NBLOCKS];
  alloc_blocks(blocks, NBLOCKS, 64);
  tm_snapshot *snap = tm_take_snapshot(NULL);
  tm_filter *inc = tm_filter_new(true, "*/test_snapshot.c", alloc_line, false, -1, NULL);
  tm_filter *inc_all = tm_filter_new(true, "*test_snapshot.c", alloc_line, true, -1, NULL);
  tm_filter *exc = tm_filter_new(false, "*test_snapshot.c", alloc_line, false, -1, NULL);
  tm_snapshot *only = tm_snapshot_filter_traces(snap, &inc, 1, NULL);
  ck_assert_uint_eq(tm_snapshot_length(only), NBLOCKS);
  ck_assert_uint_eq(tm_snapshot_get(only, 0)->size, 64);
  tm_snapshot *only_all = tm_snapshot_filter_traces(snap, &inc_all, 1, NULL);
  ck_assert_uint_eq(tm_snapshot_length(only_all), NBLOCKS);
  tm_snapshot *without = tm_snapshot_filter_traces(snap, &exc, 1, NULL);
  ck_assert_uint_eq(tm_snapshot_length(without), tm_snapshot_length(snap) - NBLOCKS);
  for (size_t i = 0; i < tm_snapshot_length(without); i++) {
    const tm_frame *f = tm__traceback_most_recent(tm_snapshot_get(without, i)->traceback);
    ck_assert(!g_str_has_suffix(f->filename, "test_snapshot.c") || f->lineno != alloc_line);
  }
  tm_snapshot_free(only);
  tm_snapshot_free(only_all);
  tm_snapshot_free(without);
  tm_filter_free(inc);
  tm_filter_free(inc_all);
  tm_filter_free(exc);
  tm_snapshot_free(snap);
  for (size_t i = 0; i < NBLOCKS; i++)
    free(blocks[i]);
}
END_TEST

/* Domains from tm_track() appear in the snapshot, and a DomainFilter selects them. */
START_TEST(test_live_tracked_domain) {
  ck_assert_int_eq(tm_track(5, 0x1000, 300), 0);
  ck_assert_int_eq(tm_track(5, 0x2000, 200), 0);
  tm_snapshot *snap = tm_take_snapshot(NULL);
  tm_filter *dom = tm_domain_filter_new(true, 5);
  tm_snapshot *only = tm_snapshot_filter_traces(snap, &dom, 1, NULL);
  ck_assert_uint_eq(tm_snapshot_length(only), 2);
  size_t total = 0;
  for (size_t i = 0; i < 2; i++) {
    ck_assert_uint_eq(tm_snapshot_get(only, i)->domain, 5);
    total += tm_snapshot_get(only, i)->size;
  }
  ck_assert_uint_eq(total, 500);
  tm_snapshot_free(only);
  tm_filter_free(dom);
  tm_snapshot_free(snap);
}
END_TEST

static Suite *snapshot_suite(void) {
  Suite *s = suite_create("snapshot");
  TCase *tc = tcase_create("hand_built");
  tcase_add_test(tc, test_create_snapshot);
  tcase_add_test(tc, test_snapshot_add_dedup);
  tcase_add_test(tc, test_snapshot_refcount_and_null);
  tcase_add_test(tc, test_take_snapshot_not_tracing);
  suite_add_tcase(s, tc);
  tc = tcase_create("live");
  tcase_add_checked_fixture(tc, live_setup, live_teardown);
  tcase_add_test(tc, test_live_snapshot_names_this_file);
  tcase_add_test(tc, test_live_snapshot_untraced_work);
  tcase_add_test(tc, test_live_compare_to);
  tcase_add_test(tc, test_live_filter_this_file);
  tcase_add_test(tc, test_live_tracked_domain);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return run_suite(snapshot_suite());
}
