/* tool_harness.h — runs the `tracemalloc` command in a subprocess for the tests of tools/. */
#ifndef TM_TOOL_HARNESS_H
#define TM_TOOL_HARNESS_H

#include <check.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

/* One run of the command. */
typedef struct tool_run {
  int status; /* the exit status (128 + N when killed by signal N) */
  char *out, *err;
} tool_run;

/* Reads an environment variable meson sets; aborts the test when missing. */
static inline const char *tool_env(const char *name) {
  const char *v = g_getenv(name);
  ck_assert_msg(v != NULL && v[0] != '\0', "%s is not set (run through meson test)", name);
  return v;
}

/* Runs argv (NULL-terminated; argv[0] found in PATH or a path) in cwd (NULL: ours), stdin from
 * /dev/null, with stdout and stderr captured. */
static inline tool_run tool_spawn(const char *cwd, const char *const *argv) {
  tool_run r = {0};
  GError *error = NULL;
  int wait_status = 0;
  gboolean ok = g_spawn_sync(cwd, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &r.out,
                             &r.err, &wait_status, &error);
  ck_assert_msg(ok, "cannot run %s: %s", argv[0], ok ? "" : error->message);
  r.status = WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : 128 + WTERMSIG(wait_status);
  return r;
}

static inline void tool_run_clear(tool_run *r) {
  g_free(r->out);
  g_free(r->err);
}

/* The 1-based number of the first line of path containing marker. */
static inline int tool_marker_line(const char *path, const char *marker) {
  char *text = NULL;
  ck_assert_msg(g_file_get_contents(path, &text, NULL, NULL), "cannot read %s", path);
  char **lines = g_strsplit(text, "\n", -1);
  int found = 0;
  for (int i = 0; lines[i] != NULL && found == 0; i++)
    if (strstr(lines[i], marker) != NULL)
      found = i + 1;
  g_strfreev(lines);
  g_free(text);
  ck_assert_msg(found > 0, "no %s in %s", marker, path);
  return found;
}

/* Number of lines of s (a last line without newline counts). */
static inline int tool_count_lines(const char *s) {
  int n = 0;
  for (const char *p = s; *p != '\0'; p++)
    if (*p == '\n' || p[1] == '\0')
      n++;
  return n;
}

/* A fresh temporary directory; g_free() the name. */
static inline char *tool_tmpdir(void) {
  char *dir = g_dir_make_tmp("tm-tool-XXXXXX", NULL);
  ck_assert_ptr_nonnull(dir);
  return dir;
}

/* The files of dir whose names end with suffix, sorted; g_ptr_array_unref(). Full paths. */
static inline GPtrArray *tool_files(const char *dir, const char *suffix) {
  GPtrArray *files = g_ptr_array_new_with_free_func(g_free);
  GDir *d = g_dir_open(dir, 0, NULL);
  const char *name;
  while (d != NULL && (name = g_dir_read_name(d)) != NULL)
    if (g_str_has_suffix(name, suffix))
      g_ptr_array_add(files, g_build_filename(dir, name, NULL));
  if (d != NULL)
    g_dir_close(d);
  g_ptr_array_sort(files, (GCompareFunc)g_strcmp0);
  return files;
}

/* Removes dir and the files in it. */
static inline void tool_rmdir(const char *dir) {
  GDir *d = g_dir_open(dir, 0, NULL);
  const char *name;
  while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
    char *p = g_build_filename(dir, name, NULL);
    g_unlink(p);
    g_free(p);
  }
  if (d != NULL)
    g_dir_close(d);
  g_rmdir(dir);
}

#endif /* TM_TOOL_HARNESS_H */
