/* guard.c — the reentrancy guard and the tracer's mmap'd memory. */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "engine.h"
#include "guard.h"
#include "lock.h"

__thread int tm__guard_depth __attribute__((tls_model("initial-exec")));

__thread int tm__pause_depth __attribute__((tls_model("initial-exec")));

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
#define MIN_CLASS_SHIFT 8 /* 256 B: 64 shards' first arrays share four pages */
#define MAX_CLASS_SHIFT 18 /* 256 KiB */
#define NCLASSES (MAX_CLASS_SHIFT - MIN_CLASS_SHIFT + 1)

typedef struct free_block {
  struct free_block *next;
} free_block;

static tm__lock region_lock;
static char *region_next, *region_end;   /* the unused tail of the current region */
static free_block *free_lists[NCLASSES]; /* recycled blocks, each class 256 B << index */

/* Every mapping tm__map() made, so that the reachability scan never takes the tracer's tables
 * (which hold the address of every block) for a thread's stack. Protected by maps_lock, taken
 * after region_lock. A mapping that does not fit is simply not listed. */
#define MAX_TRACER_MAPS 4096
static tm__lock maps_lock;
static struct {
  uintptr_t lo, hi;
} tracer_maps[MAX_TRACER_MAPS];
static size_t ntracer_maps;

static void *map_pages(size_t size) {
  int saved = errno;
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  errno = saved;
  if (p == MAP_FAILED)
    return NULL;
  tm__lock_acquire(&maps_lock);
  if (ntracer_maps < MAX_TRACER_MAPS) {
    tracer_maps[ntracer_maps].lo = (uintptr_t)p;
    tracer_maps[ntracer_maps++].hi = (uintptr_t)p + size;
  }
  tm__lock_release(&maps_lock);
  return p;
}

static void unmap_pages(void *ptr, size_t size) {
  int saved = errno;
  munmap(ptr, size);
  errno = saved;
  tm__lock_acquire(&maps_lock);
  for (size_t i = 0; i < ntracer_maps; i++) {
    if (tracer_maps[i].lo == (uintptr_t)ptr) {
      tracer_maps[i] = tracer_maps[--ntracer_maps];
      break;
    }
  }
  tm__lock_release(&maps_lock);
}

bool tm__mapped_by_tracer(uintptr_t lo, uintptr_t hi) {
  bool found = false;
  tm__lock_acquire(&maps_lock);
  for (size_t i = 0; i < ntracer_maps && !found; i++)
    found = tracer_maps[i].lo < hi && lo < tracer_maps[i].hi;
  tm__lock_release(&maps_lock);
  return found;
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
  void *p = NULL;
  bool recycled = false;
  tm__lock_acquire(&region_lock);
  if (free_lists[c] != NULL) {
    free_block *b = free_lists[c];
    free_lists[c] = b->next;
    p = b;
    recycled = true;
  } else {
    if ((size_t)(region_end - region_next) < size) {
      char *region = map_pages(REGION_SIZE); /* the old tail (< 256 KiB) is left unused */
      if (region != NULL) {
        region_next = region;
        region_end = region + REGION_SIZE;
      }
    }
    if ((size_t)(region_end - region_next) >= size) {
      p = region_next;
      region_next += size;
    }
  }
  tm__lock_release(&region_lock);
  if (recycled)
    memset(p, 0, size); /* fresh region memory is already zero: touching it would fault it in */
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
  tm__lock_acquire(&maps_lock);
}

void tm__region_unlock(void) {
  tm__lock_release(&maps_lock);
  tm__lock_release(&region_lock);
}
