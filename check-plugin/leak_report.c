/* leak_report.c — what a failing window says: one line through Check's failure channel, and the
 * full report (Python's StatisticDiff lines with tracebacks and source lines) on stderr.
 *
 * Check packs the message with a 4088-byte limit and exits the whole run past it
 * (docs/check-internals.md#message-limits), and TAP shows only one line, so the message is one line of at most TM__LEAK_MESSAGE_MAX bytes;
 * everything else goes to stderr, which meson keeps in its test log.
 */
#include <stdio.h>
#include <string.h>

#include "leak_internal.h"

static const char *plural(size_t n) {
  return n == 1 ? "" : "s";
}

/* The start of the verdict text, shared by the message and the report: "leaked 16 B in 1 block
 * (allowed 0 B)" and/or "peak 2.0 MiB over the limit of 1.0 MiB". g_free(). */
static char *verdict_text(const tm__leak_findings *f) {
  GString *s = g_string_new(NULL);

  if (f->verdict & TM__LEAK_LEAKED) {
    char *size = tm_format_size((int64_t)f->growth.size, false);
    char *allowed = tm_format_size((int64_t)f->rules.allowance, false);
    g_string_append_printf(s, "leaked %s in %zu block%s (allowed %s)", size, f->growth.blocks,
                           plural(f->growth.blocks), allowed);
    g_free(size);
    g_free(allowed);
  }
  if (f->verdict & TM__LEAK_PEAK_EXCEEDED) {
    char *peak = tm_format_size((int64_t)f->growth.peak, false);
    char *limit = tm_format_size((int64_t)f->rules.peak_limit, false);
    g_string_append_printf(s, "%speak %s over the limit of %s", s->len ? "; " : "", peak, limit);
    g_free(peak);
    g_free(limit);
  }
  return g_string_free(s, false);
}

/* Appends " allocated in f() called from file:line" for one traceback. */
static void append_origin(GString *s, const tm__leak_findings *f, const tm_traceback *tb) {
  const tm_frame *site = tm__leak_site(f->filters, tb);
  const tm_frame *test = tm__leak_test_frame(tb, f->test_name);

  if (site == NULL || site == test)
    return; /* the Check line already points into the test */
  if (site->function != NULL) /* without gcc's clone suffix: deep.constprop.0 */
    g_string_append_printf(s, " allocated in %.*s()", (int)strcspn(site->function, "."),
                           site->function);
  if (test != NULL)
    g_string_append_printf(s, " called from %s:%u", tm__leak_display_path(test->filename),
                           test->lineno);
}

/* Cuts s to fit max - 1 bytes, on a UTF-8 boundary, ending with "...". */
static void cut(GString *s, size_t max) {
  if (s->len < max)
    return;
  const char *end = g_utf8_find_prev_char(s->str, s->str + max - 4);
  g_string_truncate(s, end != NULL ? (gsize)(end - s->str) : 0);
  g_string_append(s, "...");
}

void tm__leak_message(const tm__leak_findings *f, char msg[TM__LEAK_MESSAGE_MAX],
                      const char **file, int *line) {
  char *verdict = verdict_text(f);
  GString *s = g_string_new(verdict);
  const tm_frame *site = NULL;

  g_free(verdict);
  if (f->nkept > 0) {
    const tm_statistic_diff *top = f->kept[0];
    site = tm__leak_site(f->filters, top->traceback);
    if (f->nkept == 1) {
      append_origin(s, f, top->traceback);
    } else {
      char *size = tm_format_size(top->size_diff, false);
      g_string_append_printf(s, " from %zu sites; largest: %s in %" G_GINT64_FORMAT " block%s",
                             f->nkept, size, top->count_diff, plural((size_t)top->count_diff));
      append_origin(s, f, top->traceback);
      g_free(size);
    }
  }
  g_string_append(s, "; full report on stderr");
  cut(s, TM__LEAK_MESSAGE_MAX);
  memcpy(msg, s->str, s->len + 1);
  g_string_free(s, true);
  if (site != NULL) {
    *file = tm__leak_display_path(site->filename);
    *line = (int)site->lineno;
  } else {
    *file = NULL; /* the caller names its own location */
    *line = 0;
  }
}

/* The frames worth printing: from the most recent down to the test function when it is there
 * (Check's runner, main and libc below it are noise); all of them otherwise. */
static int frames_to_show(const tm__leak_findings *f, const tm_traceback *tb) {
  const tm_frame *test = tm__leak_test_frame(tb, f->test_name);
  size_t n = tm_traceback_length(tb);

  if (test == NULL)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (tm_traceback_get(tb, i) == test)
      return (int)(n - i);
  return 0;
}

void tm__leak_report(const tm__leak_findings *f, FILE *out) {
  char *verdict = verdict_text(f);
  char *peak = tm_format_size((int64_t)f->growth.peak, false);
  char *ignored = tm_format_size((int64_t)f->ignored_size, false);
  size_t shown = f->nkept < f->top ? f->nkept : f->top;

  fprintf(out, "tracemalloc-check: %s: %s\n", f->test_name ? f->test_name : "(test)", verdict);
  fprintf(out, "tracemalloc-check: peak traced memory %s; the filters ignored %s in %zu block%s",
          peak, ignored, f->ignored_blocks, plural(f->ignored_blocks));
  for (guint i = 0; f->ignored_by != NULL && i < f->ignored_by->len; i++) {
    const tm__leak_ignored *by = &g_array_index(f->ignored_by, tm__leak_ignored, i);
    char *size = tm_format_size((int64_t)by->size, false);
    fprintf(out, "%s %s: %s in %zu", i ? "," : ":", by->pattern, size, by->blocks);
    g_free(size);
  }
  fputc('\n', out);
  if (shown > 0)
    fprintf(out, "[ Top %zu differences ]\n", shown);
  for (size_t i = 0; i < shown; i++) {
    const tm_statistic_diff *d = f->kept[i];
    const tm_frame *site = tm__leak_site(f->filters, d->traceback);
    char *line = tm_statistic_diff_format(d);
    char *key = tm_traceback_to_string(d->traceback);
    char **tb = tm_traceback_format(d->traceback, frames_to_show(f, d->traceback), true);
    /* Python keys the line on the oldest frame (here the oldest of the program's own code,
     * usually main): the allocation site takes its place in front of Python's "size=...
     * (+...), count=... (+...), average=..." text. */
    const char *body = line;
    if (key != NULL && g_str_has_prefix(line, key) && g_str_has_prefix(line + strlen(key), ": "))
      body = line + strlen(key) + 2;

    fprintf(out, "#%zu %s:%u: %s\n", i + 1,
            site ? tm__leak_display_path(site->filename) : "?",
            site ? site->lineno : 0, body);
    g_free(key);
    for (char **l = tb; l != NULL && *l != NULL; l++) {
      char *text = tm__leak_display_traceback_line(*l); /* leak_paths.c */
      fprintf(out, "%s\n", text);
      g_free(text);
    }
    g_strfreev(tb);
    g_free(line);
  }
  if (f->nkept > shown) {
    int64_t size = 0, count = 0;
    for (size_t i = shown; i < f->nkept; i++) {
      size += f->kept[i]->size_diff;
      count += f->kept[i]->count_diff;
    }
    char *rest = tm_format_size(size, false);
    fprintf(out, "... and %zu more site%s: %s in %" G_GINT64_FORMAT " block%s (TM_LEAK_TOP=%zu)\n",
            f->nkept - shown, plural(f->nkept - shown), rest, count, plural((size_t)count), f->top);
    g_free(rest);
  }
  fflush(out);
  g_free(ignored);
  g_free(peak);
  g_free(verdict);
}
