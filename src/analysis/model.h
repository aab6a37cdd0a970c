/* model.h — the analysis layer's objects: tracebacks, snapshots and filters. Internal; never
 * installed.
 *
 * A snapshot is a flat array of traces plus the distinct tracebacks they reference. A traceback
 * is either live (it points at an interned stack of return addresses from the engine and resolves
 * its frames lazily through symbols.h) or loaded (its frames were read from a dump file or built
 * by hand in tests). Both kinds look the same through the public API.
 *
 * Frame identity follows Python's Frame: two frames are the same key when their (filename,
 * lineno) are equal, compared by content. Strings of live frames are g_intern_string()ed by
 * symbols.c, for the life of the process. Strings of loaded frames (a dump, or frames built by
 * hand) are copied into a tm__strings table that the tracebacks holding them reference: one table
 * per loaded snapshot, so that within it equal strings are equal pointers, and freeing the
 * snapshot (and whatever tracebacks, statistics and diffs keep its tracebacks) frees them.
 *
 * Live tracebacks are shared: one tm_traceback per engine stack while tracing goes on
 * (tm__traceback_live_get()), so two snapshots of the same program resolve each stack once. Each
 * owns a copy of its stack: tm_stop() frees the engine's.
 */
#ifndef TM_MODEL_H
#define TM_MODEL_H

#include <glib.h>

#include "engine.h"
#include "tracemalloc.h"

/* A reference-counted table of strings: each distinct string stored once (so equal strings from
 * one table are equal pointers), all freed with the last reference. Thread-safe. */
typedef struct tm__strings tm__strings;

struct tm_traceback {
  gint refcount;                 /* atomic */
  tm__strings *strings;          /* loaded: a reference to the table holding the frames' strings */
  const tm__interned_tb *raw;    /* live: an owned copy of the engine's stack; NULL when loaded */
  int total_nframe;              /* frames of the whole stack before truncation */
  bool truncated;                /* the stack had more frames than were kept */
  GOnce resolved;                /* live: guards the one-time resolution of frames */
  size_t nframes;                /* resolved frames, OLDEST FIRST (Python's order) */
  tm_frame *frames;              /* live: owned g_malloc block; loaded: points into this object */
  guint key_hash;                /* hash of the (filename, lineno) sequence; set with frames */
  GOnce recent_resolved;         /* live: guards the resolution of the most recent frame alone */
  tm_frame recent;               /* live: the most recent frame, once recent_resolved ran */
};

struct tm_snapshot {
  gint refcount;                 /* atomic; statistics and diffs hold references */
  int traceback_limit;
  size_t ntraces;
  tm_trace *traces;              /* owned array; traces[i].traceback points into tracebacks */
  uint32_t *tb_index;            /* owned; tb_index[i] is the index of traces[i].traceback */
  size_t ntracebacks;
  tm_traceback **tracebacks;     /* owned references to the distinct tracebacks */
  size_t traces_cap;             /* allocated lengths, while the snapshot is being built */
  size_t tracebacks_cap;
  GHashTable *tb_slots;          /* tm__snapshot_add only: traceback => index + 1 */
};

/* Python's Filter (is_domain_filter false) and DomainFilter (true). Immutable once built. */
struct tm_filter {
  bool is_domain_filter;
  bool inclusive;
  char *pattern;                 /* Filter only: owned fnmatch pattern */
  unsigned int lineno;           /* Filter only: 0 matches any line */
  bool all_frames;               /* Filter only */
  int64_t domain;                /* < 0 matches any domain (never for a DomainFilter) */
};

/* ---- strings.c ------------------------------------------------------------------------------- */

/* A new, empty table with one reference (tm__strings_unref()). */
tm__strings *tm__strings_new(void);

/* The table's copy of str (NULL for NULL), added on first use. Valid while the table lives. */
const char *tm__strings_intern(tm__strings *s, const char *str);

/* Returns s with one more reference (NULL-safe). */
tm__strings *tm__strings_ref(tm__strings *s);

/* Drops a reference; the last one frees every string (NULL-safe). */
void tm__strings_unref(tm__strings *s);

/* ---- traceback.c ----------------------------------------------------------------------------- */

/* Builds a loaded traceback from frames given oldest first. The frames are copied and their
 * strings copied into strings (which the traceback references), or into a table of its own when
 * strings is NULL; the caller keeps ownership of frames. total_nframe < (int)nframes is raised to
 * nframes. Returns a new reference (tm_traceback_free()); never NULL. */
tm_traceback *tm__traceback_new_frames_in(tm__strings *strings, const tm_frame *frames,
                                          size_t nframes, int total_nframe, bool truncated);

/* tm__traceback_new_frames_in(NULL, ...): a traceback owning its strings. */
tm_traceback *tm__traceback_new_frames(const tm_frame *frames, size_t nframes, int total_nframe,
                                       bool truncated);

/* Builds a 1-frame loaded traceback holding a copy of frame, a frame of owner (a resolved
 * traceback whose strings it shares, taking a reference to owner's table when it has one): the
 * key of a lineno or filename group. Returns a new reference. */
tm_traceback *tm__traceback_new_key(const tm_frame *frame, const tm_traceback *owner);

/* Sets *probe up as a 1-frame loaded traceback around frame (not copied), to look a key up in a
 * hash table without allocating. The probe must never be referenced, freed or stored. */
void tm__traceback_probe_init(tm_traceback *probe, const tm_frame *frame);

/* Builds a live traceback around a copy of an interned stack, not yet resolved. Returns a new
 * reference, or NULL when memory runs out. Most callers want the shared object of
 * tm__traceback_live_get() instead. */
tm_traceback *tm__traceback_new_live(const tm__interned_tb *raw);

/* Returns a new reference to the one live traceback of raw, creating and caching it on first use
 * (the cache holds its own reference until tracing stops and the engine frees its stacks). raw
 * NULL gives the shared "<unknown>" traceback, as CPython gives for a missing stack. Call under
 * tm__intern_hold(), held since raw's id was read. Thread-safe. */
tm_traceback *tm__traceback_live_get(const tm__interned_tb *raw);

/* tm__traceback_live_get(), returning NULL when memory runs out. */
tm_traceback *tm__traceback_live_try_get(const tm__interned_tb *raw);

/* Resolves tb on first use and returns its frames, oldest first, storing their number in *n.
 * Borrowed: valid while tb lives. Thread-safe; takes the reentrancy guard while resolving. */
const tm_frame *tm__traceback_frames(const tm_traceback *tb, size_t *n);

/* The most recent frame of tb (the allocation site, Python's raw traceback[0]), or a static
 * "<unknown>" frame with lineno 0 when tb has no frame. Never NULL. A live traceback not yet
 * resolved resolves its most recent return address only: grouping by line or file and filtering
 * without all_frames need nothing else. Borrowed: valid while tb lives. */
const tm_frame *tm__traceback_most_recent(const tm_traceback *tb);

/* Python's Traceback.__eq__ on resolved tracebacks: same (filename, lineno) sequence. */
bool tm__traceback_key_equal(const tm_traceback *a, const tm_traceback *b);

/* Hash consistent with tm__traceback_key_equal(). */
guint tm__traceback_key_hash(const tm_traceback *tb);

/* Python's Traceback ordering: compares the (filename, lineno) tuples oldest first, a prefix
 * sorting first. Returns <0, 0 or >0. */
int tm__traceback_compare(const tm_traceback *a, const tm_traceback *b);

/* Number of captured stack frames, inlined calls not counted: what the traceback limit applied
 * to. */
size_t tm__traceback_nstack(const tm_traceback *tb);

/* ---- snapshot.c ------------------------------------------------------------------------------ */

/* Creates an empty snapshot to be filled with tm__snapshot_add(); used by dump.c and tests.
 * Returns a new reference; tm_snapshot_free(). */
tm_snapshot *tm__snapshot_new(int traceback_limit);

/* Appends a trace; the snapshot takes its own reference to tb (deduplicated by pointer). Only for
 * snapshots made by tm__snapshot_new(). */
void tm__snapshot_add(tm_snapshot *snap, unsigned int domain, size_t size, tm_traceback *tb);

/* Returns a new reference to snap. */
tm_snapshot *tm__snapshot_ref(tm_snapshot *snap);

/* ---- filter.c -------------------------------------------------------------------------------- */

/* Python's Filter._match_traceback for a Filter (not a DomainFilter): whether tb passes the
 * file-name and line part of f, before the domain is considered. cache maps interned file names
 * to GINT_TO_POINTER(1 + matched) so that each name goes through fnmatch once per call of
 * filter_traces; it may be NULL. Resolves tb. */
bool tm__filter_match_traceback(const tm_filter *f, const tm_traceback *tb, GHashTable *cache);

/* Python's Filter._match / DomainFilter._match: combines tb_match (from
 * tm__filter_match_traceback(); ignored for a DomainFilter) with the trace's domain. */
bool tm__filter_match_trace(const tm_filter *f, unsigned int domain, bool tb_match);

/* ---- format.c -------------------------------------------------------------------------------- */

/* Line lineno (1-based) of filename, stripped of leading and trailing white space as Python's
 * str.strip(), or NULL when the file cannot be read or has no such line. Files are read once and
 * cached for the life of the process (Python's linecache), within bounds: a file over 4 MiB, or
 * one that would take the cache over 32 MiB or 4096 files, gives no line. Borrowed: valid
 * forever. Thread-safe. Frames read from a dump go through tm_set_source_root()'s rules first.
 */
const char *tm__source_line(const char *filename, unsigned int lineno);

#endif /* TM_MODEL_H */
