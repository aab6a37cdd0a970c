/* harness.h — runs a Check suite in a subprocess and reads its verdicts.
 *
 * The plugin is tested as users meet it: through Check's output. A suite runs with
 * CK_VERBOSITY=verbose, so that every test prints one line
 *   file:line:TYPE:tcase:test:iteration: message
 * (TYPE P for a pass, F for a failed test, E for an error, S for a failure in a fixture).
 */
#ifndef TM_PLUGIN_HARNESS_H
#define TM_PLUGIN_HARNESS_H

#include <stdbool.h>

#include <glib.h>

/* One result line of Check's output. */
typedef struct ck_result {
  char *file;
  int line;
  char type;
  char *tcase;
  char *test;
  int iteration;
  char *message;
} ck_result;

/* One run of a suite. */
typedef struct suite_run {
  char *fork;         /* "yes" or "no" */
  int exit_status;    /* as waitpid gives it */
  char *out, *err;    /* all of stdout and stderr */
  GPtrArray *results; /* of ck_result*, in output order */
} suite_run;

/* Runs exe with CK_FORK=fork_mode, CK_VERBOSITY=verbose, stdin from /dev/null, and the extra
 * "NAME=value" settings (NULL-terminated, may be NULL) on top of the current environment less
 * every TM_LEAK_*, CK_RUN_*, CK_*_LOG, G_SLICE and TRACEMALLOC variable. Exits with 99 (meson's hard error) when exe
 * cannot run: it is called from main(), outside any test, where Check cannot report. */
suite_run *suite_run_new(const char *exe, const char *fork_mode, const char *const *extra_env);
/* The same; with stderr_closed, the suite starts with descriptor 2 closed (run->err stays NULL). */
suite_run *suite_run_new_full(const char *exe, const char *fork_mode, const char *const *extra_env,
                              bool stderr_closed);
void suite_run_free(suite_run *run);

/* The result of tcase:test:iteration, or NULL. tcase may be NULL for any. */
const ck_result *suite_run_find(const suite_run *run, const char *tcase, const char *test,
                                int iteration);

/* The 1-based number of the first line of `path` that contains `marker`; aborts when none does. */
int source_marker_line(const char *path, const char *marker);

/* Reads an environment variable the program needs (set by meson); exits with 99 when missing. */
const char *required_env(const char *name);

/* Checks one result: type, the site's file basename and marker line (file NULL: not checked),
 * and a message that starts with `message_prefix` (NULL: not checked). Aborts with a message
 * that shows the whole result line on mismatch. */
void check_result(const suite_run *run, const char *tcase, const char *test, int iteration,
                  char type, const char *site_source, const char *marker,
                  const char *message_prefix);

#endif /* TM_PLUGIN_HARNESS_H */
