/* test_format.c — size, statistic and traceback formatting, checked against the text CPython
 * 3.11's tracemalloc prints for the same values (expected strings were produced by python3).
 */
#include <glib/gstdio.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "analysis_fixtures.h"

/* python3 -c 'import tracemalloc; print(tracemalloc._format_size(v, False/True))' */
static const struct {
  int64_t size;
  const char *plain;
  const char *sign;
} size_cases[] = {
    {0, "0 B", "+0 B"},
    {1, "1 B", "+1 B"},
    {-1, "-1 B", "-1 B"},
    {99, "99 B", "+99 B"},
    {100, "100 B", "+100 B"},
    {1023, "1023 B", "+1023 B"},
    {1024, "1024 B", "+1024 B"},
    {5000, "5000 B", "+5000 B"},
    {-5000, "-5000 B", "-5000 B"},
    {10239, "10239 B", "+10239 B"},
    {10240, "10.0 KiB", "+10.0 KiB"},
    {-10240, "-10.0 KiB", "-10.0 KiB"},
    {10241, "10.0 KiB", "+10.0 KiB"},
    {10496, "10.2 KiB", "+10.2 KiB"},   /* 10.25: round half to even */
    {11008, "10.8 KiB", "+10.8 KiB"},   /* 10.75 */
    {15872, "15.5 KiB", "+15.5 KiB"},
    {20000, "19.5 KiB", "+19.5 KiB"},
    {-20000, "-19.5 KiB", "-19.5 KiB"},
    {101887, "99.5 KiB", "+99.5 KiB"},
    {102399, "100.0 KiB", "+100.0 KiB"}, /* below 100 KiB, rounds up to 100.0 */
    {102400, "100 KiB", "+100 KiB"},
    {-102451, "-100 KiB", "-100 KiB"},
    {102912, "100 KiB", "+100 KiB"},    /* 100.5: half to even */
    {103936, "102 KiB", "+102 KiB"},    /* 101.5 */
    {200000, "195 KiB", "+195 KiB"},
    {1048576, "1024 KiB", "+1024 KiB"},
    {10485759, "10240 KiB", "+10240 KiB"},
    {10485760, "10.0 MiB", "+10.0 MiB"},
    {-10485760, "-10.0 MiB", "-10.0 MiB"},
    {104857599, "100.0 MiB", "+100.0 MiB"},
    {104857600, "100 MiB", "+100 MiB"},
    {10737418239, "10240 MiB", "+10240 MiB"},
    {107374182399, "100.0 GiB", "+100.0 GiB"},
    {107374182400, "100 GiB", "+100 GiB"},
    {109951162777599, "100.0 TiB", "+100.0 TiB"},
    {109951162777600, "100 TiB", "+100 TiB"},
    {-1099511627776000, "-1000 TiB", "-1000 TiB"},
    {11258999068426240, "10240 TiB", "+10240 TiB"}, /* TiB is the last unit */
    {INT64_MAX, "8388608 TiB", "+8388608 TiB"},
    {INT64_MIN, "-8388608 TiB", "-8388608 TiB"},
};

START_TEST(test_format_size_table) {
  char *plain = tm_format_size(size_cases[_i].size, false);
  char *sign = tm_format_size(size_cases[_i].size, true);
  ck_assert_str_eq(plain, size_cases[_i].plain);
  ck_assert_str_eq(sign, size_cases[_i].sign);
  g_free(plain);
  g_free(sign);
}
END_TEST

/* Python's % ignores LC_NUMERIC; a program in a comma locale must still read "19.5 KiB". */
START_TEST(test_format_size_ignores_locale) {
  const char *locales[] = {"de_DE.UTF-8", "fr_FR.UTF-8", "de_DE", "C.UTF-8"};
  const char *set = NULL;
  for (size_t i = 0; i < G_N_ELEMENTS(locales) && set == NULL; i++)
    set = setlocale(LC_NUMERIC, locales[i]);
  char *text = tm_format_size(20000, true);
  ck_assert_str_eq(text, "+19.5 KiB");
  g_free(text);
  setlocale(LC_NUMERIC, "C");
}
END_TEST

/* test_statistic_format and test_statistic_diff_format of test_tracemalloc. */
START_TEST(test_statistic_format_python_snapshots) {
  tm_snapshot *s1, *s2;
  create_snapshots(&s1, &s2);
  tm_statistics *stats = tm_snapshot_statistics(s1, TM_KEY_LINENO, false, NULL);
  char *text = tm_statistic_format(tm_statistics_get(stats, 0));
  ck_assert_str_eq(text, "b.py:1: size=66 B, count=1, average=66 B");
  g_free(text);
  tm_statistic_diffs *diffs = tm_snapshot_compare_to(s2, s1, TM_KEY_LINENO, false, NULL);
  text = tm_statistic_diff_format(tm_statistic_diffs_get(diffs, 0));
  ck_assert_str_eq(text, "a.py:5: size=5002 B (+5000 B), count=2 (+1), average=2501 B");
  g_free(text);
  text = tm_statistic_diff_format(tm_statistic_diffs_get(diffs, 2));
  ck_assert_str_eq(text, "b.py:1: size=0 B (-66 B), count=0 (-1)");
  g_free(text);
  text = tm_statistic_diff_format(tm_statistic_diffs_get(diffs, 4));
  ck_assert_str_eq(text, "a.py:2: size=30 B (+0 B), count=3 (+0), average=10 B");
  g_free(text);
  tm_statistic_diffs_free(diffs);
  tm_statistics_free(stats);
  tm_snapshot_free(s1);
  tm_snapshot_free(s2);
}
END_TEST

/* Hand-built statistics; str() names the OLDEST frame, the average is a float division. */
START_TEST(test_statistic_format_values) {
  tm_traceback *tb = tb_raw(2, "x.c", 8, "main.c", 3, NULL);
  tm_statistic st = {tb, 60000, 3};
  char *text = tm_statistic_format(&st);
  ck_assert_str_eq(text, "main.c:3: size=58.6 KiB, count=3, average=19.5 KiB");
  g_free(text);
  st = (tm_statistic){tb, 597000, 14994};
  text = tm_statistic_format(&st);
  ck_assert_str_eq(text, "main.c:3: size=583 KiB, count=14994, average=40 B");
  g_free(text);
  st = (tm_statistic){tb, 0, 0};
  text = tm_statistic_format(&st);
  ck_assert_str_eq(text, "main.c:3: size=0 B, count=0");
  g_free(text);
  tm_statistic_diff d = {tb, 660480, 660480, 14998, 14998};
  text = tm_statistic_diff_format(&d);
  ck_assert_str_eq(text, "main.c:3: size=645 KiB (+645 KiB), count=14998 (+14998), average=44 B");
  g_free(text);
  d = (tm_statistic_diff){tb, 5000, -10485760, 7, -2};
  text = tm_statistic_diff_format(&d);
  ck_assert_str_eq(text, "main.c:3: size=5000 B (-10.0 MiB), count=7 (-2), average=714 B");
  g_free(text);
  tm_traceback_free(tb);
}
END_TEST

/* Average rounding: 5/2 = 2.5 prints "2", 7/2 = 3.5 prints "4" (round half to even, as Python). */
START_TEST(test_statistic_format_average_rounding) {
  tm_traceback *tb = tb_raw(1, "r.c", 1, NULL);
  tm_statistic st = {tb, 5, 2};
  char *text = tm_statistic_format(&st);
  ck_assert_str_eq(text, "r.c:1: size=5 B, count=2, average=2 B");
  g_free(text);
  st.size = 7;
  text = tm_statistic_format(&st);
  ck_assert_str_eq(text, "r.c:1: size=7 B, count=2, average=4 B");
  g_free(text);
  st = (tm_statistic){tb, 30000, 7};
  text = tm_statistic_format(&st);
  ck_assert_str_eq(text, "r.c:1: size=29.3 KiB, count=7, average=4286 B");
  g_free(text);
  tm_traceback_free(tb);
}
END_TEST

/* In C the oldest frame is the C runtime's start-up, the same for every traceback: str(traceback)
 * names the oldest frame of the program's own code instead. Start-up functions are skipped by
 * name even with a line (libc6-dbg gives __libc_start_call_main one), frames without a line by
 * their system library; the program's own frames without a line are kept. */
START_TEST(test_traceback_to_string_skips_startup) {
  tm_frame frames[] = {
      {.filename = "prog", .function = "_start", .module = "/home/u/prog",
       .flags = TM_FRAME_NO_DEBUG_INFO},
      {.filename = "libc.so.6", .function = "__libc_start_main_impl",
       .module = "/lib/x86_64-linux-gnu/libc.so.6", .flags = TM_FRAME_NO_DEBUG_INFO},
      {.filename = "../sysdeps/nptl/libc_start_call_main.h", .lineno = 58,
       .function = "__libc_start_call_main", .module = "/lib/x86_64-linux-gnu/libc.so.6"},
      {.filename = "libcheck.so.0", .function = "srunner_run_all",
       .module = "/usr/lib/x86_64-linux-gnu/libcheck.so.0", .flags = TM_FRAME_NO_DEBUG_INFO},
      {.filename = "main.c", .lineno = 12, .function = "main", .module = "/home/u/prog"},
      {.filename = "a.c", .lineno = 3, .function = "alloc", .module = "/home/u/prog"},
  };
  tm_traceback *tb = tm__traceback_new_frames(frames, 6, 6, false);
  char *text = tm_traceback_to_string(tb);
  ck_assert_str_eq(text, "main.c:12");
  g_free(text);
  /* the statistic line of a traceback key is keyed the same way */
  tm_statistic stat = {.traceback = tb, .size = 10, .count = 1};
  text = tm_statistic_format(&stat);
  ck_assert_str_eq(text, "main.c:12: size=10 B, count=1, average=10 B");
  g_free(text);
  tm_traceback_free(tb);
  /* the program's own frame without a line is its own code: kept */
  frames[3] = (tm_frame){.filename = "prog", .function = "helper", .module = "/home/u/prog",
                         .flags = TM_FRAME_NO_DEBUG_INFO};
  tb = tm__traceback_new_frames(frames, 6, 6, false);
  text = tm_traceback_to_string(tb);
  ck_assert_str_eq(text, "prog:0");
  g_free(text);
  tm_traceback_free(tb);
  /* only start-up frames: the oldest is named, as Python does */
  tb = tm__traceback_new_frames(frames, 3, 3, false);
  text = tm_traceback_to_string(tb);
  ck_assert_str_eq(text, "prog:0");
  g_free(text);
  tm_traceback_free(tb);
  tb = tm__traceback_new_frames(&frames[1], 2, 2, false);
  text = tm_traceback_to_string(tb);
  ck_assert_str_eq(text, "libc.so.6:0");
  g_free(text);
  tm_traceback_free(tb);
}
END_TEST

START_TEST(test_traceback_to_string) {
  tm_traceback *tb = tb_raw(3, "a.py", 2, "b.py", 4, NULL);
  char *text = tm_traceback_to_string(tb);
  ck_assert_str_eq(text, "b.py:4"); /* test_trace_format: the oldest frame */
  g_free(text);
  tm_traceback_free(tb);
  tb = tm__traceback_new_frames(NULL, 0, 0, false);
  text = tm_traceback_to_string(tb);
  ck_assert_str_eq(text, "<unknown>:0");
  g_free(text);
  tm_traceback_free(tb);
}
END_TEST

/* test_format_traceback, with our frame lines: no source file exists, so one line per frame; the
 * traceback was cut at 2 of 3 frames, so a line says so where the missing oldest frame would be:
 * first when the oldest frame comes first, last when the most recent does. */
START_TEST(test_traceback_format_limit_order) {
  tm_snapshot *s1, *s2;
  create_snapshots(&s1, &s2);
  const tm_traceback *tb = tm_snapshot_get(s1, 0)->traceback;
  const char *trunc = "  [... traceback truncated: only the 2 most recent frames were captured]";
  const char *b4 = "  File \"b.py\", line 4", *a2 = "  File \"a.py\", line 2";
  ck_assert_lines_free(tm_traceback_format(tb, 0, false), (const char *[]){trunc, b4, a2}, 3);
  ck_assert_lines_free(tm_traceback_format(tb, 1, false), (const char *[]){trunc, a2}, 2);
  ck_assert_lines_free(tm_traceback_format(tb, -1, false), (const char *[]){trunc, b4}, 2);
  ck_assert_lines_free(tm_traceback_format(tb, 0, true), (const char *[]){a2, b4, trunc}, 3);
  ck_assert_lines_free(tm_traceback_format(tb, 1, true), (const char *[]){a2, trunc}, 2);
  ck_assert_lines_free(tm_traceback_format(tb, -1, true), (const char *[]){b4, trunc}, 2);
  ck_assert_lines_free(tm_traceback_format(tb, 5, false), (const char *[]){trunc, b4, a2}, 3);
  ck_assert_lines_free(tm_traceback_format(tb, -5, true), (const char *[]){a2, b4, trunc}, 3);
  ck_assert_lines_free(tm_traceback_format(tb, INT32_MIN, false), (const char *[]){trunc, b4, a2},
                       3);
  tm_snapshot_free(s1);
  tm_snapshot_free(s2);
}
END_TEST

/* Limits on a longer traceback: limit > 0 keeps the most recent, limit < 0 the oldest. */
START_TEST(test_traceback_format_limit_three_frames) {
  tm_traceback *tb = tb_raw(3, "c.c", 3, "b.c", 2, "a.c", 1, NULL);
  const char *a = "  File \"a.c\", line 1", *b = "  File \"b.c\", line 2",
             *c = "  File \"c.c\", line 3";
  ck_assert_lines_free(tm_traceback_format(tb, 2, false), (const char *[]){b, c}, 2);
  ck_assert_lines_free(tm_traceback_format(tb, 2, true), (const char *[]){c, b}, 2);
  ck_assert_lines_free(tm_traceback_format(tb, -2, false), (const char *[]){a, b}, 2);
  ck_assert_lines_free(tm_traceback_format(tb, -1, true), (const char *[]){a}, 1);
  tm_traceback_free(tb);
}
END_TEST

/* A real source file: each frame line is followed by the stripped source line; blank lines and
 * lines past the end give no source line. Functions appear after "in". */
START_TEST(test_traceback_format_source_lines) {
  char *path = NULL;
  int fd = g_file_open_tmp("tm-format-XXXXXX.c", &path, NULL);
  ck_assert_int_ge(fd, 0);
  const char *src = "int x;\n\t  p = malloc(8);   \r\n   \nreturn p;";
  ck_assert_int_eq(write(fd, src, strlen(src)), (ssize_t)strlen(src));
  close(fd);
  tm_frame frames[] = {
      {.filename = path, .lineno = 4, .function = "main"},
      {.filename = path, .lineno = 3, .function = "blank"},
      {.filename = path, .lineno = 2, .function = "make"},
      {.filename = path, .lineno = 99},
  };
  tm_traceback *tb = tm__traceback_new_frames(frames, 4, 4, false);
  char *l0 = g_strdup_printf("  File \"%s\", line 4, in main", path);
  char *l1 = g_strdup_printf("  File \"%s\", line 3, in blank", path);
  char *l2 = g_strdup_printf("  File \"%s\", line 2, in make", path);
  char *l3 = g_strdup_printf("  File \"%s\", line 99", path);
  ck_assert_lines_free(tm_traceback_format(tb, 0, false),
                       (const char *[]){l0, "    return p;", l1, l2, "    p = malloc(8);", l3}, 6);
  /* the file is cached: removing it changes nothing */
  g_unlink(path);
  ck_assert_lines_free(tm_traceback_format(tb, 2, true),
                       (const char *[]){l3, l2, "    p = malloc(8);"}, 3);
  tm_traceback_free(tb);
  g_free(l0);
  g_free(l1);
  g_free(l2);
  g_free(l3);
  g_free(path);
}
END_TEST

/* The line cache reads at most a few MiB per file and a few tens of MiB in all: frames naming
 * many big files (sparse here: they cost no disk) cannot make formatting read gigabytes. */
START_TEST(test_source_cache_bounded) {
  enum { NFILES = 12, FILE_BYTES = 48 << 20 };
  char *dir = g_dir_make_tmp("tm-format-XXXXXX", NULL);
  char *paths[NFILES];
  tm_frame frames[NFILES];
  ck_assert_int_eq(tm_start(1), 0);
  size_t before = tm_get_tracemalloc_memory();
  for (int i = 0; i < NFILES; i++) {
    paths[i] = g_strdup_printf("%s/big%d.c", dir, i);
    FILE *f = fopen(paths[i], "w");
    ck_assert_ptr_nonnull(f);
    fputs("first line\n", f);
    ck_assert_int_eq(ftruncate(fileno(f), FILE_BYTES), 0);
    fclose(f);
    frames[i] = (tm_frame){.filename = paths[i], .lineno = 1, .function = "big"};
  }
  tm_traceback *tb = tm__traceback_new_frames(frames, NFILES, NFILES, false);
  g_strfreev(tm_traceback_format(tb, 0, false));
  size_t after = tm_get_tracemalloc_memory();
  ck_assert_msg(after < before + (64u << 20), "the line cache grew by %zu MiB",
                (after - before) >> 20);
  tm_traceback_free(tb);
  for (int i = 0; i < NFILES; i++) {
    g_unlink(paths[i]);
    g_free(paths[i]);
  }
  g_rmdir(dir);
  g_free(dir);
  tm_stop();
}
END_TEST

/* A frame without debug info names its module and symbol and has no line; an unknown address
 * shows the address; an unreadable "file" (a directory) gives no source line. */
START_TEST(test_traceback_format_no_debug_info) {
  tm_frame frames[] = {
      {.filename = "/tmp", .lineno = 1, .function = "in_dir"},
      {.filename = "libglib-2.0.so.0", .function = "g_malloc", .module = "/lib/libglib-2.0.so.0",
       .ip = 0x1234, .flags = TM_FRAME_NO_DEBUG_INFO},
      {.filename = "libc.so.6", .flags = TM_FRAME_NO_DEBUG_INFO},
      {.filename = "<unknown>", .ip = 0xdeadbeef, .flags = TM_FRAME_UNKNOWN},
  };
  tm_traceback *tb = tm__traceback_new_frames(frames, 4, 4, false);
  ck_assert_lines_free(tm_traceback_format(tb, 0, false),
                       (const char *[]){"  File \"/tmp\", line 1, in in_dir",
                                        "  File \"libglib-2.0.so.0\", in g_malloc",
                                        "  File \"libc.so.6\"",
                                        "  File \"<unknown>\", at 0xdeadbeef"},
                       4);
  tm_traceback_free(tb);
}
END_TEST

/* Inlined frames count as frames when formatting, but not in the truncation count, which is in
 * captured stack frames as total_nframe is. */
START_TEST(test_traceback_format_truncated_inlined) {
  tm_frame frames[] = {
      {.filename = "outer.c", .lineno = 10, .function = "outer"},
      {.filename = "inl.h", .lineno = 5, .function = "helper", .flags = TM_FRAME_INLINED},
  };
  tm_traceback *tb = tm__traceback_new_frames(frames, 2, 9, true);
  ck_assert_lines_free(tm_traceback_format(tb, 0, true),
                       (const char *[]){"  File \"inl.h\", line 5, in helper",
                                        "  File \"outer.c\", line 10, in outer",
                                        "  [... traceback truncated: only the most recent "
                                        "frame was captured]"},
                       3);
  ck_assert_lines_free(tm_traceback_format(tb, 0, false),
                       (const char *[]){"  [... traceback truncated: only the most recent "
                                        "frame was captured]",
                                        "  File \"outer.c\", line 10, in outer",
                                        "  File \"inl.h\", line 5, in helper"},
                       3);
  tm_traceback_free(tb);
}
END_TEST

START_TEST(test_format_null_arguments) {
  ck_assert_ptr_null(tm_statistic_format(NULL));
  ck_assert_ptr_null(tm_statistic_diff_format(NULL));
  ck_assert_ptr_null(tm_traceback_format(NULL, 0, false));
  ck_assert_ptr_null(tm_traceback_to_string(NULL));
}
END_TEST

static Suite *format_suite(void) {
  Suite *s = suite_create("format");
  TCase *tc = tcase_create("size");
  tcase_add_loop_test(tc, test_format_size_table, 0, G_N_ELEMENTS(size_cases));
  tcase_add_test(tc, test_format_size_ignores_locale);
  suite_add_tcase(s, tc);
  tc = tcase_create("statistic");
  tcase_add_test(tc, test_statistic_format_python_snapshots);
  tcase_add_test(tc, test_statistic_format_values);
  tcase_add_test(tc, test_statistic_format_average_rounding);
  suite_add_tcase(s, tc);
  tc = tcase_create("traceback");
  tcase_add_test(tc, test_traceback_to_string);
  tcase_add_test(tc, test_traceback_to_string_skips_startup);
  tcase_add_test(tc, test_traceback_format_limit_order);
  tcase_add_test(tc, test_traceback_format_limit_three_frames);
  tcase_add_test(tc, test_traceback_format_source_lines);
  tcase_add_test(tc, test_source_cache_bounded);
  tcase_add_test(tc, test_traceback_format_no_debug_info);
  tcase_add_test(tc, test_traceback_format_truncated_inlined);
  tcase_add_test(tc, test_format_null_arguments);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return run_suite(format_suite());
}
