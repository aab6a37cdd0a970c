/* test_symbols_loader.c — the symbolizer module is loaded on the first resolution, never before:
 * a process that resolves nothing maps no libdw; it is found beside libtracemalloc.so; and a
 * module that cannot be loaded gives unknown frames and one line on stderr, never a crash.
 *
 * Links libtracemalloc.so, as users do, and goes through the public API. Each scenario runs in a
 * fresh process, this program run again with TEST_LOADER_CHILD naming the scenario, since what
 * it checks (what is mapped, what is printed once) depends on everything the process did before.
 */
#include <check.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "run_suite.h"
#include "tracemalloc.h"

#define MODULE_NAME "libtracemalloc-symbols.so"

/* Never inlined or cloned, so its frame is its own. */
#if defined(__clang__)
#define NOIPA __attribute__((noinline))
#else
#define NOIPA __attribute__((noipa))
#endif

/* Blocks escape here, so the compiler cannot elide their malloc. */
static void *volatile sink;

static NOIPA void allocate_here(unsigned int *line) {
  sink = malloc(24); *line = __LINE__;
}

static NOIPA void allocate_there(void) {
  sink = malloc(40);
}

/* Whether a line of /proc/self/maps contains needle. */
static bool mapped(const char *needle) {
  char *maps = NULL;
  if (!g_file_get_contents("/proc/self/maps", &maps, NULL, NULL))
    return false;
  bool found = strstr(maps, needle) != NULL;
  g_free(maps);
  return found;
}

/* The path of the first file in /proc/self/maps whose name contains needle (the caller frees
 * it), or NULL. */
static char *mapped_path(const char *needle) {
  char *maps = NULL;
  char *path = NULL;
  if (!g_file_get_contents("/proc/self/maps", &maps, NULL, NULL))
    return NULL;
  char **lines = g_strsplit(maps, "\n", -1);
  for (size_t i = 0; lines[i] != NULL && path == NULL; i++) {
    const char *file = strchr(lines[i], '/');
    if (file != NULL && strstr(file, needle) != NULL)
      path = g_strdup(file);
  }
  g_strfreev(lines);
  g_free(maps);
  return path;
}

/* The traceback of the block allocate_here() leaves in sink, and the line of that malloc. */
static tm_traceback *traceback_of_allocate_here(unsigned int *line) {
  allocate_here(line);
  return tm_get_object_traceback(sink);
}

/* Returns NULL when tb has a frame in allocate_here at line, else what is wrong. */
static const char *check_allocate_here_frame(const tm_traceback *tb, unsigned int line) {
  for (size_t i = 0; tb != NULL && i < tm_traceback_length(tb); i++) {
    const tm_frame *f = tm_traceback_get(tb, i);
    if (g_strcmp0(f->function, "allocate_here") != 0)
      continue;
    if (!g_str_has_suffix(f->filename, "tests/symbolizer/test_symbols_loader.c") || f->lineno != line)
      return "allocate_here's frame has the wrong file or line";
    return NULL;
  }
  return "no frame names allocate_here";
}

/* --- the scenarios, each in its own process: NULL on success, else what went wrong --- */

/* Nothing is loaded until a frame is resolved; then libdw and the module beside the library. A
 * child forked before the first resolution loads the module for itself. */
static const char *child_lazy(void) {
  if (mapped("libdw") || mapped("libelf") || mapped(MODULE_NAME))
    return "libdw, libelf or the module mapped at start";
  if (tm_start(16) != 0)
    return "tm_start failed";
  unsigned int line;
  tm_traceback *tb = traceback_of_allocate_here(&line);
  if (tb == NULL)
    return "no traceback";
  if (mapped("libdw") || mapped(MODULE_NAME))
    return "libdw mapped by tracing and tm_get_object_traceback() alone";

  pid_t pid = fork();
  if (pid < 0)
    return "fork failed";
  if (pid == 0)
    _exit(check_allocate_here_frame(tb, line) == NULL && mapped("/libdw") ? 0 : 1);
  int status;
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return "the forked child could not resolve allocate_here";
  if (mapped("libdw") || mapped(MODULE_NAME))
    return "the child's loading mapped libdw in the parent";

  const char *wrong = check_allocate_here_frame(tb, line);
  tm_traceback_free(tb);
  if (wrong != NULL)
    return wrong;
  if (!mapped("/libdw"))
    return "libdw not mapped after a resolution";
  char *library = mapped_path("/libtracemalloc.so");
  char *module = mapped_path("/" MODULE_NAME);
  char *dir = library != NULL ? g_path_get_dirname(library) : NULL;
  /* Run from the build tree, the library takes the build tree's module (src/meson.build). */
  char *expected = g_strcmp0(dir, LIBRARY_BUILD_DIR) == 0
                     ? g_strdup(MODULE_BUILD_PATH)
                     : (dir != NULL ? g_build_filename(dir, "tracemalloc", MODULE_NAME, NULL) : NULL);
  bool beside = expected != NULL && g_strcmp0(module, expected) == 0;
  g_free(expected);
  g_free(dir);
  g_free(module);
  g_free(library);
  tm_stop();
  return beside ? NULL : "the module loaded is not the library's own";
}

/* Every frame of tb is an address in no module. */
static bool all_unknown(const tm_traceback *tb) {
  if (tb == NULL || tm_traceback_length(tb) == 0)
    return false;
  for (size_t i = 0; i < tm_traceback_length(tb); i++) {
    const tm_frame *f = tm_traceback_get(tb, i);
    if (f->flags != TM_FRAME_UNKNOWN || strcmp(f->filename, "<unknown>") != 0 || f->lineno != 0 ||
        f->function != NULL || f->module != NULL || f->ip == 0)
      return false;
  }
  return true;
}

/* TM_SYMBOLS_MODULE names a module that cannot be loaded: unknown frames shown as addresses,
 * however many are resolved. The parent reads stderr. */
static const char *child_unloadable(void) {
  if (tm_start(16) != 0)
    return "tm_start failed";
  unsigned int line;
  tm_traceback *tb = traceback_of_allocate_here(&line);
  allocate_there();
  tm_traceback *other = tm_get_object_traceback(sink);
  bool unknown = all_unknown(tb) && all_unknown(other);
  char **lines = tm_traceback_format(tb, 0, true);
  bool address = lines != NULL && lines[0] != NULL && strstr(lines[0], ", at 0x") != NULL;
  g_strfreev(lines);
  tm_traceback_free(tb);
  tm_traceback_free(other);
  tm_stop();
  if (!unknown)
    return "a frame is not the unknown frame";
  if (!address)
    return "the formatted frame shows no address";
  if (mapped("libdw"))
    return "libdw mapped";
  return NULL;
}

/* --- the tests: run this program again for one scenario --- */

/* Runs this program with TEST_LOADER_CHILD=scenario and, when module is not NULL,
 * TM_SYMBOLS_MODULE=module (and LD_LIBRARY_PATH=library_path when not NULL). Asserts it exits 0;
 * returns its stderr (the caller frees it). */
static char *run_child(const char *scenario, const char *module, const char *library_path) {
  char *self = g_file_read_link("/proc/self/exe", NULL);
  ck_assert_ptr_nonnull(self);
  char *argv[] = {self, NULL};
  char **envp = g_get_environ();
  envp = g_environ_setenv(envp, "TEST_LOADER_CHILD", scenario, TRUE);
  envp = g_environ_unsetenv(envp, "TM_SYMBOLS_MODULE");
  if (module != NULL)
    envp = g_environ_setenv(envp, "TM_SYMBOLS_MODULE", module, TRUE);
  if (library_path != NULL)
    envp = g_environ_setenv(envp, "LD_LIBRARY_PATH", library_path, TRUE);
  char *out = NULL, *err = NULL;
  int status = -1;
  GError *error = NULL;
  ck_assert_msg(g_spawn_sync(NULL, argv, envp, G_SPAWN_DEFAULT, NULL, NULL, &out, &err, &status,
                             &error),
                "spawn %s: %s", self, error != NULL ? error->message : "?");
  ck_assert_msg(g_spawn_check_wait_status(status, NULL), "%s: status 0x%x\nstdout: %s\nstderr: %s",
                scenario, status, out, err);
  g_free(out);
  g_strfreev(envp);
  g_free(self);
  return err;
}

START_TEST(test_loaded_on_first_resolution) {
  char *err = run_child("lazy", NULL, NULL);
  ck_assert_str_eq(err, "");
  g_free(err);
}
END_TEST

/* Copies src to dst. */
static void copy_file(const char *src, const char *dst) {
  char *data = NULL;
  gsize size = 0;
  GError *error = NULL;
  ck_assert_msg(g_file_get_contents(src, &data, &size, &error), "%s", error ? error->message : "");
  ck_assert_msg(g_file_set_contents(dst, data, (gssize)size, &error), "%s",
                error ? error->message : "");
  g_free(data);
}

/* An installed layout anywhere: the library and tracemalloc/<module> copied to a new directory.
 * The module found is the copy beside the library, not the build tree's. */
START_TEST(test_found_beside_the_library) {
  char *library = mapped_path("/libtracemalloc.so");
  ck_assert_ptr_nonnull(library);
  char *dir = g_path_get_dirname(library);
  char *module = g_strdup(MODULE_BUILD_PATH);
  char *tmp = g_dir_make_tmp("tm-loader-XXXXXX", NULL);
  ck_assert_ptr_nonnull(tmp);
  char *moddir = g_build_filename(tmp, "tracemalloc", NULL);
  ck_assert_int_eq(g_mkdir(moddir, 0700), 0);
  /* Named as the test's DT_NEEDED entry, so that the loader finds the copy. */
  char *library_copy = g_build_filename(tmp, "libtracemalloc.so.0", NULL);
  char *module_copy = g_build_filename(moddir, MODULE_NAME, NULL);
  copy_file(library, library_copy);
  copy_file(module, module_copy);

  char *err = run_child("lazy", NULL, tmp); /* LD_LIBRARY_PATH precedes the test's RUNPATH */
  ck_assert_str_eq(err, "");

  g_free(err);
  g_unlink(module_copy);
  g_unlink(library_copy);
  g_rmdir(moddir);
  g_rmdir(tmp);
  g_free(module_copy);
  g_free(library_copy);
  g_free(moddir);
  g_free(tmp);
  g_free(module);
  g_free(dir);
  g_free(library);
}
END_TEST

/* stderr is exactly one line: "tracemalloc: cannot load <path>: <why>; frames are shown as
 * addresses". */
static void assert_one_line(const char *err, const char *path, const char *why) {
  char *start = g_strdup_printf("tracemalloc: cannot load %s: ", path);
  const char *end = "; frames are shown as addresses\n";
  ck_assert_msg(g_str_has_prefix(err, start) && g_str_has_suffix(err, end) &&
                    strchr(err, '\n') == err + strlen(err) - 1 && strstr(err, why) != NULL,
                "stderr: %s", err);
  g_free(start);
}

START_TEST(test_missing_module) {
  const char *path = "/nonexistent/tracemalloc/" MODULE_NAME;
  char *err = run_child("unloadable", path, NULL);
  assert_one_line(err, path, "No such file or directory");
  g_free(err);
}
END_TEST

/* A shared object that is not the module: it loads, but has no entry points. */
START_TEST(test_not_a_module) {
  char *self = g_file_read_link("/proc/self/exe", NULL);
  char *dir = g_path_get_dirname(self);
  char *path = g_build_filename(dir, "libtm_symbols_helper.so", NULL);
  char *err = run_child("unloadable", path, NULL);
  assert_one_line(err, path, "it defines no tm__symbols_module");
  g_free(err);
  g_free(path);
  g_free(dir);
  g_free(self);
}
END_TEST

static Suite *loader_suite(void) {
  Suite *s = suite_create("symbols_loader");
  TCase *tc = tcase_create("load");
  tcase_add_test(tc, test_loaded_on_first_resolution);
  tcase_add_test(tc, test_found_beside_the_library);
  tcase_add_test(tc, test_missing_module);
  tcase_add_test(tc, test_not_a_module);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  const char *scenario = getenv("TEST_LOADER_CHILD");
  if (scenario != NULL) {
    const char *wrong = strcmp(scenario, "lazy") == 0         ? child_lazy()
                        : strcmp(scenario, "unloadable") == 0 ? child_unloadable()
                                                              : "unknown scenario";
    if (wrong != NULL)
      printf("%s: %s\n", scenario, wrong);
    return wrong == NULL ? EXIT_SUCCESS : EXIT_FAILURE;
  }
  return run_suite(loader_suite());
}
