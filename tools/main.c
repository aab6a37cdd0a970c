/* main.c — `tracemalloc COMMAND ...`: dispatch, the overall help, one-line errors. */
#include <locale.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "tool.h"

static const char help_text[] =
    "Usage: tracemalloc COMMAND [OPTION...] ARGS\n"
    "\n"
    "Python's tracemalloc for any C program: trace it, read its dumps, draw them.\n"
    "\n"
    "Commands:\n"
    "  run [-n NFRAME] [-o PATTERN] [--signal SIG] [--at-exit|--peak] -- PROG ARGS...\n"
    "      Runs PROG with libtracemalloc preloaded, tracing from its first allocation, and\n"
    "      writes a dump when each of its processes exits (forks and execs are followed;\n"
    "      PATTERN: %p pid, %n counter, %e program name), on SIG if given, or of the peak\n"
    "      with --peak. Prints the dumps written and the top 10 lines of the program's.\n"
    "  stats FILE [--key lineno|filename|traceback] [--cumulative] [--limit N]\n"
    "        [--include PATTERN]... [--exclude PATTERN]... [--traceback]\n"
    "      Python's statistics of a dump, as Python prints them.\n"
    "  compare NEW OLD [the options of stats] [--fail-over SIZE]\n"
    "      Python's compare_to: what grew between two dumps. With --fail-over, exits with\n"
    "      status 1 when the total growth passes SIZE (512, 4KiB, 4 KiB, 1 MiB).\n"
    "  flamegraph FILE [-o OUT.svg] [--diff OLD] [--folded] [--include/--exclude PATTERN]\n"
    "      A self-contained SVG icicle graph of the live bytes by traceback (zoom, search,\n"
    "      tooltips), or folded stacks for flamegraph.pl and speedscope with --folded.\n"
    "\n"
    "`tracemalloc COMMAND --help` describes each option. Exit status: 0 done, 1 compare's\n"
    "growth passed --fail-over, 2 a usage error or an unreadable file (one line on stderr).\n";

/* See tool.h. */
int tool_fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  /* "tracemalloc stats: x" reads "tracemalloc: stats: x". */
  if (g_str_has_prefix(msg, "tracemalloc ")) {
    char *rest = g_strdup(msg + strlen("tracemalloc "));
    g_free(msg);
    msg = rest;
  }
  /* One line: a message carrying a newline (a file name) is folded. */
  for (char *p = msg; *p != '\0'; p++)
    if (*p == '\n')
      *p = ' ';
  fflush(stdout);
  fprintf(stderr, "tracemalloc: %s\n", msg);
  g_free(msg);
  return TOOL_EXIT_USAGE;
}

/* See tool.h. */
bool tool_parse(GOptionContext *ctx, int *argc, char ***argv) {
  GError *error = NULL;
  bool ok = g_option_context_parse(ctx, argc, argv, &error);
  if (!ok) {
    tool_fail("%s: %s (see %s --help)", g_get_prgname(), error->message, g_get_prgname());
    g_error_free(error);
  }
  g_option_context_free(ctx);
  return ok;
}

/* Dispatches to the command named by argv[1]; returns its exit status. */
int main(int argc, char **argv) {
  static const struct {
    const char *name;
    int (*main)(int, char **);
  } commands[] = {{"run", tool_run_main},
                  {"stats", tool_stats_main},
                  {"compare", tool_compare_main},
                  {"flamegraph", tool_flamegraph_main}};

  /* LC_CTYPE only: numbers print as Python prints them, with a dot, whatever the locale. */
  setlocale(LC_CTYPE, "");
  if (argc < 2) {
    fputs(help_text, stderr);
    return TOOL_EXIT_USAGE;
  }
  if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
      strcmp(argv[1], "help") == 0) {
    fputs(help_text, stdout);
    return TOOL_EXIT_OK;
  }
  for (size_t i = 0; i < G_N_ELEMENTS(commands); i++) {
    if (strcmp(argv[1], commands[i].name) == 0) {
      char *prgname = g_strdup_printf("tracemalloc %s", commands[i].name);
      g_set_prgname(prgname);
      g_free(prgname);
      /* The command sees itself as argv[0]. */
      return commands[i].main(argc - 1, argv + 1);
    }
  }
  if (argv[1][0] == '-')
    return tool_fail("unknown option %s before the command (see tracemalloc --help)", argv[1]);
  return tool_fail("unknown command '%s' (see tracemalloc --help)", argv[1]);
}
