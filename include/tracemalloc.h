/* tracemalloc.h — Python's tracemalloc for C programs.
 *
 * Two layers, as in CPython:
 *   - the runtime (tm_start ... tm_untrack): the malloc-family hooks and their tables.
 *     Fallible calls return 0 or a negative TM_E* code (see tm_strerror()).
 *   - the analysis layer (snapshots, statistics, diffs, filters, formatting, dump/load).
 *     Fallible calls report through GError (domain TM_ERROR, codes tm_error_code).
 *
 * Every function is thread-safe unless its comment says otherwise. Objects returned by a
 * constructor (_new, _take, _load, _statistics, _compare_to, _format) are owned by the caller and
 * released with exactly one matching _free, which accepts NULL. Memory the tracer allocates for
 * itself (including the objects below) is never traced; it is counted by tm_get_tracemalloc_memory().
 */
#ifndef TRACEMALLOC_H
#define TRACEMALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <glib.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(TM_BUILDING_LIBRARY)
#define TM_EXTERN __attribute__((visibility("default")))
#else
#define TM_EXTERN
#endif

/* ------------------------------------------------------------------------------------------------
 * Runtime
 * ---------------------------------------------------------------------------------------------- */

/* Largest traceback limit tm_start() accepts. */
#define TM_MAX_NFRAME 1024

/* Error codes of the runtime layer: name, value, message. tm_track()/tm_untrack() keep the values
 * of PyTraceMalloc_Track (-1 no memory, -2 not tracing). */
#define TM_ERRNO_MAP(XX)                                                                           \
  XX(ENOMEM, -1, "out of memory: the tracer could not record the trace")                          \
  XX(ENOTTRACING, -2, "the tracemalloc module is not tracing memory allocations")                 \
  XX(EINVAL, -3, "invalid argument")                                                             \
  XX(ENOTFOUND, -4, "no trace at that address")                                                 \
  XX(ETOOMANYDOMAINS, -5,                                                                         \
     "too many domains: tm_track() records at most TM_MAX_DOMAINS distinct domains, 0 included") \
  XX(EFOREIGN, -6, "malloc is served by another tool (valgrind, a sanitizer): nothing can be traced")

typedef enum {
#define TM_ERRNO_ENUM_(name, value, msg) TM_##name = (value),
  TM_ERRNO_MAP(TM_ERRNO_ENUM_)
#undef TM_ERRNO_ENUM_
} tm_errno;

/* Returns a static, human-readable message for a TM_E* code (or "unknown error"). */
TM_EXTERN const char *tm_strerror(int err);

/* Starts tracing, keeping at most nframe frames per traceback (Python's start(nframe)).
 * Returns 0, TM_EINVAL when nframe is outside 1..TM_MAX_NFRAME (nothing changes), or TM_EFOREIGN
 * when another tool (valgrind, a sanitizer) serves malloc, so that the hooks would never see an
 * allocation (tracing stays off; tm_get_malloc_owner() names the tool).
 * Calling it while tracing changes the limit for new traces only, as Python does. */
TM_EXTERN int tm_start(int nframe);

/* Returns NULL when this library's hooks serve the program's malloc, or else a static name of the
 * tool that does ("valgrind", "AddressSanitizer", ... "another malloc interposer"). Probes once
 * per process with one allocation. */
TM_EXTERN const char *tm_get_malloc_owner(void);

/* Stops tracing and clears all traces (Python's stop()). Traced memory and peak become 0.
 * Frees the tracer's copy of every distinct stack it recorded, as Python clears its traceback
 * table: tracebacks and snapshots taken before keep copies of their own and stay valid.
 * No-op when not tracing. */
TM_EXTERN void tm_stop(void);

/* Returns true while tracing. */
TM_EXTERN bool tm_is_tracing(void);

/* Forgets every trace; tracing goes on (Python's clear_traces()). Resets traced memory and peak. */
TM_EXTERN void tm_clear_traces(void);

/* Returns a count of the times the traces were forgotten: by tm_start() when tracing was off, by
 * tm_stop() when it was on, by tm_clear_traces() while tracing (not in Python's module). A caller
 * that noted it can tell later whether the traces it expects are still there: the Check plugin
 * does, to say that a test which stopped or cleared tracing could not be checked. Thread-safe;
 * valid at any time, 0 before the first start. */
TM_EXTERN unsigned long tm_get_traces_generation(void);

/* Returns the traceback limit given to tm_start(), or the last one used (1 before any start). */
TM_EXTERN int tm_get_traceback_limit(void);

/* Stores the bytes currently traced and their peak since start/clear/reset_peak (Python's
 * get_traced_memory()). Either pointer may be NULL. Both are 0 when not tracing. */
TM_EXTERN void tm_get_traced_memory(size_t *current, size_t *peak);

/* Returns the number of traced blocks of the malloc domain (not in Python's module: the count
 * behind tm_get_traced_memory()'s current size). 0 when not tracing. */
TM_EXTERN size_t tm_get_traced_blocks(void);

/* Arms the peak watch (not in Python's module): the first time traced memory passes `limit`, the
 * tracer copies the traces as they are then, so that a peak over a limit can be explained by the
 * sites that made it. 0 disarms it. Either way the last copy is forgotten. Costs one comparison per
 * traced allocation while armed, and one copy of the traces when it fires. Thread-safe, but not
 * against a concurrent tm_peak_watch_snapshot(). */
TM_EXTERN void tm_peak_watch(size_t limit);

/* Sets the peak to the current traced size (Python's reset_peak()). */
TM_EXTERN void tm_reset_peak(void);

/* Returns all the memory the tracer itself holds, in bytes: trace tables, interned tracebacks,
 * symbol caches and analysis objects (Python's get_tracemalloc_memory()). */
TM_EXTERN size_t tm_get_tracemalloc_memory(void);

/* Number of allocations that were made while tracing but could not be recorded because the tracer
 * itself ran out of memory, or of traceback ids: a tracing session (tm_start() to tm_stop())
 * records at most 2^24 - 2 distinct stacks; past that, allocations from new stacks are counted
 * here (and a warning is written to stderr once) while known stacks are still traced. Such
 * allocations still succeed (the program's behaviour never changes); they are simply absent from
 * traces and counters. 0 in a healthy run. Reset by tm_clear_traces(). */
TM_EXTERN size_t tm_get_lost_traces(void);

/* Most distinct domains the tracer keeps, the malloc domain 0 included. A domain's table lives
 * until the process ends (tm_stop() empties it but keeps the domain). */
#define TM_MAX_DOMAINS 64

/* Records a block of a custom allocator under domain (PyTraceMalloc_Track). Domain 0 is the
 * malloc domain. Tracking an address already tracked in that domain replaces its trace.
 * Returns 0, TM_ENOMEM (-1), TM_ENOTTRACING (-2), TM_EINVAL (ptr 0) or TM_ETOOMANYDOMAINS (-5:
 * TM_MAX_DOMAINS distinct domains are known already and this is a new one; nothing recorded). */
TM_EXTERN int tm_track(unsigned int domain, uintptr_t ptr, size_t size);

/* Forgets a block recorded by tm_track() (PyTraceMalloc_Untrack).
 * Returns 0 (also when no such trace exists, as CPython does) or TM_ENOTTRACING (-2). */
TM_EXTERN int tm_untrack(unsigned int domain, uintptr_t ptr);

/* Stops tracing the calling thread's new blocks until the matching tm_thread_resume(); pairs nest.
 * Not in Python's module: it is for code whose memory is not the program's, such as a test
 * framework's own bookkeeping (the Check plugin pauses around Check's messages). While paused, the
 * thread's malloc-family allocations are neither traced nor counted, and cost no stack walk;
 * freeing a traced block still forgets it, so a traced block that a paused thread reallocates
 * leaves the traces. Other threads are unaffected, tm_track() still records, and a child forked
 * by a paused thread starts paused. With the heap registry on, the blocks a paused thread
 * allocates are registered but never read by tm_reachability_scan(): they are taken not to hold
 * the program's pointers. Works whether or not tracing is on; async-signal-safe. */
TM_EXTERN void tm_thread_pause(void);

/* tm_thread_pause() for code that is not under test but is the program's own, whose blocks may
 * hold the program's pointers (a test runner between two tests, where the program's main() and
 * its once-per-suite fixtures also run): the thread's new blocks are not traced, and with the heap
 * registry on they are registered as blocks allocated while not tracing are, which
 * tm_reachability_scan() reads. Ended by tm_thread_resume(); pairs nest with tm_thread_pause()'s,
 * and while any tm_thread_pause() is in force, inside or outside, new blocks stay unread. Works
 * whether or not tracing is on; async-signal-safe. */
TM_EXTERN void tm_thread_pause_scanned(void);

/* Ends one tm_thread_pause() or tm_thread_pause_scanned() of the calling thread, the latest. A
 * resume with no pause to end is ignored. */
TM_EXTERN void tm_thread_resume(void);

/* Returns true while the calling thread is paused (see tm_thread_pause()). */
TM_EXTERN bool tm_thread_is_paused(void);

/* The heap registry: with it, the tracer knows every live block of the program, traced or not
 * (blocks allocated before tracing started, while it was stopped, or by a paused thread are
 * recorded without a traceback, and are never part of traces, snapshots or counters). The
 * reachability scan (tm_reachability_scan()) needs it. It is on from the program's first
 * allocation when the program defines TM_HEAP_REGISTRY (at file scope, once: the Check plugin
 * does) or runs with TRACEMALLOC_REGISTRY=1, and off otherwise (TRACEMALLOC_REGISTRY=0 forces it
 * off). Costs one table insert per allocation and one removal per free while not tracing. */
#define TM_HEAP_REGISTRY                                                                           \
  __asm__(".pushsection .note.tracemalloc,\"a\",@note\n"                                         \
          ".balign 4\n.long 12\n.long 4\n.long " TM__STRING(TM__REGISTRY_NOTE_TYPE) "\n"        \
          ".asciz \"tracemalloc\"\n.long 1\n.popsection");                                    \
  __attribute__((visibility("default"), used)) const int tm_heap_registry_wanted = 1
/* The program's request reaches the library twice: as the exported symbol above, and as an ELF
 * note (name "tracemalloc", this type) in the program's PT_NOTE segment, which a link that hides
 * the symbols of static archives (-Wl,--exclude-libs,ALL, a version script) keeps. */
#define TM__REGISTRY_NOTE_TYPE 0x544d0001
#define TM__STRING_(x) #x
#define TM__STRING(x) TM__STRING_(x)

/* Returns true when the heap registry is on. */
TM_EXTERN bool tm_heap_registry_is_on(void);

/* Switches the heap registry off for the rest of the process and forgets what it registered
 * (traces stay), for a program that asked for it and then finds it needs no scan (the Check
 * plugin with TM_LEAK_DISABLE=1). There is no way back on: blocks allocated while it was off
 * would be missing. Thread-safe. */
TM_EXTERN void tm_heap_registry_disable(void);

/* ------------------------------------------------------------------------------------------------
 * Frames and tracebacks
 * ---------------------------------------------------------------------------------------------- */

/* Frame flags. */
#define TM_FRAME_NO_DEBUG_INFO 0x1u /* no file/line: filename is the module's basename, lineno 0 */
#define TM_FRAME_INLINED 0x2u       /* an inlined call; the next (older) frame is its caller */
#define TM_FRAME_UNKNOWN 0x4u       /* the address is in no known module: filename "<unknown>" */
#define TM_FRAME_LOADED 0x8u        /* read from a dump file: its strings are the file's, untrusted */
#define TM_FRAME_UNLOADED 0x10u     /* with TM_FRAME_UNKNOWN: the address was in a library that was
                                     * unloaded (dlclose) before the frame was resolved */

/* One resolved frame (Python's Frame, plus what C needs). Never free its strings. Strings of live
 * frames are interned for the life of the process. Strings of frames loaded from a dump belong to
 * the loaded snapshot and live as long as something holds one of its tracebacks (the snapshot, a
 * tm_traceback_ref(), a statistics or diffs list): within one loaded snapshot equal strings are
 * equal pointers, but compare strings of different snapshots with strcmp(). */
typedef struct tm_frame {
  const char *filename; /* source file, or module basename with TM_FRAME_NO_DEBUG_INFO; never NULL */
  unsigned int lineno;  /* 0 when unknown */
  const char *function; /* function or symbol name, or NULL when unknown */
  const char *module;   /* path of the ELF object holding the code, or NULL when unknown */
  uintptr_t ip;         /* the captured return address; 0 for frames loaded from a dump */
  unsigned int flags;   /* TM_FRAME_* */
} tm_frame;

/* An immutable sequence of frames sorted from the oldest to the most recent, as Python's
 * Traceback. Reference counted; frames are resolved lazily on first access. */
typedef struct tm_traceback tm_traceback;

/* Returns the traceback of the block at ptr (Python's get_object_traceback()), or NULL when ptr is
 * not traced or the tracer is not tracing. The caller owns the result: tm_traceback_free(). */
TM_EXTERN tm_traceback *tm_get_object_traceback(const void *ptr);

/* Returns a new reference to tb (NULL-safe). */
TM_EXTERN tm_traceback *tm_traceback_ref(tm_traceback *tb);

/* Drops a reference (NULL-safe). */
TM_EXTERN void tm_traceback_free(tm_traceback *tb);

/* Number of resolved frames (inlined calls count as frames). Resolves symbols on first call. */
TM_EXTERN size_t tm_traceback_length(const tm_traceback *tb);

/* Frame i, 0 being the oldest (Python's traceback[i]). Borrowed: valid while tb lives.
 * Returns NULL when i is out of range. */
TM_EXTERN const tm_frame *tm_traceback_get(const tm_traceback *tb, size_t i);

/* Python's total_nframe. For a stack that fit in the limit, its exact number of frames. For a
 * truncated stack, limit + 1, read "more than the limit": the tracer does not walk the rest of the
 * stack, which would cost about 7 ns a frame on every allocation (docs/costs.md, "Capture"). */
TM_EXTERN int tm_traceback_total_nframe(const tm_traceback *tb);

/* Whether the stack had more frames than the limit kept: its oldest callers are missing (what
 * tm_traceback_format() marks with its "[... traceback truncated ...]" line). False for NULL. */
TM_EXTERN bool tm_traceback_is_truncated(const tm_traceback *tb);

/* Formats like Python's Traceback.format(limit, most_recent_first): two lines per frame,
 *   '  File "x.c", line 8, in function'   and the stripped source line '    p = malloc(8);'
 * (when the file can be read). limit > 0 keeps the most recent `limit` frames, limit < 0 the
 * oldest -limit, 0 keeps all. A truncated traceback has the line
 *   '  [... traceback truncated: only the N most recent frames were captured]'
 * ('only the most recent frame was captured' for one), where N counts captured stack frames
 * (inlined calls not counted), where its missing oldest frames would be: first when
 * most_recent_first is false, last when it is true. Function names of C++ frames are demangled
 * when the process has libstdc++'s __cxa_demangle. A frame flagged TM_FRAME_NO_DEBUG_INFO prints
 * '  File "libfoo.so.1", in symbol' (no line, no source line). Returns a NULL-terminated array of
 * lines: g_strfreev(). */
TM_EXTERN char **tm_traceback_format(const tm_traceback *tb, int limit, bool most_recent_first);

/* Where source lines of frames read from a dump (TM_FRAME_LOADED) come from. By default (and after
 * tm_set_source_root(NULL)) such frames print no source line: a dump is data, and the files it
 * names are the dump writer's choice. With a root directory, a loaded frame's relative file name
 * is read under dir, and an absolute one only when it lies inside dir; either is resolved first
 * (symbolic links, "..") and refused when the result leaves dir. Live frames always read their
 * own source files. Returns false with dir unchanged when dir cannot be resolved to a directory.
 * Thread-safe; the setting is process-wide. */
TM_EXTERN bool tm_set_source_root(const char *dir);

/* Every string the formatting functions print (file names, functions, source lines) is escaped:
 * control characters, DEL, C1 controls and bytes that are not UTF-8 appear as \xNN, so a dump
 * cannot move the cursor, clear the screen or forge lines on a terminal. */

/* "file:lineno" of the oldest frame, as Python's str(traceback), except that the C runtime's
 * start-up frames are skipped (_start, __libc_start_main, __libc_start_call_main, and frames
 * without a line in a system library or in no module): the oldest frame of the program's own
 * code, usually main(). When every frame is a start-up frame, the oldest. "<unknown>:0" for a
 * traceback without frames. This is the key a TM_KEY_TRACEBACK statistic prints. g_free(). */
TM_EXTERN char *tm_traceback_to_string(const tm_traceback *tb);

/* ------------------------------------------------------------------------------------------------
 * Analysis layer: errors
 * ---------------------------------------------------------------------------------------------- */

#define TM_ERROR (tm_error_quark())
TM_EXTERN GQuark tm_error_quark(void);

typedef enum {
  TM_ERROR_NOT_TRACING,    /* "the tracemalloc module must be tracing memory allocations to ..." */
  TM_ERROR_INVALID,        /* a NULL or out-of-range argument, a bad pattern */
  TM_ERROR_NO_MEMORY,      /* the tracer could not allocate */
  TM_ERROR_IO,             /* a file could not be read or written */
  TM_ERROR_CORRUPT,        /* a dump file is truncated, corrupt or hostile */
  TM_ERROR_VERSION,        /* a dump file of an unsupported format version */
  TM_ERROR_UNSUPPORTED,    /* the request needs something this process lacks (the heap registry) */
} tm_error_code;

/* ------------------------------------------------------------------------------------------------
 * Snapshots
 * ---------------------------------------------------------------------------------------------- */

typedef struct tm_snapshot tm_snapshot;

/* Takes a snapshot of every live trace (Python's take_snapshot()). Returns NULL with
 * TM_ERROR_NOT_TRACING when not tracing. Cheap: no symbol is resolved here. tm_snapshot_free(). */
TM_EXTERN tm_snapshot *tm_take_snapshot(GError **error);

/* The traces as they were when traced memory first passed the watch's limit, as a snapshot. NULL
 * with TM_ERROR_INVALID when it has not passed it (or no watch is armed), TM_ERROR_NO_MEMORY.
 * tm_snapshot_free(). */
TM_EXTERN tm_snapshot *tm_peak_watch_snapshot(GError **error);

/* Drops the caller's reference (NULL-safe). */
TM_EXTERN void tm_snapshot_free(tm_snapshot *snap);

/* The traceback limit in force when the snapshot was taken. */
TM_EXTERN int tm_snapshot_get_traceback_limit(const tm_snapshot *snap);

/* One trace of a snapshot. Borrowed view: valid while the snapshot lives. */
typedef struct tm_trace {
  unsigned int domain;
  size_t size;
  const tm_traceback *traceback;
} tm_trace;

/* Number of traces, and trace i (0 <= i < length; NULL otherwise). */
TM_EXTERN size_t tm_snapshot_length(const tm_snapshot *snap);
TM_EXTERN const tm_trace *tm_snapshot_get(const tm_snapshot *snap, size_t i);

/* ------------------------------------------------------------------------------------------------
 * Filters (Python's Filter and DomainFilter)
 * ---------------------------------------------------------------------------------------------- */

typedef struct tm_filter tm_filter;

/* Python's Filter(inclusive, filename_pattern, lineno, all_frames, domain). filename_pattern uses
 * fnmatch semantics where '*' also matches '/' (glibc fnmatch(3), flags 0, so '\' escapes).
 * lineno 0 means any line; domain < 0 means any. Returns NULL with TM_ERROR_INVALID, and a
 * message quoting the pattern, for a NULL or empty pattern, an unterminated '[', a trailing '\'
 * or an unknown [:class:]. tm_filter_free(). */
TM_EXTERN tm_filter *tm_filter_new(bool inclusive, const char *filename_pattern, unsigned int lineno,
                                   bool all_frames, int64_t domain, GError **error);

/* Python's DomainFilter(inclusive, domain). Never fails. tm_filter_free(). */
TM_EXTERN tm_filter *tm_domain_filter_new(bool inclusive, unsigned int domain);

TM_EXTERN void tm_filter_free(tm_filter *filter);

/* Returns a new snapshot holding the traces that pass the filters (Python's filter_traces):
 * inclusive filters are OR-ed, exclusive ones AND-ed. nfilters may be 0 (a copy). Resolves the
 * symbols it needs to match file names. tm_snapshot_free(). */
TM_EXTERN tm_snapshot *tm_snapshot_filter_traces(tm_snapshot *snap, tm_filter *const *filters,
                                                 size_t nfilters, GError **error);

/* ------------------------------------------------------------------------------------------------
 * Statistics and diffs
 * ---------------------------------------------------------------------------------------------- */

typedef enum {
  TM_KEY_FILENAME,  /* group by the most recent frame's file */
  TM_KEY_LINENO,    /* group by the most recent frame's file and line */
  TM_KEY_TRACEBACK, /* group by the whole traceback */
} tm_key_type;

/* Python's Statistic. The traceback is borrowed from the list that holds the statistic. */
typedef struct tm_statistic {
  const tm_traceback *traceback;
  size_t size;
  size_t count;
} tm_statistic;

/* Python's StatisticDiff. */
typedef struct tm_statistic_diff {
  const tm_traceback *traceback;
  size_t size;
  int64_t size_diff;
  size_t count;
  int64_t count_diff;
} tm_statistic_diff;

typedef struct tm_statistics tm_statistics;
typedef struct tm_statistic_diffs tm_statistic_diffs;

/* Groups the traces by key (Python's Snapshot.statistics(key_type, cumulative)), sorted by size,
 * count, traceback, descending. cumulative (not with TM_KEY_TRACEBACK) credits every frame.
 * Returns NULL with TM_ERROR_INVALID on a bad argument. tm_statistics_free(). */
TM_EXTERN tm_statistics *tm_snapshot_statistics(tm_snapshot *snap, tm_key_type key_type,
                                                bool cumulative, GError **error);
TM_EXTERN size_t tm_statistics_length(const tm_statistics *stats);
TM_EXTERN const tm_statistic *tm_statistics_get(const tm_statistics *stats, size_t i);
TM_EXTERN void tm_statistics_free(tm_statistics *stats);

/* Python's Snapshot.compare_to(old_snapshot, key_type, cumulative): sorted by |size_diff|, size,
 * |count_diff|, count, traceback, descending. tm_statistic_diffs_free(). */
TM_EXTERN tm_statistic_diffs *tm_snapshot_compare_to(tm_snapshot *snap, tm_snapshot *old,
                                                     tm_key_type key_type, bool cumulative,
                                                     GError **error);
TM_EXTERN size_t tm_statistic_diffs_length(const tm_statistic_diffs *diffs);
TM_EXTERN const tm_statistic_diff *tm_statistic_diffs_get(const tm_statistic_diffs *diffs, size_t i);
TM_EXTERN void tm_statistic_diffs_free(tm_statistic_diffs *diffs);

/* ------------------------------------------------------------------------------------------------
 * Formatting, exactly as Python prints
 * ---------------------------------------------------------------------------------------------- */

/* Python's _format_size(size, sign): "5000 B", "19.5 KiB", "195 KiB", "+1024 B". g_free(). */
TM_EXTERN char *tm_format_size(int64_t size, bool sign);

/* "x.c:8: size=583 KiB, count=14994, average=40 B". g_free(). */
TM_EXTERN char *tm_statistic_format(const tm_statistic *stat);

/* "x.c:8: size=645 KiB (+645 KiB), count=14998 (+14998), average=44 B". g_free(). */
TM_EXTERN char *tm_statistic_diff_format(const tm_statistic_diff *diff);

/* ------------------------------------------------------------------------------------------------
 * Dump and load
 * ---------------------------------------------------------------------------------------------- */

/* What tm_snapshot_dump() appends to path, before six random characters, to name the temporary
 * file it writes first: "snap.dump.tm-dump-Ab12Cd". */
#define TM_DUMP_TEMP_SUFFIX ".tm-dump-"

/* Writes the snapshot with its resolved frames to path (Python's Snapshot.dump), so it can be read
 * after the program is gone. The dump goes to a temporary file in path's folder (named
 * path TM_DUMP_TEMP_SUFFIX "XXXXXX"), which is then renamed over path: path holds its old content
 * or the whole dump, never a part. path must be a new name or a regular file, which keeps its
 * permission bits; anything else (a symbolic link, FIFO, device or directory) is refused with
 * TM_ERROR_IO and left alone. Returns false with TM_ERROR_IO on failure, after removing the
 * temporary file; only a process killed while writing can leave one behind (remove files matching
 * the pattern above). */
TM_EXTERN bool tm_snapshot_dump(tm_snapshot *snap, const char *path, GError **error);

/* Reads a snapshot written by tm_snapshot_dump (Python's Snapshot.load). A truncated, corrupt or
 * hostile file gives NULL with TM_ERROR_CORRUPT (or _VERSION, _IO) and a message naming the file
 * and what is wrong; never a crash. tm_snapshot_free(). */
TM_EXTERN tm_snapshot *tm_snapshot_load(const char *path, GError **error);

/* ------------------------------------------------------------------------------------------------
 * Reachability: which traced blocks the program can still reach (not in Python's module)
 *
 * LeakSanitizer's and Valgrind's definition of a leak, drawn on demand instead of once at exit. A
 * conservative mark from the roots over every live block (the heap registry must be on): every
 * aligned word that points to the start of a live block or inside it counts as a pointer to it.
 * Roots: the writable segments of every loaded object (dl_iterate_phdr; glibc's malloc state is
 * left out, since its free lists point into live blocks), the calling thread's stack from
 * options->stack_from up, its static TLS and thread descriptor (pthread_setspecific values live
 * there), the words of options->roots (registers the caller saved), the whole stacks of the
 * process's other threads (from their stack pointers where /proc says them), and the resident
 * pages of the anonymous memory the program mapped itself with mmap() (a pool, an arena). Limits:
 * pointers hidden by tagging or XOR, or held only in another thread's registers, file mappings
 * and memory mapped by a raw system call, and a block whose only pointer sits in a block
 * allocated by the dynamic loader before relocation are all outside the graph.
 * ---------------------------------------------------------------------------------------------- */

typedef enum tm_reach {
  TM_REACH_REACHABLE, /* a root points to it, directly or through reachable blocks */
  TM_REACH_LOST,      /* unreachable, and no other unreachable traced block points to it */
  TM_REACH_INDIRECT,  /* unreachable, and pointed to by another unreachable traced block */
} tm_reach;

/* One traced block of the malloc domain, classified. */
typedef struct tm_reach_block {
  uintptr_t ptr;
  size_t size;
  tm_traceback *traceback; /* borrowed: valid while the result lives */
  tm_reach reach;
  /* Unreachable blocks are grouped under a root: a block no other unreachable block points to,
   * or for blocks that point to each other and that nothing else points to, the one allocated
   * first (its traceback seen first; then the largest). The index of this block's root in the
   * result; for a root, its own index; SIZE_MAX for a reachable block. */
  size_t root;
  size_t owned_size, owned_blocks; /* a root: itself plus every block it owns; else 0 */
} tm_reach_block;

/* A mark of the calling thread's call chain (its return addresses), taken with
 * tm_stack_mark_take() where a window opens, so that a later scan from another call chain can
 * find the frame the two share. */
#define TM_STACK_MARK_DEPTH 64
typedef struct tm_stack_mark {
  uintptr_t ips[TM_STACK_MARK_DEPTH];
  int n; /* 0: no mark */
} tm_stack_mark;

/* Records the calling thread's call chain into *mark. Cheap (one unw_backtrace), allocates
 * nothing, async-signal-unsafe. */
TM_EXTERN void tm_stack_mark_take(tm_stack_mark *mark);

typedef struct tm_reach_options {
  /* The calling thread's stack is scanned from this address up (toward older frames); NULL scans
   * it from tm_reachability_scan()'s caller's frame. A caller that wants its own frames left out
   * (a leak fixture whose frames sit where a test's dead frames were) passes its caller's frame. */
  const void *stack_from;
  /* When set, and the calling chain shares frames with the chain marked: the stack is scanned
   * from the innermost shared frame's stack pointer instead, that is from where that frame called
   * both the marked code and this one. A test framework that calls a setup, the test and a
   * teardown from one function gets exactly the frames that were live when the test was called:
   * none of the test's dead frames, nor stale words that its own callers' frames left in slots
   * they never wrote. */
  const tm_stack_mark *since;
  const uintptr_t *roots; /* extra root words, e.g. callee-saved registers; may be NULL */
  size_t nroots;
  /* With since: the stack is scanned from the frame that called Check's runner instead (the
   * caller of the outermost function named srunner_* or tcase_run_*, found by name), or, when no
   * such frame is named, from main()'s frame when main() is further out than the shared frame.
   * The frames skipped are the test runner's (Check's srunner_run and its callees), live since
   * before the window opened: they hold no pointer of the test's, only, in slots they never
   * wrote, what earlier calls left there, such as the address of a block the runner freed and the
   * test then got again. Off, the shared frame's callers count. */
  bool runner_frames_skipped;
  /* The calling process is a fork() child that started tracing just after the fork, its parent
   * still alive (Check's runner waiting for a CK_FORK=yes test). A word of memory older than the
   * traces (a root, an untraced block) on a page this process still shares with its parent has
   * not been written since the fork: when it points to a block traced since, it is stale (a
   * dangling pointer, the unused capacity of an old array, whose freed chunk the block reuses)
   * and does not make the block reachable. Read from /proc/self/pagemap; without it, or while the
   * process has child processes of its own, or once it has called fork() itself (its children,
   * and what they left behind, share its pages too), every word counts; so does every word of a
   * MAP_SHARED mapping, whose pages are never this process's alone. */
  bool since_fork;
} tm_reach_options;

typedef struct tm_reachability tm_reachability;

/* Classifies every traced block of the malloc domain. The program's other threads may go on
 * running; any of them that allocates or frees waits until the scan ends. options may be NULL.
 * Returns NULL with TM_ERROR_NOT_TRACING when not tracing, TM_ERROR_UNSUPPORTED when the heap
 * registry is off, TM_ERROR_NO_MEMORY. Resolves no symbol. tm_reachability_free(). */
TM_EXTERN tm_reachability *tm_reachability_scan(const tm_reach_options *options, GError **error);

/* Number of traced blocks classified, and the i-th of them (sorted by address; NULL when i is out
 * of range). Borrowed: valid while r lives. */
TM_EXTERN size_t tm_reachability_length(const tm_reachability *r);
TM_EXTERN const tm_reach_block *tm_reachability_get(const tm_reachability *r, size_t i);

/* Bytes and blocks of each class, over the traced blocks. */
TM_EXTERN void tm_reachability_totals(const tm_reachability *r, tm_reach reach, size_t *size,
                                      size_t *blocks);

/* Releases r. NULL is a no-op. */
TM_EXTERN void tm_reachability_free(tm_reachability *r);

#ifdef __cplusplus
}
#endif

#endif /* TRACEMALLOC_H */
