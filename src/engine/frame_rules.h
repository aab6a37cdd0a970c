/* frame_rules.h — how to step from a frame to its caller, per return address, read once from the
 * module's .eh_frame. Internal.
 *
 * A walk with libunwind's unw_backtrace looks up every frame in libunwind's per-thread cache and
 * then runs libunwind's generic step. The rules here are what x86-64 code nearly always needs:
 * the caller's stack pointer (the CFA) is rsp or rbp plus a constant, the return address is saved
 * at CFA - 8, and rbp is either untouched or saved at CFA plus a constant. They are computed from
 * the DWARF call frame information of the return address's function (.eh_frame_hdr's binary search
 * table, then the CIE's and the FDE's instructions up to that address) the first time the address
 * is seen, and kept in a process-wide table read without locks. Anything else (a CFA expression, a
 * signal frame, a register saved in another register, a module without .eh_frame_hdr) gives
 * TM_RULE_UNSUPPORTED, and the capture falls back to libunwind.
 */
#ifndef TM_FRAME_RULES_H
#define TM_FRAME_RULES_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
  TM_RULE_UNSUPPORTED = 0, /* walk with libunwind instead */
  TM_RULE_STEP = 1,        /* an ordinary frame: the fields below say how to step */
  TM_RULE_LAST = 2,        /* the outermost frame (its return address is undefined: _start) */
};

typedef struct tm__frame_rule {
  uint8_t kind;      /* TM_RULE_* */
  bool cfa_rbp;      /* CFA = rbp + cfa_offset, else rsp + cfa_offset */
  bool rbp_saved;    /* the caller's rbp is saved at CFA + rbp_offset, else rbp is unchanged */
  int16_t rbp_offset;
  int32_t cfa_offset;
} tm__frame_rule;

/* The cache: open addressing on ip, entries written once (ip by CAS from 0, then the packed rule).
 * A forgotten entry keeps TM_RULE_FORGOTTEN as its ip and is never reused: a reader that found ip
 * in a slot then reads that ip's rule, or 0, never another address's. */
#define TM_RULE_BITS 18
#define TM_RULES (1u << TM_RULE_BITS)
#define TM_RULE_PROBES 16
#define TM_RULE_FORGOTTEN ((uintptr_t)1) /* no return address is 1 */

typedef struct tm__rule_slot {
  _Atomic uintptr_t ip;
  _Atomic uint64_t packed; /* 0: being written */
} tm__rule_slot;

extern _Atomic(tm__rule_slot *) tm__rule_table;

/* The number of rules the calling thread computed (tm__frame_rule_miss): a capture that saw it
 * change went through dl_iterate_phdr, deep into the stack. */
extern __thread unsigned tm__frame_rules_computed __attribute__((tls_model("initial-exec")));

/* Computes, caches and returns the rule of ip (the slow path of tm__frame_rule_of). */
tm__frame_rule tm__frame_rule_miss(uintptr_t ip);

static inline size_t tm__rule_home(uintptr_t ip) {
  return (size_t)((ip * UINT64_C(0x9e3779b97f4a7c15)) >> (64 - TM_RULE_BITS));
}

static inline tm__frame_rule tm__rule_unpack(uint64_t v) {
  return (tm__frame_rule){.kind = (uint8_t)(v & 3),
                          .cfa_rbp = (v >> 2) & 1,
                          .rbp_saved = (v >> 3) & 1,
                          .rbp_offset = (int16_t)(uint16_t)(v >> 16),
                          .cfa_offset = (int32_t)(uint32_t)(v >> 32)};
}

/* Returns the rule of the frame whose return address is ip. Computed on the first request for ip
 * and then cached; safe to call from a malloc hook with the guard held (allocates nothing on the
 * heap, may call dl_iterate_phdr on a cache miss). Thread-safe. */
static inline tm__frame_rule tm__frame_rule_of(uintptr_t ip) {
  tm__rule_slot *t = atomic_load_explicit(&tm__rule_table, memory_order_acquire);
  if (t != NULL) {
    size_t i = tm__rule_home(ip);
    for (int k = 0; k < TM_RULE_PROBES; k++, i = (i + 1) & (TM_RULES - 1)) {
      uintptr_t at = atomic_load_explicit(&t[i].ip, memory_order_acquire);
      if (at == ip) {
        uint64_t v = atomic_load_explicit(&t[i].packed, memory_order_acquire);
        if (v != 0)
          return tm__rule_unpack(v);
        break;
      }
      if (at == 0)
        break;
    }
  }
  return tm__frame_rule_miss(ip);
}

/* Computes the rule of ip from the call frame information without the cache (for tests). */
tm__frame_rule tm__frame_rule_compute(uintptr_t ip);

/* Forgets the cached rules of return addresses in [lo, hi) (a module there was unloaded: its
 * addresses may hold other code later). Thread-safe; reads the whole table (4 MiB) once. */
void tm__frame_rules_forget(uintptr_t lo, uintptr_t hi);

#endif /* TM_FRAME_RULES_H */
