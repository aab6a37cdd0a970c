/* harness.c — see harness.h. */
#include <string.h>

#include <check.h>

#include <unistd.h>

#include "harness.h"

static void ck_result_free(gpointer data) {
  ck_result *r = data;
  g_free(r->file);
  g_free(r->tcase);
  g_free(r->test);
  g_free(r->message);
  g_free(r);
}

/* Parses "file:line:T:tcase:test:iter: message"; file may hold ':' only in a Windows path,
 * which we do not meet, so the fields are taken from the left. */
static ck_result *parse_line(const char *text) {
  static GRegex *re;
  GMatchInfo *m = NULL;
  ck_result *r = NULL;

  if (re == NULL)
    re = g_regex_new("^([^:]+):(-?[0-9]+):([PFES]):([^:]*):([^:]*):([0-9]+): ?(.*)$", 0, 0, NULL);
  if (g_regex_match(re, text, 0, &m)) {
    char *line = g_match_info_fetch(m, 2), *type = g_match_info_fetch(m, 3);
    char *iter = g_match_info_fetch(m, 6);
    r = g_new0(ck_result, 1);
    r->file = g_match_info_fetch(m, 1);
    r->line = atoi(line);
    r->type = type[0];
    r->tcase = g_match_info_fetch(m, 4);
    r->test = g_match_info_fetch(m, 5);
    r->iteration = atoi(iter);
    r->message = g_match_info_fetch(m, 7);
    g_free(line);
    g_free(type);
    g_free(iter);
  }
  g_match_info_free(m);
  return r;
}

static void stderr_close(gpointer data) {
  (void)data;
  close(STDERR_FILENO);
}

suite_run *suite_run_new(const char *exe, const char *fork_mode, const char *const *extra_env) {
  return suite_run_new_full(exe, fork_mode, extra_env, false);
}

suite_run *suite_run_new_full(const char *exe, const char *fork_mode, const char *const *extra_env,
                              bool stderr_closed) {
  char **env = g_get_environ();
  char *argv[] = {(char *)exe, NULL};
  GError *error = NULL;
  suite_run *run = g_new0(suite_run, 1);
  char **lines;

  for (char **e = env; *e != NULL;) { /* drop settings that would change the verdicts */
    if (g_str_has_prefix(*e, "TM_LEAK_") || g_str_has_prefix(*e, "CK_RUN_") ||
        g_str_has_prefix(*e, "G_SLICE=") || g_str_has_prefix(*e, "TRACEMALLOC=") ||
        g_str_has_prefix(*e, "CK_TAP_") || g_str_has_prefix(*e, "CK_XML_") ||
        g_str_has_prefix(*e, "CK_LOG_")) {
      char *name = g_strndup(*e, strcspn(*e, "="));
      env = g_environ_unsetenv(env, name);
      g_free(name);
      e = env;
      continue;
    }
    e++;
  }
  env = g_environ_setenv(env, "CK_FORK", fork_mode, TRUE);
  env = g_environ_setenv(env, "CK_VERBOSITY", "verbose", TRUE);
  for (const char *const *x = extra_env; x != NULL && *x != NULL; x++) {
    char *name = g_strndup(*x, strcspn(*x, "="));
    env = g_environ_setenv(env, name, *x + strlen(name) + 1, TRUE);
    g_free(name);
  }
  run->fork = g_strdup(fork_mode);
  if (!g_spawn_sync(NULL, argv, env, G_SPAWN_STDIN_FROM_DEV_NULL,
                    stderr_closed ? stderr_close : NULL, NULL, &run->out,
                    stderr_closed ? NULL : &run->err, &run->exit_status, &error)) {
    g_printerr("cannot run %s: %s\n", exe, error->message);
    exit(99); /* meson's hard error: no verdict can be read */
  }
  g_strfreev(env);
  run->results = g_ptr_array_new_with_free_func(ck_result_free);
  lines = g_strsplit(run->out, "\n", -1);
  for (char **l = lines; *l != NULL; l++) {
    ck_result *r = parse_line(*l);
    if (r != NULL)
      g_ptr_array_add(run->results, r);
  }
  g_strfreev(lines);
  return run;
}

void suite_run_free(suite_run *run) {
  if (run == NULL)
    return;
  g_ptr_array_unref(run->results);
  g_free(run->out);
  g_free(run->err);
  g_free(run->fork);
  g_free(run);
}

const ck_result *suite_run_find(const suite_run *run, const char *tcase, const char *test,
                                int iteration) {
  for (guint i = 0; i < run->results->len; i++) {
    const ck_result *r = g_ptr_array_index(run->results, i);
    if ((tcase == NULL || g_str_equal(r->tcase, tcase)) && g_str_equal(r->test, test) &&
        r->iteration == iteration)
      return r;
  }
  return NULL;
}

int source_marker_line(const char *path, const char *marker) {
  char *text = NULL;
  char **lines;
  int found = 0;

  ck_assert_msg(g_file_get_contents(path, &text, NULL, NULL), "cannot read %s", path);
  lines = g_strsplit(text, "\n", -1);
  for (int i = 0; lines[i] != NULL && found == 0; i++)
    if (strstr(lines[i], marker) != NULL)
      found = i + 1;
  g_strfreev(lines);
  g_free(text);
  ck_assert_msg(found > 0, "no line of %s contains '%s'", path, marker);
  return found;
}

const char *required_env(const char *name) {
  const char *value = g_getenv(name);
  if (value == NULL || value[0] == '\0') {
    g_printerr("%s is not set (meson sets it)\n", name);
    exit(99);
  }
  return value;
}

void check_result(const suite_run *run, const char *tcase, const char *test, int iteration,
                  char type, const char *site_source, const char *marker,
                  const char *message_prefix) {
  const ck_result *r = suite_run_find(run, tcase, test, iteration);
  char *whole, *base;

  ck_assert_msg(r != NULL, "CK_FORK=%s: no result line for %s:%s:%d in:\n%s", run->fork,
                tcase ? tcase : "*", test, iteration, run->out);
  whole = g_strdup_printf("%s:%d:%c:%s:%s:%d: %s", r->file, r->line, r->type, r->tcase, r->test,
                          r->iteration, r->message);
  ck_assert_msg(r->type == type, "CK_FORK=%s: expected %c, got %s", run->fork, type, whole);
  if (site_source != NULL) {
    char *want = g_path_get_basename(site_source);
    int line = source_marker_line(site_source, marker);
    base = g_path_get_basename(r->file);
    ck_assert_msg(g_str_equal(base, want) && r->line == line,
                  "CK_FORK=%s: expected the site %s:%d (%s), got %s", run->fork, want, line,
                  marker, whole);
    g_free(base);
    g_free(want);
  }
  if (message_prefix != NULL)
    ck_assert_msg(g_str_has_prefix(r->message, message_prefix),
                  "CK_FORK=%s: expected a message starting with '%s', got %s", run->fork,
                  message_prefix, whole);
  g_free(whole);
}
