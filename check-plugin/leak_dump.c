/* leak_dump.c — TM_LEAK_DUMP_DIR: the dump of each failing test's window, for the tracemalloc
 * command (`tracemalloc stats DIR/test_x.dump`, `tracemalloc flamegraph DIR/test_x.dump`).
 *
 * The window's after-snapshot holds exactly the blocks the window allocated and did not free
 * (leak_fixture.c clears the traces at setup), so its dump is the leak with every traceback, not
 * only the lines the report prints. One file per failing window, named after the test:
 * DIR/<test>.dump, then DIR/<test>.2.dump, .3 ... when the name is taken (a loop test's
 * iterations, a second run into the same directory): a dump never replaces another.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "leak_internal.h"

/* The test name made into a file name: '/' and control characters become '_', and a leading '.'
 * too (no hidden file, no "..'). g_free(). */
static char *name_sanitize(const char *test_name) {
  char *name = g_strdup(test_name != NULL && test_name[0] != '\0' ? test_name : "unnamed");
  for (char *p = name; *p != '\0'; p++)
    if (*p == '/' || (unsigned char)*p < 0x20 || *p == 0x7f || (p == name && *p == '.'))
      *p = '_';
  return name;
}

void tm__leak_dump_window(const tm_snapshot *after, const char *test_name) {
  const char *dir = secure_getenv("TM_LEAK_DUMP_DIR");
  GError *error = NULL;
  char *path = NULL;
  if (dir == NULL || dir[0] == '\0' || after == NULL)
    return;
  char *name = name_sanitize(test_name);
  for (unsigned n = 1; n < 100000 && path == NULL; n++) {
    char *file = n == 1 ? g_strdup_printf("%s.dump", name) : g_strdup_printf("%s.%u.dump", name, n);
    path = g_build_filename(dir, file, NULL);
    g_free(file);
    /* Reserve the name: tm_snapshot_dump() replaces this empty regular file when done. */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd >= 0) {
      close(fd);
    } else {
      int err = errno;
      g_free(path);
      path = NULL;
      if (err != EEXIST) {
        fprintf(tm__leak_stderr(), "tracemalloc-check: TM_LEAK_DUMP_DIR=%s: cannot write %s.dump there: %s\n",
                dir, name, g_strerror(err));
        break;
      }
    }
  }
  if (path != NULL) {
    if (tm_snapshot_dump((tm_snapshot *)after, path, &error)) {
      fprintf(tm__leak_stderr(), "tracemalloc-check: the window's blocks are in %s (tracemalloc stats, "
                      "tracemalloc flamegraph)\n",
              path);
    } else {
      fprintf(tm__leak_stderr(), "tracemalloc-check: %s\n", error->message);
      g_error_free(error);
      unlink(path);
    }
  }
  fflush(tm__leak_stderr());
  g_free(path);
  g_free(name);
}

bool tm__leak_dump_wanted(void) {
  const char *dir = secure_getenv("TM_LEAK_DUMP_DIR");
  return dir != NULL && dir[0] != '\0';
}
