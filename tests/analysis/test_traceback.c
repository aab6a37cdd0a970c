/* test_traceback.c — tm_traceback: hand-built frames (order, copies, interning, references,
 * Python's equality and ordering) and live tracebacks of this test's own allocations, resolved
 * to this file, line and function.
 */
#include <stdlib.h>

#include "analysis_fixtures.h"

/* GCC may clone a function (foo.constprop.0) whose frames the checks name; clang does not. */
#if defined(__GNUC__) && !defined(__clang__)
#define TM_NOCLONE __attribute__((noclone))
#else
#define TM_NOCLONE
#endif

START_TEST(test_new_frames_order_and_copy) {
  char file[] = "mod.c";
  tm_frame frames[] = {
      {.filename = "main.c", .lineno = 3, .function = "main"},
      {.filename = file, .lineno = 8, .function = "alloc", .module = "/bin/x", .ip = 0x42,
       .flags = TM_FRAME_INLINED},
  };
  tm_traceback *tb = tm__traceback_new_frames(frames, 2, 7, true);
  file[0] = 'X'; /* the traceback holds its own (interned) copy */
  ck_assert_uint_eq(tm_traceback_length(tb), 2);
  ck_assert_int_eq(tm_traceback_total_nframe(tb), 7);
  ck_assert_frame(tb, 0, "main.c", 3);
  ck_assert_frame(tb, 1, "mod.c", 8);
  const tm_frame *f = tm_traceback_get(tb, 1);
  ck_assert_str_eq(f->function, "alloc");
  ck_assert_str_eq(f->module, "/bin/x");
  ck_assert_uint_eq(f->ip, 0x42);
  ck_assert_uint_eq(f->flags, TM_FRAME_INLINED);
  ck_assert_str_eq(f->filename, "mod.c"); /* a copy: file was changed */
  ck_assert_ptr_null(tm_traceback_get(tb, 0)->module);
  ck_assert_ptr_null(tm_traceback_get(tb, 2));
  ck_assert_uint_eq(tm__traceback_nstack(tb), 1); /* the inlined frame is no stack frame */
  tm_traceback_free(tb);
}
END_TEST

/* Python's raw order is most recent first; the C API's is oldest first, as Traceback's. */
START_TEST(test_python_order) {
  tm_traceback *tb = tb_raw(3, "a.py", 2, "b.py", 4, NULL);
  ck_assert_frame(tb, 0, "b.py", 4);
  ck_assert_frame(tb, 1, "a.py", 2);
  ck_assert_str_eq(tm__traceback_most_recent(tb)->filename, "a.py");
  ck_assert_int_eq(tm_traceback_total_nframe(tb), 3);
  ck_assert(tb->truncated);
  tm_traceback_free(tb);
}
END_TEST

START_TEST(test_total_nframe_at_least_length) {
  tm_traceback *tb = tb_raw(0, "a.c", 1, "b.c", 2, NULL);
  ck_assert_int_eq(tm_traceback_total_nframe(tb), 2);
  tm_traceback_free(tb);
}
END_TEST

START_TEST(test_refcount) {
  tm_traceback *tb = tb_raw(1, "a.c", 1, NULL);
  ck_assert_ptr_eq(tm_traceback_ref(tb), tb);
  ck_assert_int_eq(g_atomic_int_get(&tb->refcount), 2);
  tm_traceback_free(tb);
  ck_assert_frame(tb, 0, "a.c", 1); /* still alive: one reference left */
  tm_traceback_free(tb);
  ck_assert_ptr_null(tm_traceback_ref(NULL));
  tm_traceback_free(NULL);
}
END_TEST

START_TEST(test_null_getters) {
  ck_assert_uint_eq(tm_traceback_length(NULL), 0);
  ck_assert_ptr_null(tm_traceback_get(NULL, 0));
  ck_assert_int_eq(tm_traceback_total_nframe(NULL), 0);
  ck_assert_ptr_null(tm_get_object_traceback(NULL));
}
END_TEST

/* Python's Traceback equality is on (filename, lineno) only; ordering compares those tuples. */
START_TEST(test_key_equality_and_order) {
  tm_frame fa = {.filename = "x.c", .lineno = 8, .function = "f", .ip = 1};
  tm_frame fb = {.filename = "x.c", .lineno = 8, .function = "g", .ip = 2};
  tm_traceback *a = tm__traceback_new_frames(&fa, 1, 1, false);
  tm_traceback *b = tm__traceback_new_frames(&fb, 1, 1, false);
  tm_traceback *c = tb_raw(1, "x.c", 9, NULL);
  tm_traceback *d = tb_raw(2, "x.c", 1, "x.c", 8, NULL);
  tm_traceback *e = tb_raw(1, "w.c", 100, NULL);
  ck_assert(tm__traceback_key_equal(a, b));
  ck_assert_uint_eq(tm__traceback_key_hash(a), tm__traceback_key_hash(b));
  ck_assert_int_eq(tm__traceback_compare(a, b), 0);
  ck_assert(!tm__traceback_key_equal(a, c));
  ck_assert_int_lt(tm__traceback_compare(a, c), 0); /* line 8 < line 9 */
  ck_assert(!tm__traceback_key_equal(a, d));
  ck_assert_int_lt(tm__traceback_compare(a, d), 0); /* (x.c:8,) is a prefix of (x.c:8, x.c:1) */
  ck_assert_int_gt(tm__traceback_compare(d, a), 0);
  ck_assert_int_gt(tm__traceback_compare(a, e), 0); /* "x.c" > "w.c" whatever the lines */
  tm_traceback *tbs[] = {a, b, c, d, e};
  for (size_t i = 0; i < G_N_ELEMENTS(tbs); i++)
    tm_traceback_free(tbs[i]);
}
END_TEST

START_TEST(test_empty_traceback) {
  tm_traceback *tb = tm__traceback_new_frames(NULL, 0, 0, false);
  ck_assert_uint_eq(tm_traceback_length(tb), 0);
  ck_assert_ptr_null(tm_traceback_get(tb, 0));
  const tm_frame *f = tm__traceback_most_recent(tb);
  ck_assert_str_eq(f->filename, "<unknown>");
  ck_assert_uint_eq(f->lineno, 0);
  tm_traceback_free(tb);
}
END_TEST

/* ---- live tracebacks ------------------------------------------------------------------------ */

static unsigned int alloc_line, caller_line, inline_line, inline_caller_line;

/* Allocates at a recorded line. The volatile store keeps malloc from being a tail call, which
 * would remove this frame. */
__attribute__((noinline)) TM_NOCLONE static void *alloc_here(size_t size) {
  alloc_line = __LINE__ + 1;
  void *volatile p = malloc(size);
  return p;
}

__attribute__((noinline)) TM_NOCLONE static void *call_alloc_here(size_t size) {
  caller_line = __LINE__ + 1;
  void *volatile p = alloc_here(size);
  return p;
}

static inline __attribute__((always_inline)) void *inlined_alloc(size_t size) {
  inline_line = __LINE__ + 1;
  void *volatile p = malloc(size);
  return p;
}

__attribute__((noinline)) TM_NOCLONE static void *call_inlined_alloc(size_t size) {
  inline_caller_line = __LINE__ + 1;
  void *volatile p = inlined_alloc(size);
  return p;
}

/* Returns the index of the first frame of tb in this file whose function is fn, or -1. */
static ssize_t find_frame(const tm_traceback *tb, const char *fn) {
  for (size_t i = 0; i < tm_traceback_length(tb); i++) {
    const tm_frame *f = tm_traceback_get(tb, i);
    if (g_str_has_suffix(f->filename, "tests/analysis/test_traceback.c") && f->function != NULL &&
        strcmp(f->function, fn) == 0)
      return (ssize_t)i;
  }
  return -1;
}

START_TEST(test_live_object_traceback) {
  ck_assert_int_eq(tm_start(25), 0);
  void *p = call_alloc_here(24);
  tm_traceback *tb = tm_get_object_traceback(p);
  ck_assert_ptr_nonnull(tb);
  const tm_frame *recent = tm__traceback_most_recent(tb);
  ck_assert_msg(g_str_has_suffix(recent->filename, "tests/analysis/test_traceback.c"),
                "most recent frame is %s:%u", recent->filename, recent->lineno);
  ck_assert_uint_eq(recent->lineno, alloc_line);
  ck_assert_str_eq(recent->function, "alloc_here");
  /* the most recent frame was resolved alone; full resolution agrees with it */
  const tm_frame *last = tm_traceback_get(tb, tm_traceback_length(tb) - 1);
  ck_assert_ptr_eq(last->filename, recent->filename);
  ck_assert_uint_eq(last->lineno, recent->lineno);
  ck_assert_ptr_eq(last->function, recent->function);
  ck_assert_uint_eq(last->ip, recent->ip);
  ssize_t i = find_frame(tb, "call_alloc_here");
  ck_assert_int_eq(i, (ssize_t)tm_traceback_length(tb) - 2); /* the caller is just older */
  ck_assert_uint_eq(tm_traceback_get(tb, (size_t)i)->lineno, caller_line);
  ck_assert_int_ge(find_frame(tb, "test_live_object_traceback_fn"), 0);
  ck_assert_int_ge(tm_traceback_total_nframe(tb), (int)tm__traceback_nstack(tb));
  /* one shared object per stack: asking again gives the same traceback */
  tm_traceback *again = tm_get_object_traceback(p);
  ck_assert_ptr_eq(again, tb);
  tm_traceback_free(again);
  tm_traceback_free(tb);
  volatile uintptr_t addr = (uintptr_t)p; /* not a use after free: a lookup by value */
  free(p);
  ck_assert_ptr_null(tm_get_object_traceback((void *)addr));
  tm_stop();
}
END_TEST

/* tm_stop() frees the engine's stacks: a snapshot taken before, and an object traceback not yet
 * resolved, still resolve to the right frames afterwards (they own copies of their stacks), and
 * a snapshot taken after a restart resolves the same site anew. */
START_TEST(test_live_traceback_survives_stop) {
  ck_assert_int_eq(tm_start(8), 0);
  void *p = call_alloc_here(24);
  tm_traceback *tb = tm_get_object_traceback(p);
  GError *err = NULL;
  tm_snapshot *snap = tm_take_snapshot(&err);
  ck_assert_ptr_nonnull(snap);
  tm_stop();
  ck_assert_int_ge(find_frame(tb, "alloc_here"), 0);
  bool found = false;
  for (size_t i = 0; i < tm_snapshot_length(snap); i++)
    found = found || find_frame(tm_snapshot_get(snap, i)->traceback, "alloc_here") >= 0;
  ck_assert(found);
  tm_snapshot_free(snap);
  tm_traceback_free(tb);
  free(p);
  ck_assert_int_eq(tm_start(8), 0);
  p = call_alloc_here(24);
  tb = tm_get_object_traceback(p);
  ck_assert_int_ge(find_frame(tb, "alloc_here"), 0);
  tm_traceback_free(tb);
  free(p);
  tm_stop();
}
END_TEST

/* A whole live stack starts in the C runtime (_start, __libc_start_*): its string, the key of a
 * traceback statistic, names main() of this file, the oldest frame of the program's own code. */
START_TEST(test_live_to_string_names_main) {
  ck_assert_int_eq(tm_start(TM_MAX_NFRAME), 0);
  void *p = call_alloc_here(24);
  tm_traceback *tb = tm_get_object_traceback(p);
  ck_assert_ptr_nonnull(tb);
  ck_assert(!tb->truncated);
  const tm_frame *oldest = tm_traceback_get(tb, 0);
  ck_assert_ptr_nonnull(oldest->function);
  ck_assert_str_eq(oldest->function, "_start");
  ssize_t m = find_frame(tb, "main");
  ck_assert_int_ge(m, 1);
  const tm_frame *main_frame = tm_traceback_get(tb, (size_t)m);
  char *expected = g_strdup_printf("%s:%u", main_frame->filename, main_frame->lineno);
  char *text = tm_traceback_to_string(tb);
  ck_assert_str_eq(text, expected);
  g_free(text);
  /* a statistic keyed on the whole traceback prints the same key */
  GError *err = NULL;
  tm_snapshot *snap = tm_take_snapshot(&err);
  ck_assert_ptr_nonnull(snap);
  tm_statistics *st = tm_snapshot_statistics(snap, TM_KEY_TRACEBACK, false, &err);
  ck_assert_ptr_nonnull(st);
  bool found = false;
  for (size_t i = 0; i < tm_statistics_length(st); i++) {
    const tm_statistic *stat = tm_statistics_get(st, i);
    if (tm__traceback_key_equal(stat->traceback, tb)) {
      char *line = tm_statistic_format(stat);
      char *prefix = g_strdup_printf("%s: size=24 B, count=1", expected);
      ck_assert_msg(g_str_has_prefix(line, prefix), "got '%s'", line);
      g_free(prefix);
      g_free(line);
      found = true;
    }
  }
  ck_assert(found);
  tm_statistics_free(st);
  tm_snapshot_free(snap);
  g_free(expected);
  tm_traceback_free(tb);
  free(p);
  tm_stop();
}
END_TEST

/* The stripped source line of the allocation is read from this very file. */
START_TEST(test_live_format_reads_source) {
  ck_assert_int_eq(tm_start(25), 0);
  void *p = alloc_here(8);
  tm_traceback *tb = tm_get_object_traceback(p);
  char **lines = tm_traceback_format(tb, 1, false);
  ck_assert_ptr_nonnull(lines);
  char *where = g_strdup_printf(", line %u, in alloc_here", alloc_line);
  ck_assert_msg(g_str_has_prefix(lines[0], "  File \"") && g_str_has_suffix(lines[0], where),
                "got '%s'", lines[0]);
  ck_assert_str_eq(lines[1], "    void *volatile p = malloc(size);");
  ck_assert_ptr_null(lines[2]);
  g_strfreev(lines);
  g_free(where);
  tm_traceback_free(tb);
  free(p);
  tm_stop();
}
END_TEST

/* An inlined call is its own frame, flagged, just after (more recent than) its caller. */
START_TEST(test_live_inlined_frame) {
  ck_assert_int_eq(tm_start(25), 0);
  void *p = call_inlined_alloc(16);
  tm_traceback *tb = tm_get_object_traceback(p);
  size_t n = tm_traceback_length(tb);
  ck_assert_uint_ge(n, 2);
  const tm_frame *inl = tm_traceback_get(tb, n - 1), *caller = tm_traceback_get(tb, n - 2);
  ck_assert_str_eq(inl->function, "inlined_alloc");
  ck_assert_uint_eq(inl->lineno, inline_line);
  ck_assert(inl->flags & TM_FRAME_INLINED);
  ck_assert_str_eq(caller->function, "call_inlined_alloc");
  ck_assert_uint_eq(caller->lineno, inline_caller_line);
  ck_assert(!(caller->flags & TM_FRAME_INLINED));
  ck_assert_uint_eq(tm__traceback_nstack(tb), tb->raw->nframe);
  tm_traceback_free(tb);
  free(p);
  tm_stop();
}
END_TEST

/* A limit of 1 keeps one stack frame and says how many there were. */
START_TEST(test_live_truncated) {
  ck_assert_int_eq(tm_start(1), 0);
  void *p = call_alloc_here(8);
  tm_traceback *tb = tm_get_object_traceback(p);
  ck_assert_uint_eq(tm_traceback_length(tb), 1);
  ck_assert_uint_eq(tm_traceback_get(tb, 0)->lineno, alloc_line);
  ck_assert(tb->truncated);
  ck_assert_int_gt(tm_traceback_total_nframe(tb), 1);
  /* oldest first, the missing (older) frames come first: truncation, frame, source line */
  char **lines = tm_traceback_format(tb, 0, false);
  ck_assert_uint_eq(g_strv_length(lines), 3);
  ck_assert_str_eq(lines[0],
                   "  [... traceback truncated: only the most recent frame was captured]");
  ck_assert_str_eq(lines[2], "    void *volatile p = malloc(size);");
  g_strfreev(lines);
  /* most recent first, they come last */
  lines = tm_traceback_format(tb, 0, true);
  ck_assert_uint_eq(g_strv_length(lines), 3);
  ck_assert_str_eq(lines[1], "    void *volatile p = malloc(size);");
  ck_assert_str_eq(lines[2],
                   "  [... traceback truncated: only the most recent frame was captured]");
  g_strfreev(lines);
  tm_traceback_free(tb);
  free(p);
  tm_stop();
}
END_TEST

START_TEST(test_live_not_tracing) {
  char *p = malloc(8);
  p[0] = 0;
  ck_assert_ptr_null(tm_get_object_traceback(p));
  free(p);
}
END_TEST

/* Stops tracing even after a failed test (CK_FORK=no goes on in the same process). */
static void live_teardown(void) {
  tm_stop();
}

static Suite *traceback_suite(void) {
  Suite *s = suite_create("traceback");
  TCase *tc = tcase_create("loaded");
  tcase_add_test(tc, test_new_frames_order_and_copy);
  tcase_add_test(tc, test_python_order);
  tcase_add_test(tc, test_total_nframe_at_least_length);
  tcase_add_test(tc, test_refcount);
  tcase_add_test(tc, test_null_getters);
  tcase_add_test(tc, test_key_equality_and_order);
  tcase_add_test(tc, test_empty_traceback);
  suite_add_tcase(s, tc);
  tc = tcase_create("live");
  tcase_add_checked_fixture(tc, NULL, live_teardown);
  tcase_add_test(tc, test_live_object_traceback);
  tcase_add_test(tc, test_live_to_string_names_main);
  tcase_add_test(tc, test_live_traceback_survives_stop);
  tcase_add_test(tc, test_live_format_reads_source);
  tcase_add_test(tc, test_live_inlined_frame);
  tcase_add_test(tc, test_live_truncated);
  tcase_add_test(tc, test_live_not_tracing);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return run_suite(traceback_suite());
}
