/* traceback_intern.c — one copy of each distinct stack, named by a small id.
 *
 * id => tracebacks: a two-level directory of mmap'd chunks, filled once per id, read without lock.
 * hash => id: TM_INTERN_SHARDS open-addressing tables, each with its own lock and bump arena.
 * A per-thread direct-mapped cache answers most lookups without taking any lock.
 */
#include <stdatomic.h>
#include <string.h>

#include "guard.h"
#include "lock.h"
#include "scratch.h"
#include "trace_table.h"
#include "traceback_intern.h"

#define INTERN_SHARDS 64
#define DIR_CHUNK_BITS 14
#define DIR_CHUNK (1u << DIR_CHUNK_BITS)
#define DIR_CHUNKS ((TM_TBID_MAX >> DIR_CHUNK_BITS) + 1)
#define ARENA_SIZE (256u * 1024u)
#define CACHE_SLOTS TM_INTERN_CACHE_SLOTS

typedef struct intern_slot {
  uint32_t hash;
  uint32_t id; /* 0: empty */
} intern_slot;

typedef struct intern_shard {
  tm__lock lock;
  intern_slot *slots; /* mmap'd */
  size_t mask;
  size_t used;
} __attribute__((aligned(64))) intern_shard;

/* Traceback bodies, packed one after another (new stacks are rare, so one lock serves all shards). */
static tm__lock arena_lock;
static char *arena;
static size_t arena_left;

/* hash => id, sharded by hash. Each shard protected by its own lock. */
static intern_shard shards[INTERN_SHARDS] __attribute__((aligned(4096))); /* one page */

/* id => interned traceback; chunks appear once (CAS) and never move. Read without lock. */
static _Atomic(const tm__interned_tb **) directory[DIR_CHUNKS];

/* Last id handed out; ids start at 1. */
static atomic_uint_fast32_t last_id;

/* Per-thread cache: hash => id of tracebacks this thread used recently, in the thread's scratch
 * block (scratch.h). */

/* A rotate-xor chain (one cheap step per frame; return addresses are already well spread) and
 * murmur3's finalizer once at the end. */
static uint32_t hash_stack(const uintptr_t *ips, int n, bool truncated, uint32_t total) {
  uint64_t h = UINT64_C(0x9e3779b97f4a7c15) ^ (uint64_t)n ^ ((uint64_t)truncated << 32) ^
               ((uint64_t)total << 40);
  for (int i = 0; i < n; i++)
    h = ((h << 7) | (h >> 57)) ^ ips[i];
  h ^= h >> 33;
  h *= UINT64_C(0xff51afd7ed558ccd);
  h ^= h >> 33;
  h *= UINT64_C(0xc4ceb9fe1a85ec53);
  h ^= h >> 33;
  return (uint32_t)h;
}

const tm__interned_tb *tm__traceback_lookup(uint32_t id) {
  if (id == 0 || id > TM_TBID_MAX)
    return NULL;
  const tm__interned_tb **chunk =
      atomic_load_explicit(&directory[id >> DIR_CHUNK_BITS], memory_order_acquire);
  if (chunk == NULL)
    return NULL;
  return __atomic_load_n(&chunk[id & (DIR_CHUNK - 1)], __ATOMIC_ACQUIRE);
}

static bool same_stack(const tm__interned_tb *tb, const uintptr_t *ips, int n, bool truncated,
                       uint32_t total) {
  return tb->nframe == n && tb->truncated == truncated && tb->total_nframe == total &&
         memcmp(tb->ips, ips, (size_t)n * sizeof *ips) == 0;
}

/* Publishes tb under a new id. Returns 0 when ids or memory ran out. */
static uint32_t publish(const tm__interned_tb *tb) {
  uint32_t id = (uint32_t)atomic_fetch_add(&last_id, 1) + 1;
  if (id >= TM_TB_UNTRACED)
    return 0;
  size_t c = id >> DIR_CHUNK_BITS;
  const tm__interned_tb **chunk = atomic_load_explicit(&directory[c], memory_order_acquire);
  if (chunk == NULL) {
    const tm__interned_tb **fresh = tm__map(DIR_CHUNK * sizeof *fresh);
    if (fresh == NULL)
      return 0;
    if (atomic_compare_exchange_strong(&directory[c], &chunk, fresh))
      chunk = fresh;
    else
      tm__unmap(fresh, DIR_CHUNK * sizeof *fresh);
  }
  __atomic_store_n(&chunk[id & (DIR_CHUNK - 1)], tb, __ATOMIC_RELEASE);
  return id;
}

static tm__interned_tb *arena_copy(const uintptr_t *ips, int n) {
  size_t need = (sizeof(tm__interned_tb) + (size_t)n * sizeof *ips + 15) & ~(size_t)15;
  tm__interned_tb *tb = NULL;
  tm__lock_acquire(&arena_lock);
  if (need > arena_left) {
    size_t size = need > ARENA_SIZE ? need : ARENA_SIZE;
    char *fresh = tm__map(size); /* the old arena's tail is left unused */
    if (fresh != NULL) {
      arena = fresh;
      arena_left = size;
    }
  }
  if (need <= arena_left) {
    tb = (tm__interned_tb *)arena;
    arena += need;
    arena_left -= need;
  }
  tm__lock_release(&arena_lock);
  if (tb != NULL)
    memcpy(tb->ips, ips, (size_t)n * sizeof *ips);
  return tb;
}

static bool shard_grow(intern_shard *s) {
  size_t old_cap = s->slots ? s->mask + 1 : 0;
  size_t cap = old_cap ? old_cap * 2 : 32;
  intern_slot *slots = tm__map(cap * sizeof *slots);
  if (slots == NULL)
    return false;
  for (size_t i = 0; i < old_cap; i++) {
    if (s->slots[i].id == 0)
      continue;
    size_t j = (s->slots[i].hash / INTERN_SHARDS) & (cap - 1);
    while (slots[j].id != 0)
      j = (j + 1) & (cap - 1);
    slots[j] = s->slots[i];
  }
  tm__unmap(s->slots, old_cap * sizeof *s->slots);
  s->slots = slots;
  s->mask = cap - 1;
  return true;
}

static uint32_t intern_unlocked(intern_shard *s, uint32_t hash, const uintptr_t *ips, int n,
                                bool truncated, uint32_t total) {
  if ((s->used + 1) * 2 > (s->slots ? s->mask + 1 : 0) && !shard_grow(s) &&
      (s->slots == NULL || s->used + 1 > s->mask))
    return 0;
  size_t i = (hash / INTERN_SHARDS) & s->mask;
  for (; s->slots[i].id != 0; i = (i + 1) & s->mask) {
    if (s->slots[i].hash != hash)
      continue;
    if (same_stack(tm__traceback_lookup(s->slots[i].id), ips, n, truncated, total))
      return s->slots[i].id;
  }
  tm__interned_tb *tb = arena_copy(ips, n);
  if (tb == NULL)
    return 0;
  tb->hash = hash;
  tb->nframe = (uint16_t)n;
  tb->truncated = truncated;
  tb->total_nframe = total;
  uint32_t id = publish(tb);
  if (id == 0)
    return 0;
  s->slots[i].hash = hash;
  s->slots[i].id = id;
  s->used++;
  return id;
}

uint32_t tm__intern(const uintptr_t *ips, int n, bool truncated, uint32_t total) {
  uint32_t hash = hash_stack(ips, n, truncated, total);
  size_t c = hash % CACHE_SLOTS;
  tm__scratch *scratch = tm__scratch_get(); /* NULL: no cache, still interned */
  if (scratch != NULL && scratch->intern_hash[c] == hash && scratch->intern_id[c] != 0 &&
      same_stack(tm__traceback_lookup(scratch->intern_id[c]), ips, n, truncated, total))
    return scratch->intern_id[c];
  intern_shard *s = &shards[hash % INTERN_SHARDS];
  tm__lock_acquire(&s->lock);
  uint32_t id = intern_unlocked(s, hash, ips, n, truncated, total);
  tm__lock_release(&s->lock);
  if (id != 0 && scratch != NULL) {
    scratch->intern_hash[c] = hash;
    scratch->intern_id[c] = id;
  }
  return id;
}

void tm__intern_lock_all(void) {
  for (size_t i = 0; i < INTERN_SHARDS; i++)
    tm__lock_acquire(&shards[i].lock);
}

void tm__intern_unlock_all(void) {
  for (size_t i = INTERN_SHARDS; i-- > 0;)
    tm__lock_release(&shards[i].lock);
}
