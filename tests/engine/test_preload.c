/* test_preload.c — LD_PRELOAD=libtracemalloc.so traces a program that was not built with it, also
 * in front of another allocator. PRELOAD_TARGET, TRACEMALLOC_LIB and BUMP_ALLOC_LIB come from
 * meson. */
#include <check.h>

#include "run_suite.h"
#include <glib.h>
#include <stdlib.h>

static char *run_target_with(const char *preload, const char *nframe, const char *registry) {
  char **env = g_get_environ();
  env = g_environ_unsetenv(env, "LD_PRELOAD");
  env = g_environ_unsetenv(env, "TRACEMALLOC");
  env = g_environ_unsetenv(env, "TRACEMALLOC_REGISTRY");
  if (registry)
    env = g_environ_setenv(env, "TRACEMALLOC_REGISTRY", registry, TRUE);
  if (preload)
    env = g_environ_setenv(env, "LD_PRELOAD", preload, TRUE);
  if (nframe)
    env = g_environ_setenv(env, "TRACEMALLOC", nframe, TRUE);
  const char *argv[] = {getenv("PRELOAD_TARGET"), NULL};
  char *out = NULL;
  int status = -1;
  GError *error = NULL;
  gboolean ok = g_spawn_sync(NULL, (char **)argv, env, G_SPAWN_DEFAULT, NULL, NULL, &out, NULL,
                             &status, &error);
  g_strfreev(env);
  ck_assert_msg(ok, "spawn failed: %s", error ? error->message : "?");
  ck_assert_int_eq(status, 0);
  return out;
}

static char *run_target(const char *preload, const char *nframe) {
  return run_target_with(preload, nframe, NULL);
}

START_TEST(test_preload_traces_unmodified_program) {
  char *out = run_target(getenv("TRACEMALLOC_LIB"), "3");
  ck_assert_str_eq(out, "tracing=1 grew=1010 back=1\n"); /* strdup's 10 + calloc's 1000 */
  g_free(out);
}
END_TEST

START_TEST(test_preload_without_tracing_changes_nothing) {
  char *out = run_target(getenv("TRACEMALLOC_LIB"), NULL);
  ck_assert_str_eq(out, "tracing=0 grew=0 back=1\n");
  g_free(out);
  out = run_target(NULL, NULL);
  ck_assert_str_eq(out, "no tracer\n");
  g_free(out);
}
END_TEST

/* Another allocator behind the tracer (preloaded after it), one without malloc_usable_size() whose
 * headers glibc's would misread: traced, and with the heap registry on (which zeroes new blocks
 * to their usable size), the program runs as it does alone. */
START_TEST(test_preload_before_another_allocator) {
  char *preload = g_strdup_printf("%s %s", getenv("TRACEMALLOC_LIB"), getenv("BUMP_ALLOC_LIB"));
  char *out = run_target_with(preload, "3", "1");
  ck_assert_str_eq(out, "tracing=1 grew=1010 back=1\n");
  g_free(out);
  out = run_target_with(preload, "3", NULL);
  ck_assert_str_eq(out, "tracing=1 grew=1010 back=1\n");
  g_free(out);
  g_free(preload);
}
END_TEST

int main(void) {
  Suite *s = suite_create("preload");
  TCase *tc = tcase_create("ld_preload");
  tcase_add_test(tc, test_preload_traces_unmodified_program);
  tcase_add_test(tc, test_preload_without_tracing_changes_nothing);
  tcase_add_test(tc, test_preload_before_another_allocator);
  suite_add_tcase(s, tc);
  return run_suite(s);
}
