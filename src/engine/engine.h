/* engine.h — what the analysis layer may ask of the tracing engine. Internal; never installed.
 *
 * The engine (tracemalloc.c, hooks.c, trace_table.c, traceback_intern.c) records live blocks as
 * (domain, ptr) => (size, traceback id). Traceback ids name interned stacks of return addresses,
 * never moved, and freed when tracing stops (tm_stop()). So the analysis layer turns ids into
 * stacks under tm__intern_hold() and copies the stacks it keeps.
 */
#ifndef TM_ENGINE_H
#define TM_ENGINE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One live trace as copied out of the tables. */
typedef struct tm__raw_trace {
  uintptr_t ptr;
  size_t size;
  uint32_t tb_id;
  unsigned int domain;
} tm__raw_trace;

/* An interned traceback: return addresses, MOST RECENT FIRST (ips[0] is the allocation site's
 * caller of malloc). Immutable; valid until tracing stops, read under tm__intern_hold(). */
typedef struct tm__interned_tb {
  uint16_t nframe;       /* number of ips stored */
  uint16_t truncated;    /* 1 when the stack had more frames than the limit */
  uint32_t total_nframe; /* frames of the whole stack; == nframe when not truncated */
  uint32_t unload_seq;   /* tm__unload_seq_now() when it was interned */
  uintptr_t ips[];
} tm__interned_tb;

/* The number of libraries dlclose() unloaded so far (unload.c interposes dlclose). */
uint32_t tm__unload_seq_now(void);

/* Whether ip lay in a library unloaded after the count was seq: a return address of a stack
 * interned then, which must not be resolved against what is mapped there now. Thread-safe. */
bool tm__ip_unloaded_since(uintptr_t ip, uint32_t seq);

/* Copies every live trace of every domain into a new array (allocated with the guard held, so
 * untraced; the caller frees it with free() or g_free()). Consistent: taken with all table shards locked. Stores the count in *n and
 * the traceback limit in *limit. Returns NULL and *n = 0 when there are no traces or on failure
 * (then *failed is set to true when failed != NULL). */
tm__raw_trace *tm__traces_copy(size_t *n, int *limit, bool *failed);

/* Returns the interned traceback of an id from tm__traces_copy(), or NULL for an unknown id.
 * Outside the engine, call it under tm__intern_hold(), held since the id was read from a table:
 * tm_stop() frees the stacks and reuses the ids. */
const tm__interned_tb *tm__traceback_lookup(uint32_t tb_id);

/* Keeps tm_stop() from freeing the interned stacks until tm__intern_release(): hold it from
 * reading ids out of the tables until the stacks are copied. Does not nest; never hold it while
 * calling tm_stop(). Thread-safe. */
void tm__intern_hold(void);
void tm__intern_release(void);

/* The generation of the interned stacks: changes each time tm_stop() frees them, so a cache keyed
 * by their addresses or ids knows to empty itself. */
uint32_t tm__intern_generation_now(void);

/* Looks up the trace of ptr in the malloc domain. Returns true and fills *out when found (a
 * registered block, allocated while not tracing, is not a trace: false). */
bool tm__trace_find(uintptr_t ptr, tm__raw_trace *out);

/* The traces as they were when traced memory first passed the limit of the last
 * tm__peak_watch(), or NULL (*n = 0) when it has not. Borrowed until the next tm__peak_watch(). */
const tm__raw_trace *tm__peak_watch_traces(size_t *n, int *limit);

/* ---- every live block (the heap registry) ----
 * With the registry on (tm_heap_registry_is_on()), the malloc domain's table holds every live
 * block of the program: traced ones with their traceback id, the others with tb_id
 * TM__TB_UNTRACED. The reachability scan reads them between tm__blocks_lock() and
 * tm__blocks_unlock(): while they are held, no thread can allocate or free a block through the
 * hooks (each waits on its shard's lock), so the set of blocks and their memory stay valid. The
 * holder may allocate only with the guard held (the tracer's own blocks live in another table),
 * and must not call anything that waits on a thread that allocates (the dynamic loader's lock). */
#define TM__TB_UNTRACED 0xFFFFFFu
#define TM__TB_PAUSED 0xFFFFFEu /* registered by a paused thread: not the program's memory */
void tm__blocks_lock(void);
void tm__blocks_unlock(void);

/* How many times this process has called fork() since it was itself forked (since it started,
 * when it was not): a process that forked shares its pages with its children, which makes pages it
 * wrote look unwritten to /proc/self/pagemap (shared_pages.h), even once the child it waited for
 * has left a grandchild behind. Counted by the library's fork handlers (posix_spawn() and
 * vfork() share the memory instead, and are not counted). */
extern atomic_uint tm__forks_made;

/* Whether memory the tracer mapped for itself (tables, interned stacks) overlaps [lo, hi). */
bool tm__mapped_by_tracer(uintptr_t lo, uintptr_t hi);

/* Where the first of the tracer's own mappings that overlaps [lo, hi) starts (lo when one holds
 * lo), or hi when none does. Thread-safe; allocates nothing. */
uintptr_t tm__tracer_map_start(uintptr_t lo, uintptr_t hi);

/* The anonymous mappings the program made itself (mmap), as sorted, disjoint [lo, hi) pairs:
 * copies up to max of them into out and returns how many there are (call again with more room
 * when that is more than max). Not clipped to what is still readable. Thread-safe; allocates
 * nothing. */
size_t tm__program_maps_copy(uintptr_t (*out)[2], size_t max);

/* The alternate signal stacks the program installed with sigaltstack(), the latest few, also once
 * disabled, as [lo, hi) pairs: copies up to max into out and returns how many it copied. Their
 * contents are dead frames of signal handlers, never the program's data. Thread-safe; allocates
 * nothing. */
size_t tm__altstacks_copy(uintptr_t (*out)[2], size_t max);

/* Hold and drop the list's lock, around fork() (before the region allocator's lock). */
void tm__program_maps_lock(void);
void tm__program_maps_unlock(void);

/* Copies every block of the malloc domain, traced or not, into a new array (free() it, guard
 * held), storing the count in *n. Call between tm__blocks_lock() and tm__blocks_unlock(), with the
 * guard held. NULL with *n = 0 when there is none or on failure. */
tm__raw_trace *tm__blocks_copy_locked(size_t *n);

/* Whether glibc's malloc serves the program's blocks (no other allocator preloaded behind the
 * hooks): only then do its chunk headers and arenas mean anything. Thread-safe. */
bool tm__malloc_is_glibc(void);

/* Whether the live block p is a chunk glibc mapped on its own (free() unmaps it at once): false
 * when glibc does not serve malloc. Thread-safe. */
bool tm__malloc_chunk_mapped(const void *p);

/* Reports TM_ERROR_NO_MEMORY without allocating: hands over an error made in advance (nothing is
 * set when error is NULL or already set, or when the spare is in use by an earlier failure that
 * was not followed by a refill). Thread-safe. */
typedef struct _GError GError;
void tm__error_set_no_memory(GError **error);

/* Makes the spare error again if it was handed over; call when an operation succeeded (it
 * allocates a little). Thread-safe. */
void tm__error_spare_refill(void);

/* The reentrancy guard. While held by a thread, every allocation that thread makes is the
 * tracer's own: untraced, and counted by tm_get_tracemalloc_memory(). Analysis entry points that
 * allocate take it on entry and drop it on exit. Nests. */
void tm__guard_enter(void);
void tm__guard_leave(void);

#endif /* TM_ENGINE_H */
