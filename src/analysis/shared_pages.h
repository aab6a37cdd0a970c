/* shared_pages.h — which pages a fork() child has not written since the fork. Internal.
 *
 * After fork(), parent and child map the same physical pages until one of them writes to one
 * (copy on write). /proc/self/pagemap says of each page whether this process maps it alone (bit
 * 56, "exclusively mapped", Linux 4.2, readable without privileges): a page the child still
 * shares with its parent holds what it held at the fork, word for word. Writing a word again,
 * even with the value it had, copies the page.
 */
#ifndef TM_SHARED_PAGES_H
#define TM_SHARED_PAGES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TM_SHARED_MAPPINGS_MAX 64

typedef struct tm__shared_pages {
  int fd;            /* /proc/self/pagemap, or -1 */
  size_t page_size;
  uintptr_t page;    /* the page last asked about */
  bool unwritten;    /* its answer */
  /* The MAP_SHARED mappings (a page of one is never this process's alone: written or not, it is
   * mapped elsewhere too), [lo, hi) pairs. */
  uintptr_t shared[TM_SHARED_MAPPINGS_MAX][2];
  size_t nshared;
} tm__shared_pages;

/* Opens the view, when the calling process has no child process of its own (a child of its
 * shares its pages as well, and would make a page it wrote look unwritten). Returns false, with
 * every later question answered false, when it has children, cannot read pagemap or
 * /proc/self/maps, or has more than TM_SHARED_MAPPINGS_MAX shared mappings. Keeps errno.
 * Allocates nothing. */
bool tm__shared_pages_open(tm__shared_pages *sp);

/* Whether the page that holds addr is present, in memory, and mapped by another process as well:
 * not written by this one since the fork that shares it. False when unsure, and for a page of a
 * MAP_SHARED mapping. */
bool tm__shared_pages_unwritten(tm__shared_pages *sp, uintptr_t addr);

/* Closes the view (when open). */
void tm__shared_pages_close(tm__shared_pages *sp);

#endif /* TM_SHARED_PAGES_H */
