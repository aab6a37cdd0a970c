/* guard.h — the per-thread reentrancy guard and the tracer's memory accounting. Internal.
 *
 * While a thread holds the guard, every allocation it makes is the tracer's own (libunwind, libdw,
 * glib inside analysis calls): the hooks pass it through untraced and count it as tracer memory.
 * The TLS variable uses the initial-exec model: a global-dynamic access may call __tls_get_addr,
 * which may call malloc, which would recurse into the hooks.
 */
#ifndef TM_GUARD_H
#define TM_GUARD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

extern __thread int tm__guard_depth __attribute__((tls_model("initial-exec")));

static inline bool tm__guard_held(void) { return tm__guard_depth > 0; }

/* Depth of tm_thread_pause() calls on this thread: while > 0, the hooks trace none of its new
 * blocks (frees are still seen). Same TLS model as the guard, for the same reason. */
extern __thread int tm__pause_depth __attribute__((tls_model("initial-exec")));

/* Which of this thread's nested pauses came from tm_thread_pause_scanned(): bit i for the pause
 * that took the depth from i to i + 1 (pauses past 64 levels count as tm_thread_pause()). */
extern __thread uint64_t tm__pause_scanned_bits __attribute__((tls_model("initial-exec")));

/* Whether a tm_thread_pause() (not a tm_thread_pause_scanned()) is in force on this thread: its
 * new blocks are then registered as memory the reachability scan never reads, new blocks are not
 * zeroed for it, and its mappings are not the program's. */
static inline bool tm__pause_hides(void) {
  int depth = tm__pause_depth;
  if (depth <= 0)
    return false;
  if (depth >= 64)
    return true;
  return (~tm__pause_scanned_bits & ((UINT64_C(1) << depth) - 1)) != 0;
}

/* Bytes of tracer memory handed out by tm__map() and not yet returned. Atomic; never traced. */
extern atomic_size_t tm__mapped_bytes;

/* mmap() and munmap() as system calls, never through the symbols (program_maps.c interposes
 * those to list the program's own mappings): the tracer's own pages are not the program's memory,
 * and the interposers fall back on these before they know the next definitions. Same contracts
 * as the system's; thread-safe. */
void *tm__sys_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int tm__sys_munmap(void *addr, size_t len);

/* Returns size bytes of zeroed memory for the tracer, never through malloc: blocks up to 256 KiB
 * (rounded up to a power of two, 256 B at least) from recycled regions, larger ones straight from mmap. NULL on failure, errno unchanged.
 * Counted in tm__mapped_bytes. Thread-safe. */
void *tm__map(size_t size);

/* Gives back memory from tm__map(), with the same size. A recycled block of 8 KiB or more returns
 * its pages to the system (madvise) until it is reused. NULL-safe. */
void tm__unmap(void *ptr, size_t size);

/* Maps size bytes straight from the system (never recycled), listed like tm__map()'s mappings and
 * counted in tm__mapped_bytes. NULL on failure, errno unchanged. tm__unmap_pages() gives it back. */
void *tm__map_pages(size_t size);
void tm__unmap_pages(void *ptr, size_t size);

/* Makes the whole pages of [p, p + size) resident and writable now, in one system call
 * (MADV_POPULATE_WRITE; nothing where the kernel lacks it). For a hash table's array, which is
 * touched all over: page by page, the first touch is often a read, which maps the zero page, and
 * the write after it faults a second time. errno unchanged. */
void tm__map_prefault(void *p, size_t size);

/* tm__map() for a table's array, zeroed and prefaulted (tm__map_prefault): a multiple of 2 MiB is
 * mapped on a 2 MiB boundary and advised to use transparent huge pages (one TLB entry per 2 MiB
 * for random probes); a power of two from 256 KiB to 1 MiB is a piece of such a 2 MiB chunk
 * shared with arrays of its size; other sizes go to tm__map(). NULL on failure, errno unchanged.
 * Give it back with tm__unmap_huge() and the same size. Thread-safe and fork-safe
 * (tm__region_lock()). */
void *tm__map_huge(size_t size);
void tm__unmap_huge(void *ptr, size_t size);

/* Bytes of the tracer's mappings (tm__map(), tm__map_pages()) resident in memory now: each mapping
 * asked with mincore(), so that pages mapped but never touched, and recycled blocks whose pages were
 * given back, do not count. Mappings that could not be listed count whole. Not for the hot path:
 * a system call per 16 MiB mapped. Thread-safe; a mapping made or dropped meanwhile may be missed. */
size_t tm__resident_bytes(void);

/* Hold / release the region allocator across fork() (last in the locking order). */
void tm__region_lock(void);
void tm__region_unlock(void);

#endif /* TM_GUARD_H */
