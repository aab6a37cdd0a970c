/* tool.h — the `tracemalloc` command's parts, one file each. Internal; never installed.
 *
 *   main.c        the commands, their help, and the one-line errors with exit status 2
 *   options.c     options shared by stats and compare, sizes as users write them
 *   progress.c    progress on a terminal for slow reads and drawings; loading a dump
 *   report.c      `stats` and `compare`: Python's text through the library's format functions
 *   run.c         `run`: a program traced from its first allocation, its dumps listed
 *   stacks.c      the call tree of a dump (and of its diff), shared by the two outputs below
 *   flamegraph.c  `flamegraph`: the self-contained SVG
 *   folded.c      `flamegraph --folded`: folded stacks for flamegraph.pl and speedscope
 *
 * Errors: a command prints one line "tracemalloc: <what is wrong>" on stderr and returns
 * TOOL_EXIT_USAGE (2); compare --fail-over returns TOOL_EXIT_GREW (1) when the growth passes.
 */
#ifndef TM_TOOL_H
#define TM_TOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <glib.h>

#include "tracemalloc.h"

#define TOOL_EXIT_OK 0
#define TOOL_EXIT_GREW 1
#define TOOL_EXIT_USAGE 2

/* ---- main.c ----------------------------------------------------------------------------------- */

/* Prints "tracemalloc: <message>" and a newline on stderr. Returns TOOL_EXIT_USAGE. */
int tool_fail(const char *fmt, ...) G_GNUC_PRINTF(1, 2);

/* Parses argv with ctx (consumed: freed here). On an error prints one line, returns false. The
 * command's summary is in the context; argv keeps the remaining arguments. */
bool tool_parse(GOptionContext *ctx, int *argc, char ***argv);

/* ---- options.c -------------------------------------------------------------------------------- */

/* What stats, compare and flamegraph share. */
typedef struct tool_view {
  char *key;           /* --key: "lineno" (default), "filename" or "traceback" */
  gboolean cumulative; /* --cumulative */
  int limit;           /* --limit, default 10; 0 for all */
  char **include;      /* --include PATTERN, repeatable (fnmatch on file names, any frame) */
  char **exclude;      /* --exclude PATTERN, repeatable */
  gboolean traceback;  /* --traceback: each statistic followed by its traceback */
  char *fail_over;     /* compare --fail-over SIZE */
  char *source_root;   /* --source-root DIR: files shown relative to it, source lines read there */
} tool_view;

/* Adds the options of view to ctx as the main group (limit and the others with defaults set).
 * with_compare adds --fail-over. The view's strings are owned by it: tool_view_clear(). */
void tool_view_add_options(GOptionContext *ctx, tool_view *view, bool with_compare);

/* Releases what the options allocated. */
void tool_view_clear(tool_view *view);

/* Checks the parsed view and stores its key. Prints one line and returns false when bad. */
bool tool_view_check(const tool_view *view, tm_key_type *key);

/* Returns the snapshot filtered by --include/--exclude (Python's filter_traces: inclusive ones
 * OR-ed, exclusive ones AND-ed), or a new reference to snap when there are none; NULL after
 * printing one line. Takes no ownership of snap; the result is the caller's. */
tm_snapshot *tool_view_filter(const tool_view *view, tm_snapshot *snap);

/* Parses a size as users write it: whole bytes with an optional unit B, KiB, MiB, GiB or TiB,
 * with or without blanks between ("512", "4KiB", "4 KiB"). Returns false for anything else,
 * "4 KB" and "4k" included. */
bool tool_size_parse(const char *text, size_t *out);

/* ---- progress.c ------------------------------------------------------------------------------- */

typedef struct tool_progress tool_progress;

/* Starts a progress line "tracemalloc: <what>... N s" on stderr, shown only when stderr is a
 * terminal and the work lasts more than a second (a thread wakes every 250 ms), erased by
 * tool_progress_done(). Never NULL. */
tool_progress *tool_progress_start(const char *what);

/* Sets the fraction done (0..1), shown as a percentage; negative shows elapsed seconds only. */
void tool_progress_set(tool_progress *p, double fraction);

/* Stops the thread, erases the line, frees p (NULL-safe). */
void tool_progress_done(tool_progress *p);

/* Loads a dump with a progress line. NULL after printing one line naming the file. */
tm_snapshot *tool_snapshot_load(const char *path);

/* ---- report.c --------------------------------------------------------------------------------- */

/* The commands' mains: argv[0] is the command's name, the options follow; each returns the exit
 * status (TOOL_EXIT_*, or for run the program's). Not thread-safe: one per process. */
int tool_stats_main(int argc, char **argv);

/* From now on, the lines printed show file names under dir (made absolute and resolved)
 * relative to it: "dir/src/x.c:8: size=..." prints "src/x.c:8: size=...". NULL: as recorded. */
void tool_paths_relative_to(const char *dir);
int tool_compare_main(int argc, char **argv);

/* Prints Python's "[ Top N lines ]" block for snap grouped by line to out: the helper `run`
 * shows when the program is done. */
void tool_top_lines_print(tm_snapshot *snap, int limit, FILE *out);

/* ---- run.c ------------------------------------------------------------------------------------ */

/* See tool_stats_main(). */
int tool_run_main(int argc, char **argv);

/* ---- stacks.c --------------------------------------------------------------------------------- */

/* One node of the call tree: a frame reached through the same callers. Strings are borrowed from
 * the snapshots the tree was built from, which must outlive it; compared by content. */
typedef struct tool_node tool_node;
struct tool_node {
  const char *function;  /* NULL when unknown */
  const char *filename;
  const char *module;    /* NULL when unknown */
  unsigned lineno;
  unsigned flags;        /* TM_FRAME_*; TOOL_NODE_TRUNCATED for the stand-in of lost callers */
  size_t bytes, blocks;  /* of every trace through this node (the new snapshot's) */
  size_t self_bytes, self_blocks; /* of traces whose most recent frame is this node */
  size_t old_bytes, old_self_bytes; /* the same in the old snapshot (--diff) */
  size_t old_blocks;
  tool_node *parent;
  tool_node *first_child, *next_sibling; /* children in order of first appearance */
  tool_node *last_child;
  unsigned depth;                         /* root 0 */
};

#define TOOL_NODE_TRUNCATED 0x100u

typedef struct tool_tree {
  tool_node *root;          /* "all": every trace */
  size_t nnodes;
  unsigned max_depth;
  GHashTable *index;        /* internal */
  GStringChunk *strings;    /* internal */
} tool_tree;

/* Builds the tree of snap (the new snapshot) and, when old is not NULL, adds old's bytes as
 * old_bytes. Truncated tracebacks hang under a "[truncated]" node. progress may be NULL.
 * tool_tree_free(). */
tool_tree *tool_tree_build(tm_snapshot *snap, tm_snapshot *old, tool_progress *progress);
void tool_tree_free(tool_tree *tree);

/* Children sorted by label for drawing, bytes descending ties broken by label; a new array of
 * borrowed nodes (g_ptr_array_unref). */
GPtrArray *tool_node_children_sorted(const tool_node *node);

/* The frame's label "function (file:line)", "function (libfoo.so)" without debug info,
 * "<unknown>" or "[truncated]"; short gives the file's base name instead of its path. g_free(). */
char *tool_node_label(const tool_node *node, bool short_name);

/* ---- flamegraph.c / folded.c ------------------------------------------------------------------ */

/* See tool_stats_main(). */
int tool_flamegraph_main(int argc, char **argv);

/* Writes one line per stack with self bytes, frames oldest first separated by ';', then the bytes
 * (with diff: the old and the new bytes, difffolded's form). Returns false on a write error. */
bool tool_folded_write(const tool_tree *tree, bool diff, FILE *out);

/* Writes the SVG. Returns false on a write error. */
bool tool_svg_write(const tool_tree *tree, bool diff, const char *file_label, FILE *out,
                    tool_progress *progress);

#endif /* TM_TOOL_H */
