/* trace_table.h — (ptr => size, traceback id) for one domain, sharded. Internal.
 *
 * Each table has TM_TABLE_SHARDS shards; a pointer picks its shard by hash, and each shard is an
 * open-addressing table (linear probing, backward-shift deletion: no tombstones) of 16-byte
 * entries in mmap'd memory, guarded by its own lock (lock.h). Nothing here calls malloc, so the table can
 * be used from inside the malloc hooks. Functions ending in _unlocked need the shard lock held.
 */
#ifndef TM_TRACE_TABLE_H
#define TM_TRACE_TABLE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lock.h"

#define TM_TABLE_SHARDS 64
#define TM_SIZE_BITS 40 /* sizes up to 1 TiB are recorded; larger ones count as lost traces */
#define TM_SIZE_MAX ((UINT64_C(1) << TM_SIZE_BITS) - 1)
#define TM_TBID_MAX ((UINT32_C(1) << (64 - TM_SIZE_BITS)) - 1)
/* The traceback id of a registered block: known to be live, allocated while not tracing (the heap
 * registry, runtime.h). Never handed out by the interner. */
#define TM_TB_UNTRACED TM_TBID_MAX
_Static_assert(TM_TB_UNTRACED == 0xFFFFFFu, "engine.h publishes the id as TM__TB_UNTRACED");
/* The traceback id of a block registered while its thread was paused (tm_thread_pause()): memory
 * that is not the program's, whose contents the reachability scan never reads. */
#define TM_TB_PAUSED (TM_TBID_MAX - 1)
_Static_assert(TM_TB_PAUSED == 0xFFFFFEu, "engine.h publishes the id as TM__TB_PAUSED");

/* Whether a traceback id is a trace's (not one of the registry's two). */
static inline bool tm__tb_traced(uint32_t tb) { return tb < TM_TB_PAUSED; }

typedef struct tm__entry {
  uintptr_t key;  /* the block's address; 0 marks an empty slot */
  uint64_t meta;  /* size in the low TM_SIZE_BITS, traceback id above */
} tm__entry;

typedef struct tm__shard {
  tm__lock lock;
  tm__entry *slots; /* mmap'd, capacity mask + 1 entries; NULL until first insert */
  size_t mask;
  size_t used;
  size_t bytes; /* sum of the sizes recorded in this shard */
} __attribute__((aligned(64))) tm__shard;

typedef struct tm__table {
  tm__shard shards[TM_TABLE_SHARDS];
} tm__table;

static inline uint64_t tm__meta_pack(size_t size, uint32_t tb_id) {
  return (uint64_t)size | ((uint64_t)tb_id << TM_SIZE_BITS);
}
static inline size_t tm__meta_size(uint64_t meta) { return (size_t)(meta & TM_SIZE_MAX); }
static inline uint32_t tm__meta_tb(uint64_t meta) { return (uint32_t)(meta >> TM_SIZE_BITS); }

/* A zero-filled tm__table (static storage or tm__map()) is a valid empty table with unlocked
 * locks. Nothing needs initializing, so hooks that run before constructors are safe. */

/* The hash of a key, computed once per operation: it picks the shard, then, in a shard array of
 * TM_WINDOW_MIN_ENTRIES or more, the home slot in it (bits 6 and up). Keys of one 512-byte window
 * of the heap share their shard and a block of 16 home slots, four cache lines, chosen by
 * murmur3's 64-bit finalizer of the window; the key's 32-byte granule in the window picks its slot
 * in the block, xor'ed with the window's hash. A program allocates mostly from a few places in
 * the heap at a time (the top of the heap, a bin it just freed into), so consecutive operations
 * meet the same cache lines and pages of the table instead of one cold line each: a process with a
 * million live blocks spends a third less (python3 1.83x -> 1.58x; jq 1.44x -> 1.33x). glibc's
 * chunks are 32 bytes at least, so two blocks of a window never share a home slot; smaller
 * spacings (a custom allocator's objects in a domain) share one per 32 bytes, which linear probing
 * resolves in the same lines. */
#define TM_WINDOW_SHIFT 9
static inline uint64_t tm__hash_ptr(uintptr_t key) {
  uint64_t h = key >> TM_WINDOW_SHIFT;
  h ^= h >> 33;
  h *= UINT64_C(0xff51afd7ed558ccd);
  h ^= h >> 33;
  h *= UINT64_C(0xc4ceb9fe1a85ec53);
  h ^= h >> 33;
  return h ^ (((key >> 5) & ((1u << (TM_WINDOW_SHIFT - 5)) - 1)) << 6);
}
_Static_assert(TM_TABLE_SHARDS == 1 << 6, "the granule's bits start above the shard's");

/* Below this many entries a shard's array (64 KiB) stays in the cache, where the windows'
 * locality buys nothing and their clustering lengthens the probe runs that a removal shifts back:
 * there the home slot comes from a multiplicative hash of the whole address instead. */
#define TM_WINDOW_MIN_ENTRIES 4096

/* Whether some shard of some table has grown to TM_WINDOW_MIN_ENTRIES entries since the tables
 * were last cleared (tm__tables_small_again): only then do the hooks prefetch a block's slot,
 * which in arrays that stay in the cache costs the hash and the prefetch and saves nothing. */
extern atomic_bool tm__tables_large;

/* Starts tm__tables_large over (every table was cleared). */
void tm__tables_small_again(void);

/* The home slot of key (hash = tm__hash_ptr(key)) in a shard array of mask + 1 entries. */
static inline size_t tm__slot_home(size_t mask, uintptr_t key, uint64_t hash) {
  if (mask < TM_WINDOW_MIN_ENTRIES - 1)
    return (size_t)(((uint64_t)key * UINT64_C(0x9e3779b97f4a7c15)) >> 32) & mask;
  return (size_t)(hash / TM_TABLE_SHARDS) & mask;
}

/* Returns the shard that holds keys of this hash (tm__hash_ptr()). Inline: every operation asks. */
static inline tm__shard *tm__table_shard(tm__table *t, uint64_t hash) {
  return &t->shards[hash % TM_TABLE_SHARDS];
}

/* Inserts or replaces key (hash = tm__hash_ptr(key)). Returns true with *old_meta set when key was
 * present (replaced), false otherwise. Sets *failed when the shard could not grow and is full
 * (nothing inserted). */
bool tm__shard_put_unlocked(tm__shard *s, uintptr_t key, uint64_t hash, uint64_t meta,
                            uint64_t *old_meta, bool *failed);

/* Removes key. Returns true and stores its meta in *meta when it was present. */
bool tm__shard_remove_unlocked(tm__shard *s, uintptr_t key, uint64_t hash, uint64_t *meta);

/* Looks key up without removing it. */
bool tm__shard_get_unlocked(const tm__shard *s, uintptr_t key, uint64_t hash, uint64_t *meta);

/* Forgets every entry and returns the shard's memory to the system. */
void tm__shard_clear_unlocked(tm__shard *s);

/* Locks / unlocks every shard, in index order (fork handlers, clear, snapshot copy). */
void tm__table_lock_all(tm__table *t);
void tm__table_unlock_all(tm__table *t);

/* Number of entries, with every shard lock held by the caller. */
size_t tm__table_count_unlocked(const tm__table *t);

#endif /* TM_TRACE_TABLE_H */
