/* guard.c — the reentrancy guard and the tracer's mmap'd memory. */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "engine.h"
#include "guard.h"
#include "lock.h"

void *tm__sys_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
  return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}

int tm__sys_munmap(void *addr, size_t len) { return (int)syscall(SYS_munmap, addr, len); }

__thread int tm__guard_depth __attribute__((tls_model("initial-exec")));

__thread int tm__pause_depth __attribute__((tls_model("initial-exec")));
__thread uint64_t tm__pause_scanned_bits __attribute__((tls_model("initial-exec")));

/* Bytes currently mapped by tm__map(). */
atomic_size_t tm__mapped_bytes;

void tm__guard_enter(void) { tm__guard_depth++; }

void tm__guard_leave(void) { tm__guard_depth--; }

/* Small blocks (the tables' first arrays, intern arenas, directory chunks) come from big regions
 * carved with a bump pointer and are recycled through one free list per power-of-two class, so a
 * forked Check child that starts tracing, or a tm_clear_traces() between tests, costs no system
 * call per shard (measured: 37 mmap + 37 munmap calls a test before this), and the first arrays of
 * all shards share a few pages (each fresh page costs a forked child a page fault). Protected by
 * region_lock, taken last in the locking order: callers hold a table or intern lock. */
#define REGION_SIZE ((size_t)4 << 20)
#define HUGE_PAGE ((size_t)2 << 20)
#define MIN_CLASS_SHIFT 8 /* 256 B: 64 shards' first arrays share four pages */
#define MAX_CLASS_SHIFT 18 /* 256 KiB */
#define NCLASSES (MAX_CLASS_SHIFT - MIN_CLASS_SHIFT + 1)

typedef struct free_block {
  struct free_block *next;
} free_block;

static tm__lock region_lock;
static tm__lock chunks_lock; /* huge-page chunks of table arrays, below */
static char *region_next, *region_end;   /* the unused tail of the current region */
static free_block *free_lists[NCLASSES]; /* recycled blocks, each class 256 B << index */
/* Recycled blocks of DISCARD_MIN bytes or more, their pages given back: kept here rather than
 * linked through their first bytes, which would keep a page of each resident. */
#define MAX_PARKED 512
static void *parked[NCLASSES][MAX_PARKED];
static size_t nparked[NCLASSES];

/* Every mapping tm__map() made, so that the reachability scan never takes the tracer's tables
 * (which hold the address of every block) for a thread's stack. Protected by maps_lock, taken
 * after region_lock. A mapping that does not fit is simply not listed. */
#define MAX_TRACER_MAPS 4096
static tm__lock maps_lock;
static struct {
  uintptr_t lo, hi;
} tracer_maps[MAX_TRACER_MAPS];
static size_t ntracer_maps;
/* Bytes of mappings that did not fit in tracer_maps: counted whole by tm__resident_bytes(). */
static atomic_size_t unlisted_bytes;

/* Class blocks of at least this size give their pages back when recycled (see tm__unmap()). */
#define DISCARD_MIN ((size_t)4096)

static size_t page_size(void) {
  static atomic_size_t page;
  size_t p = atomic_load_explicit(&page, memory_order_relaxed);
  if (p == 0) {
    long v = sysconf(_SC_PAGESIZE);
    p = v > 0 ? (size_t)v : 4096;
    atomic_store_explicit(&page, p, memory_order_relaxed);
  }
  return p;
}

/* The whole pages of [lo, hi): *first and *end (first == end when there is none). */
static void whole_pages(uintptr_t lo, uintptr_t hi, uintptr_t *first, uintptr_t *end) {
  size_t page = page_size();
  *first = (lo + page - 1) & ~(uintptr_t)(page - 1);
  *end = hi & ~(uintptr_t)(page - 1);
  if (*end < *first)
    *end = *first;
}

/* Adds [p, p + size) to the tracer's mappings (or to the unlisted bytes when the list is full). */
static void list_map(void *p, size_t size) {
  bool listed = false;
  tm__lock_acquire(&maps_lock);
  if (ntracer_maps < MAX_TRACER_MAPS) {
    tracer_maps[ntracer_maps].lo = (uintptr_t)p;
    tracer_maps[ntracer_maps++].hi = (uintptr_t)p + size;
    listed = true;
  }
  tm__lock_release(&maps_lock);
  if (!listed)
    atomic_fetch_add_explicit(&unlisted_bytes, size, memory_order_relaxed);
}

static void *map_pages(size_t size) {
  int saved = errno;
  void *p = tm__sys_mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  errno = saved;
  if (p == MAP_FAILED)
    return NULL;
  list_map(p, size);
  return p;
}

static void unmap_pages(void *ptr, size_t size) {
  int saved = errno;
  tm__sys_munmap(ptr, size);
  errno = saved;
  bool listed = false;
  tm__lock_acquire(&maps_lock);
  for (size_t i = 0; i < ntracer_maps; i++) {
    if (tracer_maps[i].lo == (uintptr_t)ptr) {
      tracer_maps[i] = tracer_maps[--ntracer_maps];
      listed = true;
      break;
    }
  }
  tm__lock_release(&maps_lock);
  if (!listed)
    atomic_fetch_sub_explicit(&unlisted_bytes, size, memory_order_relaxed);
}

size_t tm__resident_bytes(void) {
  int saved = errno;
  size_t page = page_size();
  unsigned char vec[4096]; /* 16 MiB of 4 KiB pages per mincore() call */
  size_t total = atomic_load_explicit(&unlisted_bytes, memory_order_relaxed);
  for (size_t i = 0;; i++) {
    uintptr_t lo = 0, hi = 0;
    tm__lock_acquire(&maps_lock);
    bool more = i < ntracer_maps;
    if (more) {
      lo = tracer_maps[i].lo;
      hi = tracer_maps[i].hi;
    }
    tm__lock_release(&maps_lock);
    if (!more)
      break;
    while (lo < hi) {
      size_t n = (hi - lo + page - 1) / page;
      if (n > sizeof vec)
        n = sizeof vec;
      if (mincore((void *)lo, n * page, vec) != 0)
        break; /* unmapped meanwhile */
      for (size_t k = 0; k < n; k++)
        total += (vec[k] & 1) ? page : 0;
      lo += n * page;
    }
  }
  errno = saved;
  return total;
}

uintptr_t tm__tracer_map_start(uintptr_t lo, uintptr_t hi) {
  uintptr_t first = hi;
  tm__lock_acquire(&maps_lock);
  for (size_t i = 0; i < ntracer_maps; i++)
    if (tracer_maps[i].lo < first && lo < tracer_maps[i].hi)
      first = tracer_maps[i].lo > lo ? tracer_maps[i].lo : lo;
  tm__lock_release(&maps_lock);
  return first;
}

bool tm__mapped_by_tracer(uintptr_t lo, uintptr_t hi) {
  return lo < hi && tm__tracer_map_start(lo, hi) < hi;
}

/* Size class of a small request, or -1 for one served by mmap directly. */
static int size_class(size_t size) {
  for (int c = 0; c < NCLASSES; c++)
    if (size <= (size_t)1 << (MIN_CLASS_SHIFT + c))
      return c;
  return -1;
}

static void *class_alloc(int c) {
  size_t size = (size_t)1 << (MIN_CLASS_SHIFT + c);
  size_t page = page_size();
  void *p = NULL;
  enum { FRESH, PARKED, LINKED } from = FRESH;
  tm__lock_acquire(&region_lock);
  if (nparked[c] != 0) {
    p = parked[c][--nparked[c]];
    from = PARKED;
  } else if (free_lists[c] != NULL) {
    free_block *b = free_lists[c];
    free_lists[c] = b->next;
    p = b;
    from = LINKED;
  } else {
    /* Blocks of a page or more start on a page, so that their pages can be given back whole. */
    size_t align = size < page ? 1 : page;
    char *at = (char *)(((uintptr_t)region_next + align - 1) & ~(uintptr_t)(align - 1));
    if (region_next == NULL || at > region_end || (size_t)(region_end - at) < size) {
      char *region = map_pages(REGION_SIZE); /* the old tail (< 256 KiB) is left unused */
      if (region != NULL) {
        region_next = region;
        region_end = region + REGION_SIZE;
      }
      at = region_next;
    }
    if (at != NULL && at <= region_end && (size_t)(region_end - at) >= size) {
      p = at;
      region_next = at + size;
    }
  }
  tm__lock_release(&region_lock);
  if (from != FRESH) {
    /* Fresh region memory is already zero: touching it would fault it in. A recycled block's
     * discarded pages read as zero again (tm__unmap()); the rest was written and is cleared. */
    uintptr_t first = (uintptr_t)p, end = (uintptr_t)p;
    if (size >= DISCARD_MIN)
      whole_pages((uintptr_t)p + (from == LINKED ? sizeof(free_block) : 0), (uintptr_t)p + size,
                  &first, &end);
    memset(p, 0, first - (uintptr_t)p);
    memset((void *)end, 0, (uintptr_t)p + size - end);
  }
  return p;
}

void *tm__map(size_t size) {
  int c = size_class(size);
  void *p = c >= 0 ? class_alloc(c) : map_pages(size);
  if (p != NULL)
    atomic_fetch_add_explicit(&tm__mapped_bytes, c >= 0 ? (size_t)1 << (MIN_CLASS_SHIFT + c) : size,
                              memory_order_relaxed);
  return p;
}

void tm__unmap(void *ptr, size_t size) {
  if (ptr == NULL)
    return;
  int c = size_class(size);
  if (c < 0) {
    unmap_pages(ptr, size);
    atomic_fetch_sub_explicit(&tm__mapped_bytes, size, memory_order_relaxed);
    return;
  }
  size_t bytes = (size_t)1 << (MIN_CLASS_SHIFT + c);
  if (bytes >= DISCARD_MIN) {
    /* A retired table array must not stay resident until it is reused: its pages go back to the
     * system, all of them when the block can be parked (its link kept apart), all but the page
     * holding the free list's link otherwise. Discarded before it is published: once parked or
     * linked, another thread may take it and write to it. */
    int saved = errno;
    uintptr_t first, end;
    whole_pages((uintptr_t)ptr, (uintptr_t)ptr + bytes, &first, &end);
    if (end > first)
      madvise((void *)first, end - first, MADV_DONTNEED);
    errno = saved;
    bool kept = false;
    tm__lock_acquire(&region_lock);
    if (nparked[c] < MAX_PARKED) {
      parked[c][nparked[c]++] = ptr;
      kept = true;
    }
    tm__lock_release(&region_lock);
    if (kept) {
      atomic_fetch_sub_explicit(&tm__mapped_bytes, bytes, memory_order_relaxed);
      return;
    }
  }
  free_block *b = ptr;
  tm__lock_acquire(&region_lock);
  b->next = free_lists[c];
  free_lists[c] = b;
  tm__lock_release(&region_lock);
  atomic_fetch_sub_explicit(&tm__mapped_bytes, (size_t)1 << (MIN_CLASS_SHIFT + c),
                            memory_order_relaxed);
}

void tm__region_lock(void) {
  tm__lock_acquire(&region_lock);
  tm__lock_acquire(&chunks_lock);
  tm__lock_acquire(&maps_lock);
}

void tm__region_unlock(void) {
  tm__lock_release(&maps_lock);
  tm__lock_release(&chunks_lock);
  tm__lock_release(&region_lock);
}

void *tm__map_pages(size_t size) {
  void *p = map_pages(size);
  if (p != NULL)
    atomic_fetch_add_explicit(&tm__mapped_bytes, size, memory_order_relaxed);
  return p;
}

void tm__unmap_pages(void *ptr, size_t size) {
  if (ptr == NULL)
    return;
  unmap_pages(ptr, size);
  atomic_fetch_sub_explicit(&tm__mapped_bytes, size, memory_order_relaxed);
}

void tm__map_prefault(void *p, size_t size) {
#ifdef MADV_POPULATE_WRITE
  uintptr_t first, end;
  whole_pages((uintptr_t)p, (uintptr_t)p + size, &first, &end);
  if (end > first) {
    int saved = errno;
    madvise((void *)first, end - first, MADV_POPULATE_WRITE); /* EINVAL before Linux 5.14 */
    errno = saved;
  }
#else
  (void)p, (void)size;
#endif
}

/* Maps size bytes (a multiple of 2 MiB) on a 2 MiB boundary, advised for transparent huge pages,
 * listed and prefaulted. NULL on failure, errno unchanged. Not counted in tm__mapped_bytes. */
static char *map_aligned_huge(size_t size) {
  int saved = errno;
  char *raw = tm__sys_mmap(NULL, size + HUGE_PAGE, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) {
    errno = saved;
    return NULL;
  }
  char *p = (char *)(((uintptr_t)raw + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
  if (p > raw)
    tm__sys_munmap(raw, (size_t)(p - raw));
  if (p + size < raw + size + HUGE_PAGE)
    tm__sys_munmap(p + size, (size_t)(raw + size + HUGE_PAGE - (p + size)));
#ifdef MADV_HUGEPAGE
  madvise(p, size, MADV_HUGEPAGE);
#endif
  errno = saved;
  tm__map_prefault(p, size);
  list_map(p, size);
  return p;
}

/* Table arrays of 256 KiB to 1 MiB are pieces of 2 MiB huge-page chunks, one size per chunk.
 * Their pages would otherwise come 4 KiB at a time, and on a virtual machine that shadows the
 * guest's page tables the first touch of each fresh 4 KiB page costs 5-30 us (a huge page: under
 * 1 us per 4 KiB): growing 64 shards to a million live blocks touched some 16,000 fresh pages.
 * A chunk is given back whole once its last piece is; a piece freed before that stays resident
 * (counted: it is in a listed mapping) and is zeroed when reused. Protected by chunks_lock, taken
 * after a table's lock and before maps_lock. */
/* From 256 KiB (a table of some 260,000 blocks and more): a chunk is resident whole once a piece
 * is used, and at 64 KiB, when only a few shards had grown that far, that added up to 2 MiB to a
 * table of 100,000 blocks (over 64 B a block). */
#define PIECE_MIN_SHIFT 18 /* 256 KiB: below, arrays stay in the regions */
#define PIECE_MAX_SHIFT 20 /* 1 MiB: from 2 MiB on, an array is a chunk of its own */
#define MAX_CHUNKS 512
static struct {
  uintptr_t base;  /* 0: unused descriptor */
  uint32_t used;   /* bit i: piece i handed out */
  uint32_t zeroed; /* bit i: piece i still zero (never handed out since the chunk was mapped) */
  int shift;       /* the pieces' size, 1 << shift */
} chunks[MAX_CHUNKS];

static bool is_piece_size(size_t size) {
  return size >= (size_t)1 << PIECE_MIN_SHIFT && size <= (size_t)1 << PIECE_MAX_SHIFT &&
         (size & (size - 1)) == 0;
}

static int size_shift(size_t size) { return __builtin_ctzll((unsigned long long)size); }

/* A zeroed piece of size bytes, or NULL when no chunk could be mapped or described. */
static void *piece_alloc(size_t size) {
  int shift = size_shift(size);
  uint32_t all = (uint32_t)((UINT64_C(1) << (HUGE_PAGE >> shift)) - 1);
  void *p = NULL;
  bool was_zero = false;
  tm__lock_acquire(&chunks_lock);
  int spare = -1;
  for (int i = 0; i < MAX_CHUNKS && p == NULL; i++) {
    if (chunks[i].base == 0) {
      if (spare < 0)
        spare = i;
    } else if (chunks[i].shift == shift && chunks[i].used != all) {
      int k = __builtin_ctz(~chunks[i].used & all);
      chunks[i].used |= UINT32_C(1) << k;
      was_zero = (chunks[i].zeroed >> k) & 1;
      chunks[i].zeroed &= ~(UINT32_C(1) << k);
      p = (void *)(chunks[i].base + ((uintptr_t)k << shift));
    }
  }
  if (p == NULL && spare >= 0) {
    char *base = map_aligned_huge(HUGE_PAGE);
    if (base != NULL) {
      chunks[spare].base = (uintptr_t)base;
      chunks[spare].shift = shift;
      chunks[spare].used = 1;
      chunks[spare].zeroed = all & ~UINT32_C(1);
      p = base;
      was_zero = true;
    }
  }
  tm__lock_release(&chunks_lock);
  if (p != NULL && !was_zero)
    memset(p, 0, size); /* resident already: cheaper than giving its pages back and faulting */
  return p;
}

/* Gives a piece back; false when ptr is not one (nothing done). */
static bool piece_free(void *ptr, size_t size) {
  uintptr_t base = (uintptr_t)ptr & ~(uintptr_t)(HUGE_PAGE - 1);
  int shift = size_shift(size), k = (int)(((uintptr_t)ptr - base) >> shift);
  uintptr_t drop = 0;
  bool found = false;
  tm__lock_acquire(&chunks_lock);
  for (int i = 0; i < MAX_CHUNKS; i++) {
    if (chunks[i].base == base && chunks[i].shift == shift) {
      found = true;
      chunks[i].used &= ~(UINT32_C(1) << k);
      if (chunks[i].used == 0) {
        drop = base;
        chunks[i].base = 0;
      }
      break;
    }
  }
  tm__lock_release(&chunks_lock);
  if (drop != 0)
    unmap_pages((void *)drop, HUGE_PAGE);
  return found;
}

void *tm__map_huge(size_t size) {
  if (is_piece_size(size)) {
    void *p = piece_alloc(size);
    if (p != NULL) {
      atomic_fetch_add_explicit(&tm__mapped_bytes, size, memory_order_relaxed);
      return p;
    }
  }
  if (size < HUGE_PAGE || size % HUGE_PAGE != 0) {
    void *p = tm__map(size);
    if (p != NULL)
      tm__map_prefault(p, size);
    return p;
  }
  char *p = map_aligned_huge(size);
  if (p != NULL)
    atomic_fetch_add_explicit(&tm__mapped_bytes, size, memory_order_relaxed);
  return p;
}

void tm__unmap_huge(void *ptr, size_t size) {
  if (ptr == NULL)
    return;
  if (is_piece_size(size) && piece_free(ptr, size))
    atomic_fetch_sub_explicit(&tm__mapped_bytes, size, memory_order_relaxed);
  else if (size < HUGE_PAGE || size % HUGE_PAGE != 0)
    tm__unmap(ptr, size);
  else
    tm__unmap_pages(ptr, size);
}
