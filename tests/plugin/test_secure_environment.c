/* test_secure_environment.c — a setuid or setgid program ignores every variable of the tracer and
 * the plugin (read through secure_getenv()): TRACEMALLOC does not start tracing, and
 * TM_LEAK_CONFIG naming a file the caller could not read does not print its lines in an error.
 * Runs a setgid copy of secure_env_probe; needs root (to give the copy its group) and a file
 * system that honours the setgid bit, and skips with a message otherwise. */
#include <check.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../run_suite.h"

/* Runs the probe at path with the tracer's and the plugin's variables set to hostile values.
 * Returns its output (g_free()). */
static char *run_probe(const char *path, const char *config) {
  char *setting = g_strconcat("TM_LEAK_CONFIG=", config, NULL);
  char *argv[] = {(char *)path, NULL};
  char *envp[] = {"TRACEMALLOC=5", setting, "TM_LEAK_THRESHOLD=not a size", NULL};
  char *out = NULL;
  int status = 0;
  GError *error = NULL;
  ck_assert_msg(g_spawn_sync(NULL, argv, envp, G_SPAWN_DEFAULT, NULL, NULL, &out, NULL, &status,
                             &error),
                "%s", error ? error->message : "");
  ck_assert_msg(g_spawn_check_wait_status(status, NULL), "probe failed: %s", out);
  g_free(setting);
  return out;
}

START_TEST(test_setgid_program_ignores_environment) {
  const char *probe = g_getenv("SECURE_ENV_PROBE");
  char *dir, *copy, *secret, *contents = NULL, *out;
  gsize length = 0;
  ck_assert_ptr_nonnull(probe);
  /* The same program without the bit honours the variables: the test can tell. */
  secret = g_build_filename(g_get_tmp_dir(), "tm-secure-XXXXXX", NULL);
  {
    int fd = g_mkstemp(secret);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "root:SECRET-HASH:19000\n", 23), 23);
    close(fd);
  }
  out = run_probe(probe, secret);
  ck_assert_msg(strstr(out, "secure=0 tracing=1 ") == out, "%s", out);
  ck_assert_msg(strstr(out, "SECRET-HASH") != NULL, "an ordinary program reads its config: %s", out);
  g_free(out);
  if (geteuid() != 0) {
    fprintf(stderr, "test_setgid_program_ignores_environment: SKIPPED: needs root to make a "
                    "setgid copy of the probe\n");
    g_unlink(secret);
    g_free(secret);
    return;
  }
  /* A copy owned by root, group nogroup, setgid: root running it has egid != rgid. The build
   * directory, not /tmp, which is often mounted nosuid. */
  dir = g_build_filename(g_getenv("SECURE_ENV_DIR"), "secure-XXXXXX", NULL);
  ck_assert_ptr_nonnull(g_mkdtemp(dir));
  copy = g_build_filename(dir, "probe", NULL);
  ck_assert(g_file_get_contents(probe, &contents, &length, NULL));
  ck_assert(g_file_set_contents(copy, contents, (gssize)length, NULL));
  ck_assert_int_eq(chown(copy, 0, 65534), 0);
  ck_assert_int_eq(chmod(copy, 02755), 0);
  out = run_probe(copy, secret);
  if (strstr(out, "secure=0") == out) {
    fprintf(stderr, "test_setgid_program_ignores_environment: SKIPPED: the file system ignores "
                    "the setgid bit (%s)\n", out);
  } else {
    ck_assert_msg(strstr(out, "tracing=0 config=ok") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "SECRET-HASH") == NULL, "%s", out);
  }
  g_free(out);
  g_unlink(copy);
  g_rmdir(dir);
  g_unlink(secret);
  g_free(contents);
  g_free(copy);
  g_free(dir);
  g_free(secret);
}
END_TEST

int main(void) {
  Suite *s = suite_create("secure_environment");
  TCase *tc = tcase_create("secure");
  tcase_add_test(tc, test_setgid_program_ignores_environment);
  suite_add_tcase(s, tc);
  return run_suite(s);
}
