/* stack_cache.h — recognizes a stack seen before without unwinding it. Internal.
 *
 * Most allocations come from a few call sites, each reached through the same frames again and
 * again: a test's loop, a container that grows. Such a stack is identified by the return address
 * of the hooked call (ra), the hook's canonical frame address (cfa, the caller's stack pointer),
 * and the return addresses saved in the stack slots of the frames above. Once a stack has been
 * seen twice at the same (ra, cfa), its slots' offsets from cfa are learned with a libunwind
 * cursor (which knows every frame's CFA); from then on a capture reads those slots, checks them
 * against a hash of the return addresses they held, and reuses the interned id: a few loads
 * instead of a walk through libunwind's cache and a hash-table lookup (measured in
 * bench/alloc_churn). Any difference in the slots, a different traceback limit or a different
 * cfa makes it a miss, which unwinds as before. Only stacks inside the thread's own stack are
 * learned, so the reads can never leave it (coroutine and signal stacks always unwind).
 *
 * The slots are where they were only if every frame below them has the size it had. A frame whose
 * CFA is its stack pointer plus a constant (as its ip says) does; a frame addressed from its frame
 * pointer may not (alloca, a VLA: the same ra and cfa under a frame that grew, the dead stack
 * still holding the return addresses of frames that are gone). So for every frame whose rbp is
 * its CFA - 16, the saved rbp that locates it is checked too (x86-64; elsewhere nothing is
 * learned). A stack through a signal frame (its interrupted frame is located by the saved
 * context) is never learned.
 *
 * Per thread (in the thread's scratch block, scratch.h), two-way set-associative (a hot stack
 * survives one colliding neighbour), no locks; a hit writes nothing. A forked child inherits its thread's entries, which stay
 * right: same stack, same addresses.
 */
#ifndef TM_STACK_CACHE_H
#define TM_STACK_CACHE_H

#include <stdbool.h>
#include <stdint.h>

#define TM_STACK_CACHE_ENTRIES 32 /* 16 sets of 2 ways */
#define TM_STACK_CACHE_FRAMES 32 /* stacks recording more frames are not cached */
/* Checked words: a return address for each of frames 2..n, and a saved rbp for each frame below. */
#define TM_STACK_CACHE_SLOTS (2 * (TM_STACK_CACHE_FRAMES - 1))
#define TM_STACK_CANDIDATE UINT16_MAX       /* nslots of an entry seen once: not usable yet */
#define TM_STACK_UNCACHEABLE (UINT16_MAX - 1) /* nslots of a stack whose slots cannot be read */

typedef struct tm__stack_entry {
  uintptr_t ra, cfa;  /* the key; ra == 0: empty */
  uint64_t check;     /* tm__stack_check() of the return addresses at the slots */
  uint32_t tb;        /* the interned traceback */
  uint16_t limit;     /* the traceback limit it was captured with */
  uint16_t nslots;    /* slots to check, TM_STACK_CANDIDATE or TM_STACK_UNCACHEABLE */
  int32_t offset[TM_STACK_CACHE_SLOTS]; /* slot address - cfa (-16: the caller's rbp in the hook) */
} tm__stack_entry;

/* The first of the two entries of cache (a thread's TM_STACK_CACHE_ENTRIES) that key (ra, cfa)
 * may occupy. */
static inline tm__stack_entry *tm__stack_set(tm__stack_entry *cache, uintptr_t ra, uintptr_t cfa) {
  uint64_t h = (uint64_t)(ra ^ (cfa << 17) ^ (cfa >> 4)) * UINT64_C(0x9e3779b97f4a7c15);
  return &cache[(h >> 60) * 2];
}

static inline uint64_t tm__stack_mix(uint64_t h, uintptr_t word) {
  return ((h << 7) | (h >> 57)) ^ (word * UINT64_C(0xff51afd7ed558ccd));
}

/* The check of the words at cfa + offset[0..n): two interleaved chains, so that a long stack's
 * mixes overlap. */
static inline __attribute__((always_inline)) uint64_t tm__stack_hash(const int32_t *offset,
                                                                     unsigned n, uintptr_t cfa) {
  uint64_t h0 = 0, h1 = 0;
  unsigned k = 0;
  for (; k + 1 < n; k += 2) {
    h0 = tm__stack_mix(h0, *(const volatile uintptr_t *)(cfa + (uintptr_t)(intptr_t)offset[k]));
    h1 = tm__stack_mix(h1, *(const volatile uintptr_t *)(cfa + (uintptr_t)(intptr_t)offset[k + 1]));
  }
  if (k < n)
    h0 = tm__stack_mix(h0, *(const volatile uintptr_t *)(cfa + (uintptr_t)(intptr_t)offset[k]));
  return h0 ^ ((h1 << 29) | (h1 >> 35));
}

/* Returns the interned traceback of the current stack if it is cached in cache (the calling
 * thread's), else 0. ra, cfa and fp (__builtin_frame_address(0)) are the hook's own; limit is the
 * traceback limit in force. A slot at offset -16 is the caller's rbp, saved by the hook's prologue
 * at fp == cfa - 16. Call with the guard held. */
static inline __attribute__((always_inline)) uint32_t tm__stack_cache_find(const tm__stack_entry *cache,
                                                                           uintptr_t ra,
                                                                           uintptr_t cfa,
                                                                           uintptr_t fp,
                                                                           int limit) {
  if (fp + 16 != cfa)
    return 0;
  const tm__stack_entry *e = tm__stack_set((tm__stack_entry *)cache, ra, cfa);
  if (e->ra != ra || e->cfa != cfa || e->limit != (uint16_t)limit)
    e++;
  if (e->ra != ra || e->cfa != cfa || e->limit != (uint16_t)limit ||
      e->nslots > TM_STACK_CACHE_SLOTS)
    return 0;
  return tm__stack_hash(e->offset, e->nslots, cfa) == e->check ? e->tb : 0;
}

/* Records what a miss unwound: ips[0..n) (ips[0] == ra) interned as tb under limit. The first
 * time a key is seen it becomes a candidate; the second time with the same traceback, its
 * slots are learned, or it is marked uncacheable and never walked again. Never fails (a stack it
 * cannot learn is simply not cached). fp is the hook's __builtin_frame_address(0): the caller's
 * rbp is saved there. Call with the guard held, from the hook's frame. */
void tm__stack_cache_learn(tm__stack_entry *cache, uintptr_t ra, uintptr_t cfa, uintptr_t fp,
                           int limit, const uintptr_t *ips, int n, uint32_t tb);

/* Misses a thread pays between two cursor walks (see stack_cache.c). */
#define TM_STACK_WALK_PRICE 64

/* Empties the calling thread's cache and its walk debt (tests start from a known state). */
void tm__stack_cache_clear(void);

#endif /* TM_STACK_CACHE_H */
