/* addr_bitmap.c — a set of heap addresses, one bit per 16-byte granule. See addr_bitmap.h. */
#include "addr_bitmap.h"
#include "guard.h"

static inline size_t top_of(uintptr_t addr) {
  return (size_t)(addr >> (TM_BITMAP_LEAF_SHIFT + TM_BITMAP_MID_SHIFT));
}
static inline size_t leaf_of(uintptr_t addr) {
  return (size_t)(addr >> TM_BITMAP_LEAF_SHIFT) & (TM_BITMAP_MID_LEAVES - 1);
}
static inline size_t bit_of(uintptr_t addr) {
  return (size_t)(addr >> TM_BITMAP_GRANULE_SHIFT) &
         (((size_t)1 << (TM_BITMAP_LEAF_SHIFT - TM_BITMAP_GRANULE_SHIFT)) - 1);
}

static inline bool in_range(uintptr_t addr) {
  return (uint64_t)addr < (UINT64_C(1) << TM_BITMAP_ADDR_BITS);
}

/* Returns *slot, or maps a zeroed block of size bytes and publishes it there (a racing thread's
 * block wins and ours goes back); *made tells whether ours was published. NULL when out of
 * memory. */
static void *child_get(void *_Atomic *slot, size_t size, bool *made) {
  *made = false;
  void *p = atomic_load_explicit(slot, memory_order_acquire);
  if (p != NULL)
    return p;
  void *fresh = tm__map(size);
  if (fresh == NULL)
    return NULL;
  if (atomic_compare_exchange_strong_explicit(slot, &p, fresh, memory_order_acq_rel,
                                              memory_order_acquire)) {
    *made = true;
    return fresh;
  }
  tm__unmap(fresh, size);
  return p;
}

/* Lists a leaf just made (see TM_BITMAP_LISTED). */
static void leaf_list(tm__bitmap *b, tm__bitmap_mid *m, size_t l) {
  size_t i = atomic_fetch_add_explicit(&b->nlisted, 1, memory_order_relaxed);
  if (i >= TM_BITMAP_LISTED)
    return;
  atomic_store_explicit(&b->listed[i].leaf, l, memory_order_relaxed);
  atomic_store_explicit(&b->listed[i].mid, m, memory_order_release);
}

/* Calls fn(m, l, arg) for every leaf that exists (listed ones, or all by walking the mids when the
 * list overflowed); a leaf being listed right now may be skipped. */
static void leaves_each(const tm__bitmap *b, void (*fn)(tm__bitmap_mid *, size_t, void *),
                        void *arg) {
  size_t n = atomic_load_explicit(&b->nlisted, memory_order_acquire);
  if (n <= TM_BITMAP_LISTED) {
    for (size_t i = 0; i < n; i++) {
      tm__bitmap_mid *m = atomic_load_explicit(&b->listed[i].mid, memory_order_acquire);
      if (m != NULL)
        fn(m, atomic_load_explicit(&b->listed[i].leaf, memory_order_relaxed), arg);
    }
    return;
  }
  for (size_t t = 0; t < TM_BITMAP_TOP; t++) {
    tm__bitmap_mid *m = atomic_load_explicit(&b->mids[t], memory_order_acquire);
    for (size_t l = 0; m != NULL && l < TM_BITMAP_MID_LEAVES; l++)
      if (atomic_load_explicit(&m->leaves[l], memory_order_acquire) != NULL)
        fn(m, l, arg);
  }
}

/* The mid and leaf of addr, or NULL when they do not exist. */
static inline tm__bitmap_mid *mid_find(const tm__bitmap *b, uintptr_t addr) {
  if (!in_range(addr))
    return NULL;
  return atomic_load_explicit(&b->mids[top_of(addr)], memory_order_acquire);
}

static inline tm__bitmap_leaf *leaf_find(const tm__bitmap_mid *m, uintptr_t addr) {
  return atomic_load_explicit(&m->leaves[leaf_of(addr)], memory_order_acquire);
}

bool tm__bitmap_add(tm__bitmap *b, uintptr_t addr, size_t size) {
  if (!in_range(addr))
    return false;
  bool made;
  tm__bitmap_mid *m = child_get((void *_Atomic *)&b->mids[top_of(addr)], sizeof *m, &made);
  if (m == NULL)
    return false;
  size_t l = leaf_of(addr);
  tm__bitmap_leaf *leaf = child_get((void *_Atomic *)&m->leaves[l], sizeof *leaf, &made);
  if (leaf == NULL)
    return false;
  if (made)
    leaf_list(b, m, l);
  size_t bit = bit_of(addr);
  uint64_t mask = UINT64_C(1) << (bit & 63);
  if (atomic_fetch_or_explicit(&leaf->words[bit >> 6], mask, memory_order_relaxed) & mask)
    return false;
  atomic_fetch_add_explicit(&m->bytes[l], (long)size, memory_order_relaxed);
  return true;
}

bool tm__bitmap_remove(tm__bitmap *b, uintptr_t addr, size_t size) {
  tm__bitmap_mid *m = mid_find(b, addr);
  if (m == NULL)
    return false;
  size_t l = leaf_of(addr);
  tm__bitmap_leaf *leaf = leaf_find(m, addr);
  if (leaf == NULL)
    return false;
  size_t bit = bit_of(addr);
  uint64_t mask = UINT64_C(1) << (bit & 63);
  _Atomic uint64_t *word = &leaf->words[bit >> 6];
  /* A plain load first: most lookups of a program's block find the bit clear, with no locked
   * instruction. */
  if (!(atomic_load_explicit(word, memory_order_relaxed) & mask))
    return false;
  if (!(atomic_fetch_and_explicit(word, ~mask, memory_order_relaxed) & mask))
    return false;
  atomic_fetch_sub_explicit(&m->bytes[l], (long)size, memory_order_relaxed);
  return true;
}

bool tm__bitmap_contains(const tm__bitmap *b, uintptr_t addr) {
  const tm__bitmap_mid *m = mid_find(b, addr);
  if (m == NULL)
    return false;
  const tm__bitmap_leaf *leaf = leaf_find(m, addr);
  if (leaf == NULL)
    return false;
  size_t bit = bit_of(addr);
  return (atomic_load_explicit(&leaf->words[bit >> 6], memory_order_relaxed) >> (bit & 63)) & 1;
}

bool tm__bitmap_may_contain(const tm__bitmap *b, uintptr_t addr) {
  const tm__bitmap_mid *m = mid_find(b, addr);
  return m != NULL && leaf_find(m, addr) != NULL;
}

static void leaf_sum(tm__bitmap_mid *m, size_t l, void *arg) {
  *(long *)arg += atomic_load_explicit(&m->bytes[l], memory_order_relaxed);
}

size_t tm__bitmap_bytes(const tm__bitmap *b) {
  long total = 0;
  leaves_each(b, leaf_sum, &total);
  return total > 0 ? (size_t)total : 0;
}

static void leaf_reset(tm__bitmap_mid *m, size_t l, void *arg) {
  (void)arg;
  tm__bitmap_leaf *leaf = atomic_load_explicit(&m->leaves[l], memory_order_acquire);
  /* Only the words in use are written: a page of the leaf with no bit set stays shared with the
   * parent in a forked child, or unfaulted. */
  for (size_t w = 0; leaf != NULL && w < TM_BITMAP_LEAF_WORDS; w++)
    if (atomic_load_explicit(&leaf->words[w], memory_order_relaxed) != 0)
      atomic_store_explicit(&leaf->words[w], 0, memory_order_relaxed);
  if (atomic_load_explicit(&m->bytes[l], memory_order_relaxed) != 0)
    atomic_store_explicit(&m->bytes[l], 0, memory_order_relaxed);
}

void tm__bitmap_reset(tm__bitmap *b) { leaves_each(b, leaf_reset, NULL); }
