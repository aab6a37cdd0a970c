/* program_maps.c — the anonymous memory the program maps for itself, kept as roots of the scan.
 *
 * A pool, an arena or an interpreter's object heap carved out of mmap() memory holds pointers to
 * malloc blocks that nothing else points to: without its pages among the roots, every such block
 * would look lost (Valgrind scans them; LeakSanitizer needs them registered). mmap(), mmap64(),
 * munmap() and mremap() are interposed like malloc: the real call runs first and its result is
 * returned untouched; then the ranges of anonymous mappings the program made are kept in a sorted
 * list of disjoint ranges, cut by munmap(), moved by mremap(), replaced by a MAP_FIXED mapping over
 * them. System V shared memory the program attaches (shmat(), shmdt()) and the heap it takes
 * itself with sbrk() are listed the same way, as Valgrind scans them too. What a paused thread or the tracer's libraries map (guard held) is not listed, nor the
 * tracer's own pages (guard.c maps them with system calls, not through these symbols); nor
 * is what glibc maps inside malloc or pthread_create(), which call the kernel through internal
 * entry points that never reach these symbols. A file mapping is not listed: its bytes are the
 * file's. The scan clips every range to what /proc/self/maps says is readable and skips pages that
 * are not resident (a reservation of gigabytes costs what it holds).
 */
/* mmap() is defined here under its own name; with 64-bit file offsets the headers would rename it
 * mmap64 (the same function on 64-bit targets, which are the ones served: mmap64 is an alias). */
#undef _FILE_OFFSET_BITS
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "engine.h"
#include "guard.h"
#include "lock.h"

_Static_assert(sizeof(off_t) == 8, "mmap64 is an alias of mmap only where off_t has 64 bits");

#define TM_HOOK __attribute__((visibility("default")))
#define INITIAL_RANGES 256 /* 4 KiB */

typedef struct map_range {
  uintptr_t lo, hi;
} map_range;

static tm__lock list_lock;
static map_range *ranges; /* sorted by lo, disjoint; from tm__map() */
static size_t nranges, capacity;
/* Whether this thread holds list_lock: a mapping call made meanwhile (a sanitizer's report, say,
 * from inside the list's own code) is not listed, rather than waiting for itself forever. */
static __thread bool holding __attribute__((tls_model("initial-exec")));

static bool list_lock_take(void) {
  if (holding)
    return false;
  tm__lock_acquire(&list_lock);
  holding = true;
  return true;
}

static void list_lock_drop(void) {
  holding = false;
  tm__lock_release(&list_lock);
}

/* ---- the real calls -------------------------------------------------------------------------- */

static void *(*real_mmap)(void *, size_t, int, int, int, off_t);
static int (*real_munmap)(void *, size_t);
static void *(*real_mremap)(void *, size_t, size_t, int, ...);
static void *(*real_shmat)(int, const void *, int);
static int (*real_shmdt)(const void *);
static void *(*real_sbrk)(intptr_t);
static int (*real_sigaltstack)(const stack_t *, stack_t *);

/* Finds the next definitions once. While dlsym() runs (it could map memory), or where it finds
 * none, the system calls serve. */
static void resolve(void) {
  static __thread int resolving __attribute__((tls_model("initial-exec")));
  static int done;
  if (__atomic_load_n(&done, __ATOMIC_ACQUIRE) || resolving)
    return;
  int saved = errno;
  resolving = 1;
  tm__guard_depth++;
  static const struct {
    const char *name;
    void **next;
  } wanted[] = {
      {"mmap", (void **)&real_mmap},   {"munmap", (void **)&real_munmap},
      {"mremap", (void **)&real_mremap}, {"shmat", (void **)&real_shmat},
      {"shmdt", (void **)&real_shmdt}, {"sbrk", (void **)&real_sbrk},
      {"sigaltstack", (void **)&real_sigaltstack},
  };
  for (size_t i = 0; i < sizeof wanted / sizeof *wanted; i++) {
    void *fn = dlsym(RTLD_NEXT, wanted[i].name);
    if (fn != NULL)
      __atomic_store_n(wanted[i].next, fn, __ATOMIC_RELAXED);
  }
  tm__guard_depth--;
  resolving = 0;
  __atomic_store_n(&done, 1, __ATOMIC_RELEASE);
  errno = saved;
}

static void *next_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
  resolve();
  void *(*fn)(void *, size_t, int, int, int, off_t) = __atomic_load_n(&real_mmap, __ATOMIC_RELAXED);
  if (fn != NULL)
    return fn(addr, len, prot, flags, fd, off);
  return tm__sys_mmap(addr, len, prot, flags, fd, off);
}

static int next_munmap(void *addr, size_t len) {
  resolve();
  int (*fn)(void *, size_t) = __atomic_load_n(&real_munmap, __ATOMIC_RELAXED);
  if (fn != NULL)
    return fn(addr, len);
  return tm__sys_munmap(addr, len);
}

/* ---- the list -------------------------------------------------------------------------------- */

/* Whether this thread's calls are the program's own: not the tracer's, not a thread's in
 * tm_thread_pause() (tm_thread_pause_scanned() keeps them the program's). */
static bool program_calling(void) { return !tm__guard_held() && !tm__pause_hides(); }

/* Room for `more` ranges. Lock held. Returns false (the list unchanged) when none can be had. */
static bool list_reserve(size_t more) {
  if (nranges + more <= capacity)
    return true;
  size_t cap = capacity ? capacity * 2 : INITIAL_RANGES;
  while (cap < nranges + more)
    cap *= 2;
  tm__guard_depth++;
  map_range *fresh = tm__map(cap * sizeof *fresh);
  if (fresh != NULL) {
    if (nranges != 0)
      memcpy(fresh, ranges, nranges * sizeof *fresh);
    tm__unmap(ranges, capacity * sizeof *ranges);
  }
  tm__guard_depth--;
  if (fresh == NULL)
    return false;
  ranges = fresh;
  capacity = cap;
  return true;
}

/* The index of the first range that ends after addr. Lock held. */
static size_t list_find(uintptr_t addr) {
  size_t lo = 0, hi = nranges;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (ranges[mid].hi <= addr)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

/* Takes [lo, hi) out of the list, splitting a range that spans it. Lock held. */
static void list_cut(uintptr_t lo, uintptr_t hi) {
  if (nranges == 0)
    return;
  size_t i = list_find(lo);
  if (i < nranges && ranges[i].lo < lo && ranges[i].hi > hi) { /* inside one range: split it */
    if (!list_reserve(1)) {
      ranges[i].hi = lo; /* cannot split: keep the lower part only */
      return;
    }
    memmove(&ranges[i + 2], &ranges[i + 1], (nranges - i - 1) * sizeof *ranges);
    ranges[i + 1] = (map_range){hi, ranges[i].hi};
    ranges[i].hi = lo;
    nranges++;
    return;
  }
  if (i < nranges && ranges[i].lo < lo) { /* keep its part below lo */
    ranges[i].hi = lo;
    i++;
  }
  size_t j = i;
  while (j < nranges && ranges[j].hi <= hi)
    j++;
  if (j < nranges && ranges[j].lo < hi)
    ranges[j].lo = hi; /* keep its part above hi */
  memmove(&ranges[i], &ranges[j], (nranges - j) * sizeof *ranges);
  nranges -= j - i;
}

/* Adds [lo, hi), which no range overlaps, joined to the ranges it touches: the kernel places a new
 * mapping next to the last one, so a program that maps page after page keeps one range, not a
 * list that every insert shifts. Lock held. */
static void list_add(uintptr_t lo, uintptr_t hi) {
  if (lo >= hi)
    return;
  size_t i = list_find(lo); /* the first range above lo */
  bool below = i > 0 && ranges[i - 1].hi == lo, above = i < nranges && ranges[i].lo == hi;
  if (below && above) {
    ranges[i - 1].hi = ranges[i].hi;
    memmove(&ranges[i], &ranges[i + 1], (nranges - i - 1) * sizeof *ranges);
    nranges--;
  } else if (below) {
    ranges[i - 1].hi = hi;
  } else if (above) {
    ranges[i].lo = lo;
  } else if (list_reserve(1)) {
    memmove(&ranges[i + 1], &ranges[i], (nranges - i) * sizeof *ranges);
    ranges[i] = (map_range){lo, hi};
    nranges++;
  }
}

static uintptr_t page_round(size_t len) {
  uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  return ((uintptr_t)len + page - 1) & ~(page - 1);
}

/* After a mapping at p of len bytes: listed when anonymous, and whatever it replaced is not. */
static void note_mapped(void *p, size_t len, int flags) {
  if (len == 0)
    return;
  uintptr_t lo = (uintptr_t)p, hi = lo + page_round(len);
  if (!list_lock_take())
    return;
  list_cut(lo, hi);
  if (flags & MAP_ANONYMOUS)
    list_add(lo, hi);
  list_lock_drop();
}

static void note_unmapped(void *p, size_t len) {
  uintptr_t lo = (uintptr_t)p, hi = lo + page_round(len);
  if (!list_lock_take())
    return;
  list_cut(lo, hi);
  list_lock_drop();
}

/* ---- the interposed calls -------------------------------------------------------------------- */

TM_HOOK void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
  void *p = next_mmap(addr, len, prot, flags, fd, off);
  if (p != MAP_FAILED && program_calling()) {
    int saved = errno;
    note_mapped(p, len, flags);
    errno = saved;
  }
  return p;
}

TM_HOOK void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
    __attribute__((alias("mmap")));

TM_HOOK int munmap(void *addr, size_t len) {
  int rc = next_munmap(addr, len);
  /* Whoever unmaps: a range the tracer's own call took back is no longer the program's either. */
  if (rc == 0) {
    int saved = errno;
    note_unmapped(addr, len);
    errno = saved;
  }
  return rc;
}

TM_HOOK void *mremap(void *old, size_t old_len, size_t new_len, int flags, ...) {
  void *want = NULL;
  if (flags & MREMAP_FIXED) {
    va_list ap;
    va_start(ap, flags);
    want = va_arg(ap, void *);
    va_end(ap);
  }
  resolve();
  void *(*fn)(void *, size_t, size_t, int, ...) = __atomic_load_n(&real_mremap, __ATOMIC_RELAXED);
  void *p = fn != NULL ? fn(old, old_len, new_len, flags, want)
                       : (void *)syscall(SYS_mremap, old, old_len, new_len, flags, want);
  if (p == MAP_FAILED)
    return p;
  int saved = errno;
  uintptr_t lo = (uintptr_t)old, hi = lo + page_round(old_len);
  if (!list_lock_take()) {
    errno = saved;
    return p;
  }
  size_t i = list_find(lo);
  /* Whether the old range is the program's anonymous memory. */
  bool listed = i < nranges && ranges[i].lo < hi;
  if (listed) {
#ifdef MREMAP_DONTUNMAP
    if (!(flags & MREMAP_DONTUNMAP))
#endif
      list_cut(lo, hi);
    list_cut((uintptr_t)p, (uintptr_t)p + page_round(new_len));
    list_add((uintptr_t)p, (uintptr_t)p + page_round(new_len));
  } else {
    list_cut((uintptr_t)p, (uintptr_t)p + page_round(new_len)); /* a file mapping moved there */
  }
  list_lock_drop();
  errno = saved;
  return p;
}

/* System V segments attached by the program, so that shmdt() (given only the address) cuts what
 * shmat() listed. Past SHM_SEGMENTS at once, a segment stays listed after shmdt(): the scan
 * clips every range to what /proc/self/maps says is readable. Under list_lock. */
#define SHM_SEGMENTS 64
static map_range shm_segments[SHM_SEGMENTS];

TM_HOOK void *shmat(int shmid, const void *addr, int flags) {
  resolve();
  void *(*fn)(int, const void *, int) = __atomic_load_n(&real_shmat, __ATOMIC_RELAXED);
  void *p = fn != NULL ? fn(shmid, addr, flags) : (void *)syscall(SYS_shmat, shmid, addr, flags);
  if (p == (void *)-1 || !program_calling())
    return p;
  int saved = errno;
  struct shmid_ds ds;
  if (shmctl(shmid, IPC_STAT, &ds) == 0 && ds.shm_segsz != 0 && list_lock_take()) {
    uintptr_t lo = (uintptr_t)p, hi = lo + page_round(ds.shm_segsz);
    list_cut(lo, hi);
    list_add(lo, hi);
    for (size_t i = 0; i < SHM_SEGMENTS; i++) {
      if (shm_segments[i].lo == 0) {
        shm_segments[i] = (map_range){lo, hi};
        break;
      }
    }
    list_lock_drop();
  }
  errno = saved;
  return p;
}

TM_HOOK int shmdt(const void *addr) {
  resolve();
  int (*fn)(const void *) = __atomic_load_n(&real_shmdt, __ATOMIC_RELAXED);
  int rc = fn != NULL ? fn(addr) : (int)syscall(SYS_shmdt, addr);
  if (rc != 0 || addr == NULL)
    return rc;
  int saved = errno;
  if (list_lock_take()) {
    for (size_t i = 0; i < SHM_SEGMENTS; i++) {
      if (shm_segments[i].lo == (uintptr_t)addr) {
        list_cut(shm_segments[i].lo, shm_segments[i].hi);
        shm_segments[i] = (map_range){0, 0};
        break;
      }
    }
    list_lock_drop();
  }
  errno = saved;
  return rc;
}

/* glibc's malloc grows its heap through an internal entry point, never this symbol: what comes
 * here is the program's own (a pool or an old allocator on top of sbrk). Exact bounds: the heap
 * malloc grows next to it is not a root. */
TM_HOOK void *sbrk(intptr_t increment) {
  resolve();
  void *(*fn)(intptr_t) = __atomic_load_n(&real_sbrk, __ATOMIC_RELAXED);
  if (fn == NULL) {
    errno = ENOMEM;
    return (void *)-1;
  }
  void *p = fn(increment);
  if (p == (void *)-1 || increment == 0 || !program_calling())
    return p;
  int saved = errno;
  if (list_lock_take()) {
    uintptr_t at = (uintptr_t)p;
    if (increment > 0) {
      list_cut(at, at + (uintptr_t)increment);
      list_add(at, at + (uintptr_t)increment);
    } else {
      list_cut(at - (uintptr_t)-increment, at);
    }
    list_lock_drop();
  }
  errno = saved;
  return p;
}

/* The alternate signal stacks the program installed (sigaltstack()), the latest ALTSTACKS, kept
 * after they are disabled: a handler's dead frames stay in that memory, a static array or a
 * block, and the scan must not take the pointers they hold for the program's (a leak made in a
 * handler that ran on a static stack passed). Under list_lock. */
#define ALTSTACKS 8
static map_range altstacks[ALTSTACKS];
static size_t altstacks_next;

TM_HOOK int sigaltstack(const stack_t *ss, stack_t *old) {
  resolve();
  int (*fn)(const stack_t *, stack_t *) = __atomic_load_n(&real_sigaltstack, __ATOMIC_RELAXED);
  int rc = fn != NULL ? fn(ss, old) : (int)syscall(SYS_sigaltstack, ss, old);
  if (rc != 0 || ss == NULL || (ss->ss_flags & SS_DISABLE) || ss->ss_sp == NULL ||
      ss->ss_size == 0)
    return rc;
  int saved = errno;
  if (list_lock_take()) {
    map_range r = {(uintptr_t)ss->ss_sp, (uintptr_t)ss->ss_sp + ss->ss_size};
    bool known = false;
    for (size_t i = 0; i < ALTSTACKS && !known; i++)
      known = altstacks[i].lo == r.lo && altstacks[i].hi == r.hi;
    if (!known)
      altstacks[altstacks_next++ % ALTSTACKS] = r;
    list_lock_drop();
  }
  errno = saved;
  return rc;
}

size_t tm__altstacks_copy(uintptr_t (*out)[2], size_t max) {
  size_t n = 0;
  if (!list_lock_take())
    return 0;
  for (size_t i = 0; i < ALTSTACKS && n < max; i++) {
    if (altstacks[i].hi == 0)
      continue;
    out[n][0] = altstacks[i].lo;
    out[n][1] = altstacks[i].hi;
    n++;
  }
  list_lock_drop();
  return n;
}

/* ---- what the scan reads --------------------------------------------------------------------- */

size_t tm__program_maps_copy(uintptr_t (*out)[2], size_t max) {
  if (!list_lock_take())
    return 0;
  size_t n = nranges;
  for (size_t i = 0; i < n && i < max; i++) {
    out[i][0] = ranges[i].lo;
    out[i][1] = ranges[i].hi;
  }
  list_lock_drop();
  return n;
}

void tm__program_maps_lock(void) { tm__lock_acquire(&list_lock); }

void tm__program_maps_unlock(void) { tm__lock_release(&list_lock); }
