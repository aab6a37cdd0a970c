/* leak_stderr.c — the stream the plugin writes its notes and reports to. See leak_internal.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <unistd.h>
#include <wchar.h>

#include "leak_internal.h"

/* Writes to the descriptor behind stderr at the time of the write (a test may have redirected
 * it), all of buf or an error. */
static ssize_t descriptor_write(void *cookie, const char *buf, size_t n) {
  (void)cookie;
  size_t done = 0;
  while (done < n) {
    ssize_t w = write(fileno(stderr), buf + done, n - done);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return done > 0 ? (ssize_t)done : -1;
    done += (size_t)w;
  }
  return (ssize_t)n;
}

/* Whether descriptor 2 was closed when the program started (`./suite 2>&-`). The first file opened
 * afterwards gets it: in Check's runner that is its message file, and a note written "to stderr"
 * went into it and broke the next message (Check exited with "Bad message type" and no test got a
 * verdict). The plugin's notes are then dropped, as the program's own writes to a closed stderr
 * would be. Read before any other constructor of the program runs. */
static bool stderr_closed;

__attribute__((constructor(101))) static void stderr_check(void) {
  int saved = errno;
  stderr_closed = fcntl(STDERR_FILENO, F_GETFD) == -1 && errno == EBADF;
  errno = saved;
}

static ssize_t discard_write(void *cookie, const char *buf, size_t n) {
  (void)cookie, (void)buf;
  return (ssize_t)n;
}

FILE *tm__leak_stderr(void) {
  static FILE *bytes, *nowhere;
  if (stderr_closed) {
    if (nowhere == NULL) {
      cookie_io_functions_t io = {.write = discard_write};
      nowhere = fopencookie(NULL, "w", io);
    }
    if (nowhere != NULL)
      return nowhere;
  }
  if (fwide(stderr, 0) <= 0)
    return stderr;
  if (bytes == NULL) {
    cookie_io_functions_t io = {.write = descriptor_write};
    bytes = fopencookie(NULL, "w", io);
    if (bytes == NULL)
      return stderr;
    setvbuf(bytes, NULL, _IOLBF, 0);
  }
  fflush(stderr); /* what the program wrote comes first */
  return bytes;
}
