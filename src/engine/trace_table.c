/* trace_table.c — sharded open-addressing tables of live blocks. See trace_table.h. */
#include <string.h>

#include "guard.h"
#include "stack_cache.h"
#include "trace_table.h"

#define INITIAL_CAPACITY 16 /* 256 B: a test that allocates little touches few pages */
#define KEEP_ON_CLEAR 256   /* arrays up to 4 KiB survive a clear, zeroed */
#define SMALL_CAPACITY 16384 /* 256 KiB: up to here a shard grows at half load, then at 3/4 */

/* The home slot of an entry whose key hashes to hash. */
static inline size_t slot_of(const tm__shard *s, uintptr_t key, uint64_t hash) {
  return tm__slot_home(s->mask, key, hash);
}

atomic_bool tm__tables_large;

void tm__tables_small_again(void) {
  atomic_store_explicit(&tm__tables_large, false, memory_order_relaxed);
}

/* Moves every entry into a table twice as large. Returns false (nothing changed) when mmap fails.
 * Out of line: the insert that calls it stays small. */
static __attribute__((noinline, cold)) bool shard_grow(tm__shard *s) {
  size_t old_cap = s->slots ? s->mask + 1 : 0;
  size_t cap = old_cap ? old_cap * 2 : INITIAL_CAPACITY;
  tm__entry *slots = tm__map_huge(cap * sizeof *slots);
  if (slots == NULL)
    return false;
  tm__entry *old = s->slots;
  /* Atomic stores: tm__trace_prefetch_slot() reads both without the lock. */
  __atomic_store_n(&s->slots, slots, __ATOMIC_RELAXED);
  __atomic_store_n(&s->mask, cap - 1, __ATOMIC_RELAXED);
  for (size_t i = 0; i < old_cap; i++) {
    if (old[i].key == 0)
      continue;
    size_t j = slot_of(s, old[i].key, tm__hash_ptr(old[i].key));
    while (slots[j].key != 0)
      j = (j + 1) & s->mask;
    slots[j] = old[i];
  }
  tm__unmap_huge(old, old_cap * sizeof *old);
  if (cap >= TM_WINDOW_MIN_ENTRIES && !atomic_load_explicit(&tm__tables_large, memory_order_relaxed))
    atomic_store_explicit(&tm__tables_large, true, memory_order_relaxed);
  return true;
}

bool tm__shard_put_unlocked(tm__shard *s, uintptr_t key, uint64_t hash, uint64_t meta,
                            uint64_t *old_meta, bool *failed) {
  *failed = false;
  size_t cap = s->slots ? s->mask + 1 : 0;
  /* Keep the load under 1/2 while the array is small (cache-resident: what costs is the length of
   * the probe runs that a removal shifts back), under 3/4 once large (what costs is the miss, and
   * the memory); if growing fails, go on while one slot stays free. */
  size_t limit = cap <= SMALL_CAPACITY ? cap / 2 : cap / 4 * 3;
  if (s->used + 1 > limit) {
    bool grown = shard_grow(s);
    /* Its calls (the region allocator, mmap) ran deeper than the hook's scrub reaches (past 1 KiB
     * in a UBSan build), with the new block's address saved in their frames: zeroed here, below
     * this frame (stack_cache.h). */
    tm__stack_scrub();
    if (!grown && s->used + 1 >= cap) {
      *failed = true;
      return false;
    }
  }
  size_t i = slot_of(s, key, hash);
  while (s->slots[i].key != 0) {
    if (s->slots[i].key == key) {
      *old_meta = s->slots[i].meta;
      s->bytes -= tm__meta_size(*old_meta);
      s->bytes += tm__meta_size(meta);
      s->slots[i].meta = meta;
      return true;
    }
    i = (i + 1) & s->mask;
  }
  s->slots[i].key = key;
  s->slots[i].meta = meta;
  s->used++;
  s->bytes += tm__meta_size(meta);
  return false;
}

bool tm__shard_get_unlocked(const tm__shard *s, uintptr_t key, uint64_t hash, uint64_t *meta) {
  if (s->slots == NULL)
    return false;
  for (size_t i = slot_of(s, key, hash); s->slots[i].key != 0; i = (i + 1) & s->mask) {
    if (s->slots[i].key == key) {
      *meta = s->slots[i].meta;
      return true;
    }
  }
  return false;
}

bool tm__shard_remove_unlocked(tm__shard *s, uintptr_t key, uint64_t hash, uint64_t *meta) {
  if (s->slots == NULL || s->used == 0)
    return false;
  size_t i = slot_of(s, key, hash);
  while (s->slots[i].key != key) {
    if (s->slots[i].key == 0)
      return false;
    i = (i + 1) & s->mask;
  }
  *meta = s->slots[i].meta;
  s->used--;
  s->bytes -= tm__meta_size(*meta);
  /* Backward-shift deletion: pull later entries of the probe run into the hole. */
  for (size_t j = (i + 1) & s->mask; s->slots[j].key != 0; j = (j + 1) & s->mask) {
    size_t home = slot_of(s, s->slots[j].key, tm__hash_ptr(s->slots[j].key));
    if (((j - home) & s->mask) >= ((j - i) & s->mask)) {
      s->slots[i] = s->slots[j];
      i = j;
    }
  }
  s->slots[i].key = 0;
  s->slots[i].meta = 0;
  return true;
}

void tm__shard_clear_unlocked(tm__shard *s) {
  size_t bytes = s->slots ? (s->mask + 1) * sizeof *s->slots : 0;
  if (bytes > KEEP_ON_CLEAR * sizeof *s->slots) {
    tm__unmap_huge(s->slots, bytes);
    __atomic_store_n(&s->slots, NULL, __ATOMIC_RELAXED);
    __atomic_store_n(&s->mask, 0, __ATOMIC_RELAXED);
  } else if (s->used != 0) {
    /* Keep a small array: clearing between tests must not cost a map and unmap a shard. */
    memset(s->slots, 0, bytes);
  }
  s->used = 0;
  s->bytes = 0;
}

void tm__table_lock_all(tm__table *t) {
  for (size_t i = 0; i < TM_TABLE_SHARDS; i++)
    tm__lock_acquire(&t->shards[i].lock);
}

void tm__table_unlock_all(tm__table *t) {
  for (size_t i = TM_TABLE_SHARDS; i-- > 0;)
    tm__lock_release(&t->shards[i].lock);
}

size_t tm__table_count_unlocked(const tm__table *t) {
  size_t n = 0;
  for (size_t i = 0; i < TM_TABLE_SHARDS; i++)
    n += t->shards[i].used;
  return n;
}
