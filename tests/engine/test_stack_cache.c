/* test_stack_cache.c — a stack seen before is recognized without unwinding, and never mistaken
 * for another: the same call site reached through other callers at the same stack depth, other
 * recursion depths, another traceback limit, a signal handler, other threads. Links the internal
 * archive to read raw tracebacks and the thread's cache. */
#include <check.h>
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

#define UNW_LOCAL_ONLY
#include <libunwind.h>

#include "engine.h"
#include "frame_rules.h"
#include "run_suite.h"
#include "scratch.h"
#include "stack_cache.h"
#include "tracemalloc.h"

/* Exported (the binary is linked with -rdynamic) so that dladdr can name their frames. */
void *site(void);
void *via_a(void);
void *via_b(void);
void *recurse(int depth);
void *thread_a(void *arg);
void *thread_b(void *arg);
void raise_from_f1(void);
void raise_from_f2(void);
void *vla_leaf(void *(*alloc)(size_t));
void *vla_site(int depth, int pad, bool leaf, void *(*alloc)(size_t));
void *vla_run(int depth, int pad, bool leaf, void *(*alloc)(size_t));
void vla_calls(int n, const int *depth, const int *pad, bool leaf, void *(*alloc)(size_t),
               void **out);
void *probe_alloc(size_t size);
void trap_after_call(void);
void on_sigill(int sig, siginfo_t *info, void *context);

/* gcc may clone a function for constant arguments (a frame dladdr cannot name); clang does not
 * and has no such attribute. */
#if defined(__clang__)
#define NOINLINE_NOCLONE __attribute__((noinline))
#else
#define NOINLINE_NOCLONE __attribute__((noinline, noclone))
#endif

static uint32_t tb_id_of(void *p) {
  tm__raw_trace t;
  ck_assert_msg(tm__trace_find((uintptr_t)p, &t), "block %p is not traced", p);
  return t.tb_id;
}

static const char *function_of(uintptr_t ip) {
  Dl_info info;
  if (dladdr((void *)(ip - 1), &info) == 0 || info.dli_sname == NULL)
    return "?";
  return info.dli_sname;
}

/* How many frames of p's traceback are in function name. */
static int frames_in(void *p, const char *name) {
  const tm__interned_tb *tb = tm__traceback_lookup(tb_id_of(p));
  int count = 0;
  for (int i = 0; i < tb->nframe; i++)
    count += strcmp(function_of(tb->ips[i]), name) == 0;
  return count;
}

/* The calling thread's learned entry for traceback id, or NULL. */
static const tm__stack_entry *learned_entry(uint32_t id) {
  const tm__scratch *s = tm__scratch_self;
  size_t n = s != NULL && s->stack_cache != NULL
                 ? ((size_t)s->stack_cache_mask + 1) * TM_STACK_CACHE_WAYS
                 : 0;
  for (size_t i = 0; i < n; i++)
    if ((s->stack_cache[i].tb & TM_STACK_TB_MASK) == id &&
        (s->stack_cache[i].layout & TM_STACK_LAYOUT_MASK) != 0)
      return &s->stack_cache[i];
  return NULL;
}

/* The set of the calling thread's table that entry e is in. */
static size_t set_of(const tm__stack_entry *e) {
  return (size_t)(e - tm__scratch_self->stack_cache) / TM_STACK_CACHE_WAYS;
}

__attribute__((noinline)) void *site(void) {
  void *p = malloc(24);
  __asm__ volatile("" ::: "memory"); /* a real call, not a tail call */
  return p;
}

/* Twins: the same frame layout, so site() runs at the same stack depth under either. */
__attribute__((noinline)) void *via_a(void) {
  void *p = site();
  __asm__ volatile("" ::: "memory");
  return p;
}

__attribute__((noinline)) void *via_b(void) {
  void *p = site();
  __asm__ volatile("" ::: "memory");
  return p;
}

__attribute__((noinline)) void *recurse(int depth) {
  void *p = depth == 0 ? site() : recurse(depth - 1);
  __asm__ volatile("" ::: "memory");
  return p;
}

/* Loop bounds the compiler cannot see: an unrolled loop would make each call its own call site. */
static volatile int two = 2, three = 3, four = 4;

static void setup(void) { tm__stack_cache_clear(); }

static void teardown(void) { tm_stop(); }

/* The id of p's traceback, 0 when untraced. Allocates nothing (unlike a Check assertion, whose
 * message is an allocation that could take the place of the entry a test is looking at). */
static uint32_t raw_id(void *p) {
  tm__raw_trace t;
  return tm__trace_find((uintptr_t)p, &t) ? t.tb_id : 0;
}

/* The third capture of a stack is a hit: the same id as the unwound ones, and an entry learned
 * with one slot per frame above the caller, plus one per frame below addressed from rbp. */
START_TEST(test_repeated_stack_is_learned) {
  void *p[4];
  uint32_t ids[4];
  ck_assert_int_eq(tm_start(16), 0);
  for (int i = 0; i < four; i++)
    p[i] = via_a();
  for (int i = 0; i < 4; i++)
    ids[i] = raw_id(p[i]);
  const tm__stack_entry *found = learned_entry(ids[0]);
  tm__stack_entry e = found ? *found : (tm__stack_entry){0};
  ck_assert_ptr_nonnull(found);
  ck_assert_uint_ne(ids[0], 0);
  for (int i = 1; i < 4; i++)
    ck_assert_uint_eq(ids[i], ids[0]);
  unsigned nframe = tm__traceback_lookup(ids[0])->nframe;
  /* A return address a frame above the caller, and a saved rbp a frame-pointer frame. */
  const tm__stack_layout *layout = tm__stack_layouts[e.layout & TM_STACK_LAYOUT_MASK];
  ck_assert_uint_ge(layout->nslots, nframe - 1);
  ck_assert_uint_le(layout->nslots, 2 * nframe);
  ck_assert_uint_ge(layout->reach, 8u * (nframe - 1));
  /* Hit: the entry was marked used. */
  ck_assert_uint_ne(e.layout & TM_STACK_USED, 0);
  for (int i = 0; i < 4; i++)
    free(p[i]);
}
END_TEST

/* A stack walked once is not learned: most stacks of a program with very many are met once, and
 * an entry for each would cost more than it saves. Its second walk learns it. */
START_TEST(test_stack_learned_on_second_walk) {
  void *p[2];
  bool learned[2];
  ck_assert_int_eq(tm_start(16), 0);
  for (int i = 0; i < two; i++) {
    p[i] = via_a();
    learned[i] = learned_entry(raw_id(p[i])) != NULL;
  }
  ck_assert_uint_ne(raw_id(p[0]), 0);
  ck_assert_uint_eq(raw_id(p[1]), raw_id(p[0]));
  ck_assert(!learned[0]);
  ck_assert(learned[1]);
  for (int i = 0; i < 2; i++)
    free(p[i]);
}
END_TEST

/* via_b reaches site() at the same (return address, stack pointer) key as via_a: both are kept,
 * side by side in the key's set under the same tag, and the words tell them apart, every time. */
START_TEST(test_other_caller_same_depth) {
  ck_assert_int_eq(tm_start(16), 0);
  void *a[3], *b[3];
  for (int i = 0; i < three; i++)
    a[i] = via_a();
  for (int i = 0; i < three; i++)
    b[i] = via_b();
  uint32_t id_a = raw_id(a[2]), id_b = raw_id(b[2]);
  const tm__stack_entry *e_a = learned_entry(id_a), *e_b = learned_entry(id_b);
  ck_assert_ptr_nonnull(e_a);
  ck_assert_ptr_nonnull(e_b);
  ck_assert_uint_ne(id_b, id_a);
  ck_assert_ptr_ne(e_a, e_b);
  /* The same key: the same set and tag. */
  ck_assert_uint_eq(set_of(e_a), set_of(e_b));
  ck_assert_uint_eq(e_a->tag, e_b->tag);
  for (int round = 0; round < three; round++) {
    void *pa = via_a(), *pb = via_b();
    ck_assert_int_eq(frames_in(pa, "via_a"), 1);
    ck_assert_int_eq(frames_in(pa, "via_b"), 0);
    ck_assert_int_eq(frames_in(pb, "via_b"), 1);
    ck_assert_int_eq(frames_in(pb, "via_a"), 0);
    free(pa);
    free(pb);
  }
  for (int i = 0; i < 3; i++) {
    ck_assert_int_eq(frames_in(a[i], "via_a"), 1);
    ck_assert_int_eq(frames_in(b[i], "via_b"), 1);
    free(a[i]);
    free(b[i]);
  }
}
END_TEST

/* Each recursion depth is its own stack, learned and then hit, always with its own depth. */
START_TEST(test_recursion_depths) {
  ck_assert_int_eq(tm_start(64), 0);
  uint32_t ids[7];
  for (int round = 0; round < three; round++) {
    for (int depth = 0; depth < 7; depth++) {
      void *p = recurse(depth);
      ck_assert_int_eq(frames_in(p, "recurse"), depth + 1);
      ck_assert_int_eq(frames_in(p, "site"), 1);
      if (round == 0)
        ids[depth] = tb_id_of(p);
      else
        ck_assert_uint_eq(tb_id_of(p), ids[depth]);
      free(p);
    }
  }
}
END_TEST

/* An entry learned under one traceback limit never answers under another. */
START_TEST(test_limit_change) {
  ck_assert_int_eq(tm_start(2), 0);
  for (int i = 0; i < three; i++) {
    void *p = via_a();
    ck_assert_uint_eq(tm__traceback_lookup(tb_id_of(p))->nframe, 2);
    free(p);
  }
  ck_assert_int_eq(tm_start(4), 0);
  for (int i = 0; i < three; i++) {
    void *p = via_a();
    ck_assert_uint_eq(tm__traceback_lookup(tb_id_of(p))->nframe, 4);
    ck_assert_int_eq(frames_in(p, "via_a"), 1);
    free(p);
  }
}
END_TEST

static void *volatile from_handler;

void on_signal(int sig);

void on_signal(int sig) {
  (void)sig;
  from_handler = site(); /* raise() is synchronous: malloc is safe here */
}

__attribute__((noinline)) void raise_from_f1(void) {
  raise(SIGUSR1);
  __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void raise_from_f2(void) {
  raise(SIGUSR1);
  __asm__ volatile("" ::: "memory");
}

/* A stack through a signal frame names the function that raised it, every time. */
START_TEST(test_signal_handler) {
  struct sigaction sa = {.sa_handler = on_signal};
  sigemptyset(&sa.sa_mask);
  ck_assert_int_eq(sigaction(SIGUSR1, &sa, NULL), 0);
  ck_assert_int_eq(tm_start(32), 0);
  for (int round = 0; round < four; round++) {
    bool first = round % 2 == 0;
    if (first)
      raise_from_f1();
    else
      raise_from_f2();
    void *p = from_handler;
    ck_assert_int_eq(frames_in(p, "on_signal"), 1);
    ck_assert_int_eq(frames_in(p, "raise_from_f1"), first ? 1 : 0);
    ck_assert_int_eq(frames_in(p, "raise_from_f2"), first ? 0 : 1);
    free(p);
  }
  signal(SIGUSR1, SIG_DFL);
}
END_TEST

/* A function that only returns, for a call whose return address is then the interrupted ip. */
__asm__(".text\n"
        ".globl tm_test_just_return\n"
        ".type tm_test_just_return, @function\n"
        "tm_test_just_return:\n"
        "\tret\n"
        ".size tm_test_just_return, .-tm_test_just_return\n");

/* Faults right after a call returns: the interrupted ip is that call's return address, still
 * saved just below the interrupted stack pointer, as if the signal frame were an ordinary one. */
__attribute__((noinline)) void trap_after_call(void) {
#if defined(__x86_64__)
  __asm__ volatile("call tm_test_just_return\n\tud2" ::: "memory");
#else
  raise(SIGILL);
#endif
}

void on_sigill(int sig, siginfo_t *info, void *context) {
  (void)sig, (void)info;
  from_handler = site();
#if defined(__x86_64__)
  ((ucontext_t *)context)->uc_mcontext.gregs[REG_RIP] += 2; /* then past the ud2 */
#else
  (void)context;
#endif
}

/* A stack through a signal frame is never learned, even when its slots look like an ordinary
 * stack's: where the interrupted frame lies depends on where the kernel put the signal frame,
 * which the return addresses do not tell. Every capture unwinds and names the right frames. */
START_TEST(test_signal_frame_not_learned) {
  struct sigaction sa = {.sa_sigaction = on_sigill, .sa_flags = SA_SIGINFO};
  sigemptyset(&sa.sa_mask);
  ck_assert_int_eq(sigaction(SIGILL, &sa, NULL), 0);
  ck_assert_int_eq(tm_start(32), 0);
  void *p[4];
  for (int i = 0; i < four; i++) {
    trap_after_call();
    p[i] = from_handler;
  }
  uint32_t id = raw_id(p[3]);
  const tm__stack_entry *learned = learned_entry(id);
  signal(SIGILL, SIG_DFL);
  ck_assert_ptr_null(learned);
  for (int i = 0; i < 4; i++) {
    ck_assert_uint_eq(raw_id(p[i]), id);
    ck_assert_int_eq(frames_in(p[i], "on_sigill"), 1);
    ck_assert_int_eq(frames_in(p[i], "trap_after_call"), 1);
    free(p[i]);
  }
}
END_TEST

/* Each thread learns its own stacks: the same site names each thread's own function. */
__attribute__((noinline)) void *thread_a(void *arg) {
  (void)arg;
  void *last = NULL;
  for (int i = 0; i < four; i++) {
    free(last);
    last = site();
    if (frames_in(last, "thread_a") != 1 || frames_in(last, "thread_b") != 0)
      return NULL;
  }
  return last;
}

__attribute__((noinline)) void *thread_b(void *arg) {
  (void)arg;
  void *last = NULL;
  for (int i = 0; i < four; i++) {
    free(last);
    last = site();
    if (frames_in(last, "thread_b") != 1 || frames_in(last, "thread_a") != 0)
      return NULL;
  }
  return last;
}

START_TEST(test_threads) {
  ck_assert_int_eq(tm_start(16), 0);
  pthread_t ta, tb;
  void *ra = NULL, *rb = NULL;
  ck_assert_int_eq(pthread_create(&ta, NULL, thread_a, NULL), 0);
  ck_assert_int_eq(pthread_create(&tb, NULL, thread_b, NULL), 0);
  ck_assert_int_eq(pthread_join(ta, &ra), 0);
  ck_assert_int_eq(pthread_join(tb, &rb), 0);
  ck_assert_ptr_nonnull(ra);
  ck_assert_ptr_nonnull(rb);
  ck_assert_int_eq(frames_in(ra, "thread_a"), 1);
  ck_assert_int_eq(frames_in(rb, "thread_b"), 1);
  free(ra);
  free(rb);
}
END_TEST

/* ---- frames whose size changes at one call site (alloca, VLA) ---------------------------------- */

/* Stands in for malloc at the very same call site: records the stack pointer malloc would get. */
static volatile uintptr_t probed_cfa;

__attribute__((noinline)) void *probe_alloc(size_t size) {
  (void)size;
  probed_cfa = (uintptr_t)__builtin_dwarf_cfa();
  return NULL;
}

NOINLINE_NOCLONE void *vla_leaf(void *(*alloc)(size_t)) {
  void *p = alloc(24);
  __asm__ volatile("" ::: "memory");
  return p;
}

/* Recurses depth times, then allocates pad bytes on the stack (left unwritten) and calls alloc,
 * directly or through vla_leaf: depth 1 with no pad and depth 0 with one frame of pad call alloc
 * with the same return address and the same stack pointer, one stack with two vla_site frames,
 * the other with one. */
NOINLINE_NOCLONE void *vla_site(int depth, int pad, bool leaf,
                                                  void *(*alloc)(size_t)) {
  if (depth > 0) {
    void *p = vla_site(depth - 1, pad, leaf, alloc);
    __asm__ volatile("" ::: "memory");
    return p;
  }
  char *gap = __builtin_alloca((size_t)pad);
  __asm__ volatile("" ::"r"(gap) : "memory");
  void *p = leaf ? vla_leaf(alloc) : alloc(24);
  __asm__ volatile("" ::: "memory");
  return p;
}

/* One call site for both shapes, so that the frames above are the same. */
NOINLINE_NOCLONE void *vla_run(int depth, int pad, bool leaf,
                                                 void *(*alloc)(size_t)) {
  void *p = vla_site(depth, pad, leaf, alloc);
  __asm__ volatile("" ::: "memory");
  return p;
}

/* Calls vla_run(depth[i], pad[i], leaf, alloc) for i < n, all from one call site, so that the
 * frames above vla_run are the same for every call. */
NOINLINE_NOCLONE void vla_calls(int n, const int *depth, const int *pad,
                                                  bool leaf, void *(*alloc)(size_t), void **out) {
  for (int i = 0; i < n; i++) {
    out[i] = vla_run(depth[i], pad[i], leaf, alloc);
    __asm__ volatile("" ::: "memory");
  }
}

/* The pad that puts vla_run(0, pad, ...)'s call of alloc at the stack pointer of
 * vla_run(1, 0, ...)'s, or -1. Allocates nothing. */
static int matching_pad(bool leaf) {
  void *out[1];
  vla_calls(1, (int[]){1}, (int[]){0}, leaf, probe_alloc, out);
  uintptr_t target = probed_cfa;
  for (int pad = 0; pad <= 1024; pad += 8) {
    vla_calls(1, (int[]){0}, &pad, leaf, probe_alloc, out);
    if (probed_cfa == target)
      return pad;
  }
  return -1;
}

/* Learns the two-frame stack, then calls at the same return address and stack pointer with one
 * vla_site frame grown by alloca in place of two: the stale return address its pad still holds
 * must not pass for the frame that is gone. */
static void check_alloca_shift(bool leaf) {
  void *p[4];
  ck_assert_int_eq(tm_start(16), 0);
  int pad = matching_pad(leaf);
  ck_assert_int_ge(pad, 0);
  /* Learned by the first three; the fourth runs over the remains of the third's frames. */
  vla_calls(4, (int[]){1, 1, 1, 0}, (int[]){0, 0, 0, pad}, leaf, malloc, p);
  for (int i = 0; i < 3; i++)
    ck_assert_int_eq(frames_in(p[i], "vla_site"), 2);
  ck_assert_uint_eq(raw_id(p[2]), raw_id(p[0]));
  ck_assert_int_eq(frames_in(p[3], "vla_site"), 1);
  ck_assert_int_eq(frames_in(p[3], "vla_run"), 1);
  ck_assert_int_eq(frames_in(p[3], "vla_leaf"), leaf ? 1 : 0);
  for (int i = 0; i < 4; i++)
    free(p[i]);
}

/* ---- the walk with frame rules ----------------------------------------------------------------- */

void *walk_probe(uintptr_t *ips, int *n, void **unw, int *n_unw);
void *walk_recurse(int depth, uintptr_t *ips, int *n, void **unw, int *n_unw);
void *walk_thread(void *arg);

/* Walks from here as a hook would, and unwinds with libunwind, both without this frame. */
NOINLINE_NOCLONE void *walk_probe(uintptr_t *ips, int *n, void **unw, int *n_unw) {
  uintptr_t ra = (uintptr_t)__builtin_return_address(0);
  uintptr_t cfa = (uintptr_t)__builtin_dwarf_cfa();
  uintptr_t fp = (uintptr_t)__builtin_frame_address(0);
  int16_t offsets[TM_STACK_CACHE_SLOTS];
  unsigned nslots = 0;
  *n_unw = unw_backtrace(unw, 64) - 1;
  *n = tm__stack_walk(ra, cfa, fp, ips, 64, offsets, &nslots, TM_STACK_CACHE_SLOTS);
  __asm__ volatile("" ::: "memory");
  return NULL;
}

NOINLINE_NOCLONE void *walk_recurse(int depth, uintptr_t *ips, int *n, void **unw, int *n_unw) {
  void *r = depth == 0 ? walk_probe(ips, n, unw, n_unw)
                       : walk_recurse(depth - 1, ips, n, unw, n_unw);
  __asm__ volatile("" ::: "memory");
  return r;
}

/* The walk gives exactly libunwind's frames, up to the outermost one. */
static void check_walk_equals_libunwind(int depth) {
  uintptr_t ips[64];
  void *unw[64];
  int n = 0, n_unw = 0;
  walk_recurse(depth, ips, &n, unw, &n_unw);
  ck_assert_int_gt(n, depth + 1);
  ck_assert_int_eq(n, n_unw);
  for (int i = 0; i < n; i++)
    ck_assert_msg(ips[i] == (uintptr_t)unw[i + 1], "frame %d: %s, libunwind %s", i,
                  function_of(ips[i]), function_of((uintptr_t)unw[i + 1]));
}

NOINLINE_NOCLONE void *walk_thread(void *arg) {
  check_walk_equals_libunwind(*(int *)arg);
  return arg;
}

START_TEST(test_walk_matches_libunwind) {
  for (int depth = 0; depth < 20; depth += 7)
    check_walk_equals_libunwind(depth);
  pthread_t t;
  int depth = 5;
  void *ret = NULL;
  ck_assert_int_eq(pthread_create(&t, NULL, walk_thread, &depth), 0);
  ck_assert_int_eq(pthread_join(t, &ret), 0);
  ck_assert_ptr_eq(ret, &depth);
}
END_TEST

/* A frame rule from .eh_frame: an ordinary frame-pointer function steps through rbp; the
 * outermost frame (_start, whose return address is undefined) is the last. */
START_TEST(test_frame_rules) {
  uintptr_t ips[64];
  void *unw[64];
  int n = 0, n_unw = 0;
  walk_recurse(2, ips, &n, unw, &n_unw);
  ck_assert_int_gt(n, 3);
  tm__frame_rule r = tm__frame_rule_compute(ips[1]); /* in walk_recurse */
  ck_assert_int_eq(r.kind, TM_RULE_STEP);
  ck_assert(r.cfa_rbp);
  ck_assert_int_eq(r.cfa_offset, 16);
  ck_assert(r.rbp_saved);
  ck_assert_int_eq(r.rbp_offset, -16);
  ck_assert_int_eq(tm__frame_rule_compute(ips[n - 1]).kind, TM_RULE_LAST);
  ck_assert_int_eq(tm__frame_rule_of(ips[1]).kind, TM_RULE_STEP); /* cached the same */
  ck_assert_int_eq(tm__frame_rule_of(ips[1]).cfa_offset, 16);
  ck_assert_int_eq(tm__frame_rule_compute(0).kind, TM_RULE_UNSUPPORTED); /* no module */
}
END_TEST

/* tm_stop() frees the interned tracebacks: a stack learned before is walked anew after tm_start,
 * and its new id names the right frames. */
START_TEST(test_learned_across_stop) {
  ck_assert_int_eq(tm_start(16), 0);
  for (int i = 0; i < three; i++)
    free(via_a());
  tm_stop();
  ck_assert_int_eq(tm_start(16), 0);
  void *p[3];
  for (int i = 0; i < three; i++)
    p[i] = via_a();
  for (int i = 0; i < 3; i++) {
    ck_assert_int_eq(frames_in(p[i], "via_a"), 1);
    ck_assert_int_eq(frames_in(p[i], "site"), 1);
    ck_assert_uint_eq(raw_id(p[i]), raw_id(p[0]));
  }
  for (int i = 0; i < 3; i++)
    free(p[i]);
}
END_TEST

/* More stacks than the first table holds (one key per recursion depth): the table grows, every
 * stack keeps its own traceback, and the stacks end up learned. No Check assertion runs inside
 * the loops (its message would be one more stack). */
enum { MANY_STACKS = 300 };

/* One round of test_many_stacks, called from one place every round: a loop with a branch on the
 * round may be peeled, and an unrolled one has a call site per copy, and the stacks of those
 * rounds then differ above recurse(). */
NOINLINE_NOCLONE static void many_stacks_round(uint32_t *ids) {
  for (int depth = 0; depth < MANY_STACKS; depth++) {
    void *p = recurse(depth);
    ids[depth] = raw_id(p);
    free(p);
  }
}

START_TEST(test_many_stacks) {
  enum { STACKS = MANY_STACKS, ROUNDS = 12 };
  static uint32_t ids[ROUNDS][STACKS];
  static int recurse_frames[STACKS];
  ck_assert_int_eq(tm_start(16), 0);
  /* Not unrolled: every round calls from the same place. */
#if defined(__clang__)
#pragma clang loop unroll(disable)
#elif defined(__GNUC__)
#pragma GCC unroll 1
#endif
  for (int round = 0; round < ROUNDS; round++)
    many_stacks_round(ids[round]);
  for (int depth = 0; depth < STACKS; depth++) {
    void *p = recurse(depth);
    recurse_frames[depth] = frames_in(p, "recurse");
    free(p);
  }
  int learned = 0;
  for (int depth = 0; depth < STACKS; depth++) {
    ck_assert_uint_ne(ids[0][depth], 0);
    ck_assert_int_eq(recurse_frames[depth], depth + 1 < 15 ? depth + 1 : 15);
    for (int round = 1; round < ROUNDS; round++)
      ck_assert_uint_eq(ids[round][depth], ids[0][depth]);
    learned += learned_entry(ids[0][depth]) != NULL;
  }
  ck_assert_uint_gt(tm__scratch_self->stack_cache_mask + 1, TM_STACK_CACHE_MIN_SETS);
  ck_assert_int_gt(learned, 0);
}
END_TEST

/* Twins of via_a: site() runs at the same stack depth under each, so that one key has many stacks
 * (more than its set keeps: the others go under variant keys). */
#define TWIN(n)                                                                                    \
  void *twin_##n(void);                                                                            \
  __attribute__((noinline)) void *twin_##n(void) {                                                 \
    void *p = site();                                                                              \
    __asm__ volatile("" ::: "memory");                                                             \
    return p;                                                                                      \
  }
TWIN(0) TWIN(1) TWIN(2) TWIN(3) TWIN(4) TWIN(5) TWIN(6) TWIN(7) TWIN(8) TWIN(9) TWIN(10) TWIN(11)
static void *(*const twins[])(void) = {twin_0, twin_1, twin_2, twin_3, twin_4,  twin_5,
                                       twin_6, twin_7, twin_8, twin_9, twin_10, twin_11};
enum { NTWINS = sizeof twins / sizeof *twins };

/* Twelve callers of site() at one depth: every capture names its own caller, with the same id in
 * every round, and every stack ends up learned. */
START_TEST(test_many_callers_same_depth) {
  static uint32_t ids[4][NTWINS];
  static int own[4][NTWINS];
  int learned = 0;
  /* Room enough that no set overflows by chance (a small table may evict one of them). */
  tm__stack_cache_reserve(TM_STACK_CACHE_MAX_SETS);
  ck_assert_int_eq(tm_start(16), 0);
  for (int round = 0; round < four; round++)
    for (int i = 0; i < NTWINS; i++) {
      void *p = twins[i]();
      char name[16];
      snprintf(name, sizeof name, "twin_%d", i);
      ids[round][i] = raw_id(p);
      own[round][i] = frames_in(p, name);
      free(p);
    }
  for (int i = 0; i < NTWINS; i++) {
    for (int round = 0; round < 4; round++) {
      ck_assert_int_eq(own[round][i], 1);
      ck_assert_uint_eq(ids[round][i], ids[0][i]);
    }
    for (int j = 0; j < i; j++)
      ck_assert_uint_ne(ids[0][i], ids[0][j]);
    learned += learned_entry(ids[0][i]) != NULL;
  }
  ck_assert_int_eq(learned, NTWINS);
}
END_TEST

/* Calls lib's lib_alloc from a frame of the test's own. */
void *dl_caller(void *(*lib_alloc)(size_t));

__attribute__((noinline)) void *dl_caller(void *(*lib_alloc)(size_t)) {
  void *p = lib_alloc(40);
  __asm__ volatile("" ::: "memory");
  return p;
}

/* Loads path, allocates from it three times and checks each traceback: lib_alloc of the library
 * just loaded (not a frame the tracer takes for unloaded), called from dl_caller. Returns the
 * address of lib_alloc; *handle is the library's. */
static uintptr_t dl_round(const char *path, void **handle) {
  *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  ck_assert_msg(*handle != NULL, "%s: %s", path, dlerror());
  void *(*lib_alloc)(size_t) = (void *(*)(size_t))dlsym(*handle, "lib_alloc");
  ck_assert_ptr_nonnull(lib_alloc);
  void *p[3];
  for (int i = 0; i < three; i++)
    p[i] = dl_caller(lib_alloc);
  for (int i = 0; i < 3; i++) {
    const tm__interned_tb *tb = tm__traceback_lookup(tb_id_of(p[i]));
    ck_assert_int_eq(frames_in(p[i], "dl_caller"), 1);
    ck_assert_int_ge(tb->nframe, 3);
    Dl_info info;
    ck_assert_int_ne(dladdr((void *)(tb->ips[0] - 1), &info), 0);
    ck_assert_str_eq(info.dli_fname, path);
    ck_assert(!tm__ip_unloaded_since(tb->ips[0], tb->unload_seq));
    free(p[i]);
  }
  return (uintptr_t)lib_alloc;
}

/* A library unloaded and another loaded at its addresses: the frame rules read from the first are
 * forgotten (walked with them, lib_alloc's larger frame would end the stack in its zeros) and the
 * stacks learned through it no longer answer (their ids name an unloaded frame). Then the same
 * library again, where it was. */
START_TEST(test_dlclose_forgets) {
  void *small = NULL, *large = NULL, *again = NULL;
  ck_assert_int_eq(tm_start(16), 0);
  uintptr_t at_small = dl_round(DL_FRAME_SMALL, &small);
  ck_assert_int_eq(dlclose(small), 0);
  uintptr_t at_large = dl_round(DL_FRAME_LARGE, &large);
  ck_assert_int_eq(dlclose(large), 0);
  uintptr_t at_again = dl_round(DL_FRAME_LARGE, &again);
  ck_assert_int_eq(dlclose(again), 0);
  /* Not a check of the tracer: the case above is only the one described when the loader reused
   * the addresses, as glibc's does for a library of the same size. */
  ck_assert_msg(at_small == at_large && at_large == at_again,
                "the loader put the libraries at other addresses: %#lx, %#lx, %#lx",
                (unsigned long)at_small, (unsigned long)at_large, (unsigned long)at_again);
}
END_TEST

START_TEST(test_alloca_shift_at_caller) { check_alloca_shift(false); }
END_TEST

/* A frame further up grown by alloca: its rbp is saved by the caller's frame. */
START_TEST(test_alloca_shift_above_caller) { check_alloca_shift(true); }
END_TEST

int main(void) {
  Suite *s = suite_create("stack_cache");
  TCase *tc = tcase_create("stack_cache");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_repeated_stack_is_learned);
  tcase_add_test(tc, test_stack_learned_on_second_walk);
  tcase_add_test(tc, test_walk_matches_libunwind);
  tcase_add_test(tc, test_frame_rules);
  tcase_add_test(tc, test_many_stacks);
  tcase_add_test(tc, test_learned_across_stop);
  tcase_add_test(tc, test_other_caller_same_depth);
  tcase_add_test(tc, test_many_callers_same_depth);
  tcase_add_test(tc, test_dlclose_forgets);
  tcase_add_test(tc, test_recursion_depths);
  tcase_add_test(tc, test_limit_change);
  tcase_add_test(tc, test_signal_handler);
  tcase_add_test(tc, test_threads);
  tcase_add_test(tc, test_alloca_shift_at_caller);
  tcase_add_test(tc, test_alloca_shift_above_caller);
  tcase_add_test(tc, test_signal_frame_not_learned);
  suite_add_tcase(s, tc);
  return run_suite(s);
}
