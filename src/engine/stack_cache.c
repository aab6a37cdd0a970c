/* stack_cache.c — learning a stack's slots (see stack_cache.h). */
#define UNW_LOCAL_ONLY
#include <libunwind.h>
#include <pthread.h>
#include <string.h>

#include "scratch.h"
#include "stack_cache.h"

/* The calling thread's stack, [lo, hi); lo == hi == 1 when it could not be read. */
static __thread uintptr_t stack_lo, stack_hi __attribute__((tls_model("initial-exec")));

static bool stack_bounds(void) {
  if (stack_hi == 0) {
    pthread_attr_t attr;
    void *addr = NULL;
    size_t size = 0;
    stack_lo = stack_hi = 1;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
      if (pthread_attr_getstack(&attr, &addr, &size) == 0 && addr != NULL && size != 0) {
        stack_lo = (uintptr_t)addr;
        stack_hi = (uintptr_t)addr + size;
      }
      pthread_attr_destroy(&attr);
    }
  }
  return stack_hi > stack_lo;
}

/* Appends the word at addr, which must hold value, to the entry's *nslots checked slots. */
static bool add_slot(tm__stack_entry *e, unsigned *nslots, uintptr_t cfa, uintptr_t addr,
                     uintptr_t value) {
  intptr_t offset = (intptr_t)(addr - cfa);
  if (*nslots >= TM_STACK_CACHE_SLOTS || offset > INT32_MAX || offset < INT32_MIN ||
      *(const uintptr_t *)addr != value)
    return false;
  e->offset[(*nslots)++] = (int32_t)offset;
  return true;
}

/* Walks the stack with a cursor from here and stores, for frames 2..n of the captured stack,
 * where their return addresses are saved, as offsets from cfa, and for every frame below them
 * addressed from its frame pointer, where that rbp is saved. Returns false when the walk does not
 * meet the captured stack exactly, or a return address is not saved just below the next frame's
 * stack pointer, or a frame pointer is not saved in memory the entry can check, or a slot lies
 * outside the thread's stack, or the stack goes through a signal frame. */
static __attribute__((noinline)) bool learn_slots(tm__stack_entry *e, uintptr_t cfa, uintptr_t fp,
                                                   const uintptr_t *ips, int n) {
#if defined(__x86_64__)
  unw_context_t context;
  unw_cursor_t cursor;
  unw_word_t ip = 0, sp = 0;
  int depth = 0;

  if (fp + 16 != cfa || unw_getcontext(&context) != 0 || unw_init_local(&cursor, &context) != 0)
    return false;
  /* Find the caller's frame: its ip is ra and its stack pointer is the hook's cfa. */
  for (;;) {
    if (unw_get_reg(&cursor, UNW_REG_IP, &ip) != 0 || unw_get_reg(&cursor, UNW_REG_SP, &sp) != 0)
      return false;
    if (ip == ips[0] && sp == cfa)
      break;
    if (sp > cfa || ++depth > 16 || unw_step(&cursor) <= 0)
      return false;
  }
  unsigned nslots = 0;
  for (int k = 1; k < n; k++) {
    /* The cursor is on frame k (ip ips[k - 1]); the next one starts at its CFA. */
    unw_word_t rbp = 0;
    unw_save_loc_t rbp_at;
    if (unw_is_signal_frame(&cursor) != 0 || unw_get_reg(&cursor, UNW_X86_64_RBP, &rbp) != 0 ||
        unw_get_save_loc(&cursor, UNW_X86_64_RBP, &rbp_at) != 0 || unw_step(&cursor) <= 0 ||
        unw_get_reg(&cursor, UNW_REG_IP, &ip) != 0 || unw_get_reg(&cursor, UNW_REG_SP, &sp) != 0)
      return false;
    uintptr_t slot = (uintptr_t)sp - sizeof(uintptr_t);
    if (ip != ips[k] || slot < cfa || slot + sizeof(uintptr_t) > stack_hi ||
        !add_slot(e, &nslots, cfa, slot, ips[k]))
      return false;
    if (rbp == sp - 2 * sizeof(uintptr_t)) {
      /* Frame k may be addressed from its frame pointer: its size need not follow from its ip
       * (alloca), so where it ends is checked by the rbp that locates it. Saved in a frame above
       * cfa, or by the hook's prologue at fp. */
      uintptr_t at = (uintptr_t)rbp_at.u.addr;
      if (rbp_at.type != UNW_SLT_MEMORY ||
          !(at == fp || (at >= cfa && at + sizeof(uintptr_t) <= stack_hi)) ||
          !add_slot(e, &nslots, cfa, at, rbp))
        return false;
    }
  }
  e->check = tm__stack_hash(e->offset, nslots, cfa); /* the words just checked */
  e->nslots = (uint16_t)nslots;
  return true;
#else
  (void)e, (void)cfa, (void)fp, (void)ips, (void)n;
  return false; /* the slots' layout above is x86-64's */
#endif
}

/* How much an entry is worth keeping. */
static int worth(const tm__stack_entry *e) {
  if (e->ra == 0)
    return 0;
  if (e->nslots == TM_STACK_CANDIDATE)
    return 1;
  return e->nslots == TM_STACK_UNCACHEABLE ? 2 : 3;
}

/* A cursor walk costs microseconds, a miss ~100 ns. Entries can be evicted and seen anew (three
 * hot stacks sharing one set, say), so without a bound a pattern of pairs could pay a walk every
 * other allocation. A thread therefore walks at most once per TM_STACK_WALK_PRICE misses: its
 * misses pay the debt down; a candidate seen while in debt stays a candidate, learned later. */
static __thread unsigned walk_debt __attribute__((tls_model("initial-exec")));

void tm__stack_cache_clear(void) {
  if (tm__scratch_self != NULL)
    memset(tm__scratch_self->stack_cache, 0, sizeof tm__scratch_self->stack_cache);
  walk_debt = 0;
}

void tm__stack_cache_learn(tm__stack_entry *cache, uintptr_t ra, uintptr_t cfa, uintptr_t fp,
                           int limit, const uintptr_t *ips, int n, uint32_t tb) {
  if (tb == 0 || n < 1 || n > TM_STACK_CACHE_FRAMES || limit > UINT16_MAX || ips[0] != ra ||
      !stack_bounds() || cfa < stack_lo || cfa >= stack_hi)
    return;
  tm__stack_entry *set = tm__stack_set(cache, ra, cfa), *e = NULL;
  for (int way = 0; way < 2; way++)
    if (set[way].ra == ra && set[way].cfa == cfa && set[way].limit == (uint16_t)limit)
      e = &set[way];
  if (walk_debt > 0)
    walk_debt--;
  if (e != NULL && e->tb == tb) {
    if (e->nslots == TM_STACK_CANDIDATE) {
      if (walk_debt == 0) { /* seen before, and a walk is affordable: learn it now */
        walk_debt = TM_STACK_WALK_PRICE;
        if (!learn_slots(e, cfa, fp, ips, n))
          e->nslots = TM_STACK_UNCACHEABLE;
      }
    } else if (e->nslots != TM_STACK_UNCACHEABLE) { /* learned, yet its slots no longer match */
      e->nslots = TM_STACK_UNCACHEABLE;
    }
    return;
  }
  if (e == NULL) /* a new key: into the way worth less (empty < candidate < uncacheable < learned) */
    e = worth(&set[0]) < worth(&set[1]) ? &set[0] : &set[1];
  /* First sight of this stack at this key: remember it, learn nothing yet, so that stacks seen
   * once never pay for the cursor walk. */
  *e = (tm__stack_entry){.ra = ra, .cfa = cfa, .tb = tb, .limit = (uint16_t)limit,
                         .nslots = TM_STACK_CANDIDATE};
}
