/* bump_alloc.c — a malloc of its own, preloaded behind libtracemalloc.so by test_preload: blocks
 * carved from a static arena, never reused, with no malloc_usable_size() and a header that glibc's
 * would misread (a huge chunk size). An allocator in front of glibc's that the tracer must serve
 * without reading glibc's chunk headers. */
#include <errno.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_BYTES (256u << 20)
#define HEADER 16

extern void *__libc_realloc(void *, size_t);

static _Alignas(4096) unsigned char arena[ARENA_BYTES];
static atomic_size_t used;

static int in_arena(const void *p) {
  return (const unsigned char *)p >= arena && (const unsigned char *)p < arena + ARENA_BYTES;
}

static void *carve(size_t alignment, size_t size) {
  if (size > ARENA_BYTES) {
    errno = ENOMEM;
    return NULL;
  }
  size_t need = size + HEADER + alignment, at = atomic_fetch_add(&used, need);
  if (at + need > ARENA_BYTES) {
    errno = ENOMEM;
    return NULL;
  }
  uintptr_t p = ((uintptr_t)&arena[at + HEADER] + alignment - 1) & ~(uintptr_t)(alignment - 1);
  ((size_t *)p)[-2] = size;
  ((size_t *)p)[-1] = (size_t)0x7ffffffffff1; /* what glibc would take for a chunk size */
  return (void *)p;
}

static size_t size_of(const void *p) { return ((const size_t *)p)[-2]; }

void *malloc(size_t size) { return carve(16, size); }

void free(void *p) { (void)p; }

void *calloc(size_t n, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(n, size, &total)) {
    errno = ENOMEM;
    return NULL;
  }
  return carve(16, total); /* the arena is never reused: zero already */
}

void *realloc(void *p, size_t size) {
  if (p != NULL && !in_arena(p))
    return __libc_realloc(p, size); /* a block from before this library was loaded */
  void *q = carve(16, size);
  if (q != NULL && p != NULL)
    memcpy(q, p, size_of(p) < size ? size_of(p) : size);
  return q;
}

void *reallocarray(void *p, size_t n, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(n, size, &total)) {
    errno = ENOMEM;
    return NULL;
  }
  return realloc(p, total);
}

void *memalign(size_t alignment, size_t size) { return carve(alignment < 16 ? 16 : alignment, size); }
void *aligned_alloc(size_t alignment, size_t size) { return memalign(alignment, size); }
void *valloc(size_t size) { return memalign(4096, size); }
void *pvalloc(size_t size) { return memalign(4096, (size + 4095) & ~(size_t)4095); }

int posix_memalign(void **out, size_t alignment, size_t size) {
  void *p = memalign(alignment, size);
  if (p == NULL)
    return ENOMEM;
  *out = p;
  return 0;
}
