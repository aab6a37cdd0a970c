/* addr_bitmap.h — a set of heap addresses as one bit per 16-byte granule. Internal.
 *
 * The tracer's own heap blocks (those malloc'd while the guard is held: libdw, GLib, libunwind)
 * come and go by the tens of thousands in a first report. A hash table puts each of them in a
 * random slot, a cache miss per operation; blocks allocated one after the other sit at adjacent
 * addresses, so a bitmap indexed by address keeps them in the same few cache lines.
 *
 * The address space (TM_BITMAP_ADDR_BITS bits) is a two-level radix tree: a static top array of
 * mids, each mid an array of leaves, each leaf the bitmap of 1 MiB of addresses (8 KiB). Mids and
 * leaves come from tm__map() when first needed and stay until the process ends, so a reader never
 * sees one freed. Each leaf also keeps the sum of the sizes recorded in it, so that the set's total
 * size is known without a global counter that every thread would write.
 *
 * Every operation is lock-free (atomic bit operations; a mid or leaf is published with a
 * compare-and-swap), allocates nothing but its mids and leaves through tm__map(), and is safe in a
 * forked child: a bit is never half-written, and tm__map()'s lock is held across fork(). Addresses
 * at or above 2^TM_BITMAP_ADDR_BITS are not recorded (user space on x86-64 and arm64 stays below).
 */
#ifndef TM_ADDR_BITMAP_H
#define TM_ADDR_BITMAP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TM_BITMAP_ADDR_BITS 48
#define TM_BITMAP_GRANULE_SHIFT 4 /* malloc's blocks are 16-byte aligned */
#define TM_BITMAP_LEAF_SHIFT 20   /* a leaf covers 1 MiB of addresses: 65,536 bits, 8 KiB */
#define TM_BITMAP_MID_SHIFT 14    /* a mid holds 16,384 leaves: 16 GiB of addresses, 256 KiB */
#define TM_BITMAP_TOP                                                                              \
  ((size_t)1 << (TM_BITMAP_ADDR_BITS - TM_BITMAP_LEAF_SHIFT - TM_BITMAP_MID_SHIFT))
#define TM_BITMAP_LEAF_WORDS ((size_t)1 << (TM_BITMAP_LEAF_SHIFT - TM_BITMAP_GRANULE_SHIFT - 6))
#define TM_BITMAP_MID_LEAVES ((size_t)1 << TM_BITMAP_MID_SHIFT)

typedef struct tm__bitmap_leaf {
  _Atomic uint64_t words[TM_BITMAP_LEAF_WORDS];
} tm__bitmap_leaf;

typedef struct tm__bitmap_mid {
  _Atomic(tm__bitmap_leaf *) leaves[TM_BITMAP_MID_LEAVES];
  /* Bytes recorded in each leaf; signed so that a race with tm__bitmap_reset() reads as a small
   * error, never as a wrap-around. */
  atomic_long bytes[TM_BITMAP_MID_LEAVES];
} tm__bitmap_mid;

/* Leaves are also listed as they are made, so that a sum or a reset visits only those (a walk of
 * the mids would read, and in a forked child fault in, 256 KiB per mid). Past this many, the list
 * overflows and they walk the mids. */
#define TM_BITMAP_LISTED 65536

/* A zero-filled tm__bitmap (static storage) is an empty set. */
typedef struct tm__bitmap {
  _Atomic(tm__bitmap_mid *) mids[TM_BITMAP_TOP];
  atomic_size_t nlisted; /* slots of listed[] claimed; may exceed TM_BITMAP_LISTED */
  struct {
    _Atomic(tm__bitmap_mid *) mid; /* NULL until the claiming thread has written it */
    _Atomic size_t leaf;
  } listed[TM_BITMAP_LISTED];
} tm__bitmap;

/* Adds addr, of size bytes, to the set. Returns true when it was added, false when it was there
 * already (nothing counted) or could not be (no memory for a leaf, or an address out of range).
 * Thread-safe, lock-free, async-signal-safe apart from a first tm__map() of a leaf. */
bool tm__bitmap_add(tm__bitmap *b, uintptr_t addr, size_t size);

/* Removes addr, of size bytes (the size it was added with), from the set. Returns whether it was
 * there. Thread-safe, lock-free, allocates nothing. */
bool tm__bitmap_remove(tm__bitmap *b, uintptr_t addr, size_t size);

/* Whether addr is in the set. Thread-safe, lock-free, allocates nothing. */
bool tm__bitmap_contains(const tm__bitmap *b, uintptr_t addr);

/* Whether addr's leaf exists: a false answer proves addr is not in the set with two loads, no
 * access to the leaf. Thread-safe. */
bool tm__bitmap_may_contain(const tm__bitmap *b, uintptr_t addr);

/* The sum of the sizes of the addresses in the set (0 if a race made it negative). Walks the
 * mids: for reports, not for the hot path. Thread-safe. */
size_t tm__bitmap_bytes(const tm__bitmap *b);

/* Empties the set; its mids and leaves stay mapped (zeroed) for reuse. Additions racing with it
 * may survive it. Thread-safe. */
void tm__bitmap_reset(tm__bitmap *b);

#endif /* TM_ADDR_BITMAP_H */
