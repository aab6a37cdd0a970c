/* reachability.c — which traced blocks the program can still reach (tracemalloc.h,
 * tm_reachability_scan(); docs/plugin.md "Reachability").
 *
 * A conservative mark, as LeakSanitizer's: the graph holds every live block (the heap registry),
 * traced or not, sorted by address; a word points to a block when it falls in [ptr, ptr + size)
 * (or equals ptr for an empty block). Marked from the roots (roots.c), the reachable blocks are
 * scanned in turn. The traced blocks left unmarked are unreachable. Among them, a root is a block
 * nothing else unreachable points to, or for blocks that point to each other (a strongly
 * connected component) that nothing outside points to, the one allocated first; each root is
 * lost and owns what it leads to, which is indirectly lost. Registered blocks that are
 * unreachable are older leaks: they are not scanned, so a new block whose only pointer sits in
 * one counts as lost, not indirect (the test made that leak).
 *
 * The whole mark runs between tm__blocks_lock() and tm__blocks_unlock(): no block can be freed,
 * and no memory unmapped by free(), while it reads them. It allocates with the guard held only.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "model.h"
#include "roots.h"
#include "shared_pages.h"

enum {
  REACHED = 1u << 0,  /* reached from a root */
  TRACED = 1u << 1,   /* a traced block: classified in the result */
  OPAQUE = 1u << 4,   /* registered by a paused thread: not the program's, never read */
  OWNED = 1u << 3,    /* unreachable, already counted under a root */
};

struct tm_reachability {
  size_t n;
  tm_reach_block *blocks; /* the traced blocks, by address */
  size_t totals[3][2];    /* by tm_reach: bytes, blocks */
};

/* The graph: every live block, by address. */
typedef struct graph {
  tm__raw_trace *blocks;
  size_t n;
  uint8_t *flags;
  size_t *stack; /* blocks to scan; each is pushed at most once per pass */
  size_t depth;
  uintptr_t lo, hi; /* no block lies outside [lo, hi) */
  tm__shared_pages *unwritten; /* tm_reach_options.since_fork: pages not written since; or NULL */
} graph;

/* Sorts blocks by address: an LSD radix sort on (ptr - lowest) / 16, 11 bits a pass, as many
 * passes as the span of the addresses needs (two for a heap of a few MiB). A comparison sort was
 * most of a scan's time. Returns false (blocks unsorted) when out of memory. */
static bool blocks_sort(tm__raw_trace *blocks, size_t n) {
  enum { BITS = 11, BUCKETS = 1 << BITS };
  if (n < 2)
    return true;
  uintptr_t lo = UINTPTR_MAX, hi = 0;
  for (size_t i = 0; i < n; i++) {
    lo = MIN(lo, blocks[i].ptr);
    hi = MAX(hi, blocks[i].ptr);
  }
  uintptr_t span = (hi - lo) >> 4;
  tm__raw_trace *tmp = malloc(n * sizeof *tmp);
  size_t *count = malloc(BUCKETS * sizeof *count);
  if (tmp == NULL || count == NULL) {
    free(tmp);
    free(count);
    return false;
  }
  tm__raw_trace *from = blocks, *to = tmp;
  for (unsigned shift = 0; shift == 0 || (span >> shift) != 0; shift += BITS) {
    memset(count, 0, BUCKETS * sizeof *count);
    for (size_t i = 0; i < n; i++)
      count[(((from[i].ptr - lo) >> 4) >> shift) & (BUCKETS - 1)]++;
    size_t total = 0;
    for (size_t b = 0; b < BUCKETS; b++) {
      size_t c = count[b];
      count[b] = total;
      total += c;
    }
    for (size_t i = 0; i < n; i++)
      to[count[(((from[i].ptr - lo) >> 4) >> shift) & (BUCKETS - 1)]++] = from[i];
    tm__raw_trace *swap = from;
    from = to;
    to = swap;
    if (shift + BITS >= sizeof(uintptr_t) * 8)
      break;
  }
  if (from != blocks)
    memcpy(blocks, from, n * sizeof *blocks);
  free(tmp);
  free(count);
  return true;
}

/* Keeps one block per address in sorted blocks and returns how many are left. Two live blocks
 * cannot share an address: one is a stale entry whose free went unseen, and the traced one, which
 * malloc returned last, is kept (a stale entry taken instead would leave the traced block's
 * pointers to itself, and the block lost). */
static size_t blocks_dedup(tm__raw_trace *blocks, size_t n) {
  size_t out = 0;
  for (size_t i = 0; i < n; i++) {
    if (out > 0 && blocks[out - 1].ptr == blocks[i].ptr) {
      if (blocks[i].tb_id < TM__TB_PAUSED) /* traced: it replaces the one kept */
        blocks[out - 1] = blocks[i];
      continue;
    }
    blocks[out++] = blocks[i];
  }
  return out;
}

/* Returns the index of the block that the address v lies in, or SIZE_MAX. A word equal to a
 * block's end (one past its last byte) is no pointer to it, as in Valgrind and LeakSanitizer:
 * a block whose only reference is its end pointer is lost. */
static size_t graph_find(const graph *g, uintptr_t v) {
  if (v < g->lo || v >= g->hi)
    return SIZE_MAX;
  size_t lo = 0, hi = g->n; /* the answer is the last block with ptr <= v */
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (g->blocks[mid].ptr <= v)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo == 0)
    return SIZE_MAX;
  const tm__raw_trace *b = &g->blocks[lo - 1];
  return v < b->ptr + b->size || v == b->ptr ? lo - 1 : SIZE_MAX;
}

/* Marks with `flag` every block that a word of [lo, hi) points into and that has none of the
 * `stop` flags, and pushes it. old: [lo, hi) is memory older than the traces (a root, an
 * untraced block), where a word on a page unwritten since the fork cannot point to a traced
 * block but by a stale value (tm_reach_options.since_fork). */
static void graph_scan(graph *g, uintptr_t lo, uintptr_t hi, uint8_t flag, uint8_t stop,
                       bool old) {
  for (uintptr_t p = lo; p + sizeof(uintptr_t) <= hi; p += sizeof(uintptr_t)) {
    size_t i = graph_find(g, *(const uintptr_t *)p);
    if (i != SIZE_MAX && !(g->flags[i] & (flag | stop))) {
      if (old && g->unwritten != NULL && (g->flags[i] & TRACED) &&
          tm__shared_pages_unwritten(g->unwritten, p))
        continue;
      g->flags[i] |= flag;
      if (!(g->flags[i] & OPAQUE))
        g->stack[g->depth++] = i;
    }
  }
}

/* The words of a block: its requested size, whole words only (blocks are aligned). */
static void block_words(const tm__raw_trace *b, uintptr_t *lo, uintptr_t *hi) {
  *lo = b->ptr;
  *hi = b->ptr + (b->size & ~(sizeof(uintptr_t) - 1));
}

/* Scans what the stack holds, and what that reaches, with flag, until nothing is left. */
static void graph_drain(graph *g, uint8_t flag, uint8_t stop) {
  while (g->depth > 0) {
    size_t i = g->stack[--g->depth];
    uintptr_t lo, hi;
    block_words(&g->blocks[i], &lo, &hi);
    graph_scan(g, lo, hi, flag, stop, !(g->flags[i] & TRACED));
  }
}

/* Marks what the roots reach. */
static void graph_mark_reachable(graph *g, const GArray *roots, const tm_reach_options *options) {
  for (guint i = 0; i < roots->len; i++) {
    const tm__range *r = &g_array_index(roots, tm__range, i);
    uintptr_t hi = r->hi;
    /* A range that starts inside a live block ends with it: a thread whose stack the program
     * allocated with malloc() (pthread_attr_setstack) is scanned from its stack pointer to the top
     * of its mapping, and that mapping is the heap, whose other chunks (freed ones, lost blocks)
     * are no roots. */
    size_t b = graph_find(g, r->lo);
    if (b != SIZE_MAX && g->blocks[b].ptr + g->blocks[b].size < hi)
      hi = g->blocks[b].ptr + g->blocks[b].size;
    graph_scan(g, r->lo, hi, REACHED, 0, true);
    graph_drain(g, REACHED, 0);
  }
  if (options != NULL && options->roots != NULL) { /* registers: live now, never stale */
    graph_scan(g, (uintptr_t)options->roots,
               (uintptr_t)(options->roots + options->nroots), REACHED, 0, false);
    graph_drain(g, REACHED, 0);
  }
}

/* Gives root (a graph index) every unreachable traced block it leads to that no root owns yet;
 * stores the totals in its result entry. out_index maps graph indices to result indices. */
static void graph_own(graph *g, size_t root, const size_t *out_index, tm_reach_block *out) {
  size_t r = out_index[root];
  g->flags[root] |= OWNED;
  g->stack[g->depth++] = root;
  while (g->depth > 0) {
    size_t i = g->stack[--g->depth];
    out[out_index[i]].root = r;
    out[r].owned_size += g->blocks[i].size;
    out[r].owned_blocks++;
    uintptr_t lo, hi;
    block_words(&g->blocks[i], &lo, &hi);
    for (uintptr_t p = lo; p + sizeof(uintptr_t) <= hi; p += sizeof(uintptr_t)) {
      size_t j = graph_find(g, *(const uintptr_t *)p);
      if (j != SIZE_MAX && (g->flags[j] & (REACHED | TRACED | OWNED)) == TRACED) {
        g->flags[j] |= OWNED;
        g->stack[g->depth++] = j;
      }
    }
  }
}

/* Orders graph indices by the size of their block, largest first; ties by address. The blocks come
 * as qsort_r's argument: a static pointer to them would outlive the array, and this library's own
 * data is no root (roots.c), but no stale pointer should wait for that to matter. */
static int by_size_desc(const void *a, const void *b, void *blocks) {
  const tm__raw_trace *all = blocks;
  const tm__raw_trace *x = &all[*(const size_t *)a], *y = &all[*(const size_t *)b];
  if (x->size != y->size)
    return x->size < y->size ? 1 : -1;
  return (x->ptr > y->ptr) - (x->ptr < y->ptr);
}

/* The index among the unreachable traced blocks (local: graph index => that index, SIZE_MAX for
 * any other block) of the block that the word v points into, or SIZE_MAX. */
static size_t unreached_find(const graph *g, const size_t *local, uintptr_t v) {
  size_t i = graph_find(g, v);
  return i != SIZE_MAX ? local[i] : SIZE_MAX;
}

/* The strongly connected components of the unreachable traced blocks (unreached: nu graph
 * indices; local as above), under the pointers between them: Tarjan's algorithm, with explicit
 * stacks. Stores the component of unreached[k] in comp[k] and returns how many there are, or
 * SIZE_MAX when out of memory. */
static size_t unreached_components(const graph *g, const size_t *unreached, size_t nu,
                                   const size_t *local, size_t *comp) {
  size_t *num = calloc(nu ? nu : 1, sizeof *num); /* 0: not visited yet */
  size_t *low = malloc((nu ? nu : 1) * sizeof *low);
  size_t *open = malloc((nu ? nu : 1) * sizeof *open);  /* visited, no component yet */
  size_t *frame = malloc((nu ? nu : 1) * sizeof *frame); /* the walk's path */
  uintptr_t *next = malloc((nu ? nu : 1) * sizeof *next); /* each frame's next word */
  size_t count = 0, ncomp = 0, nopen = 0;
  if (num == NULL || low == NULL || open == NULL || frame == NULL || next == NULL) {
    ncomp = SIZE_MAX;
    goto out;
  }
  for (size_t k = 0; k < nu; k++)
    comp[k] = SIZE_MAX;
  for (size_t start = 0; start < nu; start++) {
    if (num[start] != 0)
      continue;
    size_t depth = 0;
    num[start] = low[start] = ++count;
    open[nopen++] = start;
    frame[depth] = start;
    next[depth++] = g->blocks[unreached[start]].ptr;
    while (depth > 0) {
      size_t v = frame[depth - 1], w = SIZE_MAX;
      uintptr_t lo, hi, p;
      block_words(&g->blocks[unreached[v]], &lo, &hi);
      for (p = next[depth - 1]; p + sizeof(uintptr_t) <= hi; p += sizeof(uintptr_t)) {
        w = unreached_find(g, local, *(const uintptr_t *)p);
        if (w == SIZE_MAX)
          continue;
        if (num[w] == 0)
          break; /* descend into w */
        if (comp[w] == SIZE_MAX)
          low[v] = MIN(low[v], num[w]);
      }
      if (p + sizeof(uintptr_t) <= hi) { /* stopped at w, not visited yet */
        next[depth - 1] = p + sizeof(uintptr_t);
        num[w] = low[w] = ++count;
        open[nopen++] = w;
        frame[depth] = w;
        next[depth++] = g->blocks[unreached[w]].ptr;
        continue;
      }
      if (low[v] == num[v]) { /* v heads a component: what is open above it */
        do {
          w = open[--nopen];
          comp[w] = ncomp;
        } while (w != v);
        ncomp++;
      }
      if (--depth > 0)
        low[frame[depth - 1]] = MIN(low[frame[depth - 1]], low[v]);
    }
  }
out:
  free(num);
  free(low);
  free(open);
  free(frame);
  free(next);
  return ncomp;
}

/* Whether unreachable block a stands before b as its component's root: its traceback was seen
 * first (ids are given in the order stacks first appear), then the larger, then the lower. */
static bool root_before(const tm__raw_trace *a, const tm__raw_trace *b) {
  if (a->tb_id != b->tb_id)
    return a->tb_id < b->tb_id;
  if (a->size != b->size)
    return a->size > b->size;
  return a->ptr < b->ptr;
}

/* Chooses the roots among the unreachable blocks (sorted largest first): root[k] is true for the
 * root of unreached[k]'s component when no other component points into that one. Such a
 * component is a lost block that nothing points to, or blocks that point to each other (a tree
 * with parent pointers, a doubly linked list, an object and its back-references), of which the
 * one allocated first by its site's order is the root. Returns false when out of memory. */
static bool roots_choose(const graph *g, const size_t *unreached, size_t nu, bool *root) {
  size_t *local = malloc((g->n ? g->n : 1) * sizeof *local);
  size_t *comp = malloc((nu ? nu : 1) * sizeof *comp);
  size_t ncomp = local != NULL && comp != NULL ? 0 : SIZE_MAX;
  if (ncomp == 0) {
    for (size_t i = 0; i < g->n; i++)
      local[i] = SIZE_MAX;
    for (size_t k = 0; k < nu; k++)
      local[unreached[k]] = k;
    ncomp = unreached_components(g, unreached, nu, local, comp);
  }
  bool *entered = ncomp != SIZE_MAX ? calloc(ncomp ? ncomp : 1, sizeof *entered) : NULL;
  size_t *best = ncomp != SIZE_MAX ? malloc((ncomp ? ncomp : 1) * sizeof *best) : NULL;
  bool ok = entered != NULL && best != NULL;
  for (size_t k = 0; ok && k < nu; k++) {
    uintptr_t lo, hi;
    block_words(&g->blocks[unreached[k]], &lo, &hi);
    for (uintptr_t p = lo; p + sizeof(uintptr_t) <= hi; p += sizeof(uintptr_t)) {
      size_t w = unreached_find(g, local, *(const uintptr_t *)p);
      if (w != SIZE_MAX && comp[w] != comp[k])
        entered[comp[w]] = true;
    }
  }
  for (size_t c = 0; ok && c < ncomp; c++)
    best[c] = SIZE_MAX;
  for (size_t k = 0; ok && k < nu; k++) {
    size_t c = comp[k];
    if (!entered[c] && (best[c] == SIZE_MAX || root_before(&g->blocks[unreached[k]],
                                                           &g->blocks[unreached[best[c]]])))
      best[c] = k;
  }
  for (size_t k = 0; ok && k < nu; k++)
    root[k] = best[comp[k]] == k;
  free(local);
  free(comp);
  free(entered);
  free(best);
  return ok;
}

/* Classifies the graph's traced blocks into out (out_index: graph index => result index). The
 * roots (roots_choose()) own what they lead to, largest first; a block no root leads to, only
 * when memory ran out, becomes a root in turn. */
static void graph_classify(graph *g, const size_t *out_index, tm_reach_block *out) {
  size_t nu = 0;
  size_t *unreached = malloc((g->n ? g->n : 1) * sizeof *unreached);
  bool *root = malloc((g->n ? g->n : 1) * sizeof *root);
  if (unreached == NULL || root == NULL) {
    free(unreached);
    free(root);
    return;
  }
  for (size_t i = 0; i < g->n; i++)
    if ((g->flags[i] & (REACHED | TRACED)) == TRACED)
      unreached[nu++] = i;
  qsort_r(unreached, nu, sizeof *unreached, by_size_desc, g->blocks);
  bool chosen = roots_choose(g, unreached, nu, root);
  for (int pass = 0; pass < 2; pass++) {
    for (size_t k = 0; k < nu; k++) {
      size_t i = unreached[k];
      if (g->flags[i] & OWNED)
        continue;
      if (pass == 0 && !(chosen && root[k]))
        continue;
      out[out_index[i]].reach = TM_REACH_LOST;
      graph_own(g, i, out_index, out);
    }
  }
  for (size_t k = 0; k < nu; k++) {
    tm_reach_block *b = &out[out_index[unreached[k]]];
    if (b->root != out_index[unreached[k]])
      b->reach = TM_REACH_INDIRECT;
  }
  free(unreached);
  free(root);
}

/* Fills r from the graph: the traced blocks, classified. Returns false when out of memory. */
static bool result_fill(tm_reachability *r, graph *g) {
  size_t *out_index = malloc((g->n ? g->n : 1) * sizeof *out_index);
  size_t ntraced = 0;
  if (out_index == NULL)
    return false;
  for (size_t i = 0; i < g->n; i++)
    if (g->flags[i] & TRACED)
      out_index[i] = ntraced++;
  r->blocks = calloc(ntraced ? ntraced : 1, sizeof *r->blocks);
  if (r->blocks == NULL) {
    free(out_index);
    return false;
  }
  r->n = ntraced;
  for (size_t i = 0; i < g->n; i++) {
    if (!(g->flags[i] & TRACED))
      continue;
    tm_reach_block *b = &r->blocks[out_index[i]];
    b->ptr = g->blocks[i].ptr;
    b->size = g->blocks[i].size;
    b->reach = TM_REACH_REACHABLE;
    b->root = SIZE_MAX;
    b->traceback = (tm_traceback *)(uintptr_t)g->blocks[i].tb_id; /* resolved after unlock */
  }
  graph_classify(g, out_index, r->blocks);
  free(out_index);
  return true;
}

/* Builds the graph of every live block, marks, classifies. Blocks held locked throughout. With
 * fresh_fork, words on pages unwritten since the fork do not keep traced blocks reachable. */
static bool scan_locked(tm_reachability *r, const GArray *roots, const tm_reach_options *options,
                        bool fresh_fork) {
  graph g = {0};
  bool ok = false;
  g.blocks = tm__blocks_copy_locked(&g.n);
  if (g.blocks == NULL && g.n != 0)
    return false;
  if (!blocks_sort(g.blocks, g.n))
    goto out;
  g.n = blocks_dedup(g.blocks, g.n);
  g.flags = calloc(g.n ? g.n : 1, 1);
  g.stack = malloc((g.n ? g.n : 1) * sizeof *g.stack);
  if (g.flags == NULL || g.stack == NULL)
    goto out;
  if (g.n != 0) {
    g.lo = g.blocks[0].ptr;
    for (size_t i = 0; i < g.n; i++) {
      g.hi = MAX(g.hi, g.blocks[i].ptr + MAX(g.blocks[i].size, 1));
      if (g.blocks[i].tb_id < TM__TB_PAUSED)
        g.flags[i] |= TRACED;
      else if (g.blocks[i].tb_id == TM__TB_PAUSED)
        g.flags[i] |= OPAQUE;
    }
    /* The block installed as this thread's alternate signal stack holds dead frames of signal
     * handlers: its words are not the program's pointers (roots.c cuts such stacks from the
     * roots). */
    stack_t alt;
    if (sigaltstack(NULL, &alt) == 0 && !(alt.ss_flags & (SS_DISABLE | SS_ONSTACK))) {
      size_t b = graph_find(&g, (uintptr_t)alt.ss_sp);
      if (b != SIZE_MAX && g.blocks[b].ptr == (uintptr_t)alt.ss_sp)
        g.flags[b] |= OPAQUE;
    }
  }
  tm__shared_pages pages;
  if (fresh_fork && tm__shared_pages_open(&pages))
    g.unwritten = &pages;
  graph_mark_reachable(&g, roots, options);
  if (g.unwritten != NULL)
    tm__shared_pages_close(g.unwritten);
  ok = result_fill(r, &g);
out:
  free(g.blocks);
  free(g.flags);
  free(g.stack);
  return ok;
}

tm_reachability *tm_reachability_scan(const tm_reach_options *options, GError **error) {
  tm_reachability *r = NULL;
  /* By default, from the caller's frame: above this function's frame and its return address. */
  const void *from = options != NULL && options->stack_from != NULL
                         ? options->stack_from
                         : (const char *)__builtin_frame_address(0) + 2 * sizeof(void *);
  if (!tm_is_tracing()) {
    g_set_error_literal(error, TM_ERROR, TM_ERROR_NOT_TRACING,
                        "the tracemalloc module must be tracing memory allocations to scan them");
    return NULL;
  }
  if (!tm_heap_registry_is_on()) {
    g_set_error_literal(error, TM_ERROR, TM_ERROR_UNSUPPORTED,
                        "the heap registry is off: define TM_HEAP_REGISTRY in the program or "
                        "run it with TRACEMALLOC_REGISTRY=1");
    return NULL;
  }
  tm__guard_enter();
  uintptr_t shared =
      options != NULL ? tm__stack_shared_sp(options->since, options->runner_frames_skipped) : 0;
  if (shared != 0)
    from = (const void *)shared;
  /* A fork() child that has not forked since: what it wrote since the fork can be told apart. */
  bool fresh_fork = options != NULL && options->since_fork &&
                    atomic_load_explicit(&tm__forks_made, memory_order_relaxed) == 0;
  GArray *roots = tm__roots_collect(from, fresh_fork);
  r = calloc(1, sizeof *r);
  tm__intern_hold(); /* until the ids read under the lock are tracebacks (engine.h) */
  tm__blocks_lock();
  tm__roots_registers_add(roots);
  bool ok = r != NULL && scan_locked(r, roots, options, fresh_fork);
  tm__blocks_unlock();
  g_array_unref(roots);
  if (ok) {
    for (size_t i = 0; i < r->n; i++) {
      tm_reach_block *b = &r->blocks[i];
      uint32_t id = (uint32_t)(uintptr_t)b->traceback;
      b->traceback = tm__traceback_live_get(tm__traceback_lookup(id));
      r->totals[b->reach][0] += b->size;
      r->totals[b->reach][1]++;
    }
    tm__intern_release();
  } else {
    tm__intern_release();
    if (r != NULL)
      free(r->blocks);
    free(r);
    r = NULL;
    g_set_error_literal(error, TM_ERROR, TM_ERROR_NO_MEMORY,
                        "out of memory: could not scan the live blocks");
  }
  tm__guard_leave();
  return r;
}

size_t tm_reachability_length(const tm_reachability *r) { return r != NULL ? r->n : 0; }

const tm_reach_block *tm_reachability_get(const tm_reachability *r, size_t i) {
  return r != NULL && i < r->n ? &r->blocks[i] : NULL;
}

void tm_reachability_totals(const tm_reachability *r, tm_reach reach, size_t *size,
                            size_t *blocks) {
  bool valid = r != NULL && (unsigned)reach <= TM_REACH_INDIRECT;
  if (size != NULL)
    *size = valid ? r->totals[reach][0] : 0;
  if (blocks != NULL)
    *blocks = valid ? r->totals[reach][1] : 0;
}

void tm_reachability_free(tm_reachability *r) {
  if (r == NULL)
    return;
  tm__guard_enter();
  for (size_t i = 0; i < r->n; i++)
    tm_traceback_free(r->blocks[i].traceback);
  free(r->blocks);
  free(r);
  tm__guard_leave();
}
