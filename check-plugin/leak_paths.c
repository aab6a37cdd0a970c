/* leak_paths.c — one path style in every line and report of a run: a source file inside the
 * project's source root is shown relative to it ("examples/money/money.c"), any other file
 * absolute, whatever the working directory (meson runs tests from the build directory, make from
 * the source or build tree, an IDE from anywhere).
 *
 * The source root is, in this order:
 *   1. TM_LEAK_SOURCE_ROOT, when set and not empty;
 *   2. MESON_SOURCE_ROOT, when set (meson sets it for run targets and scripts, not for tests);
 *   3. walking up from the working directory, the first folder that is a build directory that
 *      names its source folder (meson's meson-info/meson-info.json: `meson test` runs tests from
 *      the build directory, wherever it is; CMake's CMakeCache.txt, CMAKE_HOME_DIRECTORY: ctest
 *      runs them from a folder of the build tree; autoconf's config.status, srcdir: `make check`
 *      runs them from a folder of the build tree, which is the source tree in a release tarball
 *      built in place) or holds a .git entry (a git checkout or worktree);
 *   4. the working directory.
 * A relative TM_LEAK_SOURCE_ROOT or MESON_SOURCE_ROOT is taken from the working directory. The
 * root is found once per process, in the runner before Check forks.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>

#include "leak_internal.h"

static char *source_root; /* canonical, without a trailing '/'; NULL until first needed */

/* The first capture of pattern (a regex with one group, anchored per line) in dir/file, or NULL.
 * g_free(). */
static char *file_field(const char *dir, const char *file, const char *pattern) {
  char *path = g_build_filename(dir, file, NULL);
  char *text = NULL, *field = NULL;
  GMatchInfo *match = NULL;
  GRegex *re = g_regex_new(pattern, G_REGEX_MULTILINE, 0, NULL);

  if (re != NULL && g_file_get_contents(path, &text, NULL, NULL) &&
      g_regex_match(re, text, 0, &match))
    field = g_match_info_fetch(match, 1);
  g_match_info_free(match);
  if (re != NULL)
    g_regex_unref(re);
  g_free(text);
  g_free(path);
  return field;
}

/* The source folder that a meson build directory names in meson-info/meson-info.json
 * ("directories": {"source": "..."}), or NULL. g_free(). */
static char *meson_source_dir(const char *build_dir) {
  char *source = file_field(build_dir, "meson-info/meson-info.json",
                            "\"source\":\\s*\"([^\"\\\\]+)\"");
  if (source != NULL && !g_path_is_absolute(source))
    g_clear_pointer(&source, g_free);
  return source;
}

/* The source folder that the build directory dir names (CMake's cache, autoconf's config.status:
 * srcdir, relative to dir or absolute), or NULL. g_free(). */
static char *build_source_dir(const char *dir) {
  char *source = meson_source_dir(dir);
  if (source == NULL)
    source = file_field(dir, "CMakeCache.txt", "^CMAKE_HOME_DIRECTORY:INTERNAL=(/.+)$");
  if (source == NULL) {
    char *srcdir = file_field(dir, "config.status", "^srcdir='([^'\\\\]+)'$");
    if (srcdir != NULL)
      source = g_canonicalize_filename(srcdir, dir);
    g_free(srcdir);
  }
  return source;
}

/* Walking up from dir (absolute, canonical): the source folder of the nearest build directory
 * that names one, or the nearest folder with a .git entry, whichever comes first; NULL when none.
 * g_free(). */
static char *enclosing_root(const char *dir) {
  char *d = g_strdup(dir);

  for (;;) {
    char *source = build_source_dir(d);
    if (source != NULL) {
      g_free(d);
      char *root = g_canonicalize_filename(source, "/");
      g_free(source);
      return root;
    }
    char *git = g_build_filename(d, ".git", NULL);
    bool found = g_file_test(git, G_FILE_TEST_EXISTS);
    g_free(git);
    if (found)
      return d;
    char *parent = g_path_get_dirname(d);
    bool top = g_str_equal(parent, d);
    g_free(d);
    d = parent;
    if (top) {
      g_free(d);
      return NULL;
    }
  }
}

char *tm__leak_source_root_find(char **envp, const char *cwd) {
  const char *names[] = {"TM_LEAK_SOURCE_ROOT", "MESON_SOURCE_ROOT"};
  char *root = NULL;

  for (size_t i = 0; i < G_N_ELEMENTS(names) && root == NULL; i++) {
    const char *value = g_environ_getenv(envp, names[i]);
    if (value != NULL && value[0] != '\0')
      root = g_canonicalize_filename(value, cwd);
  }
  if (root == NULL) {
    char *dir = g_canonicalize_filename(cwd, "/");
    root = enclosing_root(dir);
    if (root == NULL)
      root = g_steal_pointer(&dir);
    g_free(dir);
  }
  return root;
}

const char *tm__leak_display_path_in(const char *root, const char *path) {
  size_t n = strlen(root);
  char *canonical;
  const char *shown;

  if (path == NULL)
    return NULL;
  if (!g_path_is_absolute(path))
    return g_intern_string(path); /* as the debug info says ("./string/strdup.c"): no base */
  canonical = g_canonicalize_filename(path, "/");
  if (n > 1 && strncmp(canonical, root, n) == 0 && canonical[n] == '/')
    shown = g_intern_string(canonical + n + 1);
  else if (n == 1 && root[0] == '/')
    shown = g_intern_string(canonical + 1);
  else
    shown = g_intern_string(canonical);
  g_free(canonical);
  return shown;
}

const char *tm__leak_source_root(void) {
  if (source_root == NULL) {
    /* A setuid or setgid program ignores the environment, as leak_config.c does. */
    static char *no_env[] = {NULL};
    char **env = getauxval(AT_SECURE) != 0 ? NULL : g_get_environ();
    char *cwd = g_get_current_dir();
    source_root = tm__leak_source_root_find(env != NULL ? env : no_env, cwd);
    g_free(cwd);
    g_strfreev(env);
  }
  return source_root;
}

const char *tm__leak_display_path(const char *path) {
  return tm__leak_display_path_in(tm__leak_source_root(), path);
}

char *tm__leak_display_traceback_line(const char *line) {
  static const char prefix[] = "  File \"";
  const char *start, *end;

  if (!g_str_has_prefix(line, prefix))
    return g_strdup(line);
  start = line + strlen(prefix);
  end = strstr(start, "\", line ");
  if (end == NULL)
    return g_strdup(line);
  char *path = g_strndup(start, (gsize)(end - start));
  char *shown = g_strdup_printf("%s%s%s", prefix, tm__leak_display_path(path), end);
  g_free(path);
  return shown;
}
