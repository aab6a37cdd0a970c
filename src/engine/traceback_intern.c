/* traceback_intern.c — one copy of each distinct stack, named by a small id.
 *
 * id => tracebacks: a two-level directory of mmap'd chunks, filled once per id.
 * hash => id: INTERN_SHARDS open-addressing tables, each with its own lock, over one bump arena.
 * A stack is known by its 128-bit XXH3 hash, 96 bits of it kept in its slot: a lookup never reads
 * the stored stacks (docs/engine.md, "Interning").
 *
 * Everything is freed by tm__intern_reset() when tracing stops (Python's stop() clears its
 * traceback table too), so a program that traces many distinct stacks gets the memory back, and
 * ids start again from 1. A generation counter tells the stack cache, which caches ids, that
 * its ids are stale. Readers outside the engine hold tm__intern_hold() while they turn ids into
 * stacks; a reset waits for them. Large blocks are mapped directly so that unmapping them returns
 * the memory to the system.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "guard.h"
#include "lock.h"
#include "trace_table.h"
#include "traceback_intern.h"

#define INTERN_SHARDS 64
#define DIR_CHUNK_BITS 14
#define DIR_CHUNK (1u << DIR_CHUNK_BITS)
#define DIR_CHUNKS ((TM_TBID_MAX >> DIR_CHUNK_BITS) + 1)
#define ARENA_SIZE (256u * 1024u) /* at least BIG_BLOCK: mapped and unmapped whole */
#define BIG_BLOCK (64u * 1024u)   /* blocks this large are mapped directly */
/* Largest id handed out: the two above it are the registry's TM_TB_PAUSED and TM_TB_UNTRACED. */
#define ID_MAX (TM_TB_PAUSED - 1)

/* A slot names a stack by its 128-bit hash (hash_stack): 32 bits place it, 64 more are the check.
 * A lookup that meets the same 96 bits has found the stack, without reading the stack itself,
 * which lies in an arena far from the slot: one cache miss instead of two (docs/engine.md). */
typedef struct intern_slot {
  uint32_t hash; /* the shard (hash % INTERN_SHARDS) and the home slot (hash / INTERN_SHARDS) */
  uint32_t id;   /* 0: empty */
  uint64_t check;
} intern_slot;

typedef struct intern_shard {
  tm__lock lock;
  intern_slot *slots; /* mapped */
  size_t mask;
  size_t used;
} __attribute__((aligned(64))) intern_shard;

/* One arena of traceback bodies; arenas are chained so that a reset can unmap them all. */
typedef struct arena_head {
  struct arena_head *next;
  size_t size;
  bool piece; /* mapped by tm__map_huge() */
} __attribute__((aligned(16))) arena_head;

/* Traceback bodies, packed one after another (new stacks are rare, so one lock serves all shards). */
static tm__lock arena_lock;
static char *arena;
static size_t arena_left;
static arena_head *arenas; /* every arena, newest first */

/* hash => id, sharded by hash. Each shard protected by its own lock. */
static intern_shard shards[INTERN_SHARDS] __attribute__((aligned(4096))); /* one page */

/* id => interned traceback; chunks appear once (CAS) and are unmapped only by a reset. */
static _Atomic(const tm__interned_tb **) directory[DIR_CHUNKS];

/* Last id handed out; ids start at 1. */
static atomic_uint_fast32_t last_id;

/* Largest id handed out (ID_MAX; tests lower it to reach the limit). */
static uint32_t id_limit = ID_MAX;

/* Bumped by every reset; caches remember the generation they were filled in. */
atomic_uint tm__intern_generation;

/* Held by a reader of ids (tm__intern_hold()) and by a reset; the outermost of the engine's
 * locks. A plain lock: a forked child frees it (the reader that held it at fork time, another
 * thread of the parent, does not exist in the child, and the stacks it guards are consistent,
 * the intern locks being held across fork()). Not taken around fork(): a thread that holds it
 * takes the analysis layer's locks, whose fork handlers would then take them in the other order. */
static tm__lock users;
static pthread_once_t users_once = PTHREAD_ONCE_INIT;

static void users_lock(void) { tm__lock_acquire(&users); }

static void users_unlock(void) { tm__lock_release(&users); }

static void users_child(void) { atomic_store_explicit(&users.held, 0, memory_order_relaxed); }

static void users_register(void) { pthread_atfork(NULL, NULL, users_child); }

/* Whether the warning that ids ran out was written since the last reset. */
static atomic_bool ids_out_warned;

/* Maps a block: directly (so that unmapping returns it to the system) when large, else from
 * tm__map()'s recycled classes. Counted in tm__mapped_bytes, and listed among the tracer's mappings
 * (tm__resident_bytes()), either way. */
static void *block_map(size_t size) {
  return size < BIG_BLOCK ? tm__map(size) : tm__map_pages(size);
}

static void block_unmap(void *p, size_t size) {
  if (p == NULL)
    return;
  if (size < BIG_BLOCK)
    tm__unmap(p, size);
  else
    tm__unmap_pages(p, size);
}

typedef struct stack_hash {
  uint32_t hash;
  uint64_t check;
} stack_hash;

/* XXH3's 128-bit hash of the return addresses, with the shape of the stack (truncated, total)
 * folded into both halves (a bijection of the hash for a given shape: stacks of other shapes get
 * other hashes). Seed 0: a seeded XXH3 derives a secret per call past 240 bytes. */
static stack_hash hash_stack(const uintptr_t *ips, int n, bool truncated, uint32_t total) {
  XXH128_hash_t h = XXH3_128bits(ips, (size_t)n * sizeof *ips);
  uint64_t shape = ((uint64_t)total << 1) | truncated;
  return (stack_hash){.hash = (uint32_t)(h.low64 ^ shape * UINT64_C(0x9e3779b97f4a7c15)),
                      .check = h.high64 ^ shape * UINT64_C(0xc2b2ae3d27d4eb4f)};
}

const tm__interned_tb *tm__traceback_lookup(uint32_t id) {
  if (id == 0 || id > ID_MAX)
    return NULL;
  const tm__interned_tb **chunk =
      atomic_load_explicit(&directory[id >> DIR_CHUNK_BITS], memory_order_acquire);
  if (chunk == NULL)
    return NULL;
  return __atomic_load_n(&chunk[id & (DIR_CHUNK - 1)], __ATOMIC_ACQUIRE);
}

/* Writes, once per tracing session, that no id is left: new stacks are then lost traces. write(2)
 * allocates nothing, so it is safe inside a hook. */
static void warn_ids_out(void) {
  static const char msg[] =
      "tracemalloc: no traceback id left (16777214 distinct tracebacks since tracing started): "
      "allocations from new call sites are not traced and count in tm_get_lost_traces() until "
      "tm_stop() frees the tracebacks\n";
  if (!atomic_exchange(&ids_out_warned, true)) {
    ssize_t rc = write(2, msg, sizeof msg - 1);
    (void)rc;
  }
}

/* Publishes tb under a new id. Returns 0 when ids or memory ran out. */
static uint32_t publish(const tm__interned_tb *tb) {
  uint32_t id;
  if (tm__process_single_threaded()) { /* no other thread takes an id meanwhile (lock.h) */
    id = atomic_load_explicit(&last_id, memory_order_relaxed) + 1;
    atomic_store_explicit(&last_id, id, memory_order_relaxed);
  } else {
    id = (uint32_t)atomic_fetch_add(&last_id, 1) + 1;
  }
  if (id > id_limit) {
    atomic_store(&last_id, id_limit); /* no wrap-around, however many fail */
    warn_ids_out();
    return 0;
  }
  size_t c = id >> DIR_CHUNK_BITS;
  const tm__interned_tb **chunk = atomic_load_explicit(&directory[c], memory_order_acquire);
  if (chunk == NULL) {
    const tm__interned_tb **fresh = block_map(DIR_CHUNK * sizeof *fresh);
    if (fresh == NULL)
      return 0;
    if (atomic_compare_exchange_strong(&directory[c], &chunk, fresh))
      chunk = fresh;
    else
      block_unmap(fresh, DIR_CHUNK * sizeof *fresh);
  }
  __atomic_store_n(&chunk[id & (DIR_CHUNK - 1)], tb, __ATOMIC_RELEASE);
  return id;
}

static tm__interned_tb *arena_copy(const uintptr_t *ips, int n) {
  size_t need = (sizeof(tm__interned_tb) + (size_t)n * sizeof *ips + 15) & ~(size_t)15;
  tm__interned_tb *tb = NULL;
  bool locked = tm__lock_acquire_if_threaded(&arena_lock);
  if (need > arena_left) {
    size_t size = need + sizeof(arena_head) > ARENA_SIZE ? need + sizeof(arena_head) : ARENA_SIZE;
    /* The first arena is faulted in as it fills: a program with few stacks keeps a few pages.
     * Later ones are pieces of huge-page chunks, whose pages cost no fault each (guard.h). */
    bool piece = arenas != NULL && size == ARENA_SIZE;
    arena_head *fresh = piece ? tm__map_huge(size) : block_map(size); /* old tail left unused */
    if (fresh != NULL) {
      fresh->next = arenas;
      fresh->size = size;
      fresh->piece = piece;
      arenas = fresh;
      arena = (char *)(fresh + 1);
      arena_left = size - sizeof(arena_head);
    }
  }
  if (need <= arena_left) {
    tb = (tm__interned_tb *)arena;
    arena += need;
    arena_left -= need;
  }
  tm__lock_release_if(&arena_lock, locked);
  if (tb != NULL)
    memcpy(tb->ips, ips, (size_t)n * sizeof *ips);
  return tb;
}

static bool shard_grow(intern_shard *s) {
  size_t old_cap = s->slots ? s->mask + 1 : 0;
  size_t cap = old_cap ? old_cap * 2 : 32;
  intern_slot *slots = tm__map_huge(cap * sizeof *slots); /* zeroed, prefaulted: hashed all over */
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
  tm__unmap_huge(s->slots, old_cap * sizeof *s->slots);
  /* Atomic stores: tm__intern() reads both without the lock, to prefetch. */
  __atomic_store_n(&s->slots, slots, __ATOMIC_RELAXED);
  __atomic_store_n(&s->mask, cap - 1, __ATOMIC_RELAXED);
  return true;
}
static uint32_t intern_unlocked(intern_shard *s, stack_hash h, const uintptr_t *ips, int n,
                                bool truncated, uint32_t total, bool *fresh) {
  if ((s->used + 1) * 2 > (s->slots ? s->mask + 1 : 0) && !shard_grow(s) &&
      (s->slots == NULL || s->used + 1 > s->mask))
    return 0;
  size_t i = (h.hash / INTERN_SHARDS) & s->mask;
  for (; s->slots[i].id != 0; i = (i + 1) & s->mask)
    if (s->slots[i].hash == h.hash && s->slots[i].check == h.check)
      return s->slots[i].id;
  tm__interned_tb *tb = arena_copy(ips, n);
  if (tb == NULL)
    return 0;
  tb->nframe = (uint16_t)n;
  tb->truncated = truncated;
  tb->total_nframe = total;
  tb->unload_seq = tm__unload_seq_now();
  uint32_t id = publish(tb);
  if (id == 0)
    return 0;
  s->slots[i] = (intern_slot){.hash = h.hash, .id = id, .check = h.check};
  s->used++;
  *fresh = true;
  return id;
}

uint32_t tm__intern(const uintptr_t *ips, int n, bool truncated, uint32_t total, bool *fresh) {
  stack_hash h = hash_stack(ips, n, truncated, total);
  intern_shard *s = &shards[h.hash % INTERN_SHARDS];
  /* The home slot's line is on its way while the lock is taken (a prefetch never faults: a stale
   * array, unmapped meanwhile, costs a wasted load). */
  const intern_slot *slots = __atomic_load_n(&s->slots, __ATOMIC_RELAXED);
  size_t mask = __atomic_load_n(&s->mask, __ATOMIC_RELAXED);
  if (slots != NULL)
    __builtin_prefetch(&slots[(h.hash / INTERN_SHARDS) & mask]);
  bool made = false;
  bool locked = tm__lock_acquire_if_threaded(&s->lock);
  uint32_t id = intern_unlocked(s, h, ips, n, truncated, total, &made);
  tm__lock_release_if(&s->lock, locked);
  if (fresh != NULL)
    *fresh = made;
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

void tm__intern_hold(void) {
  pthread_once(&users_once, users_register);
  users_lock();
}

void tm__intern_release(void) { users_unlock(); }

void tm__intern_reset(void) {
  pthread_once(&users_once, users_register);
  users_lock();
  tm__intern_lock_all();
  tm__lock_acquire(&arena_lock);
  /* Only what holds something is written: in a forked Check child that stops tracing, every
   * page written is a page copied. */
  for (size_t i = 0; i < INTERN_SHARDS; i++) {
    intern_shard *s = &shards[i];
    if (s->slots == NULL && s->used == 0)
      continue;
    tm__unmap_huge(s->slots, s->slots ? (s->mask + 1) * sizeof *s->slots : 0);
    __atomic_store_n(&s->slots, NULL, __ATOMIC_RELAXED);
    __atomic_store_n(&s->mask, 0, __ATOMIC_RELAXED);
    s->used = 0;
  }
  for (arena_head *a = arenas, *next; a != NULL; a = next) {
    next = a->next;
    if (a->piece)
      tm__unmap_huge(a, a->size);
    else
      block_unmap(a, a->size);
  }
  arenas = NULL;
  arena = NULL;
  arena_left = 0;
  /* Every lookup runs under a shard lock or tm__intern_hold(): no reader is left. */
  for (size_t c = 0; c < DIR_CHUNKS; c++) {
    if (atomic_load_explicit(&directory[c], memory_order_relaxed) == NULL)
      continue;
    const tm__interned_tb **chunk = atomic_exchange(&directory[c], NULL);
    block_unmap((void *)chunk, DIR_CHUNK * sizeof *chunk);
  }
  atomic_store(&last_id, 0);
  atomic_store(&ids_out_warned, false);
  atomic_fetch_add(&tm__intern_generation, 1);
  tm__lock_release(&arena_lock);
  tm__intern_unlock_all();
  users_unlock();
}

uint32_t tm__intern_set_id_limit(uint32_t limit) {
  uint32_t old = id_limit;
  id_limit = limit == 0 || limit > ID_MAX ? ID_MAX : limit;
  return old;
}

uint32_t tm__intern_generation_now(void) { return atomic_load(&tm__intern_generation); }
