/* model.h — the analysis layer's objects: tracebacks and snapshots. Internal; never installed.
 *
 * A snapshot is a flat array of traces plus the distinct tracebacks they reference. A traceback
 * is either live (it points at an interned stack of return addresses from the engine and resolves
 * its frames lazily through symbols.h) or loaded (its frames were read from a dump file or built
 * by hand in tests). Both kinds look the same through the public API.
 */
#ifndef TM_MODEL_H
#define TM_MODEL_H

#include <glib.h>

#include "engine.h"
#include "tracemalloc.h"

struct tm_traceback {
  gint refcount;                 /* atomic */
  const tm__interned_tb *raw;    /* live: the engine's stack (never freed); NULL when loaded */
  int total_nframe;              /* frames of the whole stack before truncation */
  bool truncated;                /* the stack had more frames than were kept */
  GOnce resolved;                /* live: guards the one-time resolution of frames */
  size_t nframes;                /* resolved frames, OLDEST FIRST (Python's order) */
  tm_frame *frames;              /* owned; strings interned */
};

struct tm_snapshot {
  gint refcount;                 /* atomic; statistics and diffs hold references */
  int traceback_limit;
  size_t ntraces;
  tm_trace *traces;              /* owned array; traces[i].traceback points into tracebacks */
  size_t ntracebacks;
  tm_traceback **tracebacks;     /* owned references to the distinct tracebacks */
};

/* Builds a loaded traceback from frames given oldest first (copied). Used by dump.c and tests. */
tm_traceback *tm__traceback_new_frames(const tm_frame *frames, size_t nframes, int total_nframe,
                                       bool truncated);

/* Builds a live traceback around an interned stack. */
tm_traceback *tm__traceback_new_live(const tm__interned_tb *raw);

/* Creates an empty snapshot to be filled with tm__snapshot_add(); used by dump.c and tests. */
tm_snapshot *tm__snapshot_new(int traceback_limit);

/* Appends a trace; the snapshot takes its own reference to tb (deduplicated by pointer). */
void tm__snapshot_add(tm_snapshot *snap, unsigned int domain, size_t size, tm_traceback *tb);

/* Returns a new reference to snap. */
tm_snapshot *tm__snapshot_ref(tm_snapshot *snap);

#endif /* TM_MODEL_H */
