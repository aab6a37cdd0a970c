/* leak_fixture.c — TM_LEAK_FIXTURE: the window around each test, and the calls a test may make.
 *
 * The window. Setup starts tracing when nobody traces yet, or else calls tm_clear_traces(): from
 * then on the tracer holds exactly the blocks the window allocated and has not freed, whatever
 * thread allocated them. Blocks that existed before
 * are forgotten, so they are never charged, and freeing them inside the window changes nothing,
 * so it never excuses a new leak (diffing totals would let it). Either call also zeroes the peak.
 * In CK_FORK=yes mode the window lives in the test's child process; in CK_FORK=no mode the next
 * setup opens a fresh window, so nothing bleeds from one test into the next.
 *
 * The teardown decides on two numbers first (traced bytes and peak, no snapshot, no symbols):
 * filtering can only remove traces, so a window that passes unfiltered passes. A candidate takes
 * the after-snapshot and bounds its filtered growth from the distinct tracebacks, whose filter
 * verdicts leak_filter.c remembers: in CK_FORK=no mode every window is a candidate, because
 * Check's new message file is allocated inside it (docs/check-internals.md#check-heap-use), and
 * this spares it the diff, the sort and the pattern matching. Only a window that bound does not clear is compared to the
 * before-snapshot by traceback, filtered and judged (leak_verdict.c), and reported.
 *
 * Globals below are touched by the fixtures and by the in-test calls. Check runs the checked
 * fixtures and the test on one thread, one test at a time; tm_leak_allow() and friends are plain
 * stores that a test may make from a thread it joins before it ends.
 */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "leak_internal.h"
#include "tracemalloc-check.h"

/* Run settings, loaded once by the constructor (in the parent, before Check forks). NULL when
 * they are invalid: then config_error says why, and every test fails in its setup. */
static tm__leak_config *config;
static char *config_error;

/* The before-snapshot of every window: empty (see empty_snapshot_new()). */
static tm_snapshot *empty_before;

/* The running test's window and its own rules (set by the in-test calls). */
static struct {
  bool open;
  bool ignore;
  bool has_allowance, has_peak_limit;
  size_t allowance, peak_limit;
} window;

volatile int tm__leak_test_failed;

/* The process the constructor ran in: Check's runner. A teardown in any other process runs in a
 * test's own child (CK_FORK=yes), which exits once the teardowns are done
 * (docs/check-internals.md#fixture-order). */
static pid_t runner_pid;

/* Whether a setup of this process started tracing (rather than the program, e.g. TRACEMALLOC=N). */
static bool started_tracing;

/* Closes the window. In a test's child, tracing that a setup started stops here: what Check does
 * after the last teardown (its duration message, exit()) would otherwise pay a stack walk per
 * allocation, through frames no earlier walk in the child has cached (~30 us a test). */
static void window_close(void) {
  window.open = false;
  if (started_tracing && getpid() != runner_pid) {
    tm_stop();
    started_tracing = false;
  }
}

/* Starts tracing when nobody has, with TM_LEAK_NFRAME frames; when TM_LEAK_NFRAME is set and
 * someone already traces, applies that limit to new traces. Returns 0 or a TM_E* code. */
static int ensure_tracing(void) {
  if (!tm_is_tracing())
    return tm_start(config->nframe > 0 ? config->nframe : TM__LEAK_DEFAULT_NFRAME);
  if (config->nframe > 0 && tm_get_traceback_limit() != config->nframe)
    return tm_start(config->nframe);
  return 0;
}

/* Makes the before-snapshot every window shares. Right after tm_clear_traces() or a fresh
 * tm_start() the tracer holds nothing, so every before-snapshot is empty: one is made here, once,
 * in the runner process (forked test children inherit it), by filtering a snapshot down to no
 * trace. Tracing is started for that only when nobody traces, and stopped again. */
static tm_snapshot *empty_snapshot_new(GError **error) {
  bool was_tracing = tm_is_tracing();
  tm_filter *none = tm_domain_filter_new(true, UINT_MAX); /* no trace is in that domain */
  tm_snapshot *all = NULL, *empty = NULL;
  int rc = was_tracing ? 0 : ensure_tracing();

  if (rc != 0) {
    g_set_error(error, TM_ERROR, TM_ERROR_NOT_TRACING, "cannot start tracing: %s",
                tm_strerror(rc));
  } else {
    all = tm_take_snapshot(error);
    if (all != NULL)
      empty = tm_snapshot_filter_traces(all, &none, 1, error);
  }
  if (!was_tracing)
    tm_stop();
  tm_snapshot_free(all);
  tm_filter_free(none);
  return empty;
}

/* pthread_atfork prepare handler. Check forks a child per test (CK_FORK=yes); each child walks the
 * stacks of its allocations with the runner's libunwind cache, copy-on-write, and every return
 * address the runner never walked costs each child a DWARF lookup (a few microseconds: signal
 * masking, dl_iterate_phdr, a page fault on the cache). At the runner's first fork, with the fork
 * called from inside srunner_run_all(), this walks once what every child's stacks share: the
 * malloc and strdup hooks, and main() down to _start (48 fewer sigprocmask calls a child; 5% of a
 * CK_FORK=yes run). Only when nobody traces: tracing starts for one traced strdup and stops. */
static void warm_unwinder_on_fork(void) {
  static bool warmed;
  char *volatile block;

  if (warmed || window.open || getpid() != runner_pid || tm_is_tracing())
    return;
  warmed = true;
  if (ensure_tracing() != 0)
    return;
  block = strdup("");
  free(block);
  tm_stop();
}

/* Loads the settings and makes the shared before-snapshot, in the runner process. Tracing itself
 * starts in the first setup: in CK_FORK=yes mode that is in each test's child, whose tables then
 * start empty, which costs less than inheriting the runner's traces and clearing them. */
__attribute__((constructor)) static void leak_init(void) {
  GError *error = NULL;

  runner_pid = getpid();
  tm__leak_source_root(); /* leak_paths.c: found before any test can chdir() */
  config = tm__leak_config_load(NULL, &error);
  if (config == NULL) {
    config_error = g_strdup(error->message);
    g_error_free(error);
    fprintf(stderr, "tracemalloc-check: %s (every test will fail)\n", config_error);
    return;
  }
  if (config->disabled)
    return;
  if (!tm__leak_records_init(NULL, &error)) { /* leak_record.c: JSON, annotations, baseline */
    config_error = g_strdup_printf("tracemalloc-check: %s", error->message);
    g_error_free(error);
    fprintf(stderr, "%s (every test will fail)\n", config_error);
    return;
  }
  empty_before = empty_snapshot_new(&error);
  pthread_atfork(warm_unwinder_on_fork, NULL, NULL);
  if (empty_before == NULL) {
    config_error = g_strdup_printf("tracemalloc-check: %s", error->message);
    g_error_free(error);
  }
}

/* Fails the running fixture through Check, at the plugin's own location
 * (docs/check-internals.md#blaming-a-location). */
#define FAIL_HERE(...)                                                                             \
  do {                                                                                             \
    fflush(stdout);                                                                                \
    fflush(stderr);                                                                                \
    _ck_assert_failed(__FILE__, __LINE__, NULL, __VA_ARGS__);                                      \
  } while (0)

void tm_leak_setup(void) {
  bool fresh;
  int rc;

  /* A window still open here lost its teardown to a failing checked setup
   * (docs/check-internals.md#failing-teardown): everything below starts it afresh. */
  window.ignore = window.has_allowance = window.has_peak_limit = false;
  tm__leak_test_failed = 0;
  if (config_error != NULL)
    FAIL_HERE("%s", config_error);
  if (config->disabled)
    return;
  fresh = !tm_is_tracing();
  rc = ensure_tracing();
  if (rc != 0)
    FAIL_HERE("tracemalloc-check: cannot start tracing: %s", tm_strerror(rc));
  if (!fresh)
    tm_clear_traces(); /* a fresh start holds no trace and a zero peak already */
  started_tracing = started_tracing || fresh;
  window.open = true;
  tm__leak_records_window_open(); /* leak_record.c */
}

/* Counts what one pattern removed. */
static void count_ignored(GArray *ignored_by, const char *pattern, size_t size, size_t blocks) {
  guint i;

  for (i = 0; i < ignored_by->len; i++)
    if (g_array_index(ignored_by, tm__leak_ignored, i).pattern == pattern)
      break;
  if (i == ignored_by->len)
    g_array_append_val(ignored_by, ((tm__leak_ignored){.pattern = pattern}));
  g_array_index(ignored_by, tm__leak_ignored, i).size += size;
  g_array_index(ignored_by, tm__leak_ignored, i).blocks += blocks;
}

/* Counts one statistic diff into the kept or the ignored totals. */
static void sort_diff(const tm_statistic_diff *d, tm__leak_findings *f, GPtrArray *kept) {
  const char *pattern;

  if (d->size_diff <= 0 && d->count_diff <= 0)
    return; /* only what the window added can be its leak */
  pattern = tm__leak_filters_match(f->filters, d->traceback);
  if (pattern != NULL) {
    f->ignored_size += (size_t)MAX(d->size_diff, 0);
    f->ignored_blocks += (size_t)MAX(d->count_diff, 0);
    count_ignored(f->ignored_by, pattern, (size_t)MAX(d->size_diff, 0),
                  (size_t)MAX(d->count_diff, 0));
    return;
  }
  f->growth.size += (size_t)MAX(d->size_diff, 0);
  f->growth.blocks += (size_t)MAX(d->count_diff, 0);
  g_ptr_array_add(kept, (gpointer)d);
}

/* Python's Traceback key, by which compare_to() groups: the (filename, lineno) sequence. File
 * names are interned, so their address is their identity. */
static guint traceback_key_hash(gconstpointer p) {
  const tm_traceback *tb = p;
  size_t n = tm_traceback_length(tb);
  guint h = (guint)n;

  for (size_t i = 0; i < n; i++) {
    const tm_frame *f = tm_traceback_get(tb, i);
    h = (h * 1000003u) ^ g_direct_hash(f->filename);
    h = (h * 1000003u) ^ f->lineno;
  }
  return h;
}

static gboolean traceback_key_equal(gconstpointer pa, gconstpointer pb) {
  const tm_traceback *a = pa, *b = pb;
  size_t n = tm_traceback_length(a);

  if (n != tm_traceback_length(b))
    return false;
  for (size_t i = 0; i < n; i++) {
    const tm_frame *fa = tm_traceback_get(a, i), *fb = tm_traceback_get(b, i);
    if (fa->filename != fb->filename || fa->lineno != fb->lineno)
      return false;
  }
  return true;
}

/* Whether the window of `after` surely passes, without diffing or sorting: the growth that
 * judge_candidate() finds is at most the bytes of the tracebacks that no filter removes, plus
 * those of removed tracebacks whose compare_to() key equals the key of a kept one (a group of
 * equal keys is judged by one of its tracebacks). That bound passing, the window passes; it is
 * exact unless such keys collide. The verdict of each distinct traceback is remembered by the
 * filters, so a stack that every window repeats costs one lookup. */
static bool window_surely_passes(const tm_snapshot *after, const tm__leak_rules *rules,
                                 size_t peak) {
  GHashTable *sizes = g_hash_table_new(g_direct_hash, g_direct_equal); /* tb => bytes */
  GHashTable *kept = g_hash_table_new(traceback_key_hash, traceback_key_equal); /* key set */
  GHashTableIter it;
  gpointer tb, size;
  size_t bound = 0;
  unsigned verdict;

  for (size_t i = 0; i < tm_snapshot_length(after); i++) {
    const tm_trace *t = tm_snapshot_get(after, i);
    size = g_hash_table_lookup(sizes, t->traceback);
    g_hash_table_insert(sizes, (gpointer)t->traceback,
                        GSIZE_TO_POINTER(GPOINTER_TO_SIZE(size) + t->size));
  }
  g_hash_table_iter_init(&it, sizes);
  while (g_hash_table_iter_next(&it, &tb, &size)) {
    if (tm__leak_filters_match(config->filters, tb) == NULL) {
      bound += GPOINTER_TO_SIZE(size);
      g_hash_table_add(kept, tb);
    }
  }
  g_hash_table_iter_init(&it, sizes);
  while (g_hash_table_size(kept) != 0 && g_hash_table_iter_next(&it, &tb, &size)) {
    bool removed = tm__leak_filters_match(config->filters, tb) != NULL; /* remembered */
    if (removed && g_hash_table_contains(kept, tb))
      bound += GPOINTER_TO_SIZE(size);
  }
  verdict = tm__leak_judge(&(tm__leak_growth){.size = bound, .peak = peak}, rules);
  g_hash_table_unref(kept);
  g_hash_table_unref(sizes);
  return verdict == TM__LEAK_PASS;
}

/* The candidate path: diff the after-snapshot by traceback, filters, verdict, report. `after` was
 * taken before this allocates anything (the plugin's own memory is traced like the test's); it
 * is NULL with *error set when it could not be taken. Returns when the filtered window passes;
 * otherwise fails the test through Check and does not return. */
static void judge_candidate(tm_snapshot *after, GError *error, const char *test_name,
                            const tm__leak_rules *rules, size_t peak) {
  tm_statistic_diffs *diffs = NULL;
  GPtrArray *kept = g_ptr_array_new();
  tm__leak_findings f = {
    .test_name = test_name, .rules = *rules, .top = config->top, .filters = config->filters,
    .ignored_by = g_array_new(false, false, sizeof(tm__leak_ignored)),
  };
  char msg[TM__LEAK_MESSAGE_MAX] = "";
  const char *file = NULL;
  int line = 0;
  bool recording = tm__leak_records_wanted() || tm__leak_records_annotate();
  tm__leak_record record;
  GString *why = g_string_new(NULL);

  if (recording)
    tm__leak_record_init(&record, test_name);
  /* Symbolizing takes time out of the test's timeout: give a timeout a location
   * (docs/check-internals.md#failing-teardown). */
  _mark_point(__FILE__, __LINE__);
  f.growth.peak = peak;
  if (after != NULL)
    diffs = tm_snapshot_compare_to(after, empty_before, TM_KEY_TRACEBACK, false, &error);
  if (diffs == NULL) {
    g_snprintf(msg, sizeof msg, "tracemalloc-check: cannot compare snapshots: %s",
               error->message);
    g_error_free(error);
    goto out;
  }
  for (size_t i = 0; i < tm_statistic_diffs_length(diffs); i++)
    sort_diff(tm_statistic_diffs_get(diffs, i), &f, kept);
  f.verdict = tm__leak_judge(&f.growth, rules);
  f.kept = (const tm_statistic_diff **)kept->pdata;
  f.nkept = kept->len;
  if (recording) /* leak_record.c: the baseline may pass a leak it recorded, or fail it */
    tm__leak_record_findings(&record, &f, why);
  if (f.verdict == TM__LEAK_PASS)
    goto out;
  tm__leak_message(&f, msg, &file, &line);
  tm__leak_message_append(msg, why->str);
  fflush(stdout);
  tm__leak_report(&f, stderr);
  tm__leak_dump_window(after, test_name);

out:
  if (recording) {
    tm__leak_record_failure(&record, msg, file, line);
    tm__leak_records_emit(&record);
    tm__leak_record_clear(&record);
  }
  g_string_free(why, true);
  /* Free everything first: in CK_FORK=no mode _ck_assert_failed longjmps past this frame. */
  g_ptr_array_unref(kept);
  g_array_unref(f.ignored_by);
  tm_statistic_diffs_free(diffs);
  tm_snapshot_free(after);
  window_close();
  if (msg[0] == '\0')
    return;
  fflush(stdout);
  fflush(stderr);
  if (file != NULL)
    _ck_assert_failed(file, line, NULL, "%s", msg);
  _ck_assert_failed(__FILE__, __LINE__, NULL, "%s", msg);
}

void tm_leak_teardown(void) {
  GError *error = NULL;
  tm_snapshot *after;
  tm__leak_rules rules;
  size_t current = 0, peak = 0;
  const char *name;
  bool recording;

  if (!window.open)
    return;
  tm_get_traced_memory(&current, &peak); /* first: before this function allocates anything */
  recording = tm__leak_records_wanted(); /* JSON Lines or a baseline: every window's record */
  if (tm__leak_test_failed || window.ignore || !tm_is_tracing()) {
    if (recording && tm_is_tracing())
      tm__leak_records_emit_unjudged(tcase_name(), tm__leak_test_failed ? "skipped" : "ignored",
                                     peak);
    window_close(); /* a failed test is not charged with its leftovers */
    return;
  }
  name = tcase_name();
  tm__leak_config_rules_for(config, name, &rules);
  if (window.has_allowance)
    rules.allowance = MAX(rules.allowance, window.allowance);
  if (window.has_peak_limit)
    rules.peak_limit = window.peak_limit;
  if (tm__leak_judge(&(tm__leak_growth){.size = current, .peak = peak}, &rules) == TM__LEAK_PASS &&
      !(recording && current > 0)) {
    if (recording)
      tm__leak_records_emit_empty(name, &rules, peak);
    window_close();
    return;
  }
  after = tm_take_snapshot(&error);
  if (!recording && after != NULL && window_surely_passes(after, &rules, peak)) {
    tm_snapshot_free(after);
    window_close();
    return;
  }
  judge_candidate(after, error, name, &rules, peak);
}

void tm_leak_allow(size_t bytes) {
  if (!window.has_allowance || bytes > window.allowance)
    window.allowance = bytes;
  window.has_allowance = true;
}

void tm_leak_ignore(void) {
  window.ignore = true;
}

void tm_leak_limit_peak(size_t bytes) {
  window.peak_limit = bytes;
  window.has_peak_limit = true;
}
