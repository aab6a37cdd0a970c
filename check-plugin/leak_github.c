/* leak_github.c — GitHub Actions annotations: under GITHUB_ACTIONS=true a test the plugin fails
 * also prints a workflow command, "::error file=...,line=...,title=...::message", which GitHub
 * shows on the pull request's diff at that line. Paths are the plugin's display paths, relative
 * to the source root (leak_paths.c), which is the repository's root in a checkout.
 */
#include <string.h>

#include "leak_internal.h"

/* Appends text escaped as GitHub's workflow commands want: '%', CR and LF always; ':' and ','
 * too in a property value. */
static void append_escaped(GString *s, const char *text, bool property) {
  for (const char *p = text; *p != '\0'; p++) {
    switch (*p) {
    case '%': g_string_append(s, "%25"); break;
    case '\r': g_string_append(s, "%0D"); break;
    case '\n': g_string_append(s, "%0A"); break;
    case ':':
      g_string_append(s, property ? "%3A" : ":");
      break;
    case ',':
      g_string_append(s, property ? "%2C" : ",");
      break;
    default: g_string_append_c(s, *p);
    }
  }
}

void tm__leak_github_error(FILE *out, const char *file, int line, const char *title,
                           const char *message) {
  GString *s = g_string_new("::error ");
  bool first = true;

  if (file != NULL) {
    g_string_append(s, "file=");
    append_escaped(s, file, true);
    if (line > 0)
      g_string_append_printf(s, ",line=%d", line);
    first = false;
  }
  if (title != NULL) {
    g_string_append(s, first ? "title=" : ",title=");
    append_escaped(s, title, true);
  }
  g_string_append(s, "::");
  append_escaped(s, message, false);
  g_string_append_c(s, '\n');
  fputs(s->str, out);
  fflush(out);
  g_string_free(s, true);
}
