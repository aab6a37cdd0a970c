/* stack_cache.h — recognizes a stack seen before without unwinding it. Internal.
 *
 * Most allocations come from call sites reached through the same frames again and again: a
 * test's loop, a container that grows, a parser's thousand call sites. Such a stack is identified
 * by the return address of the hooked call (ra), the hook's canonical frame address (cfa, the
 * caller's stack pointer), and the words its walk read: the return addresses saved in the frames
 * above and, for every frame addressed from its frame pointer, the saved rbp that located it. A
 * miss walks the stack with the frame rules of frame_rules.h, which tell where each of those words
 * is; the walk of a stack seen twice at the same (ra, cfa) is kept as the words' offsets from cfa
 * and a hash of their values. From then on a capture reads those words, checks them against the
 * hash, and reuses the interned id: a few independent loads instead of a walk and an intern
 * lookup. Learning costs nothing beyond the walk itself, so no policy can make a miss cost more
 * than a walk: a miss costs one walk, one intern lookup and one entry write. Any difference in
 * the words, a different traceback limit or a different cfa makes it a miss.
 *
 * Why the words suffice: frame 0's rule follows from ra; if its CFA comes from rsp it is cfa plus
 * a constant, if from rbp it is the checked rbp plus a constant. Either way the return address it
 * saved is at the learned offset and checked, which gives frame 1's rule, and so on; where rbp is
 * restored from follows from the rules too. An alloca or VLA frame is addressed from rbp, so the
 * stale return addresses that a grown frame leaves in the dead stack cannot pass for frames that
 * are gone: the rbp that locates it differs. Only stacks inside the thread's own stack are walked
 * (coroutine and signal stacks, and frames whose rules are not of the simple kinds, unwind with
 * libunwind and are not cached), so the reads never leave it.
 *
 * Per thread, two-way set-associative (a hot stack survives one colliding neighbour), no locks, a
 * table mapped on the thread's first miss, grown with its misses, and given back when the thread
 * exits; a hit writes nothing. A forked child inherits its thread's entries, which stay right:
 * same stack, same addresses.
 */
#ifndef TM_STACK_CACHE_H
#define TM_STACK_CACHE_H

#include <stdbool.h>
#include <stdint.h>

/* A thread's table starts with TM_STACK_CACHE_MIN_SETS sets of two entries (6 KiB) and grows
 * fourfold, up to TM_STACK_CACHE_MAX_SETS (1.5 MiB, 32,768 entries: room for 10,000 stacks with
 * few collisions), each time it has missed 8 times as often as it has entries: a program with many
 * hot stacks gets room for them, one with a few keeps a small table. The offsets of an entry's
 * words are kept once per distinct list (a layout, process-wide): stacks that differ only in
 * their call site usually share one. */
#define TM_STACK_CACHE_MIN_SETS 64
#define TM_STACK_CACHE_MAX_SETS 16384
#define TM_STACK_CACHE_FRAMES 65 /* walked at most: limits up to 64 are cached */
/* Checked words: a return address for each frame walked past the first, a saved rbp for each
 * frame addressed from rbp. */
#define TM_STACK_CACHE_SLOTS (2 * TM_STACK_CACHE_FRAMES - 2)

/* Where an entry's words are: immutable once published, never freed. */
typedef struct tm__stack_layout {
  uint64_t hash;
  uint32_t nslots;
  int16_t offset[]; /* slot address - cfa (-16: the caller's rbp in the hook) */
} tm__stack_layout;

typedef struct tm__stack_entry {
  uintptr_t ra, cfa;                /* the key; ra == 0: empty */
  uint64_t check;                   /* tm__stack_hash() of the words at the layout's slots */
  const tm__stack_layout *layout;   /* NULL: a candidate (seen once, not usable yet) */
  uint32_t tb;                      /* the interned traceback */
  uint32_t limit;                   /* the traceback limit it was captured with */
  uint32_t generation;              /* of the interned tracebacks tb belongs to (runtime.h) */
} tm__stack_entry;

struct tm__scratch; /* scratch.h: the thread's table is scratch->stack_cache */

/* The first of the two entries of table t (mask: its sets - 1) that key (ra, cfa) may occupy. */
static inline tm__stack_entry *tm__stack_set(tm__stack_entry *t, uint32_t mask, uintptr_t ra,
                                             uintptr_t cfa) {
  uint64_t h = (uint64_t)(ra ^ (cfa << 17) ^ (cfa >> 4)) * UINT64_C(0x9e3779b97f4a7c15);
  return &t[((uint32_t)(h >> 40) & mask) * 2];
}

static inline uint64_t tm__stack_mix(uint64_t h, uintptr_t word) {
  return ((h << 7) | (h >> 57)) ^ (word * UINT64_C(0xff51afd7ed558ccd));
}

/* The check of the words at cfa + offset[0..n): two interleaved chains, so that a long stack's
 * mixes overlap. */
static inline __attribute__((always_inline)) uint64_t tm__stack_hash(const int16_t *offset,
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

/* Returns the interned traceback of the current stack if it is cached in table t (the calling
 * thread's, NULL before its first miss; mask: its sets - 1) under the current generation of
 * interned tracebacks (entries of older ones name freed ids), else 0. ra, cfa and fp
 * (__builtin_frame_address(0)) are the hook's own; limit is the traceback limit in force. A slot
 * at offset -16 is the caller's rbp, saved by the hook's prologue at fp == cfa - 16. Call with the
 * guard held. */
static inline __attribute__((always_inline)) uint32_t tm__stack_cache_find(tm__stack_entry *t,
                                                                           uint32_t mask,
                                                                           uint32_t generation,
                                                                           uintptr_t ra,
                                                                           uintptr_t cfa,
                                                                           uintptr_t fp,
                                                                           int limit) {
  if (t == NULL || fp + 16 != cfa)
    return 0;
  const tm__stack_entry *e = tm__stack_set(t, mask, ra, cfa);
  if (e->ra != ra || e->cfa != cfa || e->limit != (uint32_t)limit)
    e++;
  if (e->ra != ra || e->cfa != cfa || e->limit != (uint32_t)limit || e->layout == NULL ||
      e->generation != generation)
    return 0;
  return tm__stack_hash(e->layout->offset, e->layout->nslots, cfa) == e->check ? e->tb : 0;
}

/* Captures the current stack on a miss: walks it with the frame rules (at most limit + 1 frames),
 * interns it, and remembers it in the thread's table under scratch->stack_generation (a candidate
 * the first time a key is seen, a learned entry the second time). Returns the interned id, or 0 when the stack cannot be walked
 * with the rules (unsupported frames, a stack outside the thread's, a limit above
 * TM_STACK_CACHE_FRAMES - 1, no memory): the caller then unwinds with libunwind. ra, cfa and fp
 * are the hook's (see tm__stack_cache_find); scratch is the thread's block (its capture buffer
 * holds the walk). Allocates nothing on the heap. Call with the guard
 * held, from the hook. */
uint32_t tm__stack_cache_miss(struct tm__scratch *scratch, uintptr_t ra, uintptr_t cfa, uintptr_t fp,
                              int limit);

/* Walks the stack from the hook's ra, cfa and fp with the frame rules. Stores up to max return
 * addresses in ips (ips[0] == ra) and, when offsets is not NULL, the offsets from cfa of the words
 * the walk read (*nslots of them; UINT_MAX when more than max_slots). Returns the number of frames
 * (fewer than max when the outermost frame was reached), or -1 when a frame's rule is unsupported
 * or the walk would leave the thread's stack. For tests and tm__stack_cache_miss. */
int tm__stack_walk(uintptr_t ra, uintptr_t cfa, uintptr_t fp, uintptr_t *ips, int max,
                   int16_t *offsets, unsigned *nslots, unsigned max_slots);

/* Empties the calling thread's cache (tests start from a known state). */
void tm__stack_cache_clear(void);

/* Empties the table of scratch (a thread's block), keeping its size: its ids are stale. */
void tm__stack_cache_empty(struct tm__scratch *scratch);

/* Gives back the table of scratch (a thread's block, at the thread's exit). */
void tm__stack_cache_release(struct tm__scratch *scratch);

#endif /* TM_STACK_CACHE_H */
