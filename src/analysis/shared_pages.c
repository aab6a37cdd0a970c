/* shared_pages.c — which pages a fork() child has not written since the fork (shared_pages.h). */
#include "shared_pages.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGEMAP_PRESENT (UINT64_C(1) << 63)
#define PAGEMAP_SWAPPED (UINT64_C(1) << 62)
#define PAGEMAP_EXCLUSIVE (UINT64_C(1) << 56)

bool tm__shared_pages_open(tm__shared_pages *sp) {
  int saved = errno;
  siginfo_t info = {0};
  *sp = (tm__shared_pages){.fd = -1, .page = UINTPTR_MAX};
  /* ECHILD: no child at all, running or not yet waited for. */
  bool children = waitid(P_ALL, 0, &info, WEXITED | WSTOPPED | WCONTINUED | WNOHANG | WNOWAIT) == 0 ||
                  errno != ECHILD;
  long page_size = sysconf(_SC_PAGESIZE);
  if (!children && page_size > 0) {
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
