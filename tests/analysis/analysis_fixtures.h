/* analysis_fixtures.h — hand-built tracebacks and snapshots for the analysis tests, as CPython's
 * Lib/test/test_tracemalloc.py builds them. Included by one test file per executable.
 */
#ifndef TM_ANALYSIS_FIXTURES_H
#define TM_ANALYSIS_FIXTURES_H

#include <check.h>
#include <stdarg.h>
#include <string.h>

#include "model.h"
#include "run_suite.h"

/* Builds a loaded traceback from (filename, lineno) pairs given in Python's RAW order, MOST
 * RECENT FIRST, as test_tracemalloc writes them: tb_raw(3, "a.py", 2, "b.py", 4, NULL) is
 * Python's (('a.py', 2), ('b.py', 4)) with total_nframe 3. truncated is total_nframe > pairs. */
static inline tm_traceback *tb_raw(int total_nframe, ...) {
  tm_frame frames[64];
  size_t n = 0;
  va_list ap;
  va_start(ap, total_nframe);
  for (const char *file; n < 64 && (file = va_arg(ap, const char *)) != NULL; n++)
    frames[n] = (tm_frame){.filename = file, .lineno = va_arg(ap, unsigned int)};
  va_end(ap);
  for (size_t i = 0; i < n / 2; i++) { /* to the oldest-first order of the C API */
    tm_frame t = frames[i];
    frames[i] = frames[n - 1 - i];
    frames[n - 1 - i] = t;
  }
  return tm__traceback_new_frames(frames, n, total_nframe, total_nframe > (int)n);
}

/* Python's create_snapshots(): two snapshots with traceback limit 2. */
static inline void create_snapshots(tm_snapshot **snap1, tm_snapshot **snap2) {
  tm_traceback *a2b4 = tb_raw(3, "a.py", 2, "b.py", 4, NULL);
  tm_traceback *a5b4 = tb_raw(3, "a.py", 5, "b.py", 4, NULL);
  tm_traceback *b1 = tb_raw(1, "b.py", 1, NULL);
  tm_traceback *unknown = tb_raw(1, "<unknown>", 0, NULL);
  tm_traceback *c578 = tb_raw(1, "c.py", 578, NULL);
  tm_snapshot *s = tm__snapshot_new(2);
  for (int i = 0; i < 3; i++)
    tm__snapshot_add(s, 0, 10, a2b4);
  tm__snapshot_add(s, 1, 2, a5b4);
  tm__snapshot_add(s, 2, 66, b1);
  tm__snapshot_add(s, 3, 7, unknown);
  *snap1 = s;
  s = tm__snapshot_new(2);
  for (int i = 0; i < 3; i++)
    tm__snapshot_add(s, 0, 10, a2b4);
  tm__snapshot_add(s, 2, 2, a5b4);
  tm__snapshot_add(s, 2, 5000, a5b4);
  tm__snapshot_add(s, 4, 400, c578);
  *snap2 = s;
  tm_traceback_free(a2b4);
  tm_traceback_free(a5b4);
  tm_traceback_free(b1);
  tm_traceback_free(unknown);
  tm_traceback_free(c578);
}

/* Asserts that frame i (oldest first) of tb is file:lineno. */
#define ck_assert_frame(tb, i, file, line)                                                         \
  do {                                                                                             \
    const tm_frame *f_ = tm_traceback_get((tb), (i));                                              \
    ck_assert_ptr_nonnull(f_);                                                                     \
    ck_assert_str_eq(f_->filename, (file));                                                        \
    ck_assert_uint_eq(f_->lineno, (line));                                                         \
  } while (0)

/* Asserts the lines of a NULL-terminated string array, then frees it. */
static inline void ck_assert_lines_free(char **lines, const char *const *expected, size_t n) {
  ck_assert_ptr_nonnull(lines);
  for (size_t i = 0; i < n; i++) {
    ck_assert_msg(lines[i] != NULL, "line %zu missing, expected \"%s\"", i, expected[i]);
    ck_assert_str_eq(lines[i], expected[i]);
  }
  ck_assert_msg(lines[n] == NULL, "unexpected extra line %zu: \"%s\"", n, lines[n]);
  g_strfreev(lines);
}

#endif /* TM_ANALYSIS_FIXTURES_H */
