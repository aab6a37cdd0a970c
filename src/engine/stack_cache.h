/* stack_cache.h — recognizes a stack seen before without unwinding it. Internal.
 *
 * Most allocations come from call sites reached through the same frames again and again: a
 * test's loop, a container that grows, a parser's thousand call sites. Such a stack is identified
 * by the return address of the hooked call (ra), the hook's canonical frame address (cfa, the
 * caller's stack pointer), and the words its walk read: the return addresses saved in the frames
 * above and, for every frame addressed from its frame pointer, the saved rbp that located it. A
 * miss walks the stack with the frame rules of frame_rules.h, which tell where each of those words
 * is, and notes them as offsets from cfa (a layout). When the intern lookup says the stack was
 * known (its second walk), the walk is kept: the layout and a hash of the words' values. From then
 * on a capture reads those words, checks them against the hash, and reuses the interned id: a few
 * independent loads instead of a walk and an intern lookup. A stack met once is never learned, so
 * it costs what it would without the cache: a walk and an intern lookup. Any difference in the
 * words, a different traceback limit or a different cfa makes it a miss.
 *
 * Why the words suffice: frame 0's rule follows from ra; if its CFA comes from rsp it is cfa plus
 * a constant, if from rbp it is the checked rbp plus a constant. Either way the return address it
 * saved is at the learned offset and checked, which gives frame 1's rule, and so on; where rbp is
 * restored from follows from the rules too. An alloca or VLA frame is addressed from rbp, so the
 * stale return addresses that a grown frame leaves in the dead stack cannot pass for frames that
 * are gone: the rbp that locates it differs. Only stacks inside the thread's own stack are walked
 * (coroutine and signal stacks, and frames whose rules are not of the simple kinds, unwind with
 * libunwind and are not cached), and a layout is used only where all its words lie inside the
 * thread's stack, so the reads never leave it.
 *
 * Per thread, four-way set-associative with one cache line per set, no locks, a table mapped on
 * the thread's first miss, grown with its misses, and given back when the thread exits. An entry
 * holds no key: the key's mix is folded into its check, so that 16 bytes hold it. A hit sets the
 * entry's used mark (once); a new stack takes an empty way, else one not used since its set last
 * evicted, so a stack seen once does not push out the hot ones. A key with several stacks (one
 * call site reached through many callers at the same depth, as in a compiler's allocation
 * wrappers) keeps two in its set and the others under variant keys, found from the words at the
 * start of the key's first layout. A forked child inherits its thread's entries, which stay right:
 * same stack, same addresses.
 */
#ifndef TM_STACK_CACHE_H
#define TM_STACK_CACHE_H

#include <stdbool.h>
#include <stdint.h>

/* A thread's table is made of sets of TM_STACK_CACHE_WAYS 16-byte entries, one cache line per
 * set. It starts with TM_STACK_CACHE_MIN_SETS sets (1 KiB) and grows fourfold, up to
 * TM_STACK_CACHE_MAX_SETS (1 MiB, 65,536 entries: room for 10,000 hot stacks with few
 * collisions), each time it has missed as often as it has entries: a program with many hot stacks
 * gets room for them, one with a few keeps a small table. The offsets of an entry's words are kept
 * once per distinct list (a layout, process-wide, named by a 16-bit id): stacks that differ only
 * in their call site usually share one. */
#define TM_STACK_CACHE_WAYS 4
#define TM_STACK_CACHE_MIN_SETS 16
#define TM_STACK_CACHE_MAX_SETS 16384
#define TM_STACK_CACHE_FRAMES 65 /* walked at most: limits up to 64 are cached */
/* Checked words: a return address for each frame walked past the first, a saved rbp for each
 * frame addressed from rbp. */
#define TM_STACK_CACHE_SLOTS (2 * TM_STACK_CACHE_FRAMES - 2)
#define TM_STACK_LAYOUTS 32768 /* layout ids 1..TM_STACK_LAYOUTS - 1 */

/* Where an entry's words are: immutable once published, never freed. */
typedef struct tm__stack_layout {
  uint64_t hash;
  uint32_t nslots;
  uint32_t reach;   /* the largest offset + 8: the words lie below cfa + reach */
  int16_t offset[]; /* slot address - cfa (-16: the caller's rbp in the hook) */
} tm__stack_layout;

/* The published layouts, by id (0: none). */
extern const tm__stack_layout *tm__stack_layouts[TM_STACK_LAYOUTS];

#define TM_STACK_LAYOUT_MASK 0x7fffu
#define TM_STACK_TB_MASK 0xffffffu /* interned ids are 24 bits */
#define TM_STACK_USED 0x8000u /* hit since it was written, or since its set last evicted */

/* An entry does not hold its key: the key's mix (tm__stack_key) is folded into the check. Bits
 * 32 and up of the mix choose the set, and bits 36 to 51 are the tag, which tells which entries
 * are worth hashing for; with the entry's set, it also tells where the entry goes in a table four
 * times larger, so that a table grows without forgetting. */
typedef struct tm__stack_entry {
  uint64_t check;  /* tm__stack_hash() of the words at the layout's slots ^ the key's mix */
  uint32_t tb;     /* the interned traceback (TM_STACK_TB_MASK) | tm__stack_fp() << 24 */
  uint16_t layout; /* tm__stack_layouts[layout & TM_STACK_LAYOUT_MASK] (0: empty) | TM_STACK_USED */
  uint16_t tag;    /* the key's tag */
} tm__stack_entry;

struct tm__scratch; /* scratch.h: the thread's table is scratch->stack_cache */

/* The mix of a key: the return address of the hooked call, the hook's cfa, the traceback limit,
 * and the epoch (which changes when interned ids are freed or a library is unloaded, so that
 * older entries stop answering without being emptied). */
static inline uint64_t tm__stack_key(uintptr_t ra, uintptr_t cfa, uint32_t limit, uint32_t epoch) {
  uint64_t h = (uint64_t)ra * UINT64_C(0x9e3779b97f4a7c15);
  h ^= (uint64_t)cfa * UINT64_C(0xc2b2ae3d27d4eb4f);
  h ^= (((uint64_t)epoch << 8) | limit) * UINT64_C(0x165667b19e3779f9);
  h ^= h >> 31;
  h *= UINT64_C(0xff51afd7ed558ccd);
  h ^= h >> 29;
  return h;
}

static inline uint16_t tm__stack_tag(uint64_t key) { return (uint16_t)(key >> 36); }

/* The set (its first entry) of table t (mask: its sets - 1) for a key's mix. */
static inline tm__stack_entry *tm__stack_set(tm__stack_entry *t, uint32_t mask, uint64_t key) {
  return &t[((uint32_t)(key >> 32) & mask) * TM_STACK_CACHE_WAYS];
}

static inline uint64_t tm__stack_mix(uint64_t h, uintptr_t word) {
  return ((h << 7) | (h >> 57)) ^ (word * UINT64_C(0xff51afd7ed558ccd));
}

/* The word at cfa + offset. */
static inline uintptr_t tm__stack_word(uintptr_t cfa, int16_t offset) {
  return *(const volatile uintptr_t *)(cfa + (uintptr_t)(intptr_t)offset);
}

/* The check of the words at cfa + offset[k..n), two interleaved chains (so that a long stack's
 * mixes overlap) starting from h0 and h1 at k (even). */
static inline __attribute__((always_inline)) uint64_t tm__stack_hash_from(const int16_t *offset,
                                                                          unsigned n, uintptr_t cfa,
                                                                          uint64_t h0, uint64_t h1,
                                                                          unsigned k) {
  for (; k + 1 < n; k += 2) {
    h0 = tm__stack_mix(h0, tm__stack_word(cfa, offset[k]));
    h1 = tm__stack_mix(h1, tm__stack_word(cfa, offset[k + 1]));
  }
  if (k < n)
    h0 = tm__stack_mix(h0, tm__stack_word(cfa, offset[k]));
  return h0 ^ ((h1 << 29) | (h1 >> 35));
}

/* The check of the words at cfa + offset[0..n). */
static inline __attribute__((always_inline)) uint64_t tm__stack_hash(const int16_t *offset,
                                                                     unsigned n, uintptr_t cfa) {
  return tm__stack_hash_from(offset, n, cfa, 0, 0, 0);
}

/* The first step of both chains of the check of layout l at cfa (*h0, *h1: the mixes of its first
 * two words, 0 for a word it does not have), and the fingerprint of the stack: 8 bits of those
 * mixes. The stacks of one key have their first words at the same places (frame 0's rule follows
 * from ra), and usually differ there (the caller's return address), so that an entry of another
 * stack of the key is passed over without hashing the rest; a matching one goes on from there. */
static inline __attribute__((always_inline)) uint32_t tm__stack_fp_start(const tm__stack_layout *l,
                                                                         uintptr_t cfa,
                                                                         uint64_t *h0,
                                                                         uint64_t *h1) {
  *h0 = l->nslots > 0 ? tm__stack_mix(0, tm__stack_word(cfa, l->offset[0])) : 0;
  *h1 = l->nslots > 1 ? tm__stack_mix(0, tm__stack_word(cfa, l->offset[1])) : 0;
  return (uint32_t)((*h0 ^ *h1) >> 56);
}

/* The fingerprint alone (tm__stack_fp_start). */
static inline uint32_t tm__stack_fp(const tm__stack_layout *l, uintptr_t cfa) {
  uint64_t h0, h1;
  return tm__stack_fp_start(l, cfa, &h0, &h1);
}

/* A key's third stack and later ones are kept under variant keys, in up to
 * TM_STACK_VARIANT_LEVELS levels: the variant key of level k mixes the key with the words at the
 * first TM_STACK_VARIANT_PREFIX(k) slots of the layout of the key's first entry. Those words are
 * the same every time for a given stack: the stacks of a key share their first frames up to
 * where they part, and where they part, the return addresses differ. A stack goes to the first
 * level whose set holds fewer than TM_STACK_KEY_WAYS entries of its variant key. */
#define TM_STACK_KEY_WAYS 3
#define TM_STACK_VARIANT_LEVELS 2
#define TM_STACK_VARIANT_PREFIX(k) (2u << (2 * (k))) /* 2, 8, 32 slots */

static inline uint64_t tm__stack_variant_key(uint64_t key, const tm__stack_layout *first,
                                             unsigned level, uintptr_t cfa) {
  unsigned n = TM_STACK_VARIANT_PREFIX(level);
  uint64_t h = tm__stack_hash(first->offset, n < first->nslots ? n : first->nslots, cfa) ^ key;
  h ^= (uint64_t)(level + 1) * UINT64_C(0x6a09e667f3bcc909);
  h ^= h >> 33;
  h *= UINT64_C(0xc4ceb9fe1a85ec53);
  h ^= h >> 29;
  return h;
}

/* The lookup in one set: returns the id of the entry of key whose check matches the words at
 * cfa, else 0, and stores in *first the layout of the first entry whose tag matched (0 when none
 * did). A tag may match an entry of another key, learned at another cfa: its layout is used only
 * if its words lie below hi, the top of the thread's stack (cfa is inside it), so that no read
 * leaves the stack. */
static inline __attribute__((always_inline)) uint32_t tm__stack_set_find(tm__stack_entry *set,
                                                                         uint64_t key,
                                                                         uintptr_t cfa,
                                                                         uintptr_t hi,
                                                                         unsigned *first) {
  uint16_t tag = tm__stack_tag(key);
  *first = 0;
  for (int way = 0; way < TM_STACK_CACHE_WAYS; way++) {
    tm__stack_entry *e = &set[way];
    unsigned id = e->layout & TM_STACK_LAYOUT_MASK;
    if (e->tag != tag || id == 0)
      continue;
    const tm__stack_layout *l = tm__stack_layouts[id];
    if (cfa + l->reach > hi)
      continue;
    if (*first == 0)
      *first = id;
    uint64_t h0, h1;
    if ((e->tb >> 24) != tm__stack_fp_start(l, cfa, &h0, &h1))
      continue;
    if ((tm__stack_hash_from(l->offset, l->nslots, cfa, h0, h1, 2) ^ key) == e->check) {
      if (!(e->layout & TM_STACK_USED))
        e->layout |= TM_STACK_USED;
      return e->tb & TM_STACK_TB_MASK;
    }
  }
  return 0;
}

/* Zeroes the stack below the caller's frame, where a miss's calls ran: their frames saved the
 * caller's registers, the new block's address among them, and a conservative scan of a frame that
 * later lies there (the Check plugin's reachability verdict) would take that stale copy for a
 * pointer that keeps the block reachable. Call right after a miss. */
void tm__stack_scrub(void);

/* The same over 1 KiB: after a miss walked with rules already read (no dl_iterate_phdr). */
void tm__stack_scrub_walk(void);

/* The same for the few hundred bytes below a hook that a hit and the recording of a block use. */
void tm__stack_scrub_small(void);

/* The lookup of the variants of a key (out of line: only keys with several stacks get there). */
uint32_t tm__stack_cache_find_variant(tm__stack_entry *t, uint32_t mask, uint64_t key,
                                      unsigned first, uintptr_t cfa, uintptr_t hi);

/* Returns the interned traceback of the current stack if table t (the calling thread's, NULL
 * before its first miss; mask: its sets - 1; [lo, hi): the thread's stack) holds it under key (tm__stack_key() of the hook's ra
 * and cfa, the limit in force and the current epoch), else 0. cfa and fp
 * (__builtin_frame_address(0)) are the hook's own. One key may have several stacks (the same
 * call site reached through other callers at the same depth): three are kept in the key's set,
 * each checked when its tag and the fingerprint of its first words match (the check's hash goes on
 * from the fingerprint's first step); the others under their variant keys
 * (tm__stack_variant_key). A hit marks its entry used. A slot at offset -16 is the
 * caller's rbp, saved by the hook's prologue at fp == cfa - 16. Call with the guard held. */
static inline __attribute__((always_inline)) uint32_t tm__stack_cache_find(tm__stack_entry *t,
                                                                           uint32_t mask,
                                                                           uint64_t key,
                                                                           uintptr_t cfa,
                                                                           uintptr_t fp,
                                                                           uintptr_t lo,
                                                                           uintptr_t hi) {
  if (t == NULL || fp + 16 != cfa || cfa - lo >= hi - lo)
    return 0;
  unsigned first;
  uint32_t tb = tm__stack_set_find(tm__stack_set(t, mask, key), key, cfa, hi, &first);
  if (tb != 0 || first == 0)
    return tb;
  return tm__stack_cache_find_variant(t, mask, key, first, cfa, hi);
}

/* Captures the current stack on a miss: walks it with the frame rules (at most limit + 1 frames),
 * interns it, and, when the intern lookup found the stack known already (its second walk or
 * later), remembers it in the thread's table under key (see tm__stack_cache_find), in an empty way
 * of its set, else in one not used since its set last evicted. Returns the interned id, or 0 when
 * the stack cannot be walked with the rules (unsupported frames, a
 * stack outside the thread's, a limit above TM_STACK_CACHE_FRAMES - 1, no memory): the caller then
 * unwinds with libunwind. ra, cfa and fp are the hook's; scratch is the thread's block (its
 * capture buffer holds the walk). Allocates nothing on the heap. Call with the guard held, from
 * the hook. */
uint32_t tm__stack_cache_miss(struct tm__scratch *scratch, uintptr_t ra, uintptr_t cfa, uintptr_t fp,
                              int limit, uint64_t key);

/* Walks the stack from the hook's ra, cfa and fp with the frame rules. Stores up to max return
 * addresses in ips (ips[0] == ra) and, when offsets is not NULL, the offsets from cfa of the words
 * the walk read (*nslots of them; UINT_MAX when more than max_slots). Returns the number of frames
 * (fewer than max when the outermost frame was reached), or -1 when a frame's rule is unsupported
 * or the walk would leave the thread's stack. For tests and tm__stack_cache_miss. */
int tm__stack_walk(uintptr_t ra, uintptr_t cfa, uintptr_t fp, uintptr_t *ips, int max,
                   int16_t *offsets, unsigned *nslots, unsigned max_slots);

/* Capture statistics, compiled in only with -DTM_CAPTURE_STATS (meson setup -Dc_args=...): how
 * often a capture was a hit, a miss walked with the frame rules, or unwound by libunwind, and why
 * the misses missed; printed to stderr at exit. Without the macro they cost nothing. */
enum {
  TM_CAPTURE_HIT,
  TM_CAPTURE_WALKED,       /* a miss the frame rules walked */
  TM_CAPTURE_UNWOUND,      /* a capture libunwind unwound */
  TM_CAPTURE_MISS_NEW,     /* no entry of the key in the table */
  TM_CAPTURE_MISS_WORDS,   /* entries of the key, none with these words (another stack) */
  TM_CAPTURE_MISS_UNCACHEABLE, /* no table, or a frame pointer not where the cache reads it */
  TM_CAPTURE_LAST_ID,      /* the largest interned id a walk returned: distinct stacks walked */
  TM_CAPTURE_VARIANT_HIT,  /* hits found under a variant key */
  TM_CAPTURE_COUNTERS
};
#ifdef TM_CAPTURE_STATS
extern _Atomic unsigned long long tm__capture_stats[TM_CAPTURE_COUNTERS];
#define TM_CAPTURE_COUNT(what) (tm__capture_stats[what]++)
#else
#define TM_CAPTURE_COUNT(what) ((void)0)
#endif

/* Grows the calling thread's table to at least sets sets (up to TM_STACK_CACHE_MAX_SETS), keeping
 * its entries (tests that need room). Call with the guard held or outside tracing. */
void tm__stack_cache_reserve(uint32_t sets);

/* Empties the calling thread's cache (tests start from a known state). */
void tm__stack_cache_clear(void);

/* Empties the table of scratch (a thread's block), keeping its size: its ids are stale. */
void tm__stack_cache_empty(struct tm__scratch *scratch);

/* Gives back the table of scratch (a thread's block, at the thread's exit). */
void tm__stack_cache_release(struct tm__scratch *scratch);

#endif /* TM_STACK_CACHE_H */
