/* churn.c — the allocation-churn workload (see churn.h for the call mix and its contracts). */
#include "churn.h"

#include <errno.h>
#include <execinfo.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* GCC may clone a function (foo.constprop.0) whose frames the checks name; clang does not. */
#if defined(__GNUC__) && !defined(__clang__)
#define TM_NOCLONE __attribute__((noclone))
#else
#define TM_NOCLONE
#endif

const int churn_depths[CHURN_NDEPTHS] = {5, 30};
const churn_sizes churn_big_sizes = {8, 4096, "sizes 8..4096"};
const churn_sizes churn_small_sizes = {16, 256, "sizes 16..256 (small blocks)"};

/* glibc's own entry points (exported, not declared by its headers). */
extern void *__libc_malloc(size_t) __attribute__((malloc, alloc_size(1)));
extern void *__libc_calloc(size_t, size_t) __attribute__((malloc, alloc_size(1, 2)));
extern void *__libc_realloc(void *, size_t) __attribute__((alloc_size(2)));
extern void __libc_free(void *);

typedef struct op {
  churn_op_kind kind;
  uint32_t slot;
  uint32_t size;
} op;

__attribute__((noinline)) int stack_frames(void) {
  void *buf[512];
  return backtrace(buf, 512);
}

static inline uint64_t rng_next(uint64_t *s) {
  /* xorshift64*: cheap and the same sequence for every configuration. */
  uint64_t x = *s;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *s = x;
  return x * 0x2545F4914F6CDD1DULL;
}

/* Draws the next call: a random slot, then an operation that depends on whether it is live. */
static inline void churn_next_op(churn *c, op *o) {
  uint64_t x = rng_next(&c->rng);
  uint32_t sel = (uint32_t)(x >> 32) & 1023;

  o->slot = (uint32_t)(((x & 0xffffffffu) * CHURN_NSLOTS) >> 32);
  o->size = (uint32_t)(c->sizes.min + (x >> 42) % (c->sizes.max - c->sizes.min + 1));
  if (c->slot[o->slot] == NULL)
    o->kind = sel < 768 ? OP_MALLOC : OP_CALLOC;
  else
    o->kind = sel < 252 ? OP_REALLOC : OP_FREE;
}

void die_nomem(const char *what, size_t size) {
  fprintf(stderr, "%s: %s(%zu) returned NULL\n", program_invocation_short_name, what, size);
  exit(1);
}

/* Performs one call. The caller of the allocator is this frame. */
static __attribute__((noinline)) TM_NOCLONE void do_op(churn *c, const op *o) {
  unsigned char *p = c->slot[o->slot];

  switch (o->kind) {
  case OP_MALLOC:
    p = c->direct ? __libc_malloc(o->size) : malloc(o->size);
    if (p == NULL)
      die_nomem("malloc", o->size);
    p[0] = (unsigned char)o->slot;
    p[o->size - 1] = 1;
    break;
  case OP_CALLOC:
    p = c->direct ? __libc_calloc(1, o->size) : calloc(1, o->size);
    if (p == NULL)
      die_nomem("calloc", o->size);
    c->checksum += p[o->size - 1];
    p[0] = (unsigned char)o->slot;
    break;
  case OP_REALLOC:
    p = c->direct ? __libc_realloc(p, o->size) : realloc(p, o->size);
    if (p == NULL)
      die_nomem("realloc", o->size);
    p[o->size - 1] = 2;
    c->live_bytes -= c->size[o->slot];
    break;
  case OP_FREE:
    c->checksum += p[0];
    if (c->direct)
      __libc_free(p);
    else
      free(p);
    c->live_bytes -= c->size[o->slot];
    c->slot[o->slot] = NULL;
    c->nops[OP_FREE]++;
    return;
  case OP_PROBE:
  case NOPS:
    c->probe_depth = stack_frames() - c->root_frames;
    return;
  }
  c->slot[o->slot] = p;
  c->size[o->slot] = o->size;
  c->live_bytes += o->size;
  c->nops[o->kind]++;
}

/* Calls do_op() from n frames further down. The barrier after each call keeps it from being a
 * tail call, so the frames really exist. */
static __attribute__((noinline)) TM_NOCLONE void descend(churn *c, int n, const op *o) {
  if (n > 1)
    descend(c, n - 1, o);
  else
    do_op(c, o);
  __asm__ volatile("" ::: "memory");
}

uint64_t thread_cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t wall_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The depth is computed from this frame's own depth, so it holds whatever the call chain from
 * the root is. */
__attribute__((noinline)) uint64_t churn_run(churn *c, long ncalls, int depth) {
  int n = depth - (stack_frames() - c->root_frames) - 1;
  uint64_t t0, t1;
  op o;

  if (n < 1)
    n = 1;
  t0 = thread_cpu_ns();
  for (long i = 0; i < ncalls; i++) {
    churn_next_op(c, &o);
    descend(c, n, &o);
  }
  t1 = thread_cpu_ns();
  __asm__ volatile("" ::: "memory");
  return t1 - t0;
}

__attribute__((noinline)) int churn_probe_depth(churn *c, int depth) {
  int n = depth - (stack_frames() - c->root_frames) - 1;
  op o = {.kind = OP_PROBE};

  /* Same arithmetic as churn_run(), which sits at the same depth as this function. */
  descend(c, n < 1 ? 1 : n, &o);
  return c->probe_depth;
}

void churn_reset(churn *c, churn_sizes sizes, uint64_t seed, int root_frames) {
  memset(c, 0, sizeof *c);
  c->sizes = sizes;
  c->rng = seed | 1;
  c->root_frames = root_frames;
}

void settle_heap(void) { malloc_trim(0); }

void churn_empty(churn *c) {
  for (int i = 0; i < CHURN_NSLOTS; i++) {
    if (c->direct)
      __libc_free(c->slot[i]);
    else
      free(c->slot[i]);
    c->slot[i] = NULL;
  }
  c->live_bytes = 0;
}

double spread_pct(const double *v, int n, double med) {
  return med > 0 ? 50.0 * (v[n - 1] - v[0]) / med : 0;
}
