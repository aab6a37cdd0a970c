/* shared_pages.c — which pages a fork() child has not written since the fork (shared_pages.h). */
#include "shared_pages.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGEMAP_PRESENT (UINT64_C(1) << 63)
#define PAGEMAP_SWAPPED (UINT64_C(1) << 62)
#define PAGEMAP_EXCLUSIVE (UINT64_C(1) << 56)

/* Reads the MAP_SHARED mappings ('s' in the permissions of /proc/self/maps) into sp, with read(),
 * a line at a time through a buffer on the stack. Returns false when the file cannot be read or
 * holds too many of them. */
static bool shared_mappings_read(tm__shared_pages *sp) {
  char buf[4096];
  size_t have = 0;
  bool ok = true, eof = false;
  int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return false;
  sp->nshared = 0;
  while (ok && (!eof || have > 0)) {
    if (!eof && have < sizeof buf - 1) {
      ssize_t n = read(fd, buf + have, sizeof buf - 1 - have);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        ok = false;
      eof = n <= 0;
      have += n > 0 ? (size_t)n : 0;
    }
    char *nl = memchr(buf, '\n', have);
    if (nl == NULL && !eof && have < sizeof buf - 1)
      continue;
    size_t len = nl != NULL ? (size_t)(nl - buf) : have; /* a line longer than buf: its start */
    buf[len] = '\0';
    char *end;
    uintptr_t lo = strtoul(buf, &end, 16), hi = *end == '-' ? strtoul(end + 1, &end, 16) : 0;
    /* "lo-hi rwsp ...": the fourth letter of the permissions is 's' or 'p'. */
    if (*end == ' ' && end[1] != '\0' && end[2] != '\0' && end[3] != '\0' && end[4] == 's') {
      if (sp->nshared == TM_SHARED_MAPPINGS_MAX)
        ok = false;
      else {
        sp->shared[sp->nshared][0] = lo;
        sp->shared[sp->nshared++][1] = hi;
      }
    }
    size_t used = nl != NULL ? len + 1 : have;
    memmove(buf, buf + used, have - used);
    have -= used;
    if (nl == NULL && len == sizeof buf - 1) { /* skip the rest of an overlong line */
      while (!eof && memchr(buf, '\n', have) == NULL) {
        ssize_t n = read(fd, buf, sizeof buf - 1);
        eof = n <= 0;
        have = n > 0 ? (size_t)n : 0;
      }
      char *rest = memchr(buf, '\n', have);
      size_t skip = rest != NULL ? (size_t)(rest - buf) + 1 : have;
      memmove(buf, buf + skip, have - skip);
      have -= skip;
    }
  }
  close(fd);
  return ok;
}

bool tm__shared_pages_open(tm__shared_pages *sp) {
  int saved = errno;
  siginfo_t info = {0};
  *sp = (tm__shared_pages){.fd = -1, .page = UINTPTR_MAX};
  /* ECHILD: no child at all, running or not yet waited for. */
  bool children = waitid(P_ALL, 0, &info, WEXITED | WSTOPPED | WCONTINUED | WNOHANG | WNOWAIT) == 0 ||
                  errno != ECHILD;
  long page_size = sysconf(_SC_PAGESIZE);
  if (!children && page_size > 0 && shared_mappings_read(sp)) {
    sp->fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    sp->page_size = (size_t)page_size;
  }
  errno = saved;
  return sp->fd >= 0;
}

bool tm__shared_pages_unwritten(tm__shared_pages *sp, uintptr_t addr) {
  if (sp->fd < 0)
    return false;
  uintptr_t page = addr / sp->page_size;
  if (page != sp->page) {
    for (size_t i = 0; i < sp->nshared; i++) {
      if (addr >= sp->shared[i][0] && addr < sp->shared[i][1]) {
        sp->page = page;
        sp->unwritten = false; /* mapped elsewhere whether written or not: every word counts */
        return false;
      }
    }
    int saved = errno;
    uint64_t entry = 0;
    bool read = pread(sp->fd, &entry, sizeof entry, (off_t)(page * sizeof entry)) ==
                (ssize_t)sizeof entry;
    errno = saved;
    sp->page = page;
    sp->unwritten = read && (entry & PAGEMAP_PRESENT) && !(entry & PAGEMAP_SWAPPED) &&
                    !(entry & PAGEMAP_EXCLUSIVE);
  }
  return sp->unwritten;
}

void tm__shared_pages_close(tm__shared_pages *sp) {
  if (sp->fd >= 0) {
    int saved = errno;
    close(sp->fd);
    errno = saved;
  }
  sp->fd = -1;
}
