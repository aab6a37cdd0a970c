/* leak_record.c — one record per test window, for CI: a JSON line (TM_LEAK_JSON=path), a GitHub
 * Actions annotation for a failure (GITHUB_ACTIONS=true), and the baseline ratchet
 * (TM_LEAK_BASELINE=file, TM_LEAK_BASELINE_UPDATE=1; leak_baseline.c).
 *
 * JSON Lines from several test programs at once: each record is formatted first (by the json-glib
 * module, leak_json.c), then written with one write() on a descriptor opened with O_APPEND and
 * held under an exclusive flock(), so that lines never interleave, whatever their length.
 *
 * The iteration of a loop test: Check passes it to the test function only. Its runner logs every
 * result with log_test_end() (after the test's teardowns, in the runner), which the plugin's link
 * flags wrap (-Wl,--wrap=log_test_end): the name and iteration of the last result are kept, and a
 * window of the same test is the next iteration. A window of another test is the first iteration
 * of its loop (leak_names.c saw tcase_add_loop_test's start; 0 for other tests). In CK_FORK=yes
 * mode the child inherits them from the runner at fork.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/file.h>
#include <unistd.h>

#include <check.h>

#include "leak_internal.h"

#ifndef TM_LEAK_JSON_MODULE_NAME
#error "meson defines TM_LEAK_JSON_MODULE_NAME, TM_LEAK_JSON_BUILD_DIR, TM_LEAK_JSON_INSTALL_DIR"
#endif
#ifndef TM_LIBRARY_BUILD_DIR
#error "meson defines TM_LIBRARY_BUILD_DIR"
#endif

static struct {
  char *json_path;                /* TM_LEAK_JSON, or NULL */
  const tm__leak_json_api *json;  /* the module's formatter, when json_path is set */
  char *baseline_path;            /* TM_LEAK_BASELINE, or NULL */
  bool baseline_update;           /* TM_LEAK_BASELINE_UPDATE */
  tm__leak_baseline *baseline;    /* loaded, when checking against it */
  bool github;                    /* GITHUB_ACTIONS=true */
  bool json_error_said;           /* a write error is said once per process */
  bool window_open, window_done;  /* a window runs; its record was emitted */
  char last_test[256];            /* the last result Check's runner logged */
  int last_iteration;
} records;

/* ---- the iteration, from Check's log_test_end() ---------------------------------------------- */

/* struct TestResult of Check 0.15 (check_impl.h), which has no accessor for the test name or the
 * iteration. Read only inside log_test_end(), where the result is complete. */
struct check_test_result {
  int rtype, ctx;
  char *file;
  int line, iter, duration;
  const char *tcname, *tname;
  char *msg;
};

void __real_log_test_end(SRunner *sr, TestResult *tr) __attribute__((weak));
void __wrap_log_test_end(SRunner *sr, TestResult *tr);

void __wrap_log_test_end(SRunner *sr, TestResult *tr) {
  tm__leak_pass_pause_end(); /* the result is complete: "Passed" is in it */
  if (tr != NULL && srunner_fork_status(sr) == CK_FORK)
    tm__leak_symbols_note(tr_rtype(tr) == CK_FAILURE || tr_rtype(tr) == CK_ERROR);
#if CHECK_MAJOR_VERSION == 0 && CHECK_MINOR_VERSION == 15
  const struct check_test_result *r = (const void *)tr;
  if (r != NULL && r->tname != NULL) {
    g_strlcpy(records.last_test, r->tname, sizeof records.last_test);
    records.last_iteration = r->iter;
  }
#endif
  if (__real_log_test_end != NULL)
    __real_log_test_end(sr, tr);
}

static bool records_init(char **envp, GError **error);

/* ---- settings -------------------------------------------------------------------------------- */

/* The directory of the libtracemalloc.so this program uses, or NULL. g_free(). */
static char *library_dir(void) {
  Dl_info info;

  if (dladdr((const void *)(uintptr_t)tm_start, &info) == 0 || info.dli_fname == NULL ||
      strstr(info.dli_fname, "libtracemalloc") == NULL)
    return NULL;
  char *dir = g_path_get_dirname(info.dli_fname);
  char *canonical = g_canonicalize_filename(dir, NULL); /* a $ORIGIN run path: "x/../../src" */
  g_free(dir);
  return canonical;
}

/* Loads the JSON module: beside libtracemalloc.so (in tracemalloc/), or the build tree's for the
 * build tree's library, or the configured install folder. */
static bool json_module_load(GError **error) {
  char *dir = library_dir();
  GPtrArray *paths = g_ptr_array_new_with_free_func(g_free);
  GString *tried = g_string_new(NULL);
  bool in_build_tree = dir != NULL && strcmp(dir, TM_LIBRARY_BUILD_DIR) == 0;

  if (dir != NULL && !in_build_tree)
    g_ptr_array_add(paths, g_build_filename(dir, "tracemalloc", TM_LEAK_JSON_MODULE_NAME, NULL));
  g_ptr_array_add(paths, g_build_filename(TM_LEAK_JSON_BUILD_DIR, TM_LEAK_JSON_MODULE_NAME, NULL));
  g_ptr_array_add(paths,
                  g_build_filename(TM_LEAK_JSON_INSTALL_DIR, TM_LEAK_JSON_MODULE_NAME, NULL));
  for (guint i = 0; i < paths->len && records.json == NULL; i++) {
    const char *path = g_ptr_array_index(paths, i);
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    const tm__leak_json_api *api = handle != NULL ? dlsym(handle, TM__LEAK_JSON_SYMBOL) : NULL;
    if (api != NULL && api->version == TM__LEAK_JSON_VERSION &&
        api->record_size == sizeof(tm__leak_record)) {
      records.json = api; /* never unloaded */
      break;
    }
    g_string_append_printf(tried, "%s%s (%s)", tried->len ? ", " : "", path,
                           handle == NULL ? dlerror() : "not this version's module");
    if (handle != NULL)
      dlclose(handle);
  }
  if (records.json == NULL)
    g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT,
                "TM_LEAK_JSON: cannot load the JSON module %s: tried %s",
                TM_LEAK_JSON_MODULE_NAME, tried->str);
  g_string_free(tried, true);
  g_ptr_array_unref(paths);
  g_free(dir);
  return records.json != NULL;
}

static bool parse_flag(const char *name, const char *value, bool *out, GError **error) {
  static const char *const yes[] = {"1", "yes", "true", "on"};
  static const char *const no[] = {"0", "no", "false", "off", ""};

  for (size_t i = 0; i < G_N_ELEMENTS(yes); i++)
    if (g_ascii_strcasecmp(value, yes[i]) == 0)
      return *out = true;
  for (size_t i = 0; i < G_N_ELEMENTS(no); i++)
    if (g_ascii_strcasecmp(value, no[i]) == 0)
      return !(*out = false);
  g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
              "%s='%s' is not a boolean: write 1 or 0, yes or no, true or false", name, value);
  return false;
}

bool tm__leak_records_init(char **envp, GError **error) {
  /* NULL: the process's environment, none in a setuid or setgid program (as leak_config.c). */
  static char *no_env[] = {NULL};
  char **own_env = envp == NULL && getauxval(AT_SECURE) == 0 ? g_get_environ() : NULL;
  bool ok;

  if (envp == NULL)
    envp = own_env != NULL ? own_env : no_env;
  ok = records_init(envp, error);
  g_strfreev(own_env);
  return ok;
}

static bool records_init(char **envp, GError **error) {
  const char *json = tm__leak_env_get(envp, "TM_LEAK_JSON");
  const char *baseline = tm__leak_env_get(envp, "TM_LEAK_BASELINE");
  const char *update = tm__leak_env_get(envp, "TM_LEAK_BASELINE_UPDATE");
  const char *github = g_environ_getenv(envp, "GITHUB_ACTIONS");

  records.github = github != NULL && g_str_equal(github, "true");
  if (update != NULL && !parse_flag("TM_LEAK_BASELINE_UPDATE", update, &records.baseline_update,
                                    error))
    return false;
  if (records.baseline_update && (baseline == NULL || baseline[0] == '\0')) {
    g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                "TM_LEAK_BASELINE_UPDATE=%s needs TM_LEAK_BASELINE=file to write", update);
    return false;
  }
  if (json != NULL && json[0] != '\0') {
    records.json_path = g_strdup(json);
    if (!json_module_load(error))
      return false;
  }
  if (baseline != NULL && baseline[0] != '\0') {
    GError *local = NULL;
    records.baseline_path = g_strdup(baseline);
    if (!records.baseline_update) {
      records.baseline = tm__leak_baseline_load(baseline, &local);
      if (records.baseline == NULL) {
        g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_PARSE, "TM_LEAK_BASELINE: %s",
                    local->message);
        g_error_free(local);
        return false;
      }
    }
  }
  return true;
}

bool tm__leak_records_wanted(void) {
  return records.json_path != NULL || records.baseline_path != NULL;
}

bool tm__leak_records_annotate(void) {
  return records.github;
}

/* ---- records --------------------------------------------------------------------------------- */

void tm__leak_record_init(tm__leak_record *r, const char *test_name) {
  *r = (tm__leak_record){
    .program = g_intern_string(program_invocation_short_name),
    .test = test_name,
    .verdict = "pass",
    .roots = g_array_new(false, true, sizeof(tm__leak_record_root)),
  };
  if (test_name != NULL) { /* leak_names.c: the suite and TCase the test was added to */
    tm__leak_test_info info = tm__leak_test_lookup(test_name);
    r->suite = info.suite;
    r->tcase = info.tcase;
    r->iteration = g_str_equal(test_name, records.last_test) ? records.last_iteration + 1
                                                              : info.loop_start;
  }
}

void tm__leak_record_clear(tm__leak_record *r) {
  for (guint i = 0; r->roots != NULL && i < r->roots->len; i++) {
    tm__leak_record_root *root = &g_array_index(r->roots, tm__leak_record_root, i);
    if (root->frames != NULL)
      g_array_unref(root->frames);
  }
  if (r->roots != NULL)
    g_array_unref(r->roots);
  r->roots = NULL;
}

void tm__leak_record_add_root(tm__leak_record *r, const tm__leak_filters *filters,
                              const tm_traceback *tb, const char *test_name, size_t size,
                              size_t blocks) {
  const tm_frame *site = tm__leak_site(filters, tb);
  const tm_frame *test = tm__leak_test_frame(tb, test_name);
  size_t n = tm_traceback_length(tb);
  tm__leak_record_root root = {
    .file = site != NULL ? tm__leak_display_path(site->filename) : NULL,
    .line = site != NULL ? site->lineno : 0,
    .function = site != NULL && site->function != NULL ? g_intern_string(site->function) : NULL,
    .size = size,
    .blocks = blocks,
    .frames = g_array_new(false, true, sizeof(tm__leak_record_frame)),
  };

  for (size_t i = n; i-- > 0;) { /* most recent first, down to the test function */
    const tm_frame *f = tm_traceback_get(tb, i);
    tm__leak_record_frame rf = {
      .file = (f->flags & TM_FRAME_UNKNOWN) ? NULL : tm__leak_display_path(f->filename),
      .line = f->lineno,
      .function = f->function != NULL ? g_intern_string(f->function) : NULL,
      .module = f->module != NULL ? g_intern_string(f->module) : NULL,
    };
    g_array_append_val(root.frames, rf);
    if (f == test)
      break;
  }
  g_array_append_val(r->roots, root);
}

bool tm__leak_records_apply_baseline(tm__leak_record *r, GString *why) {
  GError *error = NULL;

  if (records.baseline_path == NULL)
    return r->leaked;
  if (records.baseline_update) {
    if (!tm__leak_baseline_update(records.baseline_path, r, &error)) {
      fprintf(tm__leak_stderr(), "tracemalloc-check: TM_LEAK_BASELINE: %s\n", error->message);
      g_error_free(error);
      return r->leaked;
    }
    return r->leaked = false; /* the new baseline accepts what it records */
  }

  char *key = tm__leak_baseline_key(r);
  const tm__leak_baseline_entry *entry = tm__leak_baseline_lookup(records.baseline, key);
  size_t base = entry != NULL ? entry->size : 0;
  char *new_site = NULL;

  for (guint i = 0; i < r->roots->len && new_site == NULL; i++) {
    const tm__leak_record_root *root = &g_array_index(r->roots, tm__leak_record_root, i);
    char *site = tm__leak_baseline_site(root);
    if (entry == NULL || !g_hash_table_contains(entry->sites, site))
      new_site = g_steal_pointer(&site);
    g_free(site);
  }
  if (r->leaked) {
    if (entry == NULL) {
      g_string_append_printf(why, "; not in the baseline (%s)", key);
      r->over_baseline = true;
    } else if (r->charged.size > base) {
      char *size = tm_format_size((int64_t)base, false);
      g_string_append_printf(why, "; over its baseline of %s", size);
      g_free(size);
      r->over_baseline = true;
    } else if (new_site != NULL) {
      g_string_append_printf(why, "; at %s, a site its baseline does not have", new_site);
      r->over_baseline = true;
    } else {
      r->leaked = false; /* within what the baseline recorded */
    }
  }
  if (!r->over_baseline && r->charged.size < base) {
    char *less = tm_format_size((int64_t)(base - r->charged.size), false);
    fprintf(tm__leak_stderr(),
            "tracemalloc-check: %s: %s below its baseline: run with TM_LEAK_BASELINE_UPDATE=1 "
            "to tighten\n",
            r->test != NULL ? r->test : key, less);
    fflush(tm__leak_stderr());
    g_free(less);
  }
  g_free(new_site);
  g_free(key);
  return r->leaked;
}

/* Appends one line to TM_LEAK_JSON: one write() under an exclusive lock, O_APPEND. */
static bool json_append(const char *line, GError **error) {
  int fd = open(records.json_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  size_t len = strlen(line);
  bool ok;

  if (fd < 0) {
    g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "cannot open %s: %s",
                records.json_path, g_strerror(errno));
    return false;
  }
  while (flock(fd, LOCK_EX) != 0 && errno == EINTR)
    continue;
  ssize_t written = write(fd, line, len);
  ok = written == (ssize_t)len;
  if (!ok)
    g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "cannot write %s: %s",
                records.json_path, written < 0 ? g_strerror(errno) : "short write");
  flock(fd, LOCK_UN);
  close(fd);
  return ok;
}

void tm__leak_records_emit(const tm__leak_record *r) {
  records.window_done = true;
  if (records.github && r->message != NULL) {
    char *title = g_strdup_printf("%s: leak", r->test != NULL ? r->test : "test");
    /* stderr: on stdout the line would break a TAP stream (CK_TAP_LOG_FILE_NAME=-); GitHub reads
     * workflow commands from both. */
    fflush(stdout);
    tm__leak_github_error(tm__leak_stderr(), r->file, r->line, title, r->message);
    g_free(title);
  }
  if (records.json != NULL) {
    GError *error = NULL;
    char *text = records.json->format(r);
    char *line = g_strconcat(text, "\n", NULL);
    if (!json_append(line, &error)) {
      if (!records.json_error_said)
        fprintf(tm__leak_stderr(), "tracemalloc-check: TM_LEAK_JSON: %s\n", error->message);
      records.json_error_said = true;
      g_error_free(error);
    }
    g_free(line);
    g_free(text);
  }
}

/* ---- the fixture's call sites ---------------------------------------------------------------- */

void tm__leak_record_findings(tm__leak_record *r, tm__leak_findings *f, GString *why) {
  r->leaked = (f->verdict & TM__LEAK_LEAKED) != 0;
  r->peak_exceeded = (f->verdict & TM__LEAK_PEAK_EXCEEDED) != 0;
  r->lost = (tm__leak_amount){f->lost_size, f->lost_blocks};
  r->charged = (tm__leak_amount){f->growth.size, f->growth.blocks};
  r->indirect = (tm__leak_amount){f->indirect_size, f->indirect_blocks};
  r->reachable = (tm__leak_amount){f->reachable_size, f->reachable_blocks};
  r->filtered = (tm__leak_amount){f->ignored_size, f->ignored_blocks};
  r->filtered_by = f->ignored_by;
  r->peak = f->growth.peak;
  r->allowance = f->rules.allowance;
  /* The roots: each lost group with what it owns; reachable groups when they are charged. */
  for (guint i = 0; i < f->groups->len; i++) {
    const tm__leak_group *g = &g_array_index(f->groups, tm__leak_group, i);
    if (g->reach == TM_REACH_LOST ||
        (g->reach == TM_REACH_REACHABLE && f->rules.charge_reachable))
      tm__leak_record_add_root(r, f->filters, g->traceback, f->test.test,
                               g->size + g->owned_size, g->blocks + g->owned_blocks);
  }
  if (!tm__leak_records_apply_baseline(r, why))
    f->verdict &= ~(unsigned)TM__LEAK_LEAKED;
  r->verdict = f->verdict == TM__LEAK_PASS ? "pass" : "fail";
}

void tm__leak_record_failure(tm__leak_record *r, const char *msg, const char *file, int line) {
  if (msg == NULL || msg[0] == '\0')
    return;
  r->verdict = "fail";
  r->message = msg;
  r->file = file;
  r->line = line;
}

void tm__leak_records_window_open(void) {
  records.window_open = true;
  records.window_done = false;
}

void tm__leak_records_test_failed(void) {
  size_t current = 0, peak = 0;

  if (!tm__leak_records_wanted() || !records.window_open || records.window_done)
    return;
  tm_get_traced_memory(&current, &peak);
  tm__leak_records_emit_unjudged(tcase_name(), "skipped", peak);
}

void tm__leak_records_emit_unjudged(const char *test_name, const char *verdict, size_t peak) {
  tm__leak_record r;

  if (records.window_done)
    return; /* leak_assert.c's call already emitted it */
  tm__leak_record_init(&r, test_name);
  r.verdict = verdict;
  r.peak = peak;
  tm__leak_records_emit(&r);
  tm__leak_record_clear(&r);
}

void tm__leak_records_emit_empty(const char *test_name, const tm__leak_rules *rules,
                                 size_t peak) {
  tm__leak_record r;
  GString *why = g_string_new(NULL);

  tm__leak_record_init(&r, test_name);
  r.peak = peak;
  r.allowance = rules->allowance;
  tm__leak_records_apply_baseline(&r, why); /* nothing leaked: below a baseline, or updated */
  tm__leak_records_emit(&r);
  tm__leak_record_clear(&r);
  g_string_free(why, true);
}

void tm__leak_message_append(char msg[TM__LEAK_MESSAGE_MAX], const char *text) {
  static const char tail[] = "; full report on stderr";
  size_t len = strlen(msg);
  GString *s;

  if (text == NULL || text[0] == '\0')
    return;
  s = g_string_new(msg);
  if (g_str_has_suffix(msg, tail))
    g_string_insert(s, (gssize)(len - strlen(tail)), text);
  else
    g_string_append(s, text);
  if (s->len >= TM__LEAK_MESSAGE_MAX) { /* cut on a UTF-8 boundary, ending with "..." */
    const char *end = g_utf8_find_prev_char(s->str, s->str + TM__LEAK_MESSAGE_MAX - 4);
    g_string_truncate(s, end != NULL ? (gsize)(end - s->str) : 0);
    g_string_append(s, "...");
  }
  memcpy(msg, s->str, s->len + 1);
  g_string_free(s, true);
}
