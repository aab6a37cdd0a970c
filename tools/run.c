/* run.c — `tracemalloc run`: a program traced from its first allocation, its dumps listed.
 *
 * The program runs with libtracemalloc preloaded (LD_PRELOAD) and TRACEMALLOC=N, so the library's
 * constructor starts tracing before main() and before any other library's constructor allocates
 * much. The dumps themselves are written by the traced processes (src/analysis/autodump.c,
 * TRACEMALLOC_DUMP*): at exit, on a fatal signal, on the chosen signal, or of the sampled peak.
 * Every process appends its dumps to a list file this command reads when the program is done.
 *
 * The library is found beside this executable: in the build tree the one built with it, once
 * installed the one in the library directory (relative to the executable, then the configured
 * path); TRACEMALLOC_LIBRARY names another.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tool.h"

/* Signals the traced program can take for a dump, by name. */
static const struct {
  const char *name;
  int sig;
} dump_signals[] = {{"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"HUP", SIGHUP}, {"PROF", SIGPROF},
                    {"WINCH", SIGWINCH}, {"URG", SIGURG}, {"TTIN", SIGTTIN}, {"TTOU", SIGTTOU}};

static pid_t child_pid;

/* Returns the signal "SIGUSR2", "USR2" or "12" names, or 0. */
static int signal_parse(const char *text) {
  char *end;
  long n = strtol(text, &end, 10);
  if (end != text && *end == '\0')
    return n > 0 && n < NSIG && n != SIGKILL && n != SIGSTOP ? (int)n : 0;
  if (g_str_has_prefix(text, "SIG"))
    text += 3;
  for (size_t i = 0; i < G_N_ELEMENTS(dump_signals); i++)
    if (strcmp(text, dump_signals[i].name) == 0)
      return dump_signals[i].sig;
  return 0;
}

/* Returns the library to preload, or NULL after printing one line. g_free(). */
static char *library_find(void) {
  const char *env = g_getenv("TRACEMALLOC_LIBRARY");
  if (env != NULL && env[0] != '\0') {
    if (g_file_test(env, G_FILE_TEST_IS_REGULAR))
      return g_strdup(env);
    tool_fail("%s: TRACEMALLOC_LIBRARY=%s: no such file", g_get_prgname(), env);
    return NULL;
  }
  char *exe = g_file_read_link("/proc/self/exe", NULL);
  char *dir = exe != NULL ? g_path_get_dirname(exe) : g_strdup(".");
  char *found = NULL;
  if (g_strcmp0(dir, TM_TOOLS_BUILD_DIR) == 0 &&
      g_file_test(TM_LIBRARY_BUILD_PATH, G_FILE_TEST_IS_REGULAR))
    found = g_strdup(TM_LIBRARY_BUILD_PATH);
  if (found == NULL) {
    char *rel = g_build_filename(dir, TM_BINDIR_TO_LIBDIR, TM_LIBRARY_NAME, NULL);
    if (g_file_test(rel, G_FILE_TEST_IS_REGULAR))
      found = g_canonicalize_filename(rel, NULL);
    g_free(rel);
  }
  if (found == NULL && g_file_test(TM_LIBRARY_INSTALL_PATH, G_FILE_TEST_IS_REGULAR))
    found = g_strdup(TM_LIBRARY_INSTALL_PATH);
  if (found == NULL)
    tool_fail("%s: cannot find %s beside %s nor at %s (set TRACEMALLOC_LIBRARY)", g_get_prgname(),
              TM_LIBRARY_NAME, dir, TM_LIBRARY_INSTALL_PATH);
  g_free(dir);
  g_free(exe);
  return found;
}

/* Passes a signal sent to the command on to the program (async-signal-safe). */
static void forward_signal(int sig) {
  if (child_pid > 0)
    kill(child_pid, sig);
}

/* One line of the list the traced processes append to. */
typedef struct dump_entry {
  long pid;
  char *reason;
  char *path;
} dump_entry;

/* Frees the strings of a dump_entry (the array's clear function). */
static void dump_entry_clear(gpointer p) {
  dump_entry *e = p;
  g_free(e->reason);
  g_free(e->path);
}

/* Reads the list the traced processes appended to: a new array of dump_entry, empty when the
 * file is missing. g_array_unref(). */
static GArray *list_read(const char *path) {
  GArray *entries = g_array_new(false, true, sizeof(dump_entry));
  g_array_set_clear_func(entries, dump_entry_clear);
  char *text = NULL;
  if (!g_file_get_contents(path, &text, NULL, NULL))
    return entries;
  char **lines = g_strsplit(text, "\n", -1);
  for (size_t i = 0; lines[i] != NULL; i++) {
    char **fields = g_strsplit(lines[i], "\t", 3);
    if (g_strv_length(fields) == 3) {
      dump_entry e = {strtol(fields[0], NULL, 10), g_strdup(fields[1]), g_strdup(fields[2])};
      g_array_append_val(entries, e);
    }
    g_strfreev(fields);
  }
  g_strfreev(lines);
  g_free(text);
  return entries;
}

/* The path as the user would type it: relative to the working directory when under it. */
static const char *path_shown(const char *path, const char *cwd) {
  size_t n = strlen(cwd);
  if (strncmp(path, cwd, n) == 0 && path[n] == '/')
    return path + n + 1;
  return path;
}

/* Prints the dumps written and the top lines of the program's own last dump, on stderr. */
static void dumps_report(GArray *entries, pid_t pid) {
  char *cwd = g_get_current_dir();
  const dump_entry *main_dump = NULL;
  guint written = 0, shown = 0;
  for (guint i = 0; i < entries->len; i++)
    if (strcmp(g_array_index(entries, dump_entry, i).path, "-") != 0)
      written++;
  fprintf(stderr, "tracemalloc: %u dump%s written\n", written, written == 1 ? "" : "s");
  for (guint i = 0; i < entries->len; i++) {
    const dump_entry *e = &g_array_index(entries, dump_entry, i);
    bool is_dump = strcmp(e->path, "-") != 0;
    if (is_dump && (e->pid == pid || main_dump == NULL || main_dump->pid != pid))
      main_dump = e;
    if (!is_dump) {
      fprintf(stderr, "  pid %ld was not tracing at exit: no dump\n", e->pid);
    } else if (shown < 20 || i + 1 == entries->len) {
      fprintf(stderr, "  %s  (pid %ld, %s)\n", path_shown(e->path, cwd), e->pid, e->reason);
      shown++;
    } else if (shown == 20) {
      fprintf(stderr, "  ... %u more\n", written - shown - 1);
      shown++;
    }
  }
  if (main_dump != NULL) {
    tm_snapshot *snap = tool_snapshot_load(main_dump->path);
    if (snap != NULL) {
      fprintf(stderr, "tracemalloc: top lines of %s (pid %ld, %s):\n",
              path_shown(main_dump->path, cwd), main_dump->pid, main_dump->reason);
      fflush(stdout);
      tool_paths_relative_to(cwd); /* as the dump paths above */
      tool_top_lines_print(snap, 10, stderr);
      tm_snapshot_free(snap);
    }
  }
  g_free(cwd);
}

/* See tool.h. */
int tool_run_main(int argc, char **argv) {
  int nframe = 32;
  char *pattern = NULL, *signal_name = NULL;
  gboolean at_exit = false, at_peak = false;
  GOptionEntry entries[] = {
      {"nframe", 'n', 0, G_OPTION_ARG_INT, &nframe,
       "Frames kept per traceback (default 32, at most 1024)", "NFRAME"},
      {"output", 'o', 0, G_OPTION_ARG_FILENAME, &pattern,
       "Dump file names: %p pid, %n counter, %e program name, %% a percent sign "
       "(default %e.%p.%n.dump)",
       "PATTERN"},
      {"signal", 's', 0, G_OPTION_ARG_STRING, &signal_name,
       "Also dump each time the program gets SIG (e.g. SIGUSR2)", "SIG"},
      {"at-exit", 0, 0, G_OPTION_ARG_NONE, &at_exit,
       "Dump the blocks still live when each process exits (the default)", NULL},
      {"peak", 0, 0, G_OPTION_ARG_NONE, &at_peak,
       "Dump, at exit, the largest state sampled (every 1 ms) instead", NULL},
      {NULL, 0, 0, 0, NULL, NULL, NULL},
  };
  int rc = TOOL_EXIT_USAGE, sig = 0;
  char *library = NULL, *list_path = NULL, *abs_pattern = NULL;
  GOptionContext *ctx = g_option_context_new("-- PROG [ARGS...]");
  g_option_context_set_summary(
      ctx, "Runs PROG traced from its first allocation and writes a dump when each of its\n"
           "processes exits (forks and execs are followed), then prints the dumps written and\n"
           "the top 10 lines of the program's own dump on stderr. The exit status is PROG's.");
  g_option_context_add_main_entries(ctx, entries, NULL);
  g_option_context_set_strict_posix(ctx, true);
  if (!tool_parse(ctx, &argc, &argv))
    goto out;
  int first = 1;
  if (argc > first && strcmp(argv[first], "--") == 0)
    first++;
  if (argc <= first) {
    rc = tool_fail("%s: no program to run (usage: %s [OPTION...] -- PROG [ARGS...])",
                   g_get_prgname(), g_get_prgname());
    goto out;
  }
  if (nframe < 1 || nframe > TM_MAX_NFRAME) {
    rc = tool_fail("%s: --nframe %d: expected 1 to %d", g_get_prgname(), nframe, TM_MAX_NFRAME);
    goto out;
  }
  if (at_exit && at_peak) {
    rc = tool_fail("%s: --at-exit and --peak exclude each other", g_get_prgname());
    goto out;
  }
  if (signal_name != NULL && (sig = signal_parse(signal_name)) == 0) {
    rc = tool_fail("%s: --signal %s: expected SIGUSR1, SIGUSR2, SIGHUP, SIGPROF, SIGWINCH, "
                   "SIGURG, SIGTTIN, SIGTTOU or a signal number",
                   g_get_prgname(), signal_name);
    goto out;
  }
  const char *prog = argv[first];
  char *prog_path = g_find_program_in_path(prog);
  if (prog_path == NULL) {
    rc = tool_fail("%s: %s: no such program", g_get_prgname(), prog);
    goto out;
  }
  g_free(prog_path);
  if ((library = library_find()) == NULL)
    goto out;
  abs_pattern = g_canonicalize_filename(pattern != NULL ? pattern : "%e.%p.%n.dump", NULL);
  char *dir = g_path_get_dirname(abs_pattern);
  bool dir_ok = g_file_test(dir, G_FILE_TEST_IS_DIR);
  if (!dir_ok)
    tool_fail("%s: --output %s: directory %s does not exist", g_get_prgname(),
              pattern != NULL ? pattern : "", dir);
  g_free(dir);
  if (!dir_ok)
    goto out;
  GError *error = NULL;
  int list_fd = g_file_open_tmp("tracemalloc-run-XXXXXX.list", &list_path, &error);
  if (list_fd < 0) {
    rc = tool_fail("%s: %s", g_get_prgname(), error->message);
    g_error_free(error);
    goto out;
  }
  close(list_fd);

  char **env = g_get_environ();
  const char *preload = g_environ_getenv(env, "LD_PRELOAD");
  char *new_preload =
      preload != NULL && preload[0] != '\0' ? g_strdup_printf("%s %s", library, preload)
                                            : g_strdup(library);
  char nframe_text[16];
  g_snprintf(nframe_text, sizeof nframe_text, "%d", nframe);
  env = g_environ_setenv(env, "LD_PRELOAD", new_preload, true);
  env = g_environ_setenv(env, "TRACEMALLOC", nframe_text, true);
  env = g_environ_setenv(env, "TRACEMALLOC_DUMP", abs_pattern, true);
  env = g_environ_setenv(env, "TRACEMALLOC_DUMP_LIST", list_path, true);
  env = g_environ_setenv(env, "TRACEMALLOC_DUMP_AT", at_peak ? "peak" : "exit", true);
  if (sig != 0) {
    char sig_text[16];
    g_snprintf(sig_text, sizeof sig_text, "%d", sig);
    env = g_environ_setenv(env, "TRACEMALLOC_DUMP_SIGNAL", sig_text, true);
  } else {
    env = g_environ_unsetenv(env, "TRACEMALLOC_DUMP_SIGNAL");
  }
  g_free(new_preload);

  /* As system() does: the terminal's SIGINT and SIGQUIT are the program's to handle (it dumps on
   * them); a SIGTERM or SIGHUP sent to us, or the dump signal, is passed on. */
  struct sigaction ignore = {.sa_handler = SIG_IGN}, forward = {.sa_handler = forward_signal};
  struct sigaction old_int, old_quit;
  sigaction(SIGINT, &ignore, &old_int);
  sigaction(SIGQUIT, &ignore, &old_quit);
  /* The signals to pass on stay blocked from before the fork until their handlers are in place:
   * one sent as soon as the program is up (it may say so before we run again) is held, not
   * taken with its default action, which would end this command. */
  sigset_t passed, old_mask;
  sigemptyset(&passed);
  sigaddset(&passed, SIGTERM);
  sigaddset(&passed, SIGHUP);
  if (sig != 0)
    sigaddset(&passed, sig);
  sigprocmask(SIG_BLOCK, &passed, &old_mask);
  fflush(stdout);
  fflush(stderr);
  child_pid = fork();
  if (child_pid < 0) {
    sigprocmask(SIG_SETMASK, &old_mask, NULL);
    g_strfreev(env);
    rc = tool_fail("%s: fork: %s", g_get_prgname(), g_strerror(errno));
    goto out;
  }
  if (child_pid == 0) {
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGQUIT, &old_quit, NULL);
    sigprocmask(SIG_SETMASK, &old_mask, NULL);
    execvpe(prog, argv + first, env);
    fprintf(stderr, "tracemalloc: %s: %s: %s\n", g_get_prgname(), prog, g_strerror(errno));
    _exit(127);
  }
  g_strfreev(env);
  sigaction(SIGTERM, &forward, NULL);
  sigaction(SIGHUP, &forward, NULL);
  if (sig != 0) {
    sigaction(sig, &forward, NULL);
    fprintf(stderr, "tracemalloc: tracing %s as pid %ld: `kill -%s %ld` writes a dump\n", prog,
            (long)child_pid, sigabbrev_np(sig) != NULL ? sigabbrev_np(sig) : signal_name,
            (long)child_pid);
  }
  sigprocmask(SIG_SETMASK, &old_mask, NULL);
  int status = 0;
  while (waitpid(child_pid, &status, 0) < 0 && errno == EINTR)
    ;
  GArray *dumps = list_read(list_path);
  dumps_report(dumps, child_pid);
  g_array_unref(dumps);
  if (WIFEXITED(status)) {
    rc = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    fprintf(stderr, "tracemalloc: %s was killed by SIG%s\n", prog,
            sigabbrev_np(WTERMSIG(status)) != NULL ? sigabbrev_np(WTERMSIG(status)) : "?");
    rc = 128 + WTERMSIG(status);
  }
out:
  if (list_path != NULL)
    unlink(list_path);
  g_free(list_path);
  g_free(library);
  g_free(abs_pattern);
  g_free(pattern);
  g_free(signal_name);
  return rc;
}
