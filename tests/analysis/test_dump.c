/* test_dump.c — tm_snapshot_dump / tm_snapshot_load: round trips of hand-built and live snapshots
 * to identical statistics, atomic writes, and malformed files that must fail cleanly with the
 * right error code and a message naming the file.
 *
 * Malformed files are made from a small valid dump written by hand (valid_dump() below, whose
 * byte offsets the tests patch), so each case breaks exactly one thing.
 */
#include <check.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "model.h"
#include "run_suite.h"

/* Asserts that err is set with the given domain and code. */
#define ck_assert_error_matches(err, dom, c)                                                       \
  ck_assert_msg((err) != NULL && (err)->domain == (dom) && (err)->code == (c),                     \
                "expected error %d, got %s", (int)(c), (err) != NULL ? (err)->message : "none")

static char *tmpdir;

static void tmpdir_setup(void) {
  tmpdir = g_dir_make_tmp("test_dump-XXXXXX", NULL);
  ck_assert_ptr_nonnull(tmpdir);
}

static void tmpdir_teardown(void) {
  GDir *d = g_dir_open(tmpdir, 0, NULL);
  for (const char *name; d != NULL && (name = g_dir_read_name(d)) != NULL;) {
    char *p = g_build_filename(tmpdir, name, NULL);
    if (g_file_test(p, G_FILE_TEST_IS_DIR))
      rmdir(p);
    else
      unlink(p);
    g_free(p);
  }
  if (d != NULL)
    g_dir_close(d);
  rmdir(tmpdir);
  g_free(tmpdir);
  tmpdir = NULL;
}

static char *tmp_path(const char *name) { return g_build_filename(tmpdir, name, NULL); }

/* Number of entries in the temporary directory. */
static unsigned int tmpdir_entries(void) {
  unsigned int n = 0;
  GDir *d = g_dir_open(tmpdir, 0, NULL);
  while (d != NULL && g_dir_read_name(d) != NULL)
    n++;
  if (d != NULL)
    g_dir_close(d);
  return n;
}

/* ---- building snapshots and comparing them ------------------------------------------------- */

/* A loaded traceback from frames given oldest first. */
static tm_traceback *tb_new(const tm_frame *frames, size_t n, int total, bool truncated) {
  return tm__traceback_new_frames(frames, n, total, truncated);
}

/* Python's create_snapshots() shape with every frame field used: inlined and no-debug frames,
 * NULL function and module, a truncated traceback, several domains, a large size. */
static tm_snapshot *hand_snapshot(void) {
  const tm_frame f1[] = {
      {.filename = "b.c", .lineno = 4, .function = "main", .module = "/bin/prog"},
      {.filename = "a.c", .lineno = 2, .function = "helper", .module = "/bin/prog",
       .flags = TM_FRAME_INLINED},
  };
  const tm_frame f2[] = {
      {.filename = "b.c", .lineno = 4, .function = "main", .module = "/bin/prog"},
      {.filename = "libglib-2.0.so.0", .lineno = 0, .function = "g_malloc",
       .module = "/usr/lib/libglib-2.0.so.0", .flags = TM_FRAME_NO_DEBUG_INFO},
  };
  const tm_frame f3[] = {{.filename = "<unknown>", .flags = TM_FRAME_UNKNOWN}};
  const tm_frame f4[] = {{.filename = "c.c", .lineno = 578, .function = NULL, .module = NULL}};
  tm_traceback *tbs[] = {tb_new(f1, 2, 2, false), tb_new(f2, 2, 30, true), tb_new(f3, 1, 1, false),
                         tb_new(f4, 1, 1, false)};
  tm_snapshot *s = tm__snapshot_new(2);
  for (int i = 0; i < 3; i++)
    tm__snapshot_add(s, 0, 10, tbs[0]);
  tm__snapshot_add(s, 1, 2, tbs[1]);
  tm__snapshot_add(s, 2, 66, tbs[2]);
  tm__snapshot_add(s, 3, (size_t)1 << 40, tbs[3]);
  tm__snapshot_add(s, 0, 0, tbs[1]);
  for (size_t i = 0; i < G_N_ELEMENTS(tbs); i++)
    tm_traceback_free(tbs[i]);
  return s;
}

static void assert_same_traceback(const tm_traceback *a, const tm_traceback *b) {
  ck_assert_uint_eq(tm_traceback_length(a), tm_traceback_length(b));
  /* A loaded traceback never has fewer total frames than frames (tm__traceback_new_frames()),
   * while a live one counts stack frames only and may hold more frames through inlined calls. */
  ck_assert_int_eq(MAX(tm_traceback_total_nframe(a), (int)tm_traceback_length(a)),
                   tm_traceback_total_nframe(b));
  ck_assert_int_eq(a->truncated, b->truncated);
  for (size_t i = 0; i < tm_traceback_length(a); i++) {
    const tm_frame *x = tm_traceback_get(a, i), *y = tm_traceback_get(b, i);
    /* A loaded snapshot owns copies of its strings: equal content, other addresses. */
    ck_assert_str_eq(x->filename, y->filename);
    ck_assert_pstr_eq(x->function, y->function);
    ck_assert_pstr_eq(x->module, y->module);
    ck_assert_uint_eq(x->lineno, y->lineno);
    ck_assert_uint_eq(x->flags | TM_FRAME_LOADED, y->flags); /* loaded frames say so */
    ck_assert_uint_eq(y->ip, 0);
  }
}

/* The formatted statistics of snap for a key, one string. */
static char *stats_text(tm_snapshot *snap, tm_key_type key, bool cumulative) {
  GError *err = NULL;
  tm_statistics *st = tm_snapshot_statistics(snap, key, cumulative, &err);
  ck_assert_msg(st != NULL, "statistics: %s", err ? err->message : "?");
  GString *out = g_string_new(NULL);
  for (size_t i = 0; i < tm_statistics_length(st); i++) {
    const tm_statistic *stat = tm_statistics_get(st, i);
    char *line = tm_statistic_format(stat);
    g_string_append_printf(out, "%s\n", line);
    g_free(line);
    char **tb = tm_traceback_format(stat->traceback, 0, false);
    for (char **l = tb; *l != NULL; l++)
      g_string_append_printf(out, "%s\n", *l);
    g_strfreev(tb);
  }
  tm_statistics_free(st);
  return g_string_free(out, FALSE);
}

static void assert_same_snapshot(tm_snapshot *a, tm_snapshot *b) {
  ck_assert_int_eq(tm_snapshot_get_traceback_limit(a), tm_snapshot_get_traceback_limit(b));
  ck_assert_uint_eq(tm_snapshot_length(a), tm_snapshot_length(b));
  for (size_t i = 0; i < tm_snapshot_length(a); i++) {
    const tm_trace *x = tm_snapshot_get(a, i), *y = tm_snapshot_get(b, i);
    ck_assert_uint_eq(x->domain, y->domain);
    ck_assert_uint_eq(x->size, y->size);
    assert_same_traceback(x->traceback, y->traceback);
  }
  const struct {
    tm_key_type key;
    bool cumulative;
  } keys[] = {{TM_KEY_LINENO, false}, {TM_KEY_FILENAME, false}, {TM_KEY_TRACEBACK, false},
              {TM_KEY_LINENO, true}, {TM_KEY_FILENAME, true}};
  /* The files a loaded dump names are read only under a source root: the whole tree here. */
  ck_assert(tm_set_source_root("/"));
  for (size_t k = 0; k < G_N_ELEMENTS(keys); k++) {
    char *sa = stats_text(a, keys[k].key, keys[k].cumulative);
    char *sb = stats_text(b, keys[k].key, keys[k].cumulative);
    ck_assert_str_eq(sa, sb);
    g_free(sa);
    g_free(sb);
  }
  ck_assert(tm_set_source_root(NULL));
}

static tm_snapshot *load_ok(const char *path) {
  GError *err = NULL;
  tm_snapshot *s = tm_snapshot_load(path, &err);
  ck_assert_msg(s != NULL, "load: %s", err ? err->message : "?");
  return s;
}

static void dump_ok(tm_snapshot *snap, const char *path) {
  GError *err = NULL;
  ck_assert_msg(tm_snapshot_dump(snap, path, &err), "dump: %s", err ? err->message : "?");
}

/* ---- round trips ----------------------------------------------------------------------------- */

START_TEST(test_round_trip_hand_built) {
  tm_snapshot *s = hand_snapshot();
  char *path = tmp_path("hand.dump");
  dump_ok(s, path);
  ck_assert_uint_eq(tmpdir_entries(), 1); /* no temporary file left behind */
  tm_snapshot *l = load_ok(path);
  assert_same_snapshot(s, l);
  /* Dumping what was loaded gives the same bytes. */
  char *path2 = tmp_path("again.dump");
  dump_ok(l, path2);
  gchar *c1, *c2;
  gsize n1, n2;
  ck_assert(g_file_get_contents(path, &c1, &n1, NULL));
  ck_assert(g_file_get_contents(path2, &c2, &n2, NULL));
  ck_assert_uint_eq(n1, n2);
  ck_assert_int_eq(memcmp(c1, c2, n1), 0);
  g_free(c1);
  g_free(c2);
  tm_snapshot_free(l);
  tm_snapshot_free(s);
  g_free(path);
  g_free(path2);
}
END_TEST

START_TEST(test_round_trip_empty) {
  tm_snapshot *s = tm__snapshot_new(7);
  char *path = tmp_path("empty.dump");
  dump_ok(s, path);
  tm_snapshot *l = load_ok(path);
  ck_assert_uint_eq(tm_snapshot_length(l), 0);
  ck_assert_int_eq(tm_snapshot_get_traceback_limit(l), 7);
  tm_snapshot_free(l);
  tm_snapshot_free(s);
  g_free(path);
}
END_TEST

static void *blocks[64];

static __attribute__((noinline)) void allocate_some(void) {
  for (int i = 0; i < 32; i++)
    blocks[i] = malloc(100);
  for (int i = 32; i < 64; i++)
    blocks[i] = calloc(1, 5000);
}

/* A live snapshot: resolved frames of this file survive the trip to identical statistics. */
START_TEST(test_round_trip_live) {
  ck_assert_int_eq(tm_start(25), 0);
  allocate_some();
  GError *err = NULL;
  tm_snapshot *s = tm_take_snapshot(&err);
  ck_assert_msg(s != NULL, "take_snapshot: %s", err ? err->message : "?");
  tm_stop();
  for (int i = 0; i < 64; i++)
    free(blocks[i]);
  char *path = tmp_path("live.dump");
  dump_ok(s, path);
  tm_snapshot *l = load_ok(path);
  assert_same_snapshot(s, l);
  /* The loaded snapshot names this file and function. */
  char *text = stats_text(l, TM_KEY_TRACEBACK, false);
  ck_assert_msg(strstr(text, "test_dump.c") != NULL && strstr(text, "allocate_some") != NULL,
                "%s", text);
  g_free(text);
  tm_snapshot_free(l);
  /* A filtered snapshot too. */
  tm_filter *only_here = tm_filter_new(true, "*/test_dump.c", 0, false, -1, &err);
  ck_assert_ptr_nonnull(only_here);
  tm_snapshot *f = tm_snapshot_filter_traces(s, &only_here, 1, &err);
  ck_assert_ptr_nonnull(f);
  ck_assert_uint_ge(tm_snapshot_length(f), 64);
  dump_ok(f, path);
  l = load_ok(path);
  assert_same_snapshot(f, l);
  tm_snapshot_free(l);
  tm_snapshot_free(f);
  tm_filter_free(only_here);
  tm_snapshot_free(s);
  g_free(path);
}
END_TEST

/* ---- writing --------------------------------------------------------------------------------- */

START_TEST(test_dump_errors) {
  tm_snapshot *s = hand_snapshot();
  GError *err = NULL;
  tm_snapshot *bad_limit = tm__snapshot_new(-1);
  char *p = tmp_path("limit.dump");
  ck_assert(!tm_snapshot_dump(bad_limit, p, &err));
  ck_assert_error_matches(err, TM_ERROR, TM_ERROR_INVALID);
  g_clear_error(&err);
  ck_assert(!g_file_test(p, G_FILE_TEST_EXISTS));
  g_free(p);
  tm_snapshot_free(bad_limit);
  char *bad = g_build_filename(tmpdir, "no-such-dir", "x.dump", NULL);
  ck_assert(!tm_snapshot_dump(s, bad, &err));
  ck_assert_error_matches(err, TM_ERROR, TM_ERROR_IO);
  ck_assert_msg(g_str_has_prefix(err->message, bad), "%s", err->message);
  g_clear_error(&err);
  ck_assert(!tm_snapshot_dump(NULL, bad, &err));
  ck_assert_error_matches(err, TM_ERROR, TM_ERROR_INVALID);
  g_clear_error(&err);
  ck_assert(!tm_snapshot_dump(s, NULL, &err));
  ck_assert_error_matches(err, TM_ERROR, TM_ERROR_INVALID);
  g_clear_error(&err);
  ck_assert(!tm_snapshot_load(NULL, &err));
  ck_assert_error_matches(err, TM_ERROR, TM_ERROR_INVALID);
  g_clear_error(&err);
  g_free(bad);
  tm_snapshot_free(s);
}
END_TEST

/* A dump that fails at the last step (rename over a directory) removes its temporary file and
 * leaves what was at the path alone. */
START_TEST(test_dump_failure_leaves_nothing) {
  tm_snapshot *s = hand_snapshot();
  char *dir = tmp_path("target");
  ck_assert_int_eq(mkdir(dir, 0700), 0);
  GError *err = NULL;
  ck_assert(!tm_snapshot_dump(s, dir, &err));
  ck_assert_error_matches(err, TM_ERROR, TM_ERROR_IO);
  g_clear_error(&err);
  ck_assert_uint_eq(tmpdir_entries(), 1);
  ck_assert(g_file_test(dir, G_FILE_TEST_IS_DIR));
  /* Overwriting a previous dump replaces it whole. */
  char *path = tmp_path("snap.dump");
  ck_assert(g_file_set_contents(path, "old", 3, NULL));
  dump_ok(s, path);
  tm_snapshot *l = load_ok(path);
  assert_same_snapshot(s, l);
  ck_assert_uint_eq(tmpdir_entries(), 2);
  tm_snapshot_free(l);
  tm_snapshot_free(s);
  g_free(dir);
  g_free(path);
}
END_TEST

/* A dump replaces only a regular file: a FIFO, a device node or a symbolic link at the path is
 * refused and left as it was, and no temporary file stays behind. An existing file keeps its
 * permission bits. */
START_TEST(test_dump_refuses_special_files_and_keeps_mode) {
  tm_snapshot *s = hand_snapshot();
  GError *err = NULL;
  struct stat st;
  char *fifo = tmp_path("fifo.dump");
  char *link = tmp_path("link.dump");
  char *node = tmp_path("null.dump");
  char *path = tmp_path("private.dump");
  unsigned int entries;

  ck_assert_int_eq(mkfifo(fifo, 0600), 0);
  ck_assert_int_eq(symlink("private.dump", link), 0);
  ck_assert(g_file_set_contents(path, "old", 3, NULL));
  ck_assert_int_eq(chmod(path, 0600), 0);
  if (geteuid() == 0) /* a /dev/null of our own (major 1, minor 3) */
    ck_assert_int_eq(mknod(node, S_IFCHR | 0666, makedev(1, 3)), 0);
  entries = tmpdir_entries();
  const char *refused[] = {fifo, link, geteuid() == 0 ? node : fifo};
  for (size_t i = 0; i < G_N_ELEMENTS(refused); i++) {
    ck_assert(!tm_snapshot_dump(s, refused[i], &err));
    ck_assert_error_matches(err, TM_ERROR, TM_ERROR_IO);
    ck_assert_msg(g_str_has_prefix(err->message, refused[i]), "%s", err->message);
    ck_assert_msg(strstr(err->message, "not a regular file") != NULL, "%s", err->message);
    g_clear_error(&err);
    ck_assert_uint_eq(tmpdir_entries(), entries); /* no temporary file left */
  }
  ck_assert_int_eq(lstat(fifo, &st), 0);
  ck_assert(S_ISFIFO(st.st_mode));
  ck_assert_int_eq(lstat(link, &st), 0);
  ck_assert(S_ISLNK(st.st_mode));
  if (geteuid() == 0) {
    ck_assert_int_eq(lstat(node, &st), 0);
    ck_assert(S_ISCHR(st.st_mode));
  }
  /* A 0600 file stays 0600 (a new file would get 0666 & ~umask). */
  mode_t old_umask = umask(022);
  dump_ok(s, path);
  umask(old_umask);
  ck_assert_int_eq(stat(path, &st), 0);
  ck_assert_uint_eq(st.st_mode & 07777, 0600);
  ck_assert_uint_eq(tmpdir_entries(), entries);
  tm_snapshot_free(s);
  g_free(fifo);
  g_free(link);
  g_free(node);
  g_free(path);
}
END_TEST

/* ---- what a loaded snapshot owns ------------------------------------------------------------- */

/* Writes a dump of nframes frames whose strings are new (they name cycle) and returns its path. */
static char *dump_unique_strings(int cycle, size_t nframes) {
  tm_frame *frames = g_new0(tm_frame, nframes);
  char **names = g_new0(char *, 2 * nframes);
  for (size_t i = 0; i < nframes; i++) {
    names[2 * i] = g_strdup_printf("/src/cycle-%d/a-rather-long-directory-name/file-%zu.c", cycle, i);
    names[2 * i + 1] = g_strdup_printf("function_of_cycle_%d_number_%zu_with_a_long_name", cycle, i);
    frames[i] = (tm_frame){.filename = names[2 * i], .lineno = (unsigned)i + 1,
                           .function = names[2 * i + 1]};
  }
  tm_snapshot *s = tm__snapshot_new(10);
  tm_traceback *tb = tm__traceback_new_frames(frames, nframes, (int)nframes, false);
  tm__snapshot_add(s, 0, 8, tb);
  tm_traceback_free(tb);
  char *path = tmp_path("unique.dump");
  dump_ok(s, path);
  tm_snapshot_free(s);
  for (size_t i = 0; i < 2 * nframes; i++)
    g_free(names[i]);
  g_free(names);
  g_free(frames);
  return path;
}

/* The strings of a loaded dump belong to the snapshot (and the tracebacks and statistics that
 * keep them): freeing it gives their memory back, so loading dump after dump does not grow. */
START_TEST(test_loaded_strings_freed_with_snapshot) {
  enum { CYCLES = 40, NFRAMES = 1000 };
  ck_assert_int_eq(tm_start(1), 0);
  size_t first = 0;
  for (int cycle = 0; cycle < CYCLES; cycle++) {
    char *path = dump_unique_strings(cycle, NFRAMES); /* ~100 KiB of new strings a cycle */
    tm_snapshot *l = load_ok(path);
    ck_assert_uint_eq(tm_traceback_length(tm_snapshot_get(l, 0)->traceback), NFRAMES);
    tm_snapshot_free(l);
    unlink(path);
    g_free(path);
    if (cycle == 1)
      first = tm_get_tracemalloc_memory();
  }
  size_t last = tm_get_tracemalloc_memory();
  ck_assert_msg(last < first + 512 * 1024, "%d load/free cycles kept %zu KiB", CYCLES - 2,
                (last - first) / 1024);
  tm_stop();
}
END_TEST

/* A traceback or a statistic taken from a loaded snapshot keeps its strings after the snapshot
 * is freed, and a loaded snapshot compares with a live one by content: equal file names match
 * although each snapshot owns its own copy. */
START_TEST(test_loaded_strings_outlive_snapshot_and_compare_with_live) {
  const tm_frame frames[] = {{.filename = "/src/kept.c", .lineno = 3, .function = "kept"}};
  char *path = tmp_path("kept.dump");
  tm_snapshot *s = tm__snapshot_new(10);
  tm_traceback *tb = tm__traceback_new_frames(frames, 1, 1, false);
  tm__snapshot_add(s, 0, 100, tb);
  dump_ok(s, path);
  tm_snapshot *l = load_ok(path);
  tm_traceback *kept = tm_traceback_ref((tm_traceback *)tm_snapshot_get(l, 0)->traceback);
  tm_statistics *stats = tm_snapshot_statistics(l, TM_KEY_LINENO, false, NULL);
  tm_snapshot_free(l);
  ck_assert_str_eq(tm_traceback_get(kept, 0)->filename, "/src/kept.c");
  ck_assert_str_eq(tm_traceback_get(kept, 0)->function, "kept");
  ck_assert_str_eq(tm_traceback_get(tm_statistics_get(stats, 0)->traceback, 0)->filename,
                   "/src/kept.c");
  tm_statistics_free(stats);
  tm_traceback_free(kept);
  /* s (interned strings) against a loaded copy (its own strings): one group per line, no diff. */
  l = load_ok(path);
  for (int k = 0; k < 3; k++) {
    tm_statistic_diffs *d = tm_snapshot_compare_to(l, s, (tm_key_type)k, false, NULL);
    ck_assert_uint_eq(tm_statistic_diffs_length(d), 1);
    ck_assert_int_eq(tm_statistic_diffs_get(d, 0)->size_diff, 0);
    ck_assert_int_eq(tm_statistic_diffs_get(d, 0)->count_diff, 0);
    tm_statistic_diffs_free(d);
  }
  tm_snapshot_free(l);
  tm_snapshot_free(s);
  tm_traceback_free(tb);
  g_free(path);
}
END_TEST

/* ---- formatting what a dump names ------------------------------------------------------------ */

/* Formats the traceback of trace 0 of a dump holding frames (oldest first): dumped, loaded,
 * formatted most recent first. g_strfreev(). */
static char **format_loaded(const tm_frame *frames, size_t n) {
  tm_snapshot *s = tm__snapshot_new(10);
  tm_traceback *tb = tm__traceback_new_frames(frames, n, (int)n, false);
  char *path = tmp_path("names.dump");
  tm__snapshot_add(s, 0, 8, tb);
  tm_traceback_free(tb);
  dump_ok(s, path);
  tm_snapshot *l = load_ok(path);
  char **lines = tm_traceback_format(tm_snapshot_get(l, 0)->traceback, 0, true);
  tm_snapshot_free(l);
  tm_snapshot_free(s);
  unlink(path);
  g_free(path);
  return lines;
}

/* Whether any line of lines contains needle. */
static bool lines_contain(char **lines, const char *needle) {
  for (size_t i = 0; lines[i] != NULL; i++)
    if (strstr(lines[i], needle) != NULL)
      return true;
  return false;
}

/* A loaded frame prints a source line only under the root the caller gives: never a file the
 * dump names outside it (an absolute path, a "../" path, a symbolic link out of the root). */
START_TEST(test_loaded_frames_read_source_only_under_root) {
  char *root = tmp_path("src");
  char *inside = tmp_path("src/a.c");
  char *secret = tmp_path("secret.txt");
  char *escape_link = tmp_path("src/link.c");
  ck_assert_int_eq(mkdir(root, 0700), 0);
  ck_assert(g_file_set_contents(inside, "int x;\n  inside_line();\n", -1, NULL));
  ck_assert(g_file_set_contents(secret, "SECRET-LINE\n", -1, NULL));
  ck_assert_int_eq(symlink(secret, escape_link), 0);
  const tm_frame frames[] = {
      {.filename = secret, .lineno = 1, .function = "absolute"},
      {.filename = "../secret.txt", .lineno = 1, .function = "dotdot"},
      {.filename = "link.c", .lineno = 1, .function = "symlink"},
      {.filename = "a.c", .lineno = 2, .function = "relative"},
      {.filename = inside, .lineno = 2, .function = "absolute_inside"},
  };
  char **lines = format_loaded(frames, G_N_ELEMENTS(frames));
  ck_assert_uint_eq(g_strv_length(lines), 5); /* no root: no source line at all */
  ck_assert(!lines_contain(lines, "SECRET-LINE"));
  g_strfreev(lines);
  ck_assert(!tm_set_source_root(secret)); /* not a directory */
  ck_assert(tm_set_source_root(root));
  lines = format_loaded(frames, G_N_ELEMENTS(frames));
  ck_assert(!lines_contain(lines, "SECRET-LINE"));
  ck_assert_uint_eq(g_strv_length(lines), 7); /* the two frames inside the root */
  ck_assert_str_eq(lines[1], "    inside_line();");
  ck_assert_str_eq(lines[3], "    inside_line();");
  g_strfreev(lines);
  ck_assert(tm_set_source_root(NULL));
  unlink(escape_link);
  unlink(inside);
  rmdir(root);
  g_free(root);
  g_free(inside);
  g_free(secret);
  g_free(escape_link);
}
END_TEST

/* Control characters and bytes that are not UTF-8 in a dump's strings never reach the output
 * raw: an escape sequence or a newline would rewrite the terminal or forge report lines. */
START_TEST(test_loaded_strings_escaped_when_printed) {
  const tm_frame frames[] = {
      {.filename = "evil\x1b[2J\nFile \"forged.c\", line 1.c", .lineno = 7,
       .function = "f\rg\x7f\xc2\x9b\xff"},
  };
  char **lines = format_loaded(frames, 1);
  ck_assert_uint_eq(g_strv_length(lines), 1);
  ck_assert_str_eq(lines[0], "  File \"evil\\x1b[2J\\x0aFile \"forged.c\", line 1.c\", line 7, in "
                             "f\\x0dg\\x7f\\xc2\\x9b\\xff");
  g_strfreev(lines);
  tm_snapshot *s = tm__snapshot_new(10);
  tm_traceback *tb = tm__traceback_new_frames(frames, 1, 1, false);
  char *text = tm_traceback_to_string(tb);
  ck_assert_str_eq(text, "evil\\x1b[2J\\x0aFile \"forged.c\", line 1.c:7");
  g_free(text);
  tm_traceback_free(tb);
  tm_snapshot_free(s);
}
END_TEST

/* ---- malformed files ------------------------------------------------------------------------- */

static void put_u16(GByteArray *b, uint16_t v) {
  guint8 x[2] = {(guint8)v, (guint8)(v >> 8)};
  g_byte_array_append(b, x, 2);
}

static void put_u32(GByteArray *b, uint32_t v) {
  guint8 x[4] = {(guint8)v, (guint8)(v >> 8), (guint8)(v >> 16), (guint8)(v >> 24)};
  g_byte_array_append(b, x, 4);
}

static void put_u64(GByteArray *b, uint64_t v) {
  put_u32(b, (uint32_t)v);
  put_u32(b, (uint32_t)(v >> 32));
}

static void put_string(GByteArray *b, const char *s) {
  put_u32(b, (uint32_t)strlen(s));
  g_byte_array_append(b, (const guint8 *)s, (guint)strlen(s) + 1);
}

static void set_u32(GByteArray *b, size_t off, uint32_t v) {
  for (int i = 0; i < 4; i++)
    b->data[off + i] = (guint8)(v >> (8 * i));
}

static void set_u64(GByteArray *b, size_t off, uint64_t v) {
  set_u32(b, off, (uint32_t)v);
  set_u32(b, off + 4, (uint32_t)(v >> 32));
}

/* Offsets in valid_dump(). */
enum {
  OFF_VERSION = 6,
  OFF_BOM = 8,
  OFF_LIMIT = 12,
  OFF_NSTRINGS = 16,
  OFF_NTRACEBACKS = 24,
  OFF_NTRACES = 32,
  OFF_STRINGS = 40,  /* "a.c" (40..47), "main" (48..56), "/bin/prog" (57..70) */
  OFF_STRING1 = 48,
  OFF_TRACEBACK = 71, /* nframes, total_nframe, flags */
  OFF_FRAME = 83,     /* filename, function, module, lineno, flags */
  OFF_TRACES = 103,   /* (domain, traceback, size) x 2 */
  DUMP_LEN = 135,
};

/* The format of tm_snapshot_dump, written by hand: 3 strings, 1 traceback of 1 frame, 2 traces. */
static GByteArray *valid_dump(void) {
  GByteArray *b = g_byte_array_new();
  g_byte_array_append(b, (const guint8 *)"TMDUMP", 6);
  put_u16(b, 1);
  put_u32(b, 0x01020304u);
  put_u32(b, 5);
  put_u64(b, 3);
  put_u64(b, 1);
  put_u64(b, 2);
  put_string(b, "a.c");
  put_string(b, "main");
  put_string(b, "/bin/prog");
  put_u32(b, 1);
  put_u32(b, 1);
  put_u32(b, 0);
  put_u32(b, 0);
  put_u32(b, 1);
  put_u32(b, 2);
  put_u32(b, 7);
  put_u32(b, 0);
  put_u32(b, 0);
  put_u32(b, 0);
  put_u64(b, 100);
  put_u32(b, 1);
  put_u32(b, 0);
  put_u64(b, 200);
  ck_assert_uint_eq(b->len, DUMP_LEN);
  return b;
}

static char *write_bytes(const guint8 *data, size_t len) {
  char *path = tmp_path("bad.dump");
  /* No fsync (g_file_set_contents does one): a thousand files are written here. */
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  ck_assert_uint_eq(fwrite(data, 1, len, f), len);
  ck_assert_int_eq(fclose(f), 0);
  return path;
}

/* Loads len bytes of b and expects failure with code and a message holding the file name and
 * needle. */
static void expect_fail(GByteArray *b, size_t len, int code, const char *needle) {
  char *path = write_bytes(b->data, len);
  GError *err = NULL;
  tm_snapshot *s = tm_snapshot_load(path, &err);
  ck_assert_msg(s == NULL, "loaded a malformed file (%zu bytes, expected \"%s\")", len, needle);
  ck_assert_ptr_nonnull(err);
  ck_assert_msg(err->domain == TM_ERROR && err->code == code, "code %d, expected %d: %s",
                err->code, code, err->message);
  ck_assert_msg(g_str_has_prefix(err->message, path), "message lacks the file: %s",
                err->message);
  ck_assert_msg(needle == NULL || strstr(err->message, needle) != NULL,
                "message \"%s\" lacks \"%s\"", err->message, needle);
  g_error_free(err);
  g_free(path);
}

START_TEST(test_valid_hand_written) {
  GByteArray *b = valid_dump();
  char *path = write_bytes(b->data, b->len);
  tm_snapshot *s = load_ok(path);
  ck_assert_int_eq(tm_snapshot_get_traceback_limit(s), 5);
  ck_assert_uint_eq(tm_snapshot_length(s), 2);
  ck_assert_uint_eq(tm_snapshot_get(s, 1)->domain, 1);
  ck_assert_uint_eq(tm_snapshot_get(s, 1)->size, 200);
  const tm_frame *f = tm_traceback_get(tm_snapshot_get(s, 0)->traceback, 0);
  ck_assert_str_eq(f->filename, "a.c");
  ck_assert_str_eq(f->function, "main");
  ck_assert_str_eq(f->module, "/bin/prog");
  ck_assert_uint_eq(f->lineno, 7);
  tm_snapshot_free(s);
  g_free(path);
  /* Through a pipe, as from a shell's <(...). */
  int fds[2];
  ck_assert_int_eq(pipe(fds), 0);
  ck_assert_int_eq(write(fds[1], b->data, b->len), (ssize_t)b->len);
  close(fds[1]);
  char *pipe_path = g_strdup_printf("/proc/self/fd/%d", fds[0]);
  s = load_ok(pipe_path);
  ck_assert_uint_eq(tm_snapshot_length(s), 2);
  tm_snapshot_free(s);
  g_free(pipe_path);
  close(fds[0]);
  g_byte_array_free(b, TRUE);
}
END_TEST

START_TEST(test_missing_file) {
  char *path = tmp_path("does-not-exist");
  GError *err = NULL;
  ck_assert_ptr_null(tm_snapshot_load(path, &err));
  ck_assert_error_matches(err, TM_ERROR, TM_ERROR_IO);
  ck_assert_msg(g_str_has_prefix(err->message, path), "%s", err->message);
  g_clear_error(&err);
  /* A directory cannot be read as a file, nor a device that never ends. */
  ck_assert_ptr_null(tm_snapshot_load(tmpdir, &err));
  ck_assert_error_matches(err, TM_ERROR, TM_ERROR_IO);
  g_clear_error(&err);
  ck_assert_ptr_null(tm_snapshot_load("/dev/zero", &err));
  ck_assert_error_matches(err, TM_ERROR, TM_ERROR_IO);
  ck_assert_msg(strstr(err->message, "not a regular file") != NULL, "%s", err->message);
  g_clear_error(&err);
  /* A FIFO nobody writes to reads as empty instead of blocking. */
  char *fifo = tmp_path("fifo");
  ck_assert_int_eq(mkfifo(fifo, 0600), 0);
  ck_assert_ptr_null(tm_snapshot_load(fifo, &err));
  ck_assert_error_matches(err, TM_ERROR, TM_ERROR_CORRUPT);
  g_clear_error(&err);
  g_free(fifo);
  g_free(path);
}
END_TEST

START_TEST(test_empty_and_magic) {
  GByteArray *b = valid_dump();
  expect_fail(b, 0, TM_ERROR_CORRUPT, "empty file");
  expect_fail(b, 3, TM_ERROR_CORRUPT, "truncated: the header");
  b->data[0] = 'X';
  expect_fail(b, b->len, TM_ERROR_CORRUPT, "bad magic");
  expect_fail(b, 1, TM_ERROR_CORRUPT, "bad magic");
  g_byte_array_free(b, TRUE);
}
END_TEST

START_TEST(test_bad_version) {
  GByteArray *b = valid_dump();
  b->data[OFF_VERSION] = 2;
  expect_fail(b, b->len, TM_ERROR_VERSION, "version 2");
  expect_fail(b, OFF_VERSION + 2, TM_ERROR_VERSION, "version 2"); /* before the rest is read */
  b->data[OFF_VERSION] = 0;
  b->data[OFF_VERSION + 1] = 1; /* 256: a big-endian writer's 1 */
  expect_fail(b, b->len, TM_ERROR_VERSION, "version 256");
  g_byte_array_free(b, TRUE);
}
END_TEST

START_TEST(test_bad_byte_order_and_limit) {
  GByteArray *b = valid_dump();
  set_u32(b, OFF_BOM, 0x04030201u);
  expect_fail(b, b->len, TM_ERROR_CORRUPT, "byte-swapped");
  set_u32(b, OFF_BOM, 0x01020304u);
  set_u32(b, OFF_LIMIT, (uint32_t)-5);
  expect_fail(b, b->len, TM_ERROR_CORRUPT, "traceback limit -5");
  set_u32(b, OFF_LIMIT, TM_MAX_NFRAME + 1);
  expect_fail(b, b->len, TM_ERROR_CORRUPT, "traceback limit");
  g_byte_array_free(b, TRUE);
}
END_TEST

/* Every proper prefix fails as truncated (or, for the first bytes, as not a dump at all). */
START_TEST(test_truncated_everywhere) {
  GByteArray *b = valid_dump();
  for (size_t len = 1; len < b->len; len++)
    expect_fail(b, len, TM_ERROR_CORRUPT, len < 40 ? "header" : "truncated");
  /* Each section names what it was reading. */
  expect_fail(b, 65, TM_ERROR_CORRUPT, "truncated: string 2 of 3 ends at byte 71, file has 65");
  expect_fail(b, OFF_FRAME + 10, TM_ERROR_CORRUPT, "truncated: traceback 0 of 1 ends at byte 103");
  expect_fail(b, DUMP_LEN - 1, TM_ERROR_CORRUPT,
              "truncated: trace 1 of 2 ends at byte 135, file has 134");
  g_byte_array_free(b, TRUE);
}
END_TEST

START_TEST(test_huge_counts) {
  GByteArray *b = valid_dump();
  set_u64(b, OFF_NSTRINGS, (uint64_t)1 << 40);
  expect_fail(b, b->len, TM_ERROR_CORRUPT, "more than the format allows");
  set_u64(b, OFF_NSTRINGS, 1000000);
  expect_fail(b, b->len, TM_ERROR_CORRUPT, "string count 1000000 needs at least 5000000 bytes");
  set_u64(b, OFF_NSTRINGS, 3);
  set_u64(b, OFF_NTRACES, UINT64_MAX);
  expect_fail(b, b->len, TM_ERROR_CORRUPT, "truncated: trace 2 of 18446744073709551615 ends");
  set_u64(b, OFF_NTRACES, 2);
  set_u64(b, OFF_NTRACEBACKS, UINT32_MAX - 1);
  expect_fail(b, b->len, TM_ERROR_CORRUPT, "traceback count");
  set_u64(b, OFF_NTRACEBACKS, 1);
  set_u32(b, OFF_TRACEBACK, UINT32_MAX); /* nframes */
  expect_fail(b, b->len, TM_ERROR_CORRUPT, "truncated: traceback 0 of 1");
  set_u32(b, OFF_TRACEBACK, 1);
  set_u32(b, OFF_STRINGS, UINT32_MAX); /* a string's length: overflows length + 1 in 32 bits */
  expect_fail(b, b->len, TM_ERROR_CORRUPT, "truncated: string 0 of 3");
  g_byte_array_free(b, TRUE);
}
END_TEST

START_TEST(test_bad_indexes) {
  GByteArray *b = valid_dump();
  set_u32(b, OFF_FRAME, 3); /* filename: one past the last string */
  expect_fail(b, b->len, TM_ERROR_CORRUPT,
              "traceback 0 of 1, frame 0 (at byte 83): filename string index 3 out of range");
  set_u32(b, OFF_FRAME, UINT32_MAX); /* a frame needs a file name */
  expect_fail(b, b->len, TM_ERROR_CORRUPT, "filename string index");
  set_u32(b, OFF_FRAME, 0);
  set_u32(b, OFF_FRAME + 4, 77);
  expect_fail(b, b->len, TM_ERROR_CORRUPT, "function string index 77");
  set_u32(b, OFF_FRAME + 4, UINT32_MAX); /* no function is fine */
  set_u32(b, OFF_FRAME + 8, 1u << 31);
  expect_fail(b, b->len, TM_ERROR_CORRUPT, "module string index");
  set_u32(b, OFF_FRAME + 8, 2);
  set_u32(b, OFF_TRACES + 16 + 4, 1); /* trace 1's traceback */
  expect_fail(b, b->len, TM_ERROR_CORRUPT, "trace 1 of 2 (at byte 119): traceback index 1");
  g_byte_array_free(b, TRUE);
}
END_TEST

START_TEST(test_bad_strings) {
  GByteArray *b = valid_dump();
  b->data[OFF_STRING1 + 4 + 4] = 'X'; /* the NUL after "main" */
  expect_fail(b, b->len, TM_ERROR_CORRUPT, "string 1 of 3 (at byte 52): not NUL-terminated");
  b->data[OFF_STRING1 + 4 + 4] = '\0';
  b->data[OFF_STRING1 + 4 + 1] = '\0'; /* "m\0in" */
  expect_fail(b, b->len, TM_ERROR_CORRUPT, "holds a NUL byte");
  g_byte_array_free(b, TRUE);
}
END_TEST

START_TEST(test_bad_sizes_and_flags) {
  GByteArray *b = valid_dump();
  set_u64(b, OFF_TRACES + 8, (uint64_t)-1); /* a "negative" size */
  expect_fail(b, b->len, TM_ERROR_CORRUPT, "size 18446744073709551615 is impossible");
  set_u64(b, OFF_TRACES + 8, (uint64_t)INT64_MAX);
  set_u64(b, OFF_TRACES + 16 + 8, 1); /* the sum overflows int64 */
  expect_fail(b, b->len, TM_ERROR_CORRUPT, "trace 1 of 2 (at byte 119): size 1 is impossible");
  set_u64(b, OFF_TRACES + 8, 100);
  set_u32(b, OFF_TRACEBACK + 4, (uint32_t)INT_MAX + 1); /* total_nframe */
  expect_fail(b, b->len, TM_ERROR_CORRUPT, "bad total_nframe");
  set_u32(b, OFF_TRACEBACK + 4, 1);
  set_u32(b, OFF_TRACEBACK + 8, 2); /* unknown traceback flag */
  expect_fail(b, b->len, TM_ERROR_CORRUPT, "flags 0x2");
  set_u32(b, OFF_TRACEBACK + 8, 0);
  set_u32(b, OFF_FRAME + 16, 0x40); /* unknown frame flag */
  expect_fail(b, b->len, TM_ERROR_CORRUPT, "unknown flags 0x40");
  g_byte_array_free(b, TRUE);
}
END_TEST

START_TEST(test_trailing_garbage) {
  GByteArray *b = valid_dump();
  g_byte_array_append(b, (const guint8 *)"junk", 4);
  expect_fail(b, b->len, TM_ERROR_CORRUPT, "4 bytes of garbage after the last trace");
  g_byte_array_free(b, TRUE);
}
END_TEST

/* Every single-byte corruption of a real dump loads or fails cleanly: never a crash. */
START_TEST(test_every_byte_flipped) {
  tm_snapshot *s = hand_snapshot();
  char *good = tmp_path("good.dump");
  dump_ok(s, good);
  gchar *data;
  gsize len;
  ck_assert(g_file_get_contents(good, &data, &len, NULL));
  const guint8 values[] = {0x00, 0xff, 0x7f, 0x80, 0x01};
  for (gsize i = 0; i < len; i++) {
    for (size_t v = 0; v < G_N_ELEMENTS(values); v++) {
      guint8 saved = (guint8)data[i];
      data[i] = (char)values[v];
      char *path = write_bytes((const guint8 *)data, len);
      GError *err = NULL;
      tm_snapshot *l = tm_snapshot_load(path, &err);
      ck_assert((l == NULL) != (err == NULL));
      if (l != NULL) {
        char *t = stats_text(l, TM_KEY_TRACEBACK, false); /* and it is usable */
        g_free(t);
      } else {
        ck_assert(err->code == TM_ERROR_CORRUPT || err->code == TM_ERROR_VERSION);
      }
      g_clear_error(&err);
      tm_snapshot_free(l);
      g_free(path);
      data[i] = (char)saved;
    }
  }
  g_free(data);
  g_free(good);
  tm_snapshot_free(s);
}
END_TEST

static Suite *dump_suite(void) {
  Suite *s = suite_create("dump");
  TCase *tc = tcase_create("round_trip");
  tcase_add_checked_fixture(tc, tmpdir_setup, tmpdir_teardown);
  tcase_add_test(tc, test_round_trip_hand_built);
  tcase_add_test(tc, test_round_trip_empty);
  tcase_add_test(tc, test_round_trip_live);
  tcase_add_test(tc, test_dump_errors);
  tcase_add_test(tc, test_dump_failure_leaves_nothing);
  tcase_add_test(tc, test_dump_refuses_special_files_and_keeps_mode);
  tcase_add_test(tc, test_loaded_frames_read_source_only_under_root);
  tcase_add_test(tc, test_loaded_strings_freed_with_snapshot);
  tcase_add_test(tc, test_loaded_strings_outlive_snapshot_and_compare_with_live);
  tcase_add_test(tc, test_loaded_strings_escaped_when_printed);
  suite_add_tcase(s, tc);
  tc = tcase_create("malformed");
  tcase_add_checked_fixture(tc, tmpdir_setup, tmpdir_teardown);
  tcase_add_test(tc, test_valid_hand_written);
  tcase_add_test(tc, test_missing_file);
  tcase_add_test(tc, test_empty_and_magic);
  tcase_add_test(tc, test_bad_version);
  tcase_add_test(tc, test_bad_byte_order_and_limit);
  tcase_add_test(tc, test_truncated_everywhere);
  tcase_add_test(tc, test_huge_counts);
  tcase_add_test(tc, test_bad_indexes);
  tcase_add_test(tc, test_bad_strings);
  tcase_add_test(tc, test_bad_sizes_and_flags);
  tcase_add_test(tc, test_trailing_garbage);
  tcase_add_test(tc, test_every_byte_flipped);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return run_suite(dump_suite());
}
