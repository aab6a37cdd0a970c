/* leak_fixture.c — TM_LEAK_FIXTURE: the window around each test, and the calls a test may make.
 *
 * The window. Setup starts tracing when nobody traces yet, or else calls tm_clear_traces(): from
 * then on the traces are exactly the blocks the window allocated and has not freed, whatever
 * thread allocated them. Blocks that existed before stay known to the heap registry (this
 * program defines TM_HEAP_REGISTRY) but are not traces, so they are never charged, and freeing
 * them never excuses a new leak. Either call also zeroes the peak. In CK_FORK=yes mode the window
 * lives in the test's child process; in CK_FORK=no mode the next setup opens a fresh window.
 *
 * The verdict (docs/plugin.md). A leak is memory the program can no longer reach. The teardown
 * decides on two counters first (traced bytes and blocks, and the peak: no scan, no symbol):
 * what is lost is part of what is traced, so a window whose traces pass passes. A candidate is
 * scanned (tm_reachability_scan(): roots are the loaded objects' data, the thread's live stack
 * above this fixture's own frames, its TLS and registers, the other threads' stacks): traced
 * blocks are lost, indirectly lost, or still reachable. Reachable growth (caches kept in globals:
 * glibc's time zone and locale data, OpenSSL's method store, GLib's type system) is not charged
 * unless TM_LEAK_REACHABLE=charge; the window passes on the lost bytes alone when they fit, still
 * without a symbol. Only then are the lost blocks' tracebacks resolved, filtered one block at a
 * time, grouped under their lost roots, judged (leak_verdict.c) and reported (leak_report.c).
 *
 * Globals below are touched by the fixtures and by the in-test calls. Check runs the checked
 * fixtures and the test on one thread, one test at a time; tm_leak_allow() and friends are plain
 * stores that a test may make from a thread it joins before it ends.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "leak_internal.h"
#include "tracemalloc-check.h"

/* Every live block known from the first allocation: the reachability scan needs them all. */
TM_HEAP_REGISTRY;

/* GLib before 2.76 carves small objects (GList nodes, GHashTable and GString headers) out of
 * GSlice slabs that it reaches from its globals: every slice object would look reachable, and a
 * leaked one would never be seen. GLib reads its slice configuration once, on its first slice
 * allocation, which its own constructor makes; a preinit function of the program runs before
 * every library's constructor, and there asks for one malloc block per slice object. (Setting
 * G_SLICE=always-malloc there would not do: libc's start-up puts the original environment back
 * before main.) A no-op since GLib 2.76, whose slices are malloc blocks anyway. */
static void gslice_use_malloc(int argc, char **argv, char **envp) {
  G_GNUC_BEGIN_IGNORE_DEPRECATIONS
  g_slice_set_config(G_SLICE_CONFIG_ALWAYS_MALLOC, TRUE);
  G_GNUC_END_IGNORE_DEPRECATIONS
}
__attribute__((section(".preinit_array"), used)) static void (*const gslice_preinit)(
  int, char **, char **) = gslice_use_malloc;

/* Run settings, loaded once by the constructor (in the parent, before Check forks). NULL when
 * they are invalid: then config_error says why, and every test fails in its teardown. */
static tm__leak_config *config;
static char *config_error;

/* The running test's window and its own rules (set by the in-test calls). */
static struct {
  bool open;
  bool ignore;
  bool has_allowance, has_allowance_blocks, has_peak_limit;
  size_t allowance, allowance_blocks, peak_limit;
  const char *unchecked; /* the tool that serves malloc when tracing could not start, or NULL */
  tm_stack_mark mark;    /* the setup's call chain: the teardown scans from the frame it shares */
  size_t peak_watch;     /* the limit the peak watch is armed at */
  char *start_error;     /* why tracing could not start, or NULL */
  unsigned long generation; /* tm_get_traces_generation() once the window's traces started */
} window;

volatile int tm__leak_test_failed;

/* The process the constructor ran in: Check's runner. A teardown in any other process runs in a
 * test's own child (CK_FORK=yes), which exits once the teardowns are done
 * (docs/check-internals.md, "Fixtures"). */
static pid_t runner_pid;

/* Whether a setup of this process started tracing (rather than the program, e.g. TRACEMALLOC=N). */
static bool started_tracing;

/* Whether window_close() paused the runner's thread between two windows (CK_FORK=no), with
 * tm_thread_pause_scanned(): what runs there is Check's runner, but also the program's main()
 * between two srunner_run_all() calls and its unchecked fixtures, whose blocks may be the only
 * path to what a later test stores (a singleton main() built between two runs). */
static bool paused_between;

/* Closes the window; called under the teardown's tm_thread_pause(). In a test's child, tracing that a setup started stops here: what Check does
 * after the last teardown (its duration message, exit()) would otherwise pay a stack walk per
 * allocation, through frames no earlier walk in the child has cached (~30 us a test). In the
 * runner (CK_FORK=no) the thread is paused instead, until the next setup: what Check keeps
 * between tests (its results) is then registered, not traced, so the next setup has no trace to
 * turn back into a registered block (a pass over every live block of the process); and tracing
 * goes on, keeping its interned stacks and stack cache for the next test. */
static void window_close(void) {
  window.open = false;
  if (tm_is_tracing())
    tm_peak_watch(0);
  if (started_tracing && getpid() != runner_pid) {
    tm_stop();
    started_tracing = false;
  } else if (started_tracing && !paused_between) {
    /* Called under the teardown's own pause, which the caller ends next: the pause between the
     * windows goes beneath it, so that it is what stays. */
    tm_thread_resume();
    tm_thread_pause_scanned(); /* the program's main() and unchecked fixtures run here too */
    tm_thread_pause();
    paused_between = true;
  }
}

/* Starts tracing when nobody has, with TM_LEAK_NFRAME frames; when someone already traces,
 * applies TM_LEAK_NFRAME to new traces when it is set, and otherwise raises a shorter limit to the
 * default: with TRACEMALLOC=1 in the environment every traceback held the allocator's own frame
 * alone (a strdup() leak was named at glibc's strdup.c). Returns 0 or a TM_E* code. */
static int ensure_tracing(void) {
  int want = config->nframe > 0 ? config->nframe : TM__LEAK_DEFAULT_NFRAME;
  if (!tm_is_tracing())
    return tm_start(want);
  int limit = tm_get_traceback_limit();
  if (config->nframe > 0 ? limit != want : limit < want)
    return tm_start(want);
  return 0;
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

  if (warmed || window.open || getpid() != runner_pid || tm_is_tracing() || config == NULL)
    return;
  warmed = true;
  if (ensure_tracing() != 0)
    return;
  block = strdup("");
  free(block);
  tm_stop();
}

/* See leak_internal.h. Each failing child loads the symbolizer and builds the symbol and line
 * tables of the same modules for its report (libc's debug file alone is some 35 ms with libc6-dbg).
 * Resolved once in the runner, between tests, the module, the module list and the tables of the
 * program's units and of libc on its stack are inherited by every later child instead. But then
 * every later fork copies the page tables of what was built (some 0.4 ms a test with libc6-dbg,
 * measured on 1,000 passing tests after one failing one), so the runner does it only once at least
 * two tests have failed and at least one test in 50 so far: a suite whose tests pass never pays
 * it. Not in a fork handler: loading the module registers one, which glibc does not allow while
 * it runs them. */
void tm__leak_symbols_note(bool failed) {
  static bool warmed;
  static unsigned long results, failures;
  char *volatile block;

  results++;
  failures += failed;
  if (failures < 2 || failures * 50 < results)
    return;
  if (warmed || window.open || getpid() != runner_pid || config == NULL || config->disabled)
    return;
  warmed = true;
  bool was_tracing = tm_is_tracing();
  if (!was_tracing && ensure_tracing() != 0)
    return;
  block = strdup("");
  tm_traceback *tb = tm_get_object_traceback(block);
  if (tb != NULL)
    (void)tm_traceback_length(tb); /* resolves every frame */
  tm_traceback_free(tb);
  free(block);
  if (!was_tracing)
    tm_stop();
}

/* pthread_atfork prepare handler: in the runner, before it forks a test's child, records the call
 * chain, which runs through tcase_run_tfun_fork, the frame that calls the child's setup, test and
 * teardown; the child inherits the mark. Taken here, the walk finds its frames in the runner's
 * unwinder cache after the first test, where a setup in each child would look up the frames of
 * the setup and of Check's srunner_run_setup afresh. */
static void mark_on_fork(void) {
  if (!window.open && getpid() == runner_pid)
    tm_stack_mark_take(&window.mark);
}

/* A copy of an error message for Check's one-line message (g_free): a line break or another
 * control character a setting carried (a value ending in a newline, from a YAML block) is written
 * as an escape, so that it cannot split the line, or a TAP record. */
static char *message_one_line(const char *message) {
  GString *s = g_string_new(NULL);
  for (const char *c = message; *c != '\0'; c++) {
    if (*c == '\n')
      g_string_append(s, "\\n");
    else if (*c == '\r')
      g_string_append(s, "\\r");
    else if (*c == '\t')
      g_string_append(s, "\\t");
    else if ((unsigned char)*c < 0x20 || *c == 0x7f)
      g_string_append_printf(s, "\\x%02x", (unsigned char)*c);
    else
      g_string_append_c(s, *c);
  }
  return g_string_free(s, false);
}

/* Loads the settings in the runner process. Tracing itself starts in the first setup: in
 * CK_FORK=yes mode that is in each test's child, whose traces then start empty. */
__attribute__((constructor)) static void leak_init(void) {
  GError *error = NULL;

  runner_pid = getpid();
  tm__leak_source_root(); /* leak_paths.c: found before any test can chdir() */
  config = tm__leak_config_load(NULL, &error);
  if (config == NULL) {
    config_error = message_one_line(error->message);
    g_error_free(error);
    fprintf(tm__leak_stderr(), "tracemalloc-check: %s (every test will fail)\n", config_error);
    return;
  }
  if (config->disabled) {
    tm_heap_registry_disable(); /* no scan will run: allocations cost nothing extra */
    return;
  }
  if (!tm__leak_records_init(NULL, &error)) { /* leak_record.c: JSON, annotations, baseline */
    config_error = message_one_line(error->message);
    g_error_free(error);
    fprintf(tm__leak_stderr(), "tracemalloc-check: %s (every test will fail)\n", config_error);
    return;
  }
  pthread_atfork(warm_unwinder_on_fork, NULL, NULL);
  pthread_atfork(mark_on_fork, NULL, NULL);
}

/* Fails the running fixture through Check at file:line, or at the plugin's own location when
 * file is NULL (docs/check-internals.md, "Blaming a chosen file:line"). */
#define FAIL_AT(file, line, ...)                                                                   \
  do {                                                                                             \
    fflush(stdout);                                                                                \
    fflush(tm__leak_stderr());                                                                     \
    if ((file) != NULL)                                                                            \
      _ck_assert_failed((file), (line), NULL, __VA_ARGS__);                                        \
    _ck_assert_failed(__FILE__, __LINE__, NULL, __VA_ARGS__);                                      \
  } while (0)

void tm_leak_setup(void) {
  bool fresh;
  int rc;

  /* A window still open here lost its teardown to a failing checked setup
   * (docs/check-internals.md, "Failures in a checked teardown"): everything below starts it
   * afresh. A test that paused its thread and failed before resuming left it paused. */
  while (tm_thread_is_paused())
    tm_thread_resume();
  tm__leak_pass_pause_forget();
  paused_between = false;
  window.ignore = window.has_allowance = window.has_allowance_blocks = false;
  window.has_peak_limit = false;
  window.unchecked = NULL;
  g_clear_pointer(&window.start_error, g_free);
  tm__leak_test_failed = 0;
  window.open = true; /* a configuration error is reported by the teardown, at the test */
  if (config_error != NULL || config->disabled)
    return;
  fresh = !tm_is_tracing();
  rc = ensure_tracing();
  if (rc == TM_EFOREIGN) {
    window.unchecked = tm_get_malloc_owner();
    return;
  }
  if (rc != 0) {
    window.start_error = g_strdup_printf("cannot start tracing: %s", tm_strerror(rc));
    return;
  }
  if (!fresh)
    tm_clear_traces(); /* a fresh start holds no trace and a zero peak already */
  started_tracing = started_tracing || fresh;
  window.generation = tm_get_traces_generation();
  window.peak_watch = config->watch_peak;
  tm_peak_watch(window.peak_watch); /* names the sites of a peak over a limit */
  if (getpid() == runner_pid) /* CK_FORK=no; a test's child has the runner's mark (mark_on_fork) */
    tm_stack_mark_take(&window.mark);
  tm__leak_records_window_open(); /* leak_record.c */
}

/* ---- classification of a candidate window ---------------------------------------------------- */

/* Counts one filtered block under its pattern. */
static void count_ignored(GArray *ignored_by, const char *pattern, size_t size) {
  guint i;

  for (i = 0; i < ignored_by->len; i++)
    if (g_array_index(ignored_by, tm__leak_ignored, i).pattern == pattern)
      break;
  if (i == ignored_by->len)
    g_array_append_val(ignored_by, ((tm__leak_ignored){.pattern = pattern}));
  g_array_index(ignored_by, tm__leak_ignored, i).size += size;
  g_array_index(ignored_by, tm__leak_ignored, i).blocks++;
}

/* Returns the group of (tb, reach), adding it. groups_by maps the key to the group's index + 1. */
static tm__leak_group *group_get(GArray *groups, GHashTable *groups_by, const tm_traceback *tb,
                                 tm_reach reach) {
  gpointer key = (gpointer)((uintptr_t)tb | (uintptr_t)reach); /* tracebacks are aligned */
  guint index = GPOINTER_TO_UINT(g_hash_table_lookup(groups_by, key));

  if (index == 0) {
    g_array_append_val(groups, ((tm__leak_group){.traceback = tb, .reach = reach}));
    index = groups->len;
    g_hash_table_insert(groups_by, key, GUINT_TO_POINTER(index));
  }
  return &g_array_index(groups, tm__leak_group, index - 1);
}

/* A group as the report prints it: the class of its blocks, and the file, line and function of
 * every frame of its traceback. */
typedef struct printed_key {
  const tm_traceback *traceback;
  tm_reach reach;
} printed_key;

static guint printed_hash(gconstpointer p) {
  const printed_key *k = p;
  size_t n = tm_traceback_length(k->traceback);
  guint h = (guint)k->reach * 31u + (guint)n;
  for (size_t i = 0; i < n; i++) {
    const tm_frame *fr = tm_traceback_get(k->traceback, i);
    h = h * 1000003u ^ g_str_hash(fr->filename) ^ fr->lineno * 2654435761u;
    if (fr->function != NULL)
      h ^= g_str_hash(fr->function) << 1;
  }
  return h;
}

static gboolean printed_equal(gconstpointer pa, gconstpointer pb) {
  const printed_key *a = pa, *b = pb;
  size_t n = tm_traceback_length(a->traceback);
  if (a->reach != b->reach || n != tm_traceback_length(b->traceback))
    return false;
  for (size_t i = 0; i < n; i++) {
    const tm_frame *fa = tm_traceback_get(a->traceback, i), *fb = tm_traceback_get(b->traceback, i);
    if (fa->lineno != fb->lineno || strcmp(fa->filename, fb->filename) != 0 ||
        g_strcmp0(fa->function, fb->function) != 0)
      return false;
  }
  return true;
}

/* Merges the charged groups whose tracebacks print the same: the copies of one call that an
 * optimizer makes (a loop unrolled three times calls malloc from three addresses, all on one line)
 * are one site to whoever reads the report. The merged group keeps the first one's traceback.
 * Uncharged reachable groups stay as they are: their tracebacks are not resolved for this. */
static void groups_merge_printed(GArray *groups, bool charge_reachable) {
  GHashTable *seen = g_hash_table_new_full(printed_hash, printed_equal, g_free, NULL);
  guint kept = 0;
  for (guint i = 0; i < groups->len; i++) {
    tm__leak_group g = g_array_index(groups, tm__leak_group, i);
    if (g.reach != TM_REACH_REACHABLE || charge_reachable) {
      printed_key probe = {g.traceback, g.reach};
      gpointer at = g_hash_table_lookup(seen, &probe);
      if (at != NULL) {
        tm__leak_group *into = &g_array_index(groups, tm__leak_group, GPOINTER_TO_UINT(at) - 1);
        into->size += g.size;
        into->blocks += g.blocks;
        into->owned_size += g.owned_size;
        into->owned_blocks += g.owned_blocks;
        into->largest = MAX(into->largest, g.largest);
        continue;
      }
      g_hash_table_insert(seen, g_memdup2(&probe, sizeof probe), GUINT_TO_POINTER(kept + 1));
    }
    g_array_index(groups, tm__leak_group, kept++) = g;
  }
  g_array_set_size(groups, kept);
  g_hash_table_unref(seen);
}

/* Groups: charged lost groups by what they hold, then indirect, then reachable, each largest
 * first. */
/* Orders two tracebacks by their frames, from the most recent one: file, line, then function, then
 * length. Names and lines do not move from one run to the next; the groups' addresses do. */
static int traceback_order(const tm_traceback *a, const tm_traceback *b) {
  size_t na = tm_traceback_length(a), nb = tm_traceback_length(b);
  for (size_t i = 1; i <= na && i <= nb; i++) {
    const tm_frame *fa = tm_traceback_get(a, na - i), *fb = tm_traceback_get(b, nb - i);
    int c = strcmp(fa->filename, fb->filename);
    if (c == 0 && fa->lineno != fb->lineno)
      c = fa->lineno < fb->lineno ? -1 : 1;
    if (c == 0)
      c = g_strcmp0(fa->function, fb->function);
    if (c != 0)
      return c;
  }
  return na < nb ? -1 : na > nb ? 1 : 0;
}

static gint group_order(gconstpointer pa, gconstpointer pb) {
  const tm__leak_group *a = pa, *b = pb;
  size_t sa = a->size + a->owned_size, sb = b->size + b->owned_size;

  if (a->reach != b->reach)
    return a->reach == TM_REACH_LOST ? -1 : b->reach == TM_REACH_LOST ? 1 : (int)b->reach - (int)a->reach;
  if (sa != sb)
    return sa < sb ? 1 : -1;
  /* Equal sizes: the same order in every run, so that the message names the same site. */
  return a->traceback == b->traceback ? 0 : traceback_order(a->traceback, b->traceback);
}

/* A block's kind as suppression files name them (Valgrind's match-leak-kinds). */
static unsigned block_kind(const tm_reach_block *b) {
  return b->reach == TM_REACH_LOST       ? TM__LEAK_SUPP_DEFINITE
         : b->reach == TM_REACH_INDIRECT ? TM__LEAK_SUPP_INDIRECT
                                         : TM__LEAK_SUPP_REACHABLE;
}

/* Fills f from a scan: filters each charged block, groups blocks under their lost roots, and sums
 * what is charged. A root that a filter removes leaves the blocks it owned to stand as roots of
 * their own. */
static void findings_fill(tm__leak_findings *f, const tm_reachability *r) {
  size_t n = tm_reachability_length(r);
  const char **filtered = g_new0(const char *, n ? n : 1);
  GHashTable *groups_by = g_hash_table_new(g_direct_hash, g_direct_equal);

  for (size_t i = 0; i < n; i++) {
    const tm_reach_block *b = tm_reachability_get(r, i);
    bool charged = b->reach != TM_REACH_REACHABLE || f->rules.charge_reachable;
    if (charged)
      filtered[i] = tm__leak_filters_match_kind(f->filters, b->traceback, block_kind(b));
    if (filtered[i] != NULL) {
      f->ignored_size += b->size;
      f->ignored_blocks++;
      count_ignored(f->ignored_by, filtered[i], b->size);
      continue;
    }
    if (charged) {
      f->growth.size += b->size;
      f->growth.blocks++;
    }
    if (b->reach == TM_REACH_LOST) {
      f->lost_size += b->size;
      f->lost_blocks++;
    } else if (b->reach == TM_REACH_INDIRECT) {
      f->indirect_size += b->size;
      f->indirect_blocks++;
    } else {
      f->reachable_size += b->size;
      f->reachable_blocks++;
    }
  }
  for (size_t i = 0; i < n; i++) {
    const tm_reach_block *b = tm_reachability_get(r, i);
    bool charged = b->reach != TM_REACH_REACHABLE || f->rules.charge_reachable;
    if (filtered[i] != NULL)
      continue;
    if (b->reach == TM_REACH_REACHABLE) {
      tm__leak_group *g = group_get(f->groups, groups_by, b->traceback, TM_REACH_REACHABLE);
      g->size += b->size;
      g->blocks++;
      continue;
    }
    if (!charged)
      continue;
    /* The root that answers for this block: its own when it is one, or when its root is
     * filtered out. */
    size_t root = b->root < n && filtered[b->root] == NULL ? b->root : i;
    const tm_reach_block *rb = tm_reachability_get(r, root);
    tm__leak_group *g = group_get(f->groups, groups_by, rb->traceback, TM_REACH_LOST);
    if (root == i) {
      g->size += b->size;
      g->blocks++;
      g->largest = MAX(g->largest, b->size);
    } else {
      g->owned_size += b->size;
      g->owned_blocks++;
    }
    if (b->reach == TM_REACH_INDIRECT) {
      tm__leak_group *ig = group_get(f->groups, groups_by, b->traceback, TM_REACH_INDIRECT);
      ig->size += b->size;
      ig->blocks++;
    }
  }
  groups_merge_printed(f->groups, f->rules.charge_reachable);
  g_array_sort(f->groups, group_order);
  g_hash_table_unref(groups_by);
  g_free(filtered);
}

/* The location of the test's own START_TEST, or NULL. */
static const char *test_file(const tm__leak_test_info *t) {
  return t->file != NULL ? tm__leak_display_path(t->file) : NULL;
}

/* Judges a candidate window, whose counters did not pass. Returns when it passes; otherwise fails
 * the test through Check and does not return. Runs with the thread paused: what it allocates is
 * never part of the window. */
static void judge_candidate(const tm__leak_test_info *test, const tm__leak_rules *rules,
                            size_t peak, const jmp_buf regs, const void *stack_from) {
  /* The stack from the frame of Check's that called the setup, the test and this teardown
   * (tcase_run_tfun_fork or _nofork): the frames of Check's between it and this fixture sit where
   * the test's were, and may hold stale copies of its pointers in slots they never wrote. */
  tm_reach_options options = {
    .stack_from = stack_from,
    .since = &window.mark,
    .roots = (const uintptr_t *)(const void *)regs,
    .nroots = sizeof(jmp_buf) / (sizeof(uintptr_t)),
    .runner_frames_skipped = true, /* Check's frames between it and main() hold none of the test's */
    /* CK_FORK=yes: the runner forked this child just before the setup, and waits for it. */
    .since_fork = getpid() != runner_pid,
  };
  GError *error = NULL;
  tm__leak_findings f = {
    .test = *test, .rules = *rules, .top = config->top, .filters = config->filters,
  };
  char msg[TM__LEAK_MESSAGE_MAX] = "";
  const char *file = NULL;
  int line = 0;
  tm_reachability *r;
  /* A record (JSON Lines, a baseline) needs every window classified and its roots named. */
  bool recording = tm__leak_records_wanted() || tm__leak_records_annotate();
  bool full = tm__leak_records_wanted();
  tm__leak_record record;
  GString *why = NULL;

  /* Symbolizing takes time out of the test's timeout: give a timeout a location
   * (docs/check-internals.md, "Timeouts"). */
  _mark_point(__FILE__, __LINE__);
  f.growth.peak = peak;
  /* Scanned before this function allocates anything: a block of its own, reachable from its
   * frame, would be scanned too, and malloc hands out memory with whatever the last user of the
   * chunk left in it, a freed copy of a pointer the test lost included. */
  r = tm_reachability_scan(&options, &error);
  f.ignored_by = g_array_new(false, false, sizeof(tm__leak_ignored));
  f.groups = g_array_new(false, false, sizeof(tm__leak_group));
  why = g_string_new(NULL);
  if (recording)
    tm__leak_record_init(&record, test->test);
  if (r == NULL) {
    g_snprintf(msg, sizeof msg, "tracemalloc-check: cannot scan the heap: %s", error->message);
    g_error_free(error);
    file = test_file(test);
    line = test->line;
    goto out;
  }
  tm_reachability_totals(r, TM_REACH_LOST, &f.growth.size, &f.growth.blocks);
  {
    size_t size, blocks;
    tm_reachability_totals(r, TM_REACH_INDIRECT, &size, &blocks);
    f.growth.size += size;
    f.growth.blocks += blocks;
    tm_reachability_totals(r, TM_REACH_REACHABLE, &f.reachable_size, &f.reachable_blocks);
    if (rules->charge_reachable) {
      f.growth.size += f.reachable_size;
      f.growth.blocks += f.reachable_blocks;
    }
  }
  /* Before any filter, so before any symbol: filters only lower what is charged. */
  if (!full && tm__leak_judge(&f.growth, rules) == TM__LEAK_PASS) {
    if (f.reachable_size > 0 && !rules->charge_reachable) {
      char *size = tm_format_size((int64_t)f.reachable_size, true);
      fprintf(tm__leak_stderr(), "tracemalloc-check: %s: %s in %zu block%s still reachable, not charged\n",
              test->test != NULL ? test->test : "(test)", size, f.reachable_blocks,
              f.reachable_blocks == 1 ? "" : "s");
      g_free(size);
    }
    goto out;
  }
  f.growth.size = f.growth.blocks = 0;
  f.reachable_size = f.reachable_blocks = 0;
  findings_fill(&f, r);
  f.verdict = tm__leak_judge(&f.growth, rules);
  if (f.verdict & TM__LEAK_PEAK_EXCEEDED) {
    tm_snapshot *at_peak = tm_peak_watch_snapshot(NULL);
    f.peak_watch = window.peak_watch;
    f.peak_sites = at_peak != NULL
                     ? tm_snapshot_statistics(at_peak, TM_KEY_TRACEBACK, false, NULL)
                     : NULL;
    tm_snapshot_free(at_peak);
  }
  if (recording) /* leak_record.c: the baseline may pass a leak it recorded, or fail it */
    tm__leak_record_findings(&record, &f, why);
  if (f.verdict == TM__LEAK_PASS)
    goto out;
  tm__leak_message(&f, msg, &file, &line);
  tm__leak_message_append(msg, why->str);
  fflush(stdout);
  tm__leak_report(&f, tm__leak_stderr());
  if (tm__leak_dump_wanted()) {
    tm_snapshot *after = tm_take_snapshot(NULL);
    tm__leak_dump_window(after, test->test);
    tm_snapshot_free(after);
  }

out:
  if (recording) {
    tm__leak_record_failure(&record, msg, file, line);
    tm__leak_records_emit(&record);
    tm__leak_record_clear(&record);
  }
  g_string_free(why, true);
  /* Free everything first: in CK_FORK=no mode _ck_assert_failed longjmps past this frame. */
  tm_statistics_free(f.peak_sites);
  g_array_unref(f.groups);
  g_array_unref(f.ignored_by);
  tm_reachability_free(r);
  window_close();
  tm_thread_resume();
  if (msg[0] != '\0')
    FAIL_AT(file, line, "%s", msg);
}

/* Closes a window that could not be checked, and says why: why (a short reason) on stderr when
 * TM_LEAK_ACCEPT_UNCHECKED accepts unchecked tests, else fails the test at its START_TEST line with
 * failure (the reason and what to do). Call paused, with the window open; returns resumed, or not
 * at all when the test fails in CK_FORK=no mode (Check jumps out). */
static void window_unchecked(const tm__leak_test_info *test, const char *why, const char *failure) {
  window_close();
  tm_thread_resume();
  if (config->accept_foreign) {
    fprintf(tm__leak_stderr(), "tracemalloc-check: %s: not checked for leaks: %s\n",
            test->test != NULL ? test->test : "(test)", why);
    return;
  }
  FAIL_AT(test_file(test), test->line,
          "tracemalloc-check: not checked for leaks: %s, or set TM_LEAK_ACCEPT_UNCHECKED=1 to "
          "accept unchecked tests", failure);
}

/* The window's peak, as tm_get_traced_memory() gave it (peak), raised to what the peak watch saw
 * when traced memory first passed its limit, when that limit is at least peak_limit: a test that
 * calls tm_reset_peak() (Python's reset_peak()) after a peak lowers the tracer's figure, not the
 * watch's, so the peak limit still holds. Call paused. */
static size_t peak_with_watch(size_t peak, size_t peak_limit) {
  if (peak_limit == 0 || peak > peak_limit || window.peak_watch < peak_limit)
    return peak;
  tm_snapshot *at_watch = tm_peak_watch_snapshot(NULL); /* NULL: the watch never fired */
  size_t total = 0;
  for (size_t i = 0; at_watch != NULL && i < tm_snapshot_length(at_watch); i++)
    total += tm_snapshot_get(at_watch, i)->size;
  tm_snapshot_free(at_watch);
  return MAX(peak, total);
}

void tm_leak_teardown(void) {
  /* The callee-saved registers, as this fixture was called: the only copy of a pointer may sit in
   * one. Scanned as roots, with the stack from the caller's frame up: this fixture's own frames
   * sit where the test's dead frames were. setjmp() writes the registers and leaves the rest of
   * the jmp_buf (glibc's saved signal mask) as it was: zeroed first, so that no stale word of the
   * test's dead frames, where this buffer now lies, passes for a register. */
  jmp_buf regs;
  memset(regs, 0, sizeof regs);
  setjmp(regs);
  const void *stack_from = (const char *)__builtin_frame_address(0) + 2 * sizeof(void *);
  tm__leak_rules rules;
  tm__leak_test_info test;
  size_t current = 0, blocks = 0, peak = 0;

  if (!window.open)
    return;
  /* A test that paused its thread and did not resume would hide the plugin's own allocations
   * nowhere; and its window is judged from a thread that is not paused. */
  while (tm_thread_is_paused())
    tm_thread_resume();
  tm__leak_pass_pause_forget();
  tm_get_traced_memory(&current, &peak); /* first: before this function allocates anything */
  blocks = tm_get_traced_blocks();
  tm_thread_pause(); /* from here on, what the plugin allocates is not the test's */
  test = tm__leak_test_lookup(tcase_name());
  if (config_error != NULL || window.start_error != NULL) {
    const char *why = config_error != NULL ? config_error : window.start_error;
    window_close();
    tm_thread_resume();
    FAIL_AT(test_file(&test), test.line, "%s", why);
  }
  if (window.unchecked != NULL) {
    char why[256], failure[512];
    snprintf(why, sizeof why, "malloc is served by %s", window.unchecked);
    snprintf(failure, sizeof failure, "%s, which hides every allocation; run without it", why);
    window_unchecked(&test, why, failure);
    return;
  }
  /* Reached only when the setup started the window's traces: a configuration error, a failed
   * start and another tool serving malloc were reported above, and a disabled plugin never
   * starts them. */
  if (!config->disabled && !tm__leak_test_failed && !window.ignore &&
      (!tm_is_tracing() || tm_get_traces_generation() != window.generation)) {
    /* The test stopped tracing, or made it forget its traces: what it allocated before is not
     * known, and a leak would pass unseen. */
    char why[256], failure[512];
    snprintf(why, sizeof why, "the test %s",
             !tm_is_tracing() ? "stopped tracing (tm_stop())"
                              : "made the tracer forget its traces (tm_clear_traces(), or "
                                "tm_stop() and tm_start())");
    snprintf(failure, sizeof failure,
             "%s, so what it allocated before is not known; do that outside the tests that "
             "TM_LEAK_FIXTURE checks", why);
    window_unchecked(&test, why, failure);
    return;
  }
  if (config->disabled || tm__leak_test_failed || window.ignore || !tm_is_tracing()) {
    if (!config->disabled && tm__leak_records_wanted() && tm_is_tracing())
      tm__leak_records_emit_unjudged(test.test, tm__leak_test_failed ? "skipped" : "ignored",
                                     peak);
    window_close(); /* a failed test is not charged with its leftovers */
    tm_thread_resume();
    return;
  }
  tm__leak_config_rules_for(config,
                            &(tm__leak_test_id){test.suite, test.tcase, test.test}, &rules);
  if (window.has_allowance)
    rules.allowance = MAX(rules.allowance, window.allowance);
  if (window.has_allowance_blocks)
    rules.allowance_blocks = MAX(rules.allowance_blocks, window.allowance_blocks);
  if (window.has_peak_limit)
    rules.peak_limit = window.peak_limit;
  peak = peak_with_watch(peak, rules.peak_limit);
  bool recording = tm__leak_records_wanted(); /* JSON Lines or a baseline: every record */
  if (tm__leak_judge(&(tm__leak_growth){.size = current, .blocks = blocks, .peak = peak},
                     &rules) == TM__LEAK_PASS &&
      !(recording && current > 0)) {
    if (recording)
      tm__leak_records_emit_empty(test.test, &rules, peak);
    window_close();
    tm_thread_resume();
    return;
  }
  judge_candidate(&test, &rules, peak, regs, stack_from);
}

/* Says, once per process, that an in-test call came with no window open: from main(), or from a
 * test whose TCase has no TM_LEAK_FIXTURE. The call changes nothing. Returns whether one is open. */
static bool window_expected(const char *fn) {
  static atomic_bool said;
  if (window.open)
    return true;
  if (!atomic_exchange(&said, true))
    fprintf(tm__leak_stderr(),
            "tracemalloc-check: %s() called with no leak window open (outside a test, or in a "
            "TCase without TM_LEAK_FIXTURE): it does nothing\n",
            fn);
  return false;
}

void tm_leak_allow(size_t bytes) {
  if (!window_expected("tm_leak_allow"))
    return;
  if (!window.has_allowance || bytes > window.allowance)
    window.allowance = bytes;
  window.has_allowance = true;
}

void tm_leak_allow_blocks(size_t blocks) {
  if (!window_expected("tm_leak_allow_blocks"))
    return;
  if (!window.has_allowance_blocks || blocks > window.allowance_blocks)
    window.allowance_blocks = blocks;
  window.has_allowance_blocks = true;
}

void tm_leak_ignore(void) {
  if (!window_expected("tm_leak_ignore"))
    return;
  window.ignore = true;
}

void tm_leak_limit_peak(size_t bytes) {
  if (!window_expected("tm_leak_limit_peak"))
    return;
  window.peak_limit = bytes;
  window.has_peak_limit = true;
  if (window.open && tm_is_tracing() && bytes != 0 &&
      (window.peak_watch == 0 || bytes < window.peak_watch)) {
    window.peak_watch = bytes;
    tm_peak_watch(bytes);
  }
}
