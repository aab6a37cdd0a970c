/* leak_internal.h — the Check plugin's parts, one file each (docs/plugin.md). Internal; never
 * installed.
 *
 *   leak_size.c     sizes as users write them (TM_LEAK_THRESHOLD=4 KiB)
 *   leak_verdict.c  the verdict: a pure function of the filtered growth and the test's rules
 *   leak_config.c   environment, TM_LEAK_CONFIG key file, per-test rules
 *   leak_filter.c   default and configured filters; choice of the allocation site
 *   leak_suppress.c LeakSanitizer and Valgrind suppression files, as filters
 *   leak_paths.c    source paths as every line and report shows them
 *   leak_record.c   one record per test window, for CI: JSON Lines, annotations, the baseline
 *   leak_json.c     the JSON Lines formatter (a module with json-glib, loaded when asked for)
 *   leak_github.c   GitHub Actions annotations
 *   leak_baseline.c the baseline ratchet: what each test leaked when it was recorded
 *   leak_report.c   the one-line Check message and the stderr report
 *   leak_stderr.c   the stream those go to: stderr, in bytes even when the program made it wide
 *   leak_dump.c     TM_LEAK_DUMP_DIR: the dump of each failing window
 *   leak_fixture.c  setup/teardown plumbing, the in-test calls, the constructor
 *   leak_assert.c   __wrap__ck_assert_failed: notes that the running test has failed
 *   leak_names.c    wraps of suite/tcase/test creation: names and START_TEST locations
 *   leak_auto.c     the zero-edit mode: TM_LEAK_FIXTURE added by the tcase_create wrap
 */
#ifndef TM_LEAK_INTERNAL_H
#define TM_LEAK_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <glib.h>

#include "tracemalloc.h"

/* ---- leak_size.c ----------------------------------------------------------------------------- */

/* Parses a size as users write it: a whole number of bytes, optionally followed (after any blanks)
 * by one of the units B, KiB, MiB, GiB, TiB, exactly so spelled: "512", "4KiB",
 * "4 KiB", "1MiB". Leading and trailing blanks are ignored. `what` names the setting in the error
 * (e.g. "TM_LEAK_THRESHOLD"). Returns true and stores the size; on error returns false, leaves *out
 * unchanged and sets *error (G_KEY_FILE_ERROR_INVALID_VALUE) to a message naming `what`, the value
 * and the accepted forms. */
bool tm__leak_parse_size(const char *what, const char *text, size_t *out, GError **error);

/* ---- leak_verdict.c -------------------------------------------------------------------------- */

/* What a window left behind once the filters have run. */
typedef struct tm__leak_growth {
  size_t size;   /* bytes charged: lost (and, when charged, reachable) blocks not filtered out */
  size_t blocks; /* how many blocks hold them */
  size_t peak;   /* peak traced memory of the window (every block, unfiltered) */
} tm__leak_growth;

/* The rules in force for one test, already merged from defaults, environment, config file and
 * the test's own calls. */
typedef struct tm__leak_rules {
  size_t allowance;        /* bytes the test may leave allocated */
  size_t allowance_blocks; /* blocks it may leave allocated; SIZE_MAX: any number */
  size_t peak_limit;       /* 0: no peak limit */
  bool ignore;             /* skip every check */
  bool charge_reachable;   /* charge reachable growth too (TM_LEAK_REACHABLE=charge) */
} tm__leak_rules;

/* Verdict flags; 0 is a pass. */
enum {
  TM__LEAK_PASS = 0,
  TM__LEAK_LEAKED = 1u << 0,       /* growth.size > allowance or growth.blocks > allowance_blocks */
  TM__LEAK_PEAK_EXCEEDED = 1u << 1 /* peak_limit != 0 and growth.peak > peak_limit */
};

/* Judges one window. Pure: no I/O, no allocation, no global state. A test that is ignored always
 * passes. Filtering and reachability only remove bytes and blocks from what is charged, so a
 * window whose traced growth passes cannot fail once classified and filtered: the fixture relies
 * on that to skip the scan and symbolization for passing tests. */
unsigned tm__leak_judge(const tm__leak_growth *growth, const tm__leak_rules *rules);

/* ---- leak_filter.c --------------------------------------------------------------------------- */

/* Predicates on tracebacks. Patterns are globs (GPatternSpec: '*' and '?'). */
typedef struct tm__leak_filters tm__leak_filters;

/* Creates an empty filter set. Never fails. tm__leak_filters_free(). */
tm__leak_filters *tm__leak_filters_new(void);
void tm__leak_filters_free(tm__leak_filters *filters);

/* Adds the default filters: one-time caches of stdio, tz/locale, NSS, the dynamic loader, glibc's
 * thread TLS, Check's own message file in no-fork mode, and GLib's quarks, interned strings, type
 * system, GSlice magazines (unless GSlice uses malloc) and other one-time data. */
void tm__leak_filters_add_defaults(tm__leak_filters *filters);

/* A trace is ignored when any of its frames has a function, source file or module (path) that
 * matches a pattern of the matching kind. */
void tm__leak_filters_add_function(tm__leak_filters *filters, const char *pattern);
void tm__leak_filters_add_file(tm__leak_filters *filters, const char *pattern);
void tm__leak_filters_add_module(tm__leak_filters *filters, const char *pattern);

/* Allocator wrappers: functions whose frames the allocation site skips (malloc, g_strdup, ...).
 * The defaults are always there; this adds more. */
void tm__leak_filters_add_allocator(tm__leak_filters *filters, const char *pattern);

/* Returns the pattern that makes tb ignored, or NULL when no filter matches. Resolves symbols the
 * first time it sees tb; the answer is remembered per traceback (holding a reference to it) until
 * an ignore pattern is added, so that a stack seen again costs one hash lookup. Not thread-safe:
 * Check runs the fixtures on one thread. */
const char *tm__leak_filters_match(const tm__leak_filters *filters, const tm_traceback *tb);

/* The same for a block of a given kind (one TM__LEAK_SUPP_* bit, leak_suppress.c): patterns match
 * every kind, a Valgrind suppression only the kinds of its match-leak-kinds line.
 * tm__leak_filters_match() asks for TM__LEAK_SUPP_DEFINITE. Cached per traceback and kind. */
const char *tm__leak_filters_match_kind(const tm__leak_filters *filters, const tm_traceback *tb,
                                        unsigned kind);

/* Returns the allocation site of tb: the most recent frame that is neither an allocator wrapper
 * nor in a system library (/lib, /usr/lib) nor unknown; when every frame is one of those, the most
 * recent frame. NULL for an empty traceback, and when the first such frame is Check's runner (the
 * test called the allocator in a tail call, which took its frame away) and no wrapper was looked
 * through. Borrowed from tb. */
const tm_frame *tm__leak_site(const tm__leak_filters *filters, const tm_traceback *tb);

/* Returns the frame of the test function `test_name` (Check's START_TEST names it test_name_fn),
 * the most recent one if it recurses, or NULL. Borrowed from tb. */
const tm_frame *tm__leak_test_frame(const tm_traceback *tb, const char *test_name);

/* ---- leak_suppress.c ------------------------------------------------------------------------- */

/* Suppressions read from LeakSanitizer (leak:PATTERN) and Valgrind ({ ... Memcheck:Leak ... })
 * files; leak_suppress.c describes how each format matches. */
typedef struct tm__leak_suppressions tm__leak_suppressions;

/* Valgrind's match-leak-kinds, as bits: lost blocks are definite, indirectly lost indirect, still
 * reachable reachable. A block whose kind is not known counts as definite. */
enum {
  TM__LEAK_SUPP_DEFINITE = 1u << 0,
  TM__LEAK_SUPP_INDIRECT = 1u << 1,
  TM__LEAK_SUPP_POSSIBLE = 1u << 2,
  TM__LEAK_SUPP_REACHABLE = 1u << 3,
  TM__LEAK_SUPP_ALL = 0xfu
};

/* Creates an empty set. Never fails. tm__leak_suppressions_free() accepts NULL. */
tm__leak_suppressions *tm__leak_suppressions_new(void);
void tm__leak_suppressions_free(tm__leak_suppressions *set);

/* Adds the suppressions of one file, whose format its first line tells ('{': Valgrind; anything
 * else: LeakSanitizer). Returns false and sets *error, naming the file and line, on an unreadable
 * file, a syntax error, an unknown LSan type, an unknown Memcheck kind or leak kind; the
 * suppressions read before the error stay in the set. Blocks and lines of other tools are
 * skipped. */
bool tm__leak_suppressions_load(tm__leak_suppressions *set, const char *path, GError **error);

/* How many leak suppressions the set holds (0 for NULL). */
size_t tm__leak_suppressions_length(const tm__leak_suppressions *set);

/* Returns the name of the first suppression (in load order) that matches tb for a block of the
 * given TM__LEAK_SUPP_* kind, or NULL; NULL set: NULL. A Valgrind suppression's name is its
 * first line, an LSan one's is "leak:PATTERN". Borrowed from the set. Resolves tb's symbols.
 * Read-only on the set: thread-safe against other matches. */
const char *tm__leak_suppressions_match(const tm__leak_suppressions *set, const tm_traceback *tb,
                                        unsigned kind);

/* LeakSanitizer's TemplateMatch: whether templ matches str as a substring, '*' matching any run,
 * a leading '^' and a trailing '$' anchoring. False for a NULL or empty str. Pure. */
bool tm__leak_lsan_match(const char *templ, const char *str);

/* Returns the suppressions the filters apply after their patterns (a trace matched by one is
 * ignored, under the suppression's name), created on the first call, and forgets the cached
 * verdicts, since the caller is about to add to it. Owned by the filters. (leak_filter.c) */
tm__leak_suppressions *tm__leak_filters_suppressions(tm__leak_filters *filters);

/* Loads each file of a list into the filters' suppressions; `separator`
 * splits the list (':' in TM_LEAK_SUPPRESSIONS, ';' already split in the key file) and relative
 * paths are taken from `base_dir` (NULL: the working directory). `what` names the setting in
 * errors ("TM_LEAK_SUPPRESSIONS"). Returns false and sets *error on the first bad file. */
bool tm__leak_filters_load_suppressions(tm__leak_filters *filters, const char *what,
                                        const char *list, char separator, const char *base_dir,
                                        GError **error);

/* ---- leak_paths.c ---------------------------------------------------------------------------- */

/* The project's source root for a given environment (NULL-terminated "NAME=value" array) and
 * working directory (absolute): TM_LEAK_SOURCE_ROOT, else MESON_SOURCE_ROOT, else walking up
 * from cwd the source folder of the first meson build directory or the first folder with a .git
 * entry, else cwd; canonical, no trailing '/'. Reads the file system. g_free(). */
char *tm__leak_source_root_find(char **envp, const char *cwd);

/* The source root of this run: tm__leak_source_root_find() on the process's environment (none
 * in a setuid/setgid program) and working directory, found on the first call and kept for the
 * process. Not thread-safe on the first call (the fixtures call it on Check's one thread). */
const char *tm__leak_source_root(void);

/* A source path as reports show it: relative to `root` when it lies inside it, absolute
 * (canonical: no "..") otherwise; a relative path (debug info without a base) as given. NULL
 * for NULL. Interned: valid for the life of the process. */
const char *tm__leak_display_path_in(const char *root, const char *path);

/* tm__leak_display_path_in() with this run's source root. */
const char *tm__leak_display_path(const char *path);

/* A line of tm_traceback_format() with the path of its `  File "PATH", line N, in f` form shown
 * by tm__leak_display_path(); other lines unchanged. g_free(). */
char *tm__leak_display_traceback_line(const char *line);

/* ---- leak_config.c --------------------------------------------------------------------------- */

/* Settings for the whole run. */
typedef struct tm__leak_config {
  bool disabled;            /* TM_LEAK_DISABLE */
  bool accept_foreign;      /* TM_LEAK_ACCEPT_UNCHECKED: another tool owns malloc, run unchecked */
  int nframe;               /* TM_LEAK_NFRAME; 0 when not set anywhere (use the default) */
  size_t top;               /* TM_LEAK_TOP */
  tm__leak_rules defaults;  /* threshold and peak limit before per-test rules */
  tm__leak_filters *filters;
  GPtrArray *test_rules;    /* of tm__leak_test_rule*, in file order */
  char *path;               /* TM_LEAK_CONFIG, or NULL */
  size_t watch_peak;        /* the lowest peak limit of any rule (0: none): the peak watch */
} tm__leak_config;

#define TM__LEAK_DEFAULT_NFRAME 32
#define TM__LEAK_DEFAULT_TOP 10

/* The value of the setting name in env (a NULL-terminated "NAME=value" array), or NULL when it is
 * unset or empty: an empty value means unset, as TRACEMALLOC= does (and Python's PYTHON*
 * variables; a CI matrix entry left blank). Borrowed from env. */
const char *tm__leak_env_get(char **env, const char *name);

/* Builds the configuration from a key file (NULL for none) and an environment (a NULL-terminated
 * "NAME=value" array as g_get_environ() gives; the real one when NULL). Returns NULL and sets
 * *error, whose message names the variable or the file, group and key at fault. The result is
 * freed with tm__leak_config_free(). */
tm__leak_config *tm__leak_config_load(char **envp, GError **error);
void tm__leak_config_free(tm__leak_config *config);

/* Which test a window belongs to. Any name may be NULL (unknown). */
typedef struct tm__leak_test_id {
  const char *suite, *tcase, *test;
} tm__leak_test_id;

/* Merges over config->defaults the rules of the sections that match the test: [suite:GLOB]
 * first, then [tcase:GLOB], then [test:GLOB] (the most specific wins), each kind in file order,
 * and stores them in *out. */
void tm__leak_config_rules_for(const tm__leak_config *config, const tm__leak_test_id *id,
                               tm__leak_rules *out);

/* ---- leak_names.c ---------------------------------------------------------------------------- */

/* Where a test was declared, as its START_TEST recorded it, and the TCase and Suite it was added
 * to: learnt by the wraps of suite_create, suite_add_tcase, tcase_create and _tcase_add_test
 * (the plugin's link flags). */
typedef struct tm__leak_test_info {
  const char *suite, *tcase, *test; /* NULL when unknown */
  const char *file;                 /* START_TEST's __FILE__, or NULL */
  int line;
  int loop_start;                   /* the first iteration of a loop test (0 otherwise) */
  const void *tcase_id, *ttest_id;  /* the TCase and TTest it was added with */
} tm__leak_test_info;

/* Returns what is known of the test named test_name (tcase_name()): the one Check's runner is
 * running (its log_test_start(), wrapped), so that two tests of one name in different TCases or
 * suites, or one test added to two TCases, each get their own; else the last test added by that
 * name; every field NULL/0 when nothing is known (a link without the wraps). Borrowed, valid for
 * the life of the process. */
tm__leak_test_info tm__leak_test_lookup(const char *test_name);

/* ---- leak_stderr.c --------------------------------------------------------------------------- */

/* The stream for the plugin's notes and reports: stderr, unless the program made stderr
 * wide-oriented (fwide(), a wprintf to it), where bytes written to it are dropped without an error
 * anyone sees; then a byte stream, line-buffered, that writes to stderr's descriptor, after
 * flushing what the program put in stderr. Borrowed: never closed. Not thread-safe on its first
 * call; the plugin calls it from the runner's thread only. */
FILE *tm__leak_stderr(void);

/* ---- leak_report.c --------------------------------------------------------------------------- */

/* Longest Check message the plugin sends: well under Check's 4088-byte limit. */
#define TM__LEAK_MESSAGE_MAX 1024

/* What one filter pattern removed from a window. */
typedef struct tm__leak_ignored {
  const char *pattern; /* owned by the filters */
  size_t size, blocks;
} tm__leak_ignored;

/* Blocks of a window that share a traceback and a class (sections of the report). */
typedef struct tm__leak_group {
  const tm_traceback *traceback; /* of the blocks (a lost group: of its roots) */
  tm_reach reach;
  size_t size, blocks;           /* the blocks themselves */
  size_t owned_size, owned_blocks; /* a lost group: what its roots point to, charged, besides them */
  size_t largest;                /* a lost group: size of its largest root */
} tm__leak_group;

/* Everything the report needs about one failing window. */
typedef struct tm__leak_findings {
  tm__leak_test_info test;        /* the test: names and START_TEST location */
  unsigned verdict;               /* TM__LEAK_* flags */
  tm__leak_growth growth;         /* what was charged */
  tm__leak_rules rules;
  size_t lost_size, lost_blocks;         /* lost, not filtered out */
  size_t indirect_size, indirect_blocks; /* indirectly lost */
  size_t reachable_size, reachable_blocks;
  size_t ignored_size, ignored_blocks; /* removed by the filters */
  GArray *ignored_by;             /* of tm__leak_ignored, by pattern, in order of first match */
  GArray *groups;                 /* of tm__leak_group: charged lost groups first, largest
                                   * first, then indirect, then reachable (not charged) */
  size_t top;                     /* how many lines of each section to print on stderr */
  const tm__leak_filters *filters;
  size_t peak_watch;              /* the limit the peak watch was armed at (0: none) */
  tm_statistics *peak_sites;      /* a peak failure: the traces when the watch fired, by
                                   * traceback, largest first; NULL otherwise */
} tm__leak_findings;

/* Writes the one-line Check message (no newline, at most TM__LEAK_MESSAGE_MAX - 1 bytes, cut on a
 * UTF-8 boundary with "...") into msg, and the file and line to blame into *file (interned: never
 * freed) and *line: the site of the largest lost root when it has a line number (the program was
 * built with -g), else the test's own START_TEST line (Check records it), else
 * NULL/0. The message starts with the verdict: "leaked 16 B in 1 block (allowed 0 B): a 16 B
 * block from malloc() at money.c:16 in money_create(), called from check_money.c:41". */
void tm__leak_message(const tm__leak_findings *f, char msg[TM__LEAK_MESSAGE_MAX],
                      const char **file, int *line);

/* Writes the full report to `out` and flushes it: sections lost, indirectly lost, still
 * reachable, filtered. */
void tm__leak_report(const tm__leak_findings *f, FILE *out);

/* ---- leak_dump.c ----------------------------------------------------------------------------- */

/* When TM_LEAK_DUMP_DIR names a directory, writes the failing window's after-snapshot there as
 * <test_name>.dump (.2.dump, ... when taken; never replacing a file) and says so on stderr.
 * Does nothing otherwise; an error is one line on stderr, never a test failure. */
void tm__leak_dump_window(const tm_snapshot *after, const char *test_name);

/* Whether TM_LEAK_DUMP_DIR asks for dumps (the caller takes a snapshot only then). */
bool tm__leak_dump_wanted(void);

/* ---- leak_record.c, leak_json.c, leak_github.c, leak_baseline.c ------------------------------ */

/* One frame of a root's traceback, as records show it (strings interned or static). */
typedef struct tm__leak_record_frame {
  const char *file;     /* display path (leak_paths.c); NULL when unknown */
  unsigned line;
  const char *function; /* NULL when unknown */
  const char *module;   /* NULL when unknown */
} tm__leak_record_frame;

/* Blocks of a window charged to one allocation site (a root of lost memory). */
typedef struct tm__leak_record_root {
  const char *file;     /* the site: display path, interned; NULL when unknown */
  unsigned line;
  const char *function; /* the site's function, interned; NULL when unknown */
  size_t size, blocks;
  GArray *frames;       /* of tm__leak_record_frame, most recent first, down to the test */
} tm__leak_record_root;

/* Bytes and blocks. */
typedef struct tm__leak_amount {
  size_t size, blocks;
} tm__leak_amount;

/* What one test window did, for JSON Lines, CI annotations and the baseline. */
typedef struct tm__leak_record {
  const char *program;           /* basename of the test program */
  const char *suite, *tcase;     /* NULL when unknown */
  const char *test;              /* START_TEST's name; NULL when unknown */
  int iteration;
  const char *verdict;           /* "pass", "fail", "skipped" (the test failed first), "ignored" */
  bool leaked, peak_exceeded, over_baseline;
  tm__leak_amount lost, indirect, reachable, filtered;
  tm__leak_amount charged;       /* what the verdict counts: lost and indirect, unfiltered (and
                                  * reachable too when charged); the baseline records this */
  size_t peak, allowance;
  GArray *filtered_by;           /* of tm__leak_ignored; may be NULL */
  GArray *roots;                 /* of tm__leak_record_root, largest first */
  const char *message;           /* the Check message of a failure, else NULL */
  const char *file;              /* the failure's file and line, else NULL/0 */
  int line;
} tm__leak_record;

/* Reads TM_LEAK_JSON, TM_LEAK_BASELINE, TM_LEAK_BASELINE_UPDATE and GITHUB_ACTIONS from envp
 * (NULL-terminated "NAME=value" array; NULL: the process's, none in a setuid program), loads the
 * JSON module and the baseline when asked for.
 * Call once, in the runner, before Check forks. Returns false and sets *error (naming the
 * variable and the file, line or key at fault) when they cannot be used. Not thread-safe. */
bool tm__leak_records_init(char **envp, GError **error);

/* Called in the runner for each test result (leak_record.c, from Check's log_test_end, CK_FORK=yes
 * only), failed or not. Once failures are frequent enough to pay for it, resolves the runner's own
 * stack, once, so that the children of later failing tests inherit the symbolizer built
 * (leak_fixture.c and docs/symbolizer.md say more). Not thread-safe. */
void tm__leak_symbols_note(bool failed);

/* The pause a passing result of receive_test_result() leaves behind (leak_quiet.c), for Check's
 * strdup("Passed"): ended at Check's next message and by log_test_end(); forgotten (the flag
 * dropped, not the pause) by a setup or teardown that has just resumed the thread completely.
 * Check's thread only. */
void tm__leak_pass_pause_end(void);
void tm__leak_pass_pause_forget(void);

/* Whether test windows need a full record (TM_LEAK_JSON or TM_LEAK_BASELINE set): then every
 * window that leaves memory allocated is classified, not only the ones over their allowance. */
bool tm__leak_records_wanted(void);

/* Starts a record for the running test (test_name from tcase_name()); the program, iteration
 * and identity are filled in. tm__leak_record_clear() frees what it holds. */
void tm__leak_record_init(tm__leak_record *r, const char *test_name);
void tm__leak_record_clear(tm__leak_record *r);

/* Adds a root: the blocks of one traceback (site chosen by the filters' allocation site rule). */
void tm__leak_record_add_root(tm__leak_record *r, const tm__leak_filters *filters,
                              const tm_traceback *tb, const char *test_name, size_t size,
                              size_t blocks);

/* Applies the baseline to a judged record (r->leaked from the rules): a leak within the test's
 * baseline (no more bytes, no new site) passes; a leak beyond it stays failed, with the reason
 * appended to `why` ("; over its baseline of 48 B"); a test below its baseline gets a note on
 * stderr. In update mode the test's baseline is rewritten from r and its leak passes. Returns
 * whether the record still leaks. No-op returning r->leaked without TM_LEAK_BASELINE. */
bool tm__leak_records_apply_baseline(tm__leak_record *r, GString *why);

/* Emits a finished record: one JSON line to TM_LEAK_JSON, and under GITHUB_ACTIONS=true an
 * ::error annotation on stderr when it failed. Errors go to stderr once; never fails a test. */
void tm__leak_records_emit(const tm__leak_record *r);

/* The JSON formatter, in the module libtracemalloc-check-json.so (json-glib): one line, no
 * newline. g_free(). */
typedef struct tm__leak_json_api {
  unsigned version;     /* TM__LEAK_JSON_VERSION */
  size_t record_size;   /* sizeof(tm__leak_record) */
  char *(*format)(const tm__leak_record *r);
} tm__leak_json_api;
#define TM__LEAK_JSON_VERSION 1
#define TM__LEAK_JSON_SYMBOL "tm__leak_json_module"

/* leak_github.c: writes one GitHub Actions workflow command, "::error file=F,line=N,title=T::M",
 * with properties and message escaped as GitHub documents (%, CR, LF; and ':' ',' in
 * properties). file may be NULL (no file/line). Flushes out. */
void tm__leak_github_error(FILE *out, const char *file, int line, const char *title,
                           const char *message);

/* leak_baseline.c: the recorded leaks, by test key. */
typedef struct tm__leak_baseline tm__leak_baseline;

/* One test's entry. */
typedef struct tm__leak_baseline_entry {
  size_t size, blocks;
  GHashTable *sites; /* "file:function" => GSIZE bytes */
} tm__leak_baseline_entry;

/* Loads a baseline file; a missing file is an empty baseline. Returns NULL and sets *error
 * (naming the file, group and key) when it cannot be read or parsed. */
tm__leak_baseline *tm__leak_baseline_load(const char *path, GError **error);
void tm__leak_baseline_free(tm__leak_baseline *baseline);

/* The entry of a test key, or NULL (a test without one is at zero). Borrowed. */
const tm__leak_baseline_entry *tm__leak_baseline_lookup(const tm__leak_baseline *baseline,
                                                        const char *key);

/* The key of a record: "suite/tcase/test" when both are known, else "program/test"; then
 * "#iteration" when it is not 0. g_free(). */
char *tm__leak_baseline_key(const tm__leak_record *r);

/* The site key of a root: "file:function" (no line, so that edits elsewhere in the file keep
 * it). g_free(). */
char *tm__leak_baseline_site(const tm__leak_record_root *root);

/* Rewrites the entry of r's key in the file at path (removes it when r charges nothing), under
 * an exclusive flock, so that several test programs can update one file; groups are sorted.
 * Returns false and sets *error on failure. */
bool tm__leak_baseline_update(const char *path, const tm__leak_record *r, GError **error);

/* ---- leak_record.c: the fixture's call sites (after leak_report.c's types) ------------------- */

/* Whether failures print GitHub Actions annotations (GITHUB_ACTIONS=true). */
bool tm__leak_records_annotate(void);

/* Fills a record from a judged window's findings (kept diffs as roots), then applies the baseline:
 * a leak it covers is cleared from f->verdict; a leak beyond it gets its reason in `why`. The
 * record borrows f->ignored_by and the message: emit it before they go. */
void tm__leak_record_findings(tm__leak_record *r, tm__leak_findings *f, GString *why);

/* Marks the record failed with the Check message and location (msg "" or NULL: no failure). */
void tm__leak_record_failure(tm__leak_record *r, const char *msg, const char *file, int line);

/* Emits the record of a window that was not judged: verdict "skipped" (the test had failed) or
 * "ignored" (tm_leak_ignore, an ignore rule). No baseline. */
void tm__leak_records_emit_unjudged(const char *test_name, const char *verdict, size_t peak);

/* Emits the record of a window that left nothing allocated, after the baseline has seen it (a
 * note when the test is below its baseline; its entry removed in update mode). */
void tm__leak_records_emit_empty(const char *test_name, const tm__leak_rules *rules, size_t peak);

/* A window opened: no record of it has been emitted yet. */
void tm__leak_records_window_open(void);

/* The running test (or a fixture) fails through Check (leak_assert.c, first failure only): emits
 * the window's "skipped" record now, when records are wanted and none was emitted (in CK_FORK=yes
 * mode the child exits without running the teardowns). */
void tm__leak_records_test_failed(void);

/* Inserts text before the message's closing "; full report on stderr" (or at its end), cutting
 * to TM__LEAK_MESSAGE_MAX - 1 bytes on a UTF-8 boundary with "...". */
void tm__leak_message_append(char msg[TM__LEAK_MESSAGE_MAX], const char *text);

/* ---- leak_fixture.c / leak_assert.c ---------------------------------------------------------- */

/* Set by __wrap__ck_assert_failed when the running test (or a fixture) fails; cleared by setup. */
extern volatile int tm__leak_test_failed;

#endif /* TM_LEAK_INTERNAL_H */
