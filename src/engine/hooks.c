/* hooks.c — the malloc family, interposed.
 *
 * Each hook calls the real function found with dlsym(RTLD_NEXT) and, while tracing, records or
 * forgets the block. Before the real functions are known (dlsym itself may call calloc), glibc's
 * __libc_* entry points serve: their blocks are ordinary glibc blocks, so the real free() later
 * takes them back with no special case. When not tracing, a hook costs one relaxed load and one
 * branch on top of the real call.
 *
 * Order matters for correctness under threads (docs/engine.md#hooks): a block is untraced *before*
 * the real free, so a concurrent malloc that gets the same address cannot have its new trace
 * removed; realloc takes the old trace out first and puts it back if the real realloc fails.
 */
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "engine.h"
#include "guard.h"
#include "hooks.h"
#include "runtime.h"

#define TM_HOOK __attribute__((visibility("default")))
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
extern void *__libc_memalign(size_t, size_t);
extern void *__libc_valloc(size_t);
extern void *__libc_pvalloc(size_t);

static void *fallback_reallocarray(void *ptr, size_t nmemb, size_t size);
static int fallback_posix_memalign(void **memptr, size_t alignment, size_t size);

/* The real functions; glibc's own until dlsym() has answered. Written once per symbol. */
static struct {
  void *(*malloc)(size_t);
  void *(*calloc)(size_t, size_t);
  void *(*realloc)(void *, size_t);
  void *(*reallocarray)(void *, size_t, size_t);
  void (*free)(void *);
  int (*posix_memalign)(void **, size_t, size_t);
  void *(*aligned_alloc)(size_t, size_t);
  void *(*memalign)(size_t, size_t);
  void *(*valloc)(size_t);
  void *(*pvalloc)(size_t);
  size_t (*usable_size)(void *); /* the allocator's malloc_usable_size(), or NULL: it has none */
} real = {
    __libc_malloc,  __libc_calloc,           __libc_realloc,  fallback_reallocarray,
    __libc_free,    fallback_posix_memalign, __libc_memalign, __libc_memalign,
    __libc_valloc,  __libc_pvalloc,          malloc_usable_size,
};

static void *fallback_reallocarray(void *ptr, size_t nmemb, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(nmemb, size, &total)) {
    errno = ENOMEM;
    return NULL;
  }
  return __libc_realloc(ptr, total);
}

static int fallback_posix_memalign(void **memptr, size_t alignment, size_t size) {
  if (alignment == 0 || alignment % sizeof(void *) != 0 || (alignment & (alignment - 1)) != 0)
    return EINVAL;
  int saved = errno;
  void *p = __libc_memalign(alignment, size);
  errno = saved;
  if (p == NULL)
    return ENOMEM;
  *memptr = p;
  return 0;
}

#define RESOLVE(name)                                                                              \
  do {                                                                                             \
    void *sym = dlsym(RTLD_NEXT, #name);                                                           \
    if (sym != NULL)                                                                               \
      __atomic_store_n((void **)&real.name, sym, __ATOMIC_RELAXED);                                \
  } while (0)

void tm__hooks_resolve(void) {
  static atomic_int done;
  static __thread int resolving __attribute__((tls_model("initial-exec")));
  if (atomic_load_explicit(&done, memory_order_acquire) || resolving)
    return;
  int saved = errno;
  resolving = 1;
  tm__guard_depth++;
  RESOLVE(malloc);
  RESOLVE(calloc);
  RESOLVE(realloc);
  RESOLVE(reallocarray);
  RESOLVE(posix_memalign);
  RESOLVE(aligned_alloc);
  RESOLVE(memalign);
  RESOLVE(valloc);
  RESOLVE(pvalloc);
  RESOLVE(free); /* last: blocks from the fallbacks are glibc's either way */
  /* Another allocator in front of glibc's: its own malloc_usable_size(), or none (glibc's would
   * read a header that is not there). */
  Dl_info of_free, of_size;
  void *size_sym = dlsym(RTLD_NEXT, "malloc_usable_size");
  if (real.free != __libc_free &&
      (size_sym == NULL || dladdr((void *)real.free, &of_free) == 0 ||
       dladdr(size_sym, &of_size) == 0 || of_free.dli_fbase != of_size.dli_fbase))
    size_sym = NULL;
  __atomic_store_n((void **)&real.usable_size, size_sym, __ATOMIC_RELAXED);
  tm__guard_depth--;
  resolving = 0;
  atomic_store_explicit(&done, 1, memory_order_release);
  errno = saved;
}

/* Whether a hook must record: while tracing, or while the heap registry is on (runtime.h). */
static inline bool tracing(void) {
  return UNLIKELY(atomic_load_explicit(&tm__hooks_active, memory_order_relaxed) != 0);
}

/* 0: not probed yet; 1: the hooks serve malloc; 2: another tool does. Inherited by forks. */
static atomic_int malloc_owned;

bool tm__hooks_own_malloc(void) {
  int known = atomic_load(&malloc_owned);
  if (known != 0)
    return known == 1;
  /* Through the dynamic symbols, as the program calls them: under valgrind or a sanitizer they
   * are the tool's, and the probe never reaches tm__record_internal(). */
  void *(*volatile dyn_malloc)(size_t) = malloc;
  void (*volatile dyn_free)(void *) = free;
  int saved = errno;
  tm__guard_depth++;
  void *probe = dyn_malloc(24);
  bool seen = probe != NULL && tm__internal_contains(probe);
  dyn_free(probe);
  tm__guard_depth--;
  errno = saved;
  if (probe == NULL)
    return true; /* out of memory: cannot tell, ask again next time */
  atomic_store(&malloc_owned, seen ? 1 : 2);
  return seen;
}

const char *tm__hooks_malloc_owner(void) {
  static const struct {
    const char *symbol, *name;
  } sanitizers[] = {
      {"__asan_init", "AddressSanitizer"}, {"__tsan_init", "ThreadSanitizer"},
      {"__msan_init", "MemorySanitizer"},  {"__hwasan_init", "HWAddressSanitizer"},
      {"__lsan_init", "LeakSanitizer"},
  };
  const char *preload = secure_getenv("LD_PRELOAD");
  if (preload != NULL && strstr(preload, "vgpreload") != NULL)
    return "valgrind";
  tm__guard_depth++;
  const char *name = NULL;
  for (size_t i = 0; name == NULL && i < sizeof sanitizers / sizeof *sanitizers; i++)
    if (dlsym(RTLD_DEFAULT, sanitizers[i].symbol) != NULL)
      name = sanitizers[i].name;
  tm__guard_depth--;
  if (name == NULL && preload != NULL && strstr(preload, "heaptrack") != NULL)
    name = "heaptrack";
  return name != NULL ? name : "another malloc interposer";
}

/* Spans of at least this many bytes get their whole pages zeroed by the kernel (block_zero()).
 * Below it, memset: a block the program then writes in full would fault every page back in after
 * MADV_DONTNEED (measured: 39 us instead of 1.7 us for a 64 KiB block, which glibc keeps mapped).
 * Above it, glibc has mostly given such pages back already (it trims the top of its heap past
 * 128 KiB), so memset would fault in all of a block the program may write little of (195 us
 * instead of 13 us for 512 KiB of which 4 KiB are written), and MADV_DONTNEED costs a block
 * written in full about what memset does. */
enum { BLOCK_ZERO_PAGES_MIN = 256 * 1024 };

/* Zeroes [p, p + n). Large spans give their whole pages back instead (MADV_DONTNEED: they read as
 * zeros again), so that pages the program never touches are not faulted in. Never changes errno. */
static void block_zero(char *p, size_t n) {
  if (n < BLOCK_ZERO_PAGES_MIN) {
    memset(p, 0, n);
    return;
  }
  uintptr_t page = (uintptr_t)getpagesize();
  uintptr_t lo = ((uintptr_t)p + page - 1) & ~(page - 1), hi = ((uintptr_t)p + n) & ~(page - 1);
  int saved = errno;
  memset(p, 0, lo - (uintptr_t)p);
  memset((char *)hi, 0, (uintptr_t)p + n - hi);
  if (madvise((void *)lo, hi - lo, MADV_DONTNEED) != 0)
    memset((void *)lo, 0, hi - lo);
  errno = saved;
}

/* Whether the reachability scan will read a block the program gets now: the heap registry is on,
 * and the block is the program's own (not the tracer's, not a thread's in tm_thread_pause(), which
 * the scan never reads). */
static inline bool block_scanned(void) {
  return (atomic_load_explicit(&tm__hooks_active, memory_order_relaxed) & TM__HOOKS_REGISTRY) &&
         !tm__guard_held() && !tm__pause_hides();
}


size_t tm__hooks_usable_size(void *ptr) {
  size_t (*usable_size)(void *) = __atomic_load_n(&real.usable_size, __ATOMIC_RELAXED);
  return usable_size != NULL ? usable_size(ptr) : 0;
}

/* What the program may use of the block at p (malloc_usable_size()): read from the chunk's header
 * when glibc serves malloc; `unknown` when the allocator in front of glibc's tells none. */
static inline size_t block_usable(const void *p, size_t unknown) {
  if (real.free != __libc_free) {
    size_t (*usable_size)(void *) = __atomic_load_n(&real.usable_size, __ATOMIC_RELAXED);
    return usable_size != NULL ? usable_size((void *)p) : unknown;
  }
  size_t head = ((const size_t *)p)[-1];
  return (head & ~(size_t)7) - ((head & 2) != 0 ? 2 : 1) * sizeof(size_t); /* IS_MMAPPED */
}

/* Whether p is a chunk glibc mapped on its own: fresh from the kernel, zero already, and grown by
 * mremap() with zero pages. */
static inline bool chunk_mapped(const void *p) {
  return real.free == __libc_free && (((const size_t *)p)[-1] & 2) != 0; /* IS_MMAPPED */
}

bool tm__malloc_is_glibc(void) {
  tm__hooks_resolve();
  return __atomic_load_n(&real.free, __ATOMIC_RELAXED) == __libc_free;
}

bool tm__malloc_chunk_mapped(const void *p) { return chunk_mapped(p); }

/* What every hook but calloc does with a new block: zeroes it when the scan will read it, then
 * records it (tm__record_alloc()). malloc hands out a chunk as its last owner left it, and a block
 * the program never writes in full (a string buffer, an array's spare capacity, a struct with a
 * field left unset) would keep the words it held: a pointer to a chunk freed since, which the
 * test's leak then got, kept the leak reachable, and a leaking test passed. Zeroed, a block holds
 * only what the program wrote to it, as Valgrind's definedness bits give it
 * (docs/plugin.md#reachability). All of what malloc_usable_size() reports is zeroed, not only the
 * size asked for: a program that writes there (a string library that grows into it) keeps what it
 * wrote across a realloc, which zeroes only beyond it. Reading memory malloc has not initialized is
 * undefined: the program loses nothing it could count on. */
static inline __attribute__((always_inline)) void record_new(void *p, size_t size) {
  if (block_scanned() && !chunk_mapped(p))
    block_zero(p, block_usable(p, size));
  tm__record_alloc(p, size);
}

TM_HOOK void *malloc(size_t size) {
  if (tracing())
    tm__capture_prefetch();
  void *p = real.malloc(size);
  if (tracing() && p != NULL)
    record_new(p, size);
  return p;
}

TM_HOOK void *calloc(size_t nmemb, size_t size) {
  if (tracing())
    tm__capture_prefetch();
  void *p = real.calloc(nmemb, size);
  if (tracing() && p != NULL)
    tm__record_alloc(p, nmemb * size); /* no overflow: calloc succeeded */
  return p;
}

TM_HOOK void free(void *ptr) {
  uint64_t meta;
  if (tracing() && ptr != NULL) {
    tm__record_free(ptr, &meta);
    tm__hook_scrub(); /* no stale copy of ptr below (runtime.h) */
  }
  real.free(ptr);
}

/* What a block the scan will read had for the program before a realloc (block_usable()), or
 * SIZE_MAX when nothing is to be zeroed after it. */
static inline size_t realloc_usable_before(void *ptr) {
  return !block_scanned() ? SIZE_MAX : ptr == NULL ? 0 : block_usable(ptr, SIZE_MAX);
}

/* realloc and reallocarray: the old trace leaves before the real call and comes back on failure.
 * What the block gained past the old usable size (before, from realloc_usable_before()) is zeroed,
 * as a new block is (record_new()): glibc copied or kept everything before it. */
static inline __attribute__((always_inline)) void *realloc_traced(void *ptr, size_t size, void *q, bool traced, uint64_t meta, size_t before) {
  if (q != NULL && before != SIZE_MAX && !chunk_mapped(q)) {
    size_t after = block_usable(q, 0);
    if (after > before)
      block_zero((char *)q + before, after - before);
  }
  if (q != NULL && traced && tm__guard_held())
    tm__record_trace(q, size, tm__meta_tb(meta)); /* the program's block, grown by code the
                                                     tracer called: still the program's */
  else if (q != NULL)
    tm__record_alloc(q, size);
  else if (traced && size != 0)
    tm__record_restore(ptr, meta); /* failed: ptr is still the program's */
  /* q == NULL with size 0: glibc freed ptr (realloc(p, 0)), nothing to restore. */
  return q;
}

TM_HOOK void *realloc(void *ptr, size_t size) {
  if (!tracing())
    return real.realloc(ptr, size);
  uint64_t meta = 0;
  size_t before = realloc_usable_before(ptr);
  bool traced = ptr != NULL && tm__record_free(ptr, &meta);
  tm__hook_scrub(); /* no stale copy of ptr below (runtime.h) */
  tm__capture_prefetch();
  void *q = real.realloc(ptr, size);
  return realloc_traced(ptr, size, q, traced, meta, before);
}

TM_HOOK void *reallocarray(void *ptr, size_t nmemb, size_t size) {
  if (!tracing())
    return real.reallocarray(ptr, nmemb, size);
  size_t total;
  if (__builtin_mul_overflow(nmemb, size, &total))
    return real.reallocarray(ptr, nmemb, size); /* fails with ENOMEM; ptr untouched */
  uint64_t meta = 0;
  size_t before = realloc_usable_before(ptr);
  bool traced = ptr != NULL && tm__record_free(ptr, &meta);
  tm__hook_scrub(); /* no stale copy of ptr below (runtime.h) */
  void *q = real.reallocarray(ptr, nmemb, size);
  /* total == 0 frees like realloc(p, 0) in glibc; restoring only on a non-zero failed size. */
  return realloc_traced(ptr, total, q, traced, meta, before);
}

TM_HOOK int posix_memalign(void **memptr, size_t alignment, size_t size) {
  int rc = real.posix_memalign(memptr, alignment, size);
  if (tracing() && rc == 0 && *memptr != NULL)
    record_new(*memptr, size);
  return rc;
}

TM_HOOK void *aligned_alloc(size_t alignment, size_t size) {
  void *p = real.aligned_alloc(alignment, size);
  if (tracing() && p != NULL)
    record_new(p, size);
  return p;
}

TM_HOOK void *memalign(size_t alignment, size_t size) {
  void *p = real.memalign(alignment, size);
  if (tracing() && p != NULL)
    record_new(p, size);
  return p;
}

TM_HOOK void *valloc(size_t size) {
  void *p = real.valloc(size);
  if (tracing() && p != NULL)
    record_new(p, size);
  return p;
}

TM_HOOK void *pvalloc(size_t size) {
  void *p = real.pvalloc(size);
  if (tracing() && p != NULL)
    record_new(p, size);
  return p;
}
