/* test_leak_suppress.c — LeakSanitizer and Valgrind suppression files: LSan's TemplateMatch, the
 * parsers (other tools' entries skipped, errors naming file and line), and the matchers on live
 * tracebacks, directly, through the filters and through the config (key and variable). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <glib/gstdio.h>

#include "../run_suite.h"
#include "leak_internal.h"
#include "tracemalloc.h"

/* Exported and not inlined, so that their frames carry these names. */
void *supp_inner_fill(size_t n);
void *supp_outer_call(size_t n);

__attribute__((noinline)) void *supp_inner_fill(size_t n) {
  void *p = malloc(n);
  __asm__ volatile("" ::: "memory");
  return p;
}

__attribute__((noinline)) void *supp_outer_call(size_t n) {
  void *p = supp_inner_fill(n);
  __asm__ volatile("" ::: "memory");
  return p;
}

static char *dir;
static void *block;
static tm_traceback *tb; /* supp_outer_call -> supp_inner_fill -> malloc */

static void setup(void) {
  ck_assert_int_eq(tm_start(16), 0);
  dir = g_dir_make_tmp("tm-supp-XXXXXX", NULL);
  ck_assert_ptr_nonnull(dir);
  block = supp_outer_call(40);
  tb = tm_get_object_traceback(block);
  ck_assert_ptr_nonnull(tb);
}

static void teardown(void) {
  tm_traceback_free(tb);
  free(block);
  tm_stop();
  GDir *d = g_dir_open(dir, 0, NULL);
  for (const char *name; d != NULL && (name = g_dir_read_name(d)) != NULL;) {
    char *path = g_build_filename(dir, name, NULL);
    g_unlink(path);
    g_free(path);
  }
  if (d != NULL)
    g_dir_close(d);
  g_rmdir(dir);
  g_free(dir);
}

/* Writes a file in the test's folder; returns its path (g_free). */
static char *write_file(const char *name, const char *text) {
  char *path = g_build_filename(dir, name, NULL);
  ck_assert(g_file_set_contents(path, text, -1, NULL));
  return path;
}

/* Loads one file into a new set; fails the test on an error. */
static tm__leak_suppressions *load(const char *name, const char *text) {
  char *path = write_file(name, text);
  tm__leak_suppressions *set = tm__leak_suppressions_new();
  GError *error = NULL;
  ck_assert_msg(tm__leak_suppressions_load(set, path, &error), "%s",
                error ? error->message : "?");
  g_free(path);
  return set;
}

/* Loads one file that must be refused; returns the error message with the folder cut (g_free). */
static char *load_error(const char *name, const char *text) {
  char *path = write_file(name, text);
  tm__leak_suppressions *set = tm__leak_suppressions_new();
  GError *error = NULL;
  ck_assert_msg(!tm__leak_suppressions_load(set, path, &error), "%s was accepted", text);
  ck_assert_ptr_nonnull(error);
  ck_assert_msg(g_str_has_prefix(error->message, path), "%s", error->message);
  char *message = g_strdup(error->message + strlen(dir) + 1);
  g_error_free(error);
  tm__leak_suppressions_free(set);
  g_free(path);
  return message;
}

START_TEST(test_lsan_template_match) {
  static const struct { const char *templ, *str; bool match; } cases[] = {
    {"foo", "xfooy", true},      {"^foo", "xfoo", false},    {"^foo", "foobar", true},
    {"foo$", "barfoo", true},    {"foo$", "foobar", false},  {"a*c", "abc", true},
    {"a*c", "xaxxcx", true},     {"a*c$", "abcd", false},    {"^a*c$", "abbc", true},
    {"*", "x", true},            {"foo", "", false},         {"^foo$", "foo", true},
    {"libfoo.so", "/usr/lib/libfoo.so.1", true}, {"a*$", "abc", true}, {"ab", "ba", false},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(cases); i++)
    ck_assert_msg(tm__leak_lsan_match(cases[i].templ, cases[i].str) == cases[i].match,
                  "'%s' on '%s': expected %d", cases[i].templ, cases[i].str, cases[i].match);
  ck_assert(!tm__leak_lsan_match("foo", NULL));
}
END_TEST

/* LSan patterns meet every frame's function, file and module. */
START_TEST(test_lsan_file_on_live_traceback) {
  tm__leak_suppressions *set =
    load("lsan.txt", "# comment\n\n  leak:no_such_function\nleak:^supp_inner_*$\n");
  ck_assert_uint_eq(tm__leak_suppressions_length(set), 2);
  ck_assert_str_eq(tm__leak_suppressions_match(set, tb, TM__LEAK_SUPP_DEFINITE),
                   "leak:^supp_inner_*$");
  tm__leak_suppressions_free(set);

  set = load("file.txt", "leak:plugin/test_leak_suppress.c\n");
  ck_assert_str_eq(tm__leak_suppressions_match(set, tb, TM__LEAK_SUPP_DEFINITE),
                   "leak:plugin/test_leak_suppress.c");
  tm__leak_suppressions_free(set);

  set = load("module.txt", "leak:libnot_loaded.so\n");
  ck_assert_ptr_null(tm__leak_suppressions_match(set, tb, TM__LEAK_SUPP_DEFINITE));
  tm__leak_suppressions_free(set);
  set = load("module.txt", "leak:/test_leak_suppress$\n"); /* this program's path */
  ck_assert_str_eq(tm__leak_suppressions_match(set, tb, TM__LEAK_SUPP_DEFINITE),
                   "leak:/test_leak_suppress$");
  tm__leak_suppressions_free(set);

  set = load("anchored.txt", "leak:^inner_fill\nleak:supp_outer$x\n");
  ck_assert_ptr_null(tm__leak_suppressions_match(set, tb, TM__LEAK_SUPP_DEFINITE));
  tm__leak_suppressions_free(set);
}
END_TEST

/* Valgrind frames match in order from the allocation outwards, the first one standing for the
 * malloc frame Valgrind's stacks start with. */
START_TEST(test_valgrind_frame_sequence) {
  static const struct { const char *frames; bool match; } cases[] = {
    {"fun:malloc\n fun:supp_inner_fill\n fun:supp_outer_call\n", true},
    {"fun:*alloc\n fun:supp_inner_*\n", true},
    {"fun:malloc\n fun:supp_inner_fil?\n", true},
    {"fun:malloc\n fun:supp_outer_call\n", false},            /* a frame skipped */
    {"fun:malloc\n ...\n fun:supp_outer_call\n", true},
    {"...\n fun:supp_outer_call\n", true},
    {"fun:supp_inner_fill\n", false},                         /* Valgrind's first frame is malloc */
    {"fun:calloc\n fun:supp_inner_fill\n", true},             /* which allocator is not traced */
    {"fun:free\n fun:supp_inner_fill\n", false},
    {"obj:*vgpreload_memcheck*\n fun:supp_inner_fill\n", true},
    {"fun:malloc\n src:test_leak_suppress.c\n", true},
    {"fun:malloc\n obj:*test_leak_suppress*\n fun:supp_outer_call\n", true},
    {"fun:malloc\n obj:*libc.so*\n", false},
    {"fun:malloc\n fun:supp_inner_fill\n fun:supp_outer_call\n ...\n fun:no_such_caller\n", false},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
    char *text = g_strdup_printf("{\n   case-%zu\n   Memcheck:Leak\n   %s}\n", i, cases[i].frames);
    tm__leak_suppressions *set = load("case.supp", text);
    const char *hit = tm__leak_suppressions_match(set, tb, TM__LEAK_SUPP_DEFINITE);
    ck_assert_msg((hit != NULL) == cases[i].match, "expected %d for:\n%s", cases[i].match, text);
    tm__leak_suppressions_free(set);
    g_free(text);
  }
}
END_TEST

/* Other tools' and kinds' blocks are skipped; match-leak-kinds restricts the kinds. */
START_TEST(test_valgrind_kinds_and_other_tools) {
  tm__leak_suppressions *set = load(
    "mixed.supp",
    "# a comment\n"
    "{\n  cond\n  Memcheck:Cond\n  fun:supp_inner_fill\n}\n"
    "{\n  param\n  Memcheck:Param\n  write(buf)\n  fun:write\n}\n"
    "{\n  race\n  Helgrind:Race\n  fun:supp_inner_fill\n}\n"
    "{\n  reachable\n  Memcheck:Leak\n  match-leak-kinds: reachable\n  fun:malloc\n"
    "  fun:supp_inner_fill\n}\n"
    "{\n  definite\n  Memcheck,Addrcheck:Leak\n  match-leak-kinds: definite, possible\n"
    "  fun:malloc\n  fun:supp_inner_fill\n}\n");
  ck_assert_uint_eq(tm__leak_suppressions_length(set), 2);
  ck_assert_str_eq(tm__leak_suppressions_match(set, tb, TM__LEAK_SUPP_DEFINITE), "definite");
  ck_assert_str_eq(tm__leak_suppressions_match(set, tb, TM__LEAK_SUPP_REACHABLE), "reachable");
  ck_assert_ptr_null(tm__leak_suppressions_match(set, tb, TM__LEAK_SUPP_INDIRECT));
  tm__leak_suppressions_free(set);
}
END_TEST

START_TEST(test_errors_name_file_and_line) {
  static const struct { const char *text, *message; } cases[] = {
    {"leak:a\nleek:foo\n",
     "e.txt:2: 'leek' is not a LeakSanitizer suppression type: LeakSanitizer reads leak:PATTERN "
     "only"},
    {"leak:a\nrace:foo\n", /* TSan's: LSan refuses the file too */
     "e.txt:2: 'race' is not a LeakSanitizer suppression type: LeakSanitizer reads leak:PATTERN "
     "only"},
    {"leak:a\njust words\n", "e.txt:2: 'just words' is not a suppression: write TYPE:PATTERN, "
                             "such as leak:my_cache_*"},
    {"leak:\n", "e.txt:1: leak: needs a pattern"},
    {"{\n x\n Memcheck:Lek\n fun:f\n}\n", "e.txt:3: unknown Memcheck kind 'Lek'"},
    {"{\n x\n Memcheck:Leak\n match-leak-kinds: definite,lost\n}\n",
     "e.txt:4: unknown leak kind 'lost': use definite, indirect, possible, reachable, all or none"},
    {"{\n x\n Memcheck:Leak\n fn:f\n}\n",
     "e.txt:4: 'fn:f' is not a frame: write fun:NAME, obj:PATH, src:FILE[:LINE] or ..."},
    {"{\n x\n Memcheck:Leak\n fun:\n}\n", "e.txt:4: 'fun:' has no name after the colon"},
    {"{\n x\n Leak\n}\n",
     "e.txt:3: 'Leak' is not a kind: write TOOL:KIND, such as Memcheck:Leak"},
    {"{\n x\n}\n", "e.txt:3: suppression 'x' ends before its kind line"},
    {"{\n x\n Memcheck:Leak\n fun:f\n", "e.txt:1: the suppression opened here has no closing '}'"},
    {"{\n x\n Memcheck:Leak\n{\n", "e.txt:4: '{' inside the suppression opened at line 1"},
    {"{\n x\n Memcheck:Leak\n}\nfun:f\n",
     "e.txt:5: 'fun:f' is outside a suppression: Valgrind's begin with '{'"},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
    char *message = load_error("e.txt", cases[i].text);
    ck_assert_str_eq(message, cases[i].message);
    g_free(message);
  }
  tm__leak_suppressions *set = tm__leak_suppressions_new();
  GError *error = NULL;
  ck_assert(!tm__leak_suppressions_load(set, "/nonexistent/x.supp", &error));
  ck_assert_msg(strstr(error->message, "/nonexistent/x.supp") != NULL, "%s", error->message);
  g_error_free(error);
  tm__leak_suppressions_free(set);
}
END_TEST

/* Through the filters, the suppression's name is the pattern the report counts under; the
 * cached verdict is dropped when suppressions are added. */
START_TEST(test_filters_and_config) {
  char *lsan = write_file("lsan.txt", "leak:supp_outer_call\n");
  char *vg = write_file("vg.supp", "{\n  inner\n  Memcheck:Leak\n  fun:malloc\n"
                                   "  fun:supp_inner_fill\n}\n");
  tm__leak_filters *filters = tm__leak_filters_new();
  GError *error = NULL;
  ck_assert_ptr_null(tm__leak_filters_match(filters, tb)); /* cached: no match */
  char *list = g_strdup_printf("%s:%s", vg, lsan);
  ck_assert(tm__leak_filters_load_suppressions(filters, "TM_LEAK_SUPPRESSIONS", list, ':', NULL,
                                               &error));
  ck_assert_str_eq(tm__leak_filters_match(filters, tb), "inner"); /* the first file first */
  tm__leak_filters_free(filters);

  /* The variable, and the key relative to the key file's folder. */
  char *ini = write_file("tm.ini", "[defaults]\nsuppressions = lsan.txt\n");
  char *env_ini = g_strdup_printf("TM_LEAK_CONFIG=%s", ini);
  char *env_supp = g_strdup_printf("TM_LEAK_SUPPRESSIONS=%s", vg);
  char *envp[] = {env_ini, NULL, NULL};
  tm__leak_config *config = tm__leak_config_load(envp, &error);
  ck_assert_msg(config != NULL, "%s", error ? error->message : "?");
  ck_assert_str_eq(tm__leak_filters_match(config->filters, tb), "leak:supp_outer_call");
  tm__leak_config_free(config);
  envp[0] = env_supp;
  config = tm__leak_config_load(envp, &error);
  ck_assert_msg(config != NULL, "%s", error ? error->message : "?");
  ck_assert_str_eq(tm__leak_filters_match(config->filters, tb), "inner");
  tm__leak_config_free(config);

  /* A bad file makes the whole configuration an error that names the setting, file and line. */
  char *bad = write_file("bad.supp", "{\n x\n Memcheck:Lek\n}\n");
  g_free(env_supp);
  env_supp = g_strdup_printf("TM_LEAK_SUPPRESSIONS=%s:%s", lsan, bad);
  envp[0] = env_supp;
  ck_assert_ptr_null(tm__leak_config_load(envp, &error));
  char *want = g_strdup_printf("TM_LEAK_SUPPRESSIONS: %s:3: unknown Memcheck kind 'Lek'", bad);
  ck_assert_str_eq(error->message, want);
  g_clear_error(&error);
  g_free(want);
  ck_assert(g_file_set_contents(ini, "[defaults]\nsuppressions = bad.supp\n", -1, NULL));
  envp[0] = env_ini;
  ck_assert_ptr_null(tm__leak_config_load(envp, &error));
  want = g_strdup_printf("TM_LEAK_CONFIG=%s: [defaults] suppressions: %s:3: unknown Memcheck "
                         "kind 'Lek'", ini, bad);
  ck_assert_str_eq(error->message, want);
  g_clear_error(&error);
  g_free(want);
  g_free(bad);
  g_free(env_supp);
  g_free(env_ini);
  g_free(ini);
  g_free(list);
  g_free(vg);
  g_free(lsan);
}
END_TEST

int main(void) {
  Suite *s = suite_create("leak_suppress");
  TCase *tc = tcase_create("suppressions");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_lsan_template_match);
  tcase_add_test(tc, test_lsan_file_on_live_traceback);
  tcase_add_test(tc, test_valgrind_frame_sequence);
  tcase_add_test(tc, test_valgrind_kinds_and_other_tools);
  tcase_add_test(tc, test_errors_name_file_and_line);
  tcase_add_test(tc, test_filters_and_config);
  suite_add_tcase(s, tc);
  return run_suite(s);
}
