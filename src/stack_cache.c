/* stack_cache.c — learning a stack's slots (see stack_cache.h). */
#define UNW_LOCAL_ONLY
#include <libunwind.h>
#include <pthread.h>

#include "stack_cache.h"

__thread tm__stack_entry tm__stack_cache[TM_STACK_CACHE_ENTRIES]
    __attribute__((tls_model("initial-exec")));

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

/* Walks the stack with a cursor from here and stores, for frames 2..n of the captured stack,
 * where their return addresses are saved, as offsets from cfa. Returns false when the walk does
 * not meet the captured stack exactly, or a return address is not saved just below the next
 * frame's stack pointer (a signal frame, say), or a slot lies outside the thread's stack. */
static __attribute__((noinline)) bool learn_slots(tm__stack_entry *e, uintptr_t cfa,
                                                   const uintptr_t *ips, int n) {
  unw_context_t context;
  unw_cursor_t cursor;
  unw_word_t ip = 0, sp = 0;
  int depth = 0;

  if (unw_getcontext(&context) != 0 || unw_init_local(&cursor, &context) != 0)
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
  uint64_t check = 0;
  for (int k = 1; k < n; k++) {
    if (unw_step(&cursor) <= 0 || unw_get_reg(&cursor, UNW_REG_IP, &ip) != 0 ||
        unw_get_reg(&cursor, UNW_REG_SP, &sp) != 0)
      return false;
    uintptr_t slot = (uintptr_t)sp - sizeof(uintptr_t);
    if (ip != ips[k] || slot < cfa || slot + sizeof(uintptr_t) > stack_hi ||
        slot - cfa > UINT32_MAX || *(const uintptr_t *)slot != ips[k])
      return false;
    e->offset[k - 1] = (uint32_t)(slot - cfa);
    check = tm__stack_mix(check, ips[k]);
  }
  e->check = check;
  return true;
}

/* How much an entry is worth keeping. */
static int worth(const tm__stack_entry *e) {
  if (e->ra == 0)
    return 0;
  if (e->nslots == TM_STACK_CANDIDATE)
    return 1;
  return e->nslots == TM_STACK_UNCACHEABLE ? 2 : 3;
}

void tm__stack_cache_learn(uintptr_t ra, uintptr_t cfa, int limit, const uintptr_t *ips, int n,
                           uint32_t tb) {
  if (tb == 0 || n < 1 || n > TM_STACK_CACHE_FRAMES || limit > UINT16_MAX || ips[0] != ra ||
      !stack_bounds() || cfa < stack_lo || cfa >= stack_hi)
    return;
  tm__stack_entry *set = tm__stack_set(ra, cfa), *e = NULL;
  for (int way = 0; way < 2; way++)
    if (set[way].ra == ra && set[way].cfa == cfa && set[way].limit == (uint16_t)limit)
      e = &set[way];
  if (e != NULL && e->tb == tb) {
    if (e->nslots == TM_STACK_CANDIDATE) /* seen before: learn it now */
      e->nslots = learn_slots(e, cfa, ips, n) ? (uint16_t)(n - 1) : TM_STACK_UNCACHEABLE;
    else if (e->nslots != TM_STACK_UNCACHEABLE) /* learned, yet its slots no longer match */
      e->nslots = TM_STACK_UNCACHEABLE;
    return;
  }
  if (e == NULL) /* a new key: into the way worth less (empty < candidate < uncacheable < learned) */
    e = worth(&set[0]) < worth(&set[1]) ? &set[0] : &set[1];
  /* First sight of this stack at this key: remember it, learn nothing yet, so that stacks seen
   * once never pay for the cursor walk. */
  *e = (tm__stack_entry){.ra = ra, .cfa = cfa, .tb = tb, .limit = (uint16_t)limit,
                         .nslots = TM_STACK_CANDIDATE};
}
