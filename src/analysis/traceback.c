/* traceback.c — tm_traceback: live (lazily resolved engine stacks) and loaded (given frames).
 *
 * A live traceback keeps the engine's interned stack, whose return addresses are MOST RECENT
 * FIRST, and turns it on first access into resolved frames OLDEST FIRST (Python's order), each
 * address expanding into its inlined calls. The engine's stacks are immortal, so each one gets a
 * single shared tm_traceback, created on first use and kept for the life of the process: a stack
 * is resolved at most once however many snapshots name it.
 */
#include <pthread.h>
#include <string.h>

#include "model.h"
#include "symbols.h"

/* Deepest chain of inlined calls kept for one return address. */
#define MAX_INLINE_DEPTH 64

/* interned stack (const tm__interned_tb*) => live traceback (tm_traceback*), holding one
 * reference each for the life of the process. Protected by live_lock. */
static GHashTable *live_tracebacks;
static GMutex live_lock;

/* The engine's generation of interned stacks the cache's keys belong to. Protected by live_lock. */
static uint32_t live_generation;

/* The traceback CPython gives to a trace whose stack is unknown: one "<unknown>" frame. Created
 * on first use and never freed. Protected by live_lock. */
static tm_traceback *unknown_traceback;

static const tm_frame unknown_frame = {
  .filename = "<unknown>", .lineno = 0, .function = NULL, .module = NULL, .ip = 0,
  .flags = TM_FRAME_UNKNOWN,
};

/* Hashes a (filename, lineno) sequence, by content: a loaded snapshot's strings are its own, so
 * the same file name may sit at different addresses in two snapshots. */
static guint frames_hash(const tm_frame *frames, size_t n) {
  guint h = 5381u + (guint)n;
  for (size_t i = 0; i < n; i++) {
    h = (h * 1000003u) ^ g_str_hash(frames[i].filename);
    h = (h * 1000003u) ^ frames[i].lineno;
  }
  return h;
}

/* Allocates a loaded traceback with room for n frames inside the same block. The frames are
 * left for the caller to fill; key_hash must be set once they are. */
static tm_traceback *traceback_alloc(size_t n, int total_nframe, bool truncated) {
  tm_traceback *tb = g_malloc0(sizeof(tm_traceback) + n * sizeof(tm_frame));
  tb->refcount = 1;
  tb->nframes = n;
  tb->frames = (tm_frame *)(tb + 1);
  tb->total_nframe = total_nframe < (int)n ? (int)n : total_nframe;
  tb->truncated = truncated;
  return tb;
}

/* See model.h. */
tm_traceback *tm__traceback_new_frames_in(tm__strings *strings, const tm_frame *frames,
                                          size_t nframes, int total_nframe, bool truncated) {
  tm__guard_enter();
  tm_traceback *tb = traceback_alloc(nframes, total_nframe, truncated);
  tb->strings = strings != NULL ? tm__strings_ref(strings) : tm__strings_new();
  for (size_t i = 0; i < nframes; i++) {
    tm_frame *f = &tb->frames[i];
    *f = frames[i];
    f->filename = tm__strings_intern(tb->strings, f->filename != NULL ? f->filename : "<unknown>");
    f->function = tm__strings_intern(tb->strings, f->function);
    f->module = tm__strings_intern(tb->strings, f->module);
  }
  tb->key_hash = frames_hash(tb->frames, nframes);
  tm__guard_leave();
  return tb;
}

/* See model.h. */
tm_traceback *tm__traceback_new_frames(const tm_frame *frames, size_t nframes, int total_nframe,
                                       bool truncated) {
  return tm__traceback_new_frames_in(NULL, frames, nframes, total_nframe, truncated);
}

/* See model.h. */
tm_traceback *tm__traceback_new_key(const tm_frame *frame, const tm_traceback *owner) {
  tm__guard_enter();
  tm_traceback *tb = traceback_alloc(1, 1, false);
  tb->strings = owner != NULL ? tm__strings_ref(owner->strings) : NULL;
  tb->frames[0] = *frame;
  tb->key_hash = frames_hash(tb->frames, 1);
  tm__guard_leave();
  return tb;
}

/* See model.h. */
void tm__traceback_probe_init(tm_traceback *probe, const tm_frame *frame) {
  memset(probe, 0, sizeof(*probe));
  probe->refcount = 1;
  probe->total_nframe = 1;
  probe->nframes = 1;
  probe->frames = (tm_frame *)frame;
  probe->key_hash = frames_hash(frame, 1);
}

/* See model.h. The engine frees its stacks when tracing stops: the traceback keeps a copy. */
tm_traceback *tm__traceback_new_live(const tm__interned_tb *raw) {
  g_return_val_if_fail(raw != NULL, NULL);
  tm__guard_enter();
  tm_traceback *tb = g_try_new0(tm_traceback, 1);
  size_t bytes = sizeof(*raw) + raw->nframe * sizeof(raw->ips[0]);
  void *copy = tb != NULL ? g_try_malloc(bytes) : NULL;
  if (copy == NULL) {
    g_free(tb);
    tm__guard_leave();
    return NULL;
  }
  memcpy(copy, raw, bytes);
  tb->refcount = 1;
  tb->raw = copy;
  tb->total_nframe = (int)raw->total_nframe;
  tb->truncated = raw->truncated != 0;
  tm__guard_leave();
  return tb;
}

/* fork() while another thread holds live_lock would leave it locked for good in the child, and
 * Check runs every test in a forked child: the lock is held across fork(). */
static void live_lock_prepare(void) {
  g_mutex_lock(&live_lock);
}

static void live_lock_release(void) {
  g_mutex_unlock(&live_lock);
}

/* Takes live_lock, registering its fork handlers on first use. */
static void live_lock_acquire(void) {
  static gsize registered;
  if (g_once_init_enter(&registered)) {
    pthread_atfork(live_lock_prepare, live_lock_release, live_lock_release);
    g_once_init_leave(&registered, 1);
  }
  g_mutex_lock(&live_lock);
}

/* Returns the shared "<unknown>" traceback, creating it on first use. Call with live_lock held. */
static tm_traceback *unknown_traceback_unlocked(void) {
  if (unknown_traceback == NULL)
    unknown_traceback = tm__traceback_new_frames(&unknown_frame, 1, 1, false);
  return unknown_traceback;
}

/* See model.h. */
tm_traceback *tm__traceback_live_try_get(const tm__interned_tb *raw) {
  tm_traceback *tb;
  tm__guard_enter();
  live_lock_acquire();
  if (raw == NULL) {
    tb = unknown_traceback_unlocked();
    goto out;
  }
  if (live_tracebacks == NULL)
    live_tracebacks = g_hash_table_new(g_direct_hash, g_direct_equal);
  /* tm_stop() freed the engine's stacks since the cache was filled: its keys name nothing now
   * (the tracebacks themselves own copies and live on in whatever holds them). */
  uint32_t generation = tm__intern_generation_now();
  if (generation != live_generation) {
    GHashTableIter iter;
    gpointer value;
    g_hash_table_iter_init(&iter, live_tracebacks);
    while (g_hash_table_iter_next(&iter, NULL, &value))
      tm_traceback_free(value);
    g_hash_table_remove_all(live_tracebacks);
    live_generation = generation;
  }
  tb = g_hash_table_lookup(live_tracebacks, raw);
  if (tb == NULL) {
    tb = tm__traceback_new_live(raw);
    if (tb != NULL)
      g_hash_table_insert(live_tracebacks, (gpointer)raw, tb);
  }
out:
  if (tb != NULL)
    g_atomic_int_inc(&tb->refcount);
  g_mutex_unlock(&live_lock);
  tm__guard_leave();
  return tb;
}

/* See model.h. */
tm_traceback *tm__traceback_live_get(const tm__interned_tb *raw) {
  tm_traceback *tb = tm__traceback_live_try_get(raw);
  if (tb == NULL)
    g_error("out of memory: could not allocate a traceback");
  return tb;
}

/* Reverses n frames in place. */
static void frames_reverse(tm_frame *frames, size_t n) {
  for (size_t i = 0, j = n; i + 1 < j; i++, j--) {
    tm_frame tmp = frames[i];
    frames[i] = frames[j - 1];
    frames[j - 1] = tmp;
  }
}

/* Resolves return address i of raw into buf (innermost inlined call first). An address in a
 * library unloaded since the stack was captured is one unknown frame flagged TM_FRAME_UNLOADED:
 * whatever is mapped there now is another library. Returns the number of frames. */
static size_t resolve_ip(const tm__interned_tb *raw, size_t i, tm_frame *buf, size_t n) {
  if (tm__ip_unloaded_since(raw->ips[i], raw->unload_seq)) {
    buf[0] = unknown_frame;
    buf[0].ip = raw->ips[i];
    buf[0].flags |= TM_FRAME_UNLOADED;
    return 1;
  }
  return tm__symbols_resolve(raw->ips[i], buf, n);
}

/* GOnce body: resolves every return address of a live traceback (most recent first, each
 * expanding innermost inlined call first), then reverses the whole to Python's oldest-first
 * order, so an inlined callee follows its caller. A stack with no address gets the "<unknown>"
 * frame, as in CPython. Runs with the guard held. Returns tb. */
static gpointer resolve_live(gpointer data) {
  tm_traceback *tb = data;
  const tm__interned_tb *raw = tb->raw;
  GArray *frames = g_array_sized_new(FALSE, FALSE, sizeof(tm_frame), raw->nframe + 1u);
  tm_frame buf[MAX_INLINE_DEPTH];
  for (size_t i = 0; i < raw->nframe; i++) {
    size_t n = resolve_ip(raw, i, buf, G_N_ELEMENTS(buf));
    g_array_append_vals(frames, buf, (guint)MIN(n, G_N_ELEMENTS(buf)));
  }
  if (frames->len == 0)
    g_array_append_val(frames, unknown_frame);
  tb->nframes = frames->len;
  tb->frames = (tm_frame *)(void *)g_array_free(frames, FALSE);
  frames_reverse(tb->frames, tb->nframes);
  tb->key_hash = frames_hash(tb->frames, tb->nframes);
  return tb;
}

/* See model.h. */
const tm_frame *tm__traceback_frames(const tm_traceback *tb, size_t *n) {
  if (tb->raw != NULL) {
    tm_traceback *mut = (tm_traceback *)tb; /* resolution is invisible to the const API */
    tm__guard_enter();
    g_once(&mut->resolved, resolve_live, mut);
    tm__guard_leave();
  }
  *n = tb->nframes;
  return tb->frames;
}

/* Whether every frame of tb is resolved (always true for a loaded traceback). */
static bool resolved_ready(const tm_traceback *tb) {
  return tb->raw == NULL ||
         g_atomic_int_get((const gint *)&tb->resolved.status) == G_ONCE_STATUS_READY;
}

/* GOnce body: resolves the most recent return address of a live traceback and keeps its
 * innermost frame, the one full resolution would put last. Runs with the guard held. Returns
 * tb. */
static gpointer resolve_recent(gpointer data) {
  tm_traceback *tb = data;
  tm_frame buf[MAX_INLINE_DEPTH];
  tb->recent = unknown_frame;
  if (tb->raw->nframe > 0 && resolve_ip(tb->raw, 0, buf, G_N_ELEMENTS(buf)) > 0)
    tb->recent = buf[0];
  return tb;
}

/* See model.h. */
const tm_frame *tm__traceback_most_recent(const tm_traceback *tb) {
  size_t n;
  const tm_frame *frames;
  if (tb->raw != NULL && !resolved_ready(tb)) {
    tm_traceback *mut = (tm_traceback *)tb; /* resolution is invisible to the const API */
    tm__guard_enter();
    g_once(&mut->recent_resolved, resolve_recent, mut);
    tm__guard_leave();
    return &tb->recent;
  }
  frames = tm__traceback_frames(tb, &n);
  return n > 0 ? &frames[n - 1] : &unknown_frame;
}

/* See model.h. */
bool tm__traceback_key_equal(const tm_traceback *a, const tm_traceback *b) {
  size_t na, nb;
  const tm_frame *fa = tm__traceback_frames(a, &na);
  const tm_frame *fb = tm__traceback_frames(b, &nb);
  if (a == b)
    return true;
  if (na != nb || a->key_hash != b->key_hash)
    return false;
  for (size_t i = 0; i < na; i++) {
    if (fa[i].lineno != fb[i].lineno ||
        (fa[i].filename != fb[i].filename && strcmp(fa[i].filename, fb[i].filename) != 0))
      return false;
  }
  return true;
}

/* See model.h. */
guint tm__traceback_key_hash(const tm_traceback *tb) {
  size_t n;
  tm__traceback_frames(tb, &n);
  return tb->key_hash;
}

/* Python's comparison of two (filename, lineno) tuples. */
static int frame_compare(const tm_frame *a, const tm_frame *b) {
  if (a->filename != b->filename) {
    int c = strcmp(a->filename, b->filename);
    if (c != 0)
      return c;
  }
  if (a->lineno != b->lineno)
    return a->lineno < b->lineno ? -1 : 1;
  return 0;
}

/* See model.h. */
int tm__traceback_compare(const tm_traceback *a, const tm_traceback *b) {
  size_t na, nb;
  const tm_frame *fa = tm__traceback_frames(a, &na);
  const tm_frame *fb = tm__traceback_frames(b, &nb);
  for (size_t i = 0; i < na && i < nb; i++) {
    int c = frame_compare(&fa[i], &fb[i]);
    if (c != 0)
      return c;
  }
  return na < nb ? -1 : na > nb ? 1 : 0;
}

/* See model.h. */
size_t tm__traceback_nstack(const tm_traceback *tb) {
  size_t n, nstack = 0;
  const tm_frame *frames;
  if (tb->raw != NULL)
    return tb->raw->nframe;
  frames = tm__traceback_frames(tb, &n);
  for (size_t i = 0; i < n; i++) {
    if (!(frames[i].flags & TM_FRAME_INLINED))
      nstack++;
  }
  return nstack;
}

/* See tracemalloc.h. Looks the block up in the malloc domain, then shares the live traceback of
 * its stack. */
tm_traceback *tm_get_object_traceback(const void *ptr) {
  tm__raw_trace trace;
  tm_traceback *tb = NULL;
  if (ptr == NULL || !tm_is_tracing())
    return NULL;
  tm__guard_enter();
  tm__intern_hold();
  if (tm__trace_find((uintptr_t)ptr, &trace))
    tb = tm__traceback_live_get(tm__traceback_lookup(trace.tb_id));
  tm__intern_release();
  tm__guard_leave();
  return tb;
}

/* See tracemalloc.h. */
tm_traceback *tm_traceback_ref(tm_traceback *tb) {
  if (tb != NULL)
    g_atomic_int_inc(&tb->refcount);
  return tb;
}

/* See tracemalloc.h. A live traceback's frames are a block of their own; a loaded traceback's
 * frames live inside the object. */
void tm_traceback_free(tm_traceback *tb) {
  if (tb == NULL || !g_atomic_int_dec_and_test(&tb->refcount))
    return;
  tm__guard_enter();
  if (tb->raw != NULL) {
    g_free(tb->frames);
    g_free((gpointer)tb->raw);
  }
  tm__strings_unref(tb->strings);
  g_free(tb);
  tm__guard_leave();
}

/* See tracemalloc.h. */
size_t tm_traceback_length(const tm_traceback *tb) {
  size_t n = 0;
  if (tb != NULL)
    tm__traceback_frames(tb, &n);
  return n;
}

/* See tracemalloc.h. */
const tm_frame *tm_traceback_get(const tm_traceback *tb, size_t i) {
  size_t n;
  const tm_frame *frames;
  if (tb == NULL)
    return NULL;
  frames = tm__traceback_frames(tb, &n);
  return i < n ? &frames[i] : NULL;
}

/* See tracemalloc.h. */
int tm_traceback_total_nframe(const tm_traceback *tb) {
  return tb != NULL ? tb->total_nframe : 0;
}

/* See tracemalloc.h. */
bool tm_traceback_is_truncated(const tm_traceback *tb) {
  return tb != NULL && tb->truncated;
}
