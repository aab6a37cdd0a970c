/* test_statistics.c — Snapshot.statistics and compare_to on hand-built snapshots: the cases of
 * CPython's test_tracemalloc (group by line, file, traceback, cumulative) and more orders and
 * groupings, each expected list produced by python3's tracemalloc on the same raw traces.
 */
#include "analysis_fixtures.h"

/* Asserts statistic i: its key's single frame and its totals. */
#define ck_assert_stat(stats, i, file, line, sz, cnt)                                              \
  do {                                                                                             \
    const tm_statistic *s_ = tm_statistics_get((stats), (i));                                      \
    ck_assert_ptr_nonnull(s_);                                                                     \
    ck_assert_uint_eq(tm_traceback_length(s_->traceback), 1);                                      \
    ck_assert_frame(s_->traceback, 0, (file), (line));                                             \
    ck_assert_uint_eq(s_->size, (sz));                                                             \
    ck_assert_uint_eq(s_->count, (cnt));                                                           \
  } while (0)

/* Asserts diff i: its key's frame at index frame_i and its five numbers. */
#define ck_assert_diff(diffs, i, frame_i, file, line, sz, szd, cnt, cntd)                          \
  do {                                                                                             \
    const tm_statistic_diff *d_ = tm_statistic_diffs_get((diffs), (i));                            \
    ck_assert_ptr_nonnull(d_);                                                                     \
    ck_assert_frame(d_->traceback, (frame_i), (file), (line));                                     \
    ck_assert_uint_eq(d_->size, (sz));                                                             \
    ck_assert_int_eq(d_->size_diff, (szd));                                                        \
    ck_assert_uint_eq(d_->count, (cnt));                                                           \
    ck_assert_int_eq(d_->count_diff, (cntd));                                                      \
  } while (0)

static tm_snapshot *snap1, *snap2;

static void setup(void) {
  create_snapshots(&snap1, &snap2);
}

static void teardown(void) {
  tm_snapshot_free(snap1);
  tm_snapshot_free(snap2);
}

START_TEST(test_group_by_line) {
  tm_statistics *st = tm_snapshot_statistics(snap1, TM_KEY_LINENO, false, NULL);
  ck_assert_uint_eq(tm_statistics_length(st), 4);
  ck_assert_stat(st, 0, "b.py", 1, 66, 1);
  ck_assert_stat(st, 1, "a.py", 2, 30, 3);
  ck_assert_stat(st, 2, "<unknown>", 0, 7, 1);
  ck_assert_stat(st, 3, "a.py", 5, 2, 1);
  ck_assert_ptr_null(tm_statistics_get(st, 4));
  tm_statistics_free(st);

  st = tm_snapshot_statistics(snap2, TM_KEY_LINENO, false, NULL);
  ck_assert_uint_eq(tm_statistics_length(st), 3);
  ck_assert_stat(st, 0, "a.py", 5, 5002, 2);
  ck_assert_stat(st, 1, "c.py", 578, 400, 1);
  ck_assert_stat(st, 2, "a.py", 2, 30, 3);
  tm_statistics_free(st);

  tm_statistic_diffs *d = tm_snapshot_compare_to(snap2, snap1, TM_KEY_LINENO, false, NULL);
  ck_assert_uint_eq(tm_statistic_diffs_length(d), 5);
  ck_assert_diff(d, 0, 0, "a.py", 5, 5002, 5000, 2, 1);
  ck_assert_diff(d, 1, 0, "c.py", 578, 400, 400, 1, 1);
  ck_assert_diff(d, 2, 0, "b.py", 1, 0, -66, 0, -1);
  ck_assert_diff(d, 3, 0, "<unknown>", 0, 0, -7, 0, -1);
  ck_assert_diff(d, 4, 0, "a.py", 2, 30, 0, 3, 0);
  ck_assert_ptr_null(tm_statistic_diffs_get(d, 5));
  tm_statistic_diffs_free(d);
}
END_TEST

START_TEST(test_group_by_file) {
  tm_statistics *st = tm_snapshot_statistics(snap1, TM_KEY_FILENAME, false, NULL);
  ck_assert_uint_eq(tm_statistics_length(st), 3);
  ck_assert_stat(st, 0, "b.py", 0, 66, 1);
  ck_assert_stat(st, 1, "a.py", 0, 32, 4);
  ck_assert_stat(st, 2, "<unknown>", 0, 7, 1);
  tm_statistics_free(st);

  st = tm_snapshot_statistics(snap2, TM_KEY_FILENAME, false, NULL);
  ck_assert_uint_eq(tm_statistics_length(st), 2);
  ck_assert_stat(st, 0, "a.py", 0, 5032, 5);
  ck_assert_stat(st, 1, "c.py", 0, 400, 1);
  tm_statistics_free(st);

  tm_statistic_diffs *d = tm_snapshot_compare_to(snap2, snap1, TM_KEY_FILENAME, false, NULL);
  ck_assert_uint_eq(tm_statistic_diffs_length(d), 4);
  ck_assert_diff(d, 0, 0, "a.py", 0, 5032, 5000, 5, 1);
  ck_assert_diff(d, 1, 0, "c.py", 0, 400, 400, 1, 1);
  ck_assert_diff(d, 2, 0, "b.py", 0, 0, -66, 0, -1);
  ck_assert_diff(d, 3, 0, "<unknown>", 0, 0, -7, 0, -1);
  tm_statistic_diffs_free(d);
}
END_TEST

/* Asserts that stat i of st is keyed by a traceback of two frames, oldest first. */
static void assert_tb2(const tm_traceback *tb, const char *f0, unsigned l0, const char *f1,
                       unsigned l1) {
  ck_assert_uint_eq(tm_traceback_length(tb), 2);
  ck_assert_frame(tb, 0, f0, l0);
  ck_assert_frame(tb, 1, f1, l1);
}

START_TEST(test_group_by_traceback) {
  tm_statistics *st = tm_snapshot_statistics(snap1, TM_KEY_TRACEBACK, false, NULL);
  ck_assert_uint_eq(tm_statistics_length(st), 4);
  ck_assert_stat(st, 0, "b.py", 1, 66, 1);
  assert_tb2(tm_statistics_get(st, 1)->traceback, "b.py", 4, "a.py", 2);
  ck_assert_uint_eq(tm_statistics_get(st, 1)->size, 30);
  ck_assert_uint_eq(tm_statistics_get(st, 1)->count, 3);
  ck_assert_stat(st, 2, "<unknown>", 0, 7, 1);
  assert_tb2(tm_statistics_get(st, 3)->traceback, "b.py", 4, "a.py", 5);
  ck_assert_uint_eq(tm_statistics_get(st, 3)->size, 2);
  tm_statistics_free(st);

  tm_statistic_diffs *d = tm_snapshot_compare_to(snap2, snap1, TM_KEY_TRACEBACK, false, NULL);
  ck_assert_uint_eq(tm_statistic_diffs_length(d), 5);
  ck_assert_diff(d, 0, 1, "a.py", 5, 5002, 5000, 2, 1);
  ck_assert_diff(d, 1, 0, "c.py", 578, 400, 400, 1, 1);
  ck_assert_diff(d, 2, 0, "b.py", 1, 0, -66, 0, -1);
  ck_assert_diff(d, 3, 0, "<unknown>", 0, 0, -7, 0, -1);
  ck_assert_diff(d, 4, 1, "a.py", 2, 30, 0, 3, 0);
  tm_statistic_diffs_free(d);
}
END_TEST

START_TEST(test_group_by_cumulative) {
  tm_statistics *st = tm_snapshot_statistics(snap1, TM_KEY_FILENAME, true, NULL);
  ck_assert_uint_eq(tm_statistics_length(st), 3);
  ck_assert_stat(st, 0, "b.py", 0, 98, 5);
  ck_assert_stat(st, 1, "a.py", 0, 32, 4);
  ck_assert_stat(st, 2, "<unknown>", 0, 7, 1);
  tm_statistics_free(st);

  st = tm_snapshot_statistics(snap1, TM_KEY_LINENO, true, NULL);
  ck_assert_uint_eq(tm_statistics_length(st), 5);
  ck_assert_stat(st, 0, "b.py", 1, 66, 1);
  ck_assert_stat(st, 1, "b.py", 4, 32, 4);
  ck_assert_stat(st, 2, "a.py", 2, 30, 3);
  ck_assert_stat(st, 3, "<unknown>", 0, 7, 1);
  ck_assert_stat(st, 4, "a.py", 5, 2, 1);
  tm_statistics_free(st);
}
END_TEST

/* Python: a recursive frame is credited once per occurrence in cumulative mode. */
START_TEST(test_cumulative_recursion_counts_twice) {
  tm_snapshot *s = tm__snapshot_new(3);
  tm_traceback *rec = tb_raw(3, "f.c", 5, "f.c", 5, "main.c", 1, NULL);
  tm_traceback *g = tb_raw(2, "g.c", 3, "main.c", 1, NULL);
  tm__snapshot_add(s, 0, 100, rec);
  tm__snapshot_add(s, 0, 7, g);
  tm_statistics *st = tm_snapshot_statistics(s, TM_KEY_LINENO, true, NULL);
  ck_assert_uint_eq(tm_statistics_length(st), 3);
  ck_assert_stat(st, 0, "f.c", 5, 200, 2);
  ck_assert_stat(st, 1, "main.c", 1, 107, 2);
  ck_assert_stat(st, 2, "g.c", 3, 7, 1);
  tm_statistics_free(st);
  st = tm_snapshot_statistics(s, TM_KEY_FILENAME, true, NULL);
  ck_assert_stat(st, 0, "f.c", 0, 200, 2);
  ck_assert_stat(st, 1, "main.c", 0, 107, 2);
  ck_assert_stat(st, 2, "g.c", 0, 7, 1);
  tm_statistics_free(st);

  tm_snapshot *old = tm__snapshot_new(3);
  tm_traceback *f1 = tb_raw(2, "f.c", 5, "main.c", 1, NULL);
  tm_traceback *h = tb_raw(2, "h.c", 1, "main.c", 1, NULL);
  tm__snapshot_add(old, 0, 50, f1);
  tm__snapshot_add(old, 0, 1000, h);
  tm_statistic_diffs *d = tm_snapshot_compare_to(s, old, TM_KEY_LINENO, true, NULL);
  ck_assert_uint_eq(tm_statistic_diffs_length(d), 4);
  ck_assert_diff(d, 0, 0, "h.c", 1, 0, -1000, 0, -1);
  ck_assert_diff(d, 1, 0, "main.c", 1, 107, -943, 2, 0);
  ck_assert_diff(d, 2, 0, "f.c", 5, 200, 150, 2, 1);
  ck_assert_diff(d, 3, 0, "g.c", 3, 7, 7, 1, 1);
  tm_statistic_diffs_free(d);

  d = tm_snapshot_compare_to(s, old, TM_KEY_TRACEBACK, false, NULL);
  ck_assert_uint_eq(tm_statistic_diffs_length(d), 4);
  ck_assert_diff(d, 0, 1, "h.c", 1, 0, -1000, 0, -1);
  ck_assert_uint_eq(tm_traceback_length(tm_statistic_diffs_get(d, 1)->traceback), 3);
  ck_assert_diff(d, 1, 2, "f.c", 5, 100, 100, 1, 1);
  ck_assert_diff(d, 2, 1, "f.c", 5, 0, -50, 0, -1);
  ck_assert_diff(d, 3, 1, "g.c", 3, 7, 7, 1, 1);
  tm_statistic_diffs_free(d);

  tm_traceback_free(rec);
  tm_traceback_free(g);
  tm_traceback_free(f1);
  tm_traceback_free(h);
  tm_snapshot_free(s);
  tm_snapshot_free(old);
}
END_TEST

/* Equal size and count: descending traceback order, line numbers compared as numbers (10 > 9). */
START_TEST(test_sort_ties_by_traceback) {
  const char *files[] = {"a.c", "a.c", "b.c", "a.c", "a.c"};
  unsigned lines[] = {1, 2, 1, 10, 9};
  tm_snapshot *s = tm__snapshot_new(1);
  for (size_t i = 0; i < 5; i++) {
    tm_traceback *tb = tb_raw(1, files[i], lines[i], NULL);
    tm__snapshot_add(s, 0, 10, tb);
    tm_traceback_free(tb);
  }
  tm_statistics *st = tm_snapshot_statistics(s, TM_KEY_LINENO, false, NULL);
  ck_assert_uint_eq(tm_statistics_length(st), 5);
  ck_assert_stat(st, 0, "b.c", 1, 10, 1);
  ck_assert_stat(st, 1, "a.c", 10, 10, 1);
  ck_assert_stat(st, 2, "a.c", 9, 10, 1);
  ck_assert_stat(st, 3, "a.c", 2, 10, 1);
  ck_assert_stat(st, 4, "a.c", 1, 10, 1);
  tm_statistics_free(st);
  tm_snapshot_free(s);
}
END_TEST

/* Traceback keys compare as tuples, oldest frame first; a prefix sorts before a longer one. */
START_TEST(test_sort_ties_traceback_prefix) {
  tm_traceback *tbs[] = {
      tb_raw(1, "a.c", 1, NULL),
      tb_raw(2, "b.c", 2, "a.c", 1, NULL),
      tb_raw(2, "a.c", 1, "a.c", 1, NULL),
      tb_raw(2, "b.c", 2, "b.c", 1, NULL),
  };
  tm_snapshot *s = tm__snapshot_new(2);
  for (size_t i = 0; i < 4; i++)
    tm__snapshot_add(s, 0, 10, tbs[i]);
  tm_statistics *st = tm_snapshot_statistics(s, TM_KEY_TRACEBACK, false, NULL);
  ck_assert_uint_eq(tm_statistics_length(st), 4);
  assert_tb2(tm_statistics_get(st, 0)->traceback, "b.c", 1, "b.c", 2);
  assert_tb2(tm_statistics_get(st, 1)->traceback, "a.c", 1, "b.c", 2);
  assert_tb2(tm_statistics_get(st, 2)->traceback, "a.c", 1, "a.c", 1);
  ck_assert_stat(st, 3, "a.c", 1, 10, 1);
  tm_statistics_free(st);
  tm_snapshot_free(s);
  for (size_t i = 0; i < 4; i++)
    tm_traceback_free(tbs[i]);
}
END_TEST

/* compare_to's order: |size_diff| first, then size, |count_diff|, count. */
START_TEST(test_compare_to_order) {
  tm_snapshot *new_s = tm__snapshot_new(1), *old_s = tm__snapshot_new(1);
  tm_traceback *a = tb_raw(1, "a.c", 1, NULL), *b = tb_raw(1, "b.c", 1, NULL);
  tm_traceback *c = tb_raw(1, "c.c", 1, NULL), *dd = tb_raw(1, "d.c", 1, NULL);
  tm__snapshot_add(new_s, 0, 10, a);
  tm__snapshot_add(new_s, 0, 30, b);
  tm__snapshot_add(new_s, 0, 5, c);
  tm__snapshot_add(new_s, 0, 5, c);
  tm__snapshot_add(old_s, 0, 20, a);
  tm__snapshot_add(old_s, 0, 20, b);
  tm__snapshot_add(old_s, 0, 10, dd);
  for (int i = 0; i < 3; i++)
    tm__snapshot_add(old_s, 0, 5, c);
  tm_statistic_diffs *d = tm_snapshot_compare_to(new_s, old_s, TM_KEY_LINENO, false, NULL);
  ck_assert_uint_eq(tm_statistic_diffs_length(d), 4);
  ck_assert_diff(d, 0, 0, "b.c", 1, 30, 10, 1, 0);
  ck_assert_diff(d, 1, 0, "a.c", 1, 10, -10, 1, 0);
  ck_assert_diff(d, 2, 0, "d.c", 1, 0, -10, 0, -1);
  ck_assert_diff(d, 3, 0, "c.c", 1, 10, -5, 2, -1);
  tm_statistic_diffs_free(d);
  tm_traceback_free(a);
  tm_traceback_free(b);
  tm_traceback_free(c);
  tm_traceback_free(dd);
  tm_snapshot_free(new_s);
  tm_snapshot_free(old_s);
}
END_TEST

/* Distinct traceback objects with equal (filename, lineno) frames are one key, as equal Python
 * Tracebacks are; the function name and address play no part. */
START_TEST(test_equal_frames_group_together) {
  tm_frame f1 = {.filename = "x.c", .lineno = 8, .function = "one", .ip = 0x10};
  tm_frame f2 = {.filename = g_strdup("x.c"), .lineno = 8, .function = "two", .ip = 0x20};
  tm_traceback *t1 = tm__traceback_new_frames(&f1, 1, 1, false);
  tm_traceback *t2 = tm__traceback_new_frames(&f2, 1, 1, false);
  tm_snapshot *s = tm__snapshot_new(1);
  tm__snapshot_add(s, 0, 3, t1);
  tm__snapshot_add(s, 0, 4, t2);
  ck_assert_uint_eq(s->ntracebacks, 2);
  for (int kt = TM_KEY_FILENAME; kt <= TM_KEY_TRACEBACK; kt++) {
    tm_statistics *st = tm_snapshot_statistics(s, (tm_key_type)kt, false, NULL);
    ck_assert_uint_eq(tm_statistics_length(st), 1);
    ck_assert_stat(st, 0, "x.c", kt == TM_KEY_FILENAME ? 0 : 8, 7, 2);
    tm_statistics_free(st);
  }
  tm_snapshot_free(s);
  tm_traceback_free(t1);
  tm_traceback_free(t2);
  g_free((char *)f2.filename);
}
END_TEST

/* The lists keep their key tracebacks alive after the snapshots are gone. */
START_TEST(test_lists_outlive_snapshots) {
  tm_statistics *st = tm_snapshot_statistics(snap1, TM_KEY_TRACEBACK, false, NULL);
  tm_statistic_diffs *d = tm_snapshot_compare_to(snap2, snap1, TM_KEY_TRACEBACK, false, NULL);
  teardown();
  snap1 = snap2 = NULL;
  assert_tb2(tm_statistics_get(st, 1)->traceback, "b.py", 4, "a.py", 2);
  ck_assert_diff(d, 0, 1, "a.py", 5, 5002, 5000, 2, 1);
  char *text = tm_statistic_format(tm_statistics_get(st, 0));
  ck_assert_str_eq(text, "b.py:1: size=66 B, count=1, average=66 B");
  g_free(text);
  tm_statistics_free(st);
  tm_statistic_diffs_free(d);
}
END_TEST

START_TEST(test_empty_snapshots) {
  tm_snapshot *e = tm__snapshot_new(1);
  tm_statistics *st = tm_snapshot_statistics(e, TM_KEY_LINENO, false, NULL);
  ck_assert_ptr_nonnull(st);
  ck_assert_uint_eq(tm_statistics_length(st), 0);
  tm_statistics_free(st);
  tm_statistic_diffs *d = tm_snapshot_compare_to(e, snap1, TM_KEY_FILENAME, false, NULL);
  ck_assert_uint_eq(tm_statistic_diffs_length(d), 3);
  ck_assert_diff(d, 0, 0, "b.py", 0, 0, -66, 0, -1);
  ck_assert_diff(d, 1, 0, "a.py", 0, 0, -32, 0, -4);
  tm_statistic_diffs_free(d);
  tm_snapshot_free(e);
}
END_TEST

START_TEST(test_invalid_arguments) {
  GError *err = NULL;
  ck_assert_ptr_null(tm_snapshot_statistics(snap1, TM_KEY_TRACEBACK, true, &err));
  ck_assert(g_error_matches(err, TM_ERROR, TM_ERROR_INVALID));
  ck_assert_str_eq(err->message, "cumulative mode cannot be used with key type 'traceback'");
  g_clear_error(&err);
  ck_assert_ptr_null(tm_snapshot_statistics(snap1, (tm_key_type)7, false, &err));
  ck_assert_str_eq(err->message, "unknown key_type: 7");
  g_clear_error(&err);
  ck_assert_ptr_null(tm_snapshot_statistics(NULL, TM_KEY_LINENO, false, &err));
  ck_assert(g_error_matches(err, TM_ERROR, TM_ERROR_INVALID));
  g_clear_error(&err);
  ck_assert_ptr_null(tm_snapshot_compare_to(snap1, NULL, TM_KEY_LINENO, false, &err));
  ck_assert(g_error_matches(err, TM_ERROR, TM_ERROR_INVALID));
  g_clear_error(&err);
  ck_assert_ptr_null(tm_snapshot_compare_to(NULL, snap1, TM_KEY_LINENO, false, NULL));
  ck_assert_ptr_null(tm_snapshot_compare_to(snap1, snap2, TM_KEY_TRACEBACK, true, NULL));
  ck_assert_uint_eq(tm_statistics_length(NULL), 0);
  ck_assert_ptr_null(tm_statistics_get(NULL, 0));
  ck_assert_uint_eq(tm_statistic_diffs_length(NULL), 0);
  ck_assert_ptr_null(tm_statistic_diffs_get(NULL, 0));
  tm_statistics_free(NULL);
  tm_statistic_diffs_free(NULL);
}
END_TEST

static Suite *statistics_suite(void) {
  Suite *s = suite_create("statistics");
  TCase *tc = tcase_create("python");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_group_by_line);
  tcase_add_test(tc, test_group_by_file);
  tcase_add_test(tc, test_group_by_traceback);
  tcase_add_test(tc, test_group_by_cumulative);
  tcase_add_test(tc, test_lists_outlive_snapshots);
  tcase_add_test(tc, test_empty_snapshots);
  tcase_add_test(tc, test_invalid_arguments);
  suite_add_tcase(s, tc);
  tc = tcase_create("order");
  tcase_add_test(tc, test_cumulative_recursion_counts_twice);
  tcase_add_test(tc, test_sort_ties_by_traceback);
  tcase_add_test(tc, test_sort_ties_traceback_prefix);
  tcase_add_test(tc, test_compare_to_order);
  tcase_add_test(tc, test_equal_frames_group_together);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return run_suite(statistics_suite());
}
