/* parity_check.c — runs one example and checks that its output has the expected shape.
 *
 * Usage: parity_check SHAPE SOURCE EXE [ARG...]
 * Runs EXE ARG..., then matches its standard output line by line against the SHAPE file, whose
 * lines are directives:
 *   = text     the next line is exactly text ("=" alone: an empty line)
 *   ~ regex    the next line matches regex
 *   + regex    one or more lines match regex
 *   * regex    zero or more lines match regex
 *   # ...      a comment
 * Regexes may use {SIZE} (Python's _format_size output), {STAT} (a statistic line), {DIFF} (a
 * statistic diff line) and {SRC} (SOURCE, the example's file name, escaped). Every output line
 * must be matched. Exits 0 when the output fits, 1 (printing where it does not) otherwise.
 */
#include <glib.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define SIZE_RE "\\d+(\\.\\d)? (B|KiB|MiB|GiB|TiB)"

static char *expand(const char *re, const char *src) {
  char *esc = g_regex_escape_string(src, -1);
  GString *out = g_string_new(NULL);
  for (const char *p = re; *p != '\0';) {
    if (g_str_has_prefix(p, "{SIZE}")) {
      g_string_append(out, SIZE_RE);
      p += 6;
    } else if (g_str_has_prefix(p, "{STAT}")) {
      g_string_append(out, "^.+:\\d+: size=" SIZE_RE ", count=\\d+, average=" SIZE_RE "$");
      p += 6;
    } else if (g_str_has_prefix(p, "{DIFF}")) {
      g_string_append(out, "^.+:\\d+: size=" SIZE_RE " \\([+-]" SIZE_RE "\\), count=\\d+ "
                           "\\([+-]\\d+\\), average=" SIZE_RE "$");
      p += 6;
    } else if (g_str_has_prefix(p, "{SRC}")) {
      g_string_append(out, esc);
      p += 5;
    } else {
      g_string_append_c(out, *p++);
    }
  }
  g_free(esc);
  return g_string_free(out, FALSE);
}

static bool line_matches(char kind, const char *arg, const char *line) {
  if (kind == '=')
    return strcmp(arg, line) == 0;
  return g_regex_match_simple(arg, line, 0, 0);
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s SHAPE SOURCE EXE [ARG...]\n", argv[0]);
    return 2;
  }
  gchar *shape, *out, *err;
  gint status;
  GError *error = NULL;
  if (!g_file_get_contents(argv[1], &shape, NULL, &error) ||
      !g_spawn_sync(NULL, argv + 3, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err, &status,
                    &error)) {
    fprintf(stderr, "%s\n", error->message);
    return 2;
  }
  fputs(out, stdout);
  fputs(err, stderr);
  if (!g_spawn_check_wait_status(status, &error)) {
    fprintf(stderr, "%s: %s\n", argv[3], error->message);
    return 1;
  }
  char **want = g_strsplit(shape, "\n", -1);
  char **got = g_strsplit(out, "\n", -1);
  size_t ngot = g_strv_length(got);
  if (ngot > 0 && got[ngot - 1][0] == '\0')
    ngot--; /* the final newline */
  size_t g = 0;
  int rc = 0;
  for (size_t w = 0; want[w] != NULL && rc == 0; w++) {
    char kind = want[w][0];
    if (kind == '\0' || kind == '#')
      continue;
    const char *arg = want[w][1] == ' ' ? want[w] + 2 : want[w] + 1;
    char *re = kind == '=' ? g_strdup(arg) : expand(arg, argv[2]);
    size_t n = 0;
    while (g < ngot && (kind == '+' || kind == '*' || n == 0) && line_matches(kind, re, got[g])) {
      g++;
      n++;
    }
    if (n == 0 && kind != '*') {
      fprintf(stderr, "shape line %zu (%s) does not match output line %zu: \"%s\"\n", w + 1,
              want[w], g + 1, g < ngot ? got[g] : "<end of output>");
      rc = 1;
    }
    g_free(re);
  }
  if (rc == 0 && g < ngot) {
    fprintf(stderr, "unexpected output line %zu: \"%s\"\n", g + 1, got[g]);
    rc = 1;
  }
  g_strfreev(want);
  g_strfreev(got);
  g_free(shape);
  g_free(out);
  g_free(err);
  return rc;
}
