/* test_filter.c — Filter, DomainFilter and Snapshot.filter_traces, table-driven over every flag,
 * ported from CPython's TestFilters and TestSnapshot.test_filter_traces*. Where C differs from
 * Python it says so: lineno 0 means any line (Python's None), patterns go through glibc
 * fnmatch(3) with flags 0, and malformed patterns are refused.
 */
#include "analysis_fixtures.h"

/* One frame against one filter (Python's Filter._match_frame). */
static const struct {
  bool inclusive;
  const char *pattern;
  unsigned int lineno;
  const char *file;
  unsigned int line;
  bool expected;
} frame_cases[] = {
    /* test_filter_match: no line number */
    {true, "abc", 0, "abc", 0, true},
    {true, "abc", 0, "abc", 5, true},
    {true, "abc", 0, "abc", 10, true},
    {true, "abc", 0, "12356", 0, false},
    {true, "abc", 0, "12356", 5, false},
    {false, "abc", 0, "abc", 0, false},
    {false, "abc", 0, "abc", 10, false},
    {false, "abc", 0, "12356", 5, true},
    /* test_filter_match: line number > 0 */
    {true, "abc", 5, "abc", 0, false},
    {true, "abc", 5, "abc", 5, true},
    {true, "abc", 5, "abc", 10, false},
    {true, "abc", 5, "12356", 5, false},
    {false, "abc", 5, "abc", 0, true},
    {false, "abc", 5, "abc", 5, false},
    {false, "abc", 5, "abc", 10, true},
    {false, "abc", 5, "12356", 5, true},
    /* test_filter_match_filename */
    {true, "abc", 0, "<unknown>", 0, false},
    {false, "abc", 0, "<unknown>", 0, true},
    /* test_filter_match_filename_joker */
    {true, "*", 0, "", 0, true},
    {true, "abc", 0, "", 0, false},
    {true, "abcd", 0, "abc", 0, false},
    {true, "def", 0, "abc", 0, false},
    {true, "a*", 0, "abc", 0, true},
    {true, "abc*", 0, "abc", 0, true},
    {true, "b*", 0, "abc", 0, false},
    {true, "abcd*", 0, "abc", 0, false},
    {true, "a*c", 0, "abc", 0, true},
    {true, "a*cx", 0, "abcdcx", 0, true},
    {true, "a*c", 0, "abb", 0, false},
    {true, "a*cx", 0, "abcdce", 0, false},
    {true, "a*c*e", 0, "abcde", 0, true},
    {true, "a*bd*eg", 0, "abcbdefeg", 0, true},
    {true, "a*c*e", 0, "abcdd", 0, false},
    {true, "a*bd*eg", 0, "abcbdefef", 0, false},
    {true, "ABc", 0, "aBC", 0, false}, /* case sensitive */
    {true, "Ab*dE", 0, "aBcDe", 0, false},
    {true, "a\\b", 0, "a/b", 0, false}, /* no alternate separator */
    {true, "a/b", 0, "a\\b", 0, false},
    {true, "a\\b\\c", 0, "a/b/c", 0, false},
    {true, "a.py", 0, "a.pyo", 0, false},
    /* C paths: '*' and '?' cross '/', a leading '.' is not special (no FNM_PATHNAME/PERIOD) */
    {true, "*.c", 0, "src/dir/x.c", 0, true},
    {true, "src/*", 0, "src/a/b.c", 0, true},
    {true, "*/x.c", 0, "/abs/x.c", 0, true},
    {true, "a?b", 0, "a/b", 0, true},
    {true, "*hidden", 0, ".hidden", 0, true},
    {true, "[ab].c", 0, "b.c", 0, true},
    {true, "[!ab].c", 0, "b.c", 0, false},
    {true, "[!ab].c", 0, "c.c", 0, true},
    {true, "[]]", 0, "]", 0, true},
    {true, "[[]x", 0, "[x", 0, true},
    {true, "*/glib/*", 5, "/usr/src/glib/gmem.c", 5, true},
    {true, "*/glib/*", 5, "/usr/src/glib/gmem.c", 6, false},
    /* glibc fnmatch: '\' escapes (Python has no escape) */
    {true, "\\*", 0, "*", 0, true},
    {true, "\\*", 0, "a", 0, false},
};

START_TEST(test_filter_match_frame) {
  tm_filter *f = tm_filter_new(frame_cases[_i].inclusive, frame_cases[_i].pattern,
                               frame_cases[_i].lineno, false, -1, NULL);
  ck_assert_ptr_nonnull(f);
  tm_frame frame = {.filename = frame_cases[_i].file, .lineno = frame_cases[_i].line};
  tm_traceback *tb = tm__traceback_new_frames(&frame, 1, 1, false);
  bool got = tm__filter_match_traceback(f, tb, NULL);
  ck_assert_msg(got == frame_cases[_i].expected, "Filter(%d, '%s', %u) on %s:%u gave %d",
                frame_cases[_i].inclusive, frame_cases[_i].pattern, frame_cases[_i].lineno,
                frame_cases[_i].file, frame_cases[_i].line, got);
  /* the same answer through the per-call file-name cache, asked twice */
  GHashTable *cache = g_hash_table_new(g_direct_hash, g_direct_equal);
  ck_assert(tm__filter_match_traceback(f, tb, cache) == frame_cases[_i].expected);
  ck_assert(tm__filter_match_traceback(f, tb, cache) == frame_cases[_i].expected);
  g_hash_table_destroy(cache);
  tm_traceback_free(tb);
  tm_filter_free(f);
}
END_TEST

/* test_filter_match_trace: t1..t3 and unknown, raw order (most recent first). */
static const struct {
  bool inclusive;
  const char *pattern;
  bool all_frames;
  bool t1, t2, t3, unknown;
} traceback_cases[] = {
    {true, "b.py", true, true, true, false, false},
    {true, "b.py", false, false, true, false, false},
    {false, "b.py", true, false, false, true, true},
    {false, "b.py", false, true, false, true, true},
    {false, "<unknown>", false, true, true, true, false},
    {true, "<unknown>", true, false, false, true, true},
    {false, "<unknown>", true, true, true, false, false},
};

START_TEST(test_filter_match_traceback) {
  tm_traceback *t1 = tb_raw(2, "a.py", 2, "b.py", 3, NULL);
  tm_traceback *t2 = tb_raw(2, "b.py", 4, "b.py", 5, NULL);
  tm_traceback *t3 = tb_raw(2, "c.py", 5, "<unknown>", 0, NULL);
  tm_traceback *unknown = tb_raw(1, "<unknown>", 0, NULL);
  tm_filter *f = tm_filter_new(traceback_cases[_i].inclusive, traceback_cases[_i].pattern, 0,
                               traceback_cases[_i].all_frames, -1, NULL);
  ck_assert(tm__filter_match_traceback(f, t1, NULL) == traceback_cases[_i].t1);
  ck_assert(tm__filter_match_traceback(f, t2, NULL) == traceback_cases[_i].t2);
  ck_assert(tm__filter_match_traceback(f, t3, NULL) == traceback_cases[_i].t3);
  ck_assert(tm__filter_match_traceback(f, unknown, NULL) == traceback_cases[_i].unknown);
  tm_filter_free(f);
  tm_traceback_free(t1);
  tm_traceback_free(t2);
  tm_traceback_free(t3);
  tm_traceback_free(unknown);
}
END_TEST

/* Filter._match and DomainFilter._match: how the domain combines with the traceback result. */
static const struct {
  bool domain_filter;
  bool inclusive;
  int64_t filter_domain;
  unsigned int trace_domain;
  bool tb_match;
  bool expected;
} domain_cases[] = {
    {false, true, -1, 7, true, true},   /* no domain: the traceback decides */
    {false, true, -1, 7, false, false},
    {false, false, -1, 7, true, true},
    {false, false, -1, 7, false, false},
    {false, true, 1, 1, true, true},    /* inclusive: res and domain == d */
    {false, true, 1, 2, true, false},
    {false, true, 1, 1, false, false},
    {false, false, 1, 1, false, false}, /* exclusive: res or domain != d */
    {false, false, 1, 2, false, true},
    {false, false, 1, 1, true, true},
    {true, true, 3, 3, false, true},    /* DomainFilter ignores the traceback */
    {true, true, 3, 2, true, false},
    {true, false, 3, 3, true, false},
    {true, false, 3, 2, false, true},
};

START_TEST(test_filter_match_domain) {
  tm_filter *f = domain_cases[_i].domain_filter
                     ? tm_domain_filter_new(domain_cases[_i].inclusive,
                                            (unsigned int)domain_cases[_i].filter_domain)
                     : tm_filter_new(domain_cases[_i].inclusive, "*", 0, false,
                                     domain_cases[_i].filter_domain, NULL);
  ck_assert(tm__filter_match_trace(f, domain_cases[_i].trace_domain, domain_cases[_i].tb_match) ==
            domain_cases[_i].expected);
  tm_filter_free(f);
}
END_TEST

/* One expected trace: domain, size and the most recent frame. */
typedef struct expected_trace {
  unsigned int domain;
  size_t size;
  const char *file;
  unsigned int line;
} expected_trace;

/* Asserts the traces of snap, in order. */
static void assert_traces(const tm_snapshot *snap, const expected_trace *exp, size_t n) {
  ck_assert_uint_eq(tm_snapshot_length(snap), n);
  for (size_t i = 0; i < n; i++) {
    const tm_trace *t = tm_snapshot_get(snap, i);
    const tm_frame *f = tm__traceback_most_recent(t->traceback);
    ck_assert_uint_eq(t->domain, exp[i].domain);
    ck_assert_uint_eq(t->size, exp[i].size);
    ck_assert_str_eq(f->filename, exp[i].file);
    ck_assert_uint_eq(f->lineno, exp[i].line);
  }
}

static const expected_trace snap1_traces[] = {
    {0, 10, "a.py", 2}, {0, 10, "a.py", 2}, {0, 10, "a.py", 2},
    {1, 2, "a.py", 5},  {2, 66, "b.py", 1}, {3, 7, "<unknown>", 0},
};

START_TEST(test_filter_traces) {
  tm_snapshot *s1, *s2;
  create_snapshots(&s1, &s2);
  tm_filter *f1 = tm_filter_new(false, "b.py", 0, false, -1, NULL);
  tm_filter *f2 = tm_filter_new(true, "a.py", 2, false, -1, NULL);
  tm_filter *f3 = tm_filter_new(true, "a.py", 5, false, -1, NULL);
  tm_snapshot *s3 = tm_snapshot_filter_traces(s1, (tm_filter *[]){f1}, 1, NULL);
  const expected_trace exp3[] = {snap1_traces[0], snap1_traces[1], snap1_traces[2],
                                 snap1_traces[3], snap1_traces[5]};
  assert_traces(s3, exp3, 5);
  assert_traces(s1, snap1_traces, 6); /* the original is untouched */
  ck_assert_int_eq(tm_snapshot_get_traceback_limit(s3), 2);
  /* only two lines of a.py: inclusive filters are OR-ed */
  tm_snapshot *s4 = tm_snapshot_filter_traces(s3, (tm_filter *[]){f2, f3}, 2, NULL);
  assert_traces(s4, snap1_traces, 4);
  ck_assert_uint_eq(s4->ntracebacks, 2);
  /* no filter: a copy */
  tm_snapshot *s5 = tm_snapshot_filter_traces(s1, NULL, 0, NULL);
  ck_assert_ptr_ne(s5, s1);
  assert_traces(s5, snap1_traces, 6);
  tm_snapshot_free(s3);
  tm_snapshot_free(s4);
  tm_snapshot_free(s5);
  tm_filter_free(f1);
  tm_filter_free(f2);
  tm_filter_free(f3);
  tm_snapshot_free(s1);
  tm_snapshot_free(s2);
}
END_TEST

START_TEST(test_filter_traces_domain) {
  tm_snapshot *s1, *s2;
  create_snapshots(&s1, &s2);
  tm_filter *f1 = tm_filter_new(false, "a.py", 0, false, 1, NULL);
  tm_filter *f2 = tm_filter_new(true, "a.py", 0, false, 1, NULL);
  tm_snapshot *s3 = tm_snapshot_filter_traces(s1, (tm_filter *[]){f1}, 1, NULL);
  const expected_trace exp3[] = {snap1_traces[0], snap1_traces[1], snap1_traces[2],
                                 snap1_traces[4], snap1_traces[5]};
  assert_traces(s3, exp3, 5);
  tm_snapshot *s4 = tm_snapshot_filter_traces(s1, (tm_filter *[]){f2}, 1, NULL);
  assert_traces(s4, &snap1_traces[3], 1);
  tm_snapshot_free(s3);
  tm_snapshot_free(s4);
  tm_filter_free(f1);
  tm_filter_free(f2);
  tm_snapshot_free(s1);
  tm_snapshot_free(s2);
}
END_TEST

START_TEST(test_filter_traces_domain_filter) {
  tm_snapshot *s1, *s2;
  create_snapshots(&s1, &s2);
  tm_filter *f1 = tm_domain_filter_new(false, 3);
  tm_filter *f2 = tm_domain_filter_new(true, 3);
  tm_snapshot *s3 = tm_snapshot_filter_traces(s1, (tm_filter *[]){f1}, 1, NULL);
  assert_traces(s3, snap1_traces, 5);
  tm_snapshot *s4 = tm_snapshot_filter_traces(s1, (tm_filter *[]){f2}, 1, NULL);
  assert_traces(s4, &snap1_traces[5], 1);
  tm_snapshot_free(s3);
  tm_snapshot_free(s4);
  tm_filter_free(f1);
  tm_filter_free(f2);
  tm_snapshot_free(s1);
  tm_snapshot_free(s2);
}
END_TEST

/* Inclusive filters OR-ed, exclusive ones AND-ed, in one call: keep a.py or b.py, but neither
 * domain 0 nor line 1; all_frames reaches b.py:4, the oldest frame of the a.py traces. */
START_TEST(test_filter_traces_mixed) {
  tm_snapshot *s1, *s2;
  create_snapshots(&s1, &s2);
  tm_filter *inc_a = tm_filter_new(true, "a.py", 0, false, -1, NULL);
  tm_filter *inc_b = tm_filter_new(true, "b.py", 0, false, -1, NULL);
  tm_filter *exc_d0 = tm_domain_filter_new(false, 0);
  tm_filter *exc_l1 = tm_filter_new(false, "*", 1, false, -1, NULL);
  tm_snapshot *out =
      tm_snapshot_filter_traces(s1, (tm_filter *[]){exc_d0, inc_a, exc_l1, inc_b}, 4, NULL);
  assert_traces(out, &snap1_traces[3], 1);
  tm_snapshot_free(out);
  tm_filter *exc_b4_all = tm_filter_new(false, "b.py", 4, true, -1, NULL);
  out = tm_snapshot_filter_traces(s1, (tm_filter *[]){exc_b4_all}, 1, NULL);
  assert_traces(out, &snap1_traces[4], 2);
  tm_snapshot_free(out);
  tm_filter *inc_b4_all = tm_filter_new(true, "b.py", 4, true, -1, NULL);
  out = tm_snapshot_filter_traces(s1, (tm_filter *[]){inc_b4_all}, 1, NULL);
  assert_traces(out, snap1_traces, 4);
  tm_snapshot_free(out);
  tm_filter *filters[] = {inc_a, inc_b, exc_d0, exc_l1, exc_b4_all, inc_b4_all};
  for (size_t i = 0; i < G_N_ELEMENTS(filters); i++)
    tm_filter_free(filters[i]);
  tm_snapshot_free(s1);
  tm_snapshot_free(s2);
}
END_TEST

/* Malformed patterns are refused with a message quoting them. */
static const struct {
  const char *pattern;
  const char *message;
} bad_patterns[] = {
    {"foo[", "invalid filename pattern 'foo[': unterminated '['"},
    {"[abc", "invalid filename pattern '[abc': unterminated '['"},
    {"[]", "invalid filename pattern '[]': unterminated '['"},
    {"x[!]", "invalid filename pattern 'x[!]': unterminated '['"},
    {"a\\", "invalid filename pattern 'a\\': trailing '\\'"},
    {"[[:foo:]]", "invalid filename pattern '[[:foo:]]': unknown character class"},
    {"[[:alpha:]", "invalid filename pattern '[[:alpha:]': unterminated '['"},
    {"", "invalid filename pattern '': empty"},
};

START_TEST(test_filter_new_rejects) {
  GError *err = NULL;
  ck_assert_ptr_null(tm_filter_new(true, bad_patterns[_i].pattern, 0, false, -1, &err));
  ck_assert(g_error_matches(err, TM_ERROR, TM_ERROR_INVALID));
  ck_assert_str_eq(err->message, bad_patterns[_i].message);
  g_error_free(err);
}
END_TEST

START_TEST(test_filter_new_accepts_and_null) {
  GError *err = NULL;
  const char *good[] = {"[[:alpha:]]*.c", "[]]", "[!]]x", "\\[x", "*", "<unknown>", "[a-z]?"};
  for (size_t i = 0; i < G_N_ELEMENTS(good); i++) {
    tm_filter *f = tm_filter_new(false, good[i], 0, true, -1, &err);
    ck_assert_msg(f != NULL, "'%s' refused", good[i]);
    tm_filter_free(f);
  }
  ck_assert_ptr_null(tm_filter_new(true, NULL, 0, false, -1, &err));
  ck_assert(g_error_matches(err, TM_ERROR, TM_ERROR_INVALID));
  g_clear_error(&err);
  tm_filter_free(NULL);

  tm_snapshot *s1, *s2;
  create_snapshots(&s1, &s2);
  ck_assert_ptr_null(tm_snapshot_filter_traces(NULL, NULL, 0, &err));
  ck_assert(g_error_matches(err, TM_ERROR, TM_ERROR_INVALID));
  g_clear_error(&err);
  ck_assert_ptr_null(tm_snapshot_filter_traces(s1, NULL, 2, &err));
  ck_assert(g_error_matches(err, TM_ERROR, TM_ERROR_INVALID));
  g_clear_error(&err);
  ck_assert_ptr_null(tm_snapshot_filter_traces(s1, (tm_filter *[]){NULL}, 1, &err));
  ck_assert_str_eq(err->message, "filters[0] is NULL");
  g_clear_error(&err);
  tm_snapshot_free(s1);
  tm_snapshot_free(s2);
}
END_TEST

static Suite *filter_suite(void) {
  Suite *s = suite_create("filter");
  TCase *tc = tcase_create("match");
  tcase_add_loop_test(tc, test_filter_match_frame, 0, G_N_ELEMENTS(frame_cases));
  tcase_add_loop_test(tc, test_filter_match_traceback, 0, G_N_ELEMENTS(traceback_cases));
  tcase_add_loop_test(tc, test_filter_match_domain, 0, G_N_ELEMENTS(domain_cases));
  suite_add_tcase(s, tc);
  tc = tcase_create("filter_traces");
  tcase_add_test(tc, test_filter_traces);
  tcase_add_test(tc, test_filter_traces_domain);
  tcase_add_test(tc, test_filter_traces_domain_filter);
  tcase_add_test(tc, test_filter_traces_mixed);
  suite_add_tcase(s, tc);
  tc = tcase_create("new");
  tcase_add_loop_test(tc, test_filter_new_rejects, 0, G_N_ELEMENTS(bad_patterns));
  tcase_add_test(tc, test_filter_new_accepts_and_null);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return run_suite(filter_suite());
}
