/* leak_report.c — what a failing window says: one line through Check's failure channel, and the
 * full report on stderr, in sections: lost (grouped under their roots, with tracebacks and source
 * lines), indirectly lost, still reachable, filtered.
 *
 * Check packs the message with a 4088-byte limit and exits the whole run past it, and TAP shows
 * only one line without the file and line (docs/check-internals.md#message-limits and
 * #blaming-a-location), so the message is one line of at most TM__LEAK_MESSAGE_MAX bytes
 * that names the site as "at file:line" itself; everything else goes to stderr, which meson keeps
 * in its test log.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "leak_internal.h"

static const char *plural(size_t n) {
  return n == 1 ? "" : "s";
}

/* "16 B in 1 block". g_free(). */
static char *size_blocks(size_t size, size_t blocks) {
  char *s = tm_format_size((int64_t)size, false);
  char *text = g_strdup_printf("%s in %zu block%s", s, blocks, plural(blocks));
  g_free(s);
  return text;
}

/* The start of the verdict text, shared by the message and the report: "leaked 16 B in 1 block
 * (allowed 0 B)" and/or "peak 2.0 MiB over the limit of 1.0 MiB". g_free(). */
static char *verdict_text(const tm__leak_findings *f) {
  GString *s = g_string_new(NULL);

  if (f->verdict & TM__LEAK_LEAKED) {
    char *what = size_blocks(f->growth.size, f->growth.blocks);
    char *allowed = tm_format_size((int64_t)f->rules.allowance, false);
    g_string_append_printf(s, "%s %s (allowed %s", f->rules.charge_reachable ? "left" : "leaked",
                           what, allowed);
    if (f->rules.allowance_blocks != SIZE_MAX)
      g_string_append_printf(s, ", %zu block%s", f->rules.allowance_blocks,
                             plural(f->rules.allowance_blocks));
    g_string_append_c(s, ')');
    g_free(what);
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

/* How much of a function's name to print before "()": without gcc's clone suffix (C's
 * deep.constprop.0, C++'s "f(int) [clone .constprop.0]") and, for a demangled C++ name, without
 * its parameter list and qualifiers ("operator new(unsigned long)", "S::get() const"), which the
 * caller's "()" stands for. */
static int name_len(const char *function) {
  const char *clone = strstr(function, " [clone ");
  size_t n = clone != NULL ? (size_t)(clone - function) : strlen(function);
  const char *open = memchr(function, '(', n);
  if (open == NULL) /* C: a clone suffix starts with a dot */
    return (int)strcspn(function, ".");
  if (function[n - 1] == '>') /* a template's name without a parameter list (an inlined frame's,
                                 from DWARF): "make_shared<f(int)::C>" has parentheses, not one */
    return (int)n;
  /* The parameter list is the last parenthesized group at depth 0: "operator()(int)" keeps
   * "operator()", "{lambda(int)#1}::operator()() const" keeps what precedes its last group. */
  size_t end = n;
  while (end > 0 && function[end - 1] != ')')
    end--;
  int depth = 0;
  for (size_t i = end; i-- > 0;) {
    if (function[i] == ')')
      depth++;
    else if (function[i] == '(' && --depth == 0)
      return (int)i;
  }
  return (int)(open - function);
}

/* The name to print for a function, before "()": name_len()'s prefix, without the return type
 * that the demangler puts before a function template's name ("std::unique_ptr<Box> make<Box>(long)"
 * gives "make<Box>"): what follows the last blank outside <>, () and [] brackets, unless that blank
 * ends "operator" ("operator new", "operator int"). Returns the start; *len is set. */
static const char *name_shown(const char *function, int *len) {
  int end = name_len(function);
  int angle = 0, round = 0;
  for (int i = end; i-- > 0;) {
    char c = function[i];
    if (c == '>')
      angle++;
    else if (c == '<' && angle > 0)
      angle--;
    else if (c == ')' || c == ']')
      round++;
    else if ((c == '(' || c == '[') && round > 0)
      round--;
    else if (c == ' ' && angle == 0 && round == 0 &&
             !(i >= 8 && strncmp(function + i - 8, "operator", 8) == 0)) {
      *len = end - (i + 1);
      return function + i + 1;
    }
  }
  *len = end;
  return function;
}

/* Appends prefix, the name function is shown by (name_shown()), and "()". */
static void append_name(GString *s, const char *prefix, const char *function) {
  int len;
  const char *name = name_shown(function, &len);
  g_string_append_printf(s, "%s%.*s()", prefix, len, name);
}

/* The frame of tb just more recent than site: the function the site's line called. */
static const tm_frame *callee_of(const tm_traceback *tb, const tm_frame *site) {
  size_t n = tm_traceback_length(tb);
  for (size_t i = 0; i + 1 < n; i++)
    if (tm_traceback_get(tb, i) == site)
      return tm_traceback_get(tb, i + 1);
  return NULL;
}

/* Appends "SEP in test NAME at FILE:LINE", the test's START_TEST line (which Check records), when
 * it is known: what names a site whose frame a tail call took away, or no site at all. */
static void append_test_line(GString *s, const tm__leak_findings *f, const char *sep) {
  if (f->test.file != NULL)
    g_string_append_printf(s, "%s in test %s at %s:%d", sep, f->test.test,
                           tm__leak_display_path(f->test.file), f->test.line);
}

/* The frame whose line names a group: its site, or for a site without debug info, the test's
 * frame (test, or NULL) that called into it when that one has a line; NULL when neither has one. */
static const tm_frame *line_frame(const tm_frame *site, const tm_frame *test) {
  if (site == NULL || !(site->flags & TM_FRAME_NO_DEBUG_INFO))
    return site;
  return test != NULL && test != site && !(test->flags & TM_FRAME_NO_DEBUG_INFO) ? test : NULL;
}

/* Appends what names a group's origin: "from g_hash_table_new() at t.c:59 in helper(), called
 * from check_t.c:41". */
static void append_origin(GString *s, const tm__leak_findings *f, const tm_traceback *tb) {
  const tm_frame *site = tm__leak_site(f->filters, tb);
  const tm_frame *callee = site != NULL ? callee_of(tb, site) : NULL;
  const tm_frame *test = tm__leak_test_frame(tb, f->test.test);

  if (site == NULL) { /* the test's frame went in a tail call */
    append_test_line(s, f, "");
    return;
  }
  if (callee != NULL && callee->function != NULL)
    append_name(s, " from ", callee->function);
  if (site->flags & TM_FRAME_NO_DEBUG_INFO) {
    /* No line to name (code built without -g): the function, and what is missing. */
    if (site->function != NULL)
      append_name(s, " in ", site->function);
    g_string_append_printf(s, " (no line number: no debug info for it in %s)", site->filename);
    const tm_frame *caller = line_frame(site, test);
    if (caller != NULL) /* the test has lines: its line says more than its name */
      g_string_append_printf(s, ", called from %s:%u", tm__leak_display_path(caller->filename),
                             caller->lineno);
    else if (test != NULL && test != site && test->function != NULL)
      append_name(s, ", called from ", test->function);
    else if (test == NULL) /* a tail call took the test's frame away */
      append_test_line(s, f, ",");
    return;
  }
  g_string_append_printf(s, " at %s:%u", tm__leak_display_path(site->filename), site->lineno);
  if (site == test)
    return; /* the site is the test's own line */
  if (site->function != NULL)
    append_name(s, " in ", site->function);
  if (test != NULL)
    g_string_append_printf(s, " called from %s:%u", tm__leak_display_path(test->filename),
                           test->lineno);
  else /* a tail call took the test's frame away */
    append_test_line(s, f, ",");
}

/* Whether the window is charged for group g: lost, or reachable when reachable growth is. */
static bool charged(const tm__leak_findings *f, const tm__leak_group *g) {
  return g->reach == TM_REACH_LOST || (g->reach == TM_REACH_REACHABLE && f->rules.charge_reachable);
}

/* The first group that is charged, or NULL. */
static const tm__leak_group *top_group(const tm__leak_findings *f) {
  for (guint i = 0; i < f->groups->len; i++) {
    const tm__leak_group *g = &g_array_index(f->groups, tm__leak_group, i);
    if (charged(f, g))
      return g;
  }
  return NULL;
}

/* "a" or "an" before a size as it is read aloud: an 8 B block, an 11 B block, a 16 B block. */
static const char *article(const char *size) {
  bool eleven = (strncmp(size, "11", 2) == 0 || strncmp(size, "18", 2) == 0) &&
                !g_ascii_isdigit(size[2]);
  return size[0] == '8' || eleven ? "an" : "a";
}

/* Appends ": a 32 B block from f() at t.c:59 and 128 B it points to". */
static void append_top(GString *s, const tm__leak_findings *f, const tm__leak_group *g) {
  char *size = tm_format_size((int64_t)g->size, false);
  if (g->blocks == 1)
    g_string_append_printf(s, ": %s %s block", article(size), size);
  else
    g_string_append_printf(s, ": %zu blocks (%s)", g->blocks, size);
  if (g->reach == TM_REACH_REACHABLE)
    g_string_append(s, " still reachable");
  g_free(size);
  append_origin(s, f, g->traceback);
  if (g->owned_size > 0) {
    char *owned = tm_format_size((int64_t)g->owned_size, false);
    g_string_append_printf(s, " and %s %s point%s to", owned, g->blocks == 1 ? "it" : "they",
                           g->blocks == 1 ? "s" : "");
    g_free(owned);
  }
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
  const tm__leak_group *top = (f->verdict & TM__LEAK_LEAKED) ? top_group(f) : NULL;
  const tm_frame *site = top != NULL ? tm__leak_site(f->filters, top->traceback) : NULL;
  size_t others = 0;

  g_free(verdict);
  if (top != NULL) {
    append_top(s, f, top);
    for (guint i = 0; i < f->groups->len; i++) {
      const tm__leak_group *g = &g_array_index(f->groups, tm__leak_group, i);
      /* Every other entry of the report's charged sections: lost ones, and reachable ones when
       * reachable growth is charged. */
      others += g != top && charged(f, g);
    }
    if (others > 0)
      g_string_append_printf(s, "; %zu more site%s", others, plural(others));
  } else {
    append_test_line(s, f, "");
  }
  g_string_append(s, "; full report on stderr");
  cut(s, TM__LEAK_MESSAGE_MAX);
  memcpy(msg, s->str, s->len + 1);
  g_string_free(s, true);
  const tm_frame *at =
      top != NULL ? line_frame(site, tm__leak_test_frame(top->traceback, f->test.test)) : NULL;
  if (at != NULL) {
    *file = tm__leak_display_path(at->filename);
    *line = (int)at->lineno;
  } else if (f->test.file != NULL) { /* Check's own record of START_TEST needs no debug info */
    *file = tm__leak_display_path(f->test.file);
    *line = f->test.line;
  } else {
    *file = NULL; /* the caller names its own location */
    *line = 0;
  }
}

/* The frames worth printing: from the most recent down to the test function when it is there
 * (Check's runner, main and libc below it are noise); all of them otherwise. */
static int frames_to_show(const tm__leak_findings *f, const tm_traceback *tb) {
  const tm_frame *test = tm__leak_test_frame(tb, f->test.test);
  size_t n = tm_traceback_length(tb);

  if (test == NULL)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (tm_traceback_get(tb, i) == test)
      return (int)(n - i);
  return 0;
}

/* "#1 t.c:59: size=160 B, count=5, average=32 B", Python's Statistic text keyed on the site. */
static void print_group_line(FILE *out, const tm__leak_findings *f, size_t rank,
                             const tm__leak_group *g, size_t size, size_t blocks) {
  const tm_frame *site = tm__leak_site(f->filters, g->traceback);
  char *total = tm_format_size((int64_t)size, false);
  char *average = tm_format_size(blocks ? (int64_t)llround((double)size / (double)blocks) : 0,
                                 false);
  /* No site (the test's frame went in a tail call): the test's START_TEST line. */
  const char *file = site != NULL ? tm__leak_display_path(site->filename)
                     : f->test.file != NULL ? tm__leak_display_path(f->test.file)
                                            : "?";
  unsigned line = site != NULL ? site->lineno : f->test.file != NULL ? (unsigned)f->test.line : 0;
  fprintf(out, "#%zu %s:%u: size=%s, count=%zu, average=%s", rank, file, line, total, blocks,
          average);
  g_free(total);
  g_free(average);
}

static void print_traceback(FILE *out, const tm__leak_findings *f, const tm_traceback *tb) {
  char **lines = tm_traceback_format(tb, frames_to_show(f, tb), true);
  for (char **l = lines; l != NULL && *l != NULL; l++) {
    char *text = tm__leak_display_traceback_line(*l); /* leak_paths.c */
    fprintf(out, "%s\n", text);
    g_free(text);
  }
  g_strfreev(lines);
}

/* Prints the groups of one class, at most f->top of them, with the header line. */
static void print_section(FILE *out, const tm__leak_findings *f, tm_reach reach,
                          const char *title, size_t size, size_t blocks) {
  size_t rank = 0, rest = 0, rest_size = 0, rest_blocks = 0;
  char *what = size_blocks(size, blocks);

  if (blocks == 0) {
    g_free(what);
    return;
  }
  fprintf(out, "[ %s: %s ]\n", title, what);
  g_free(what);
  for (guint i = 0; i < f->groups->len; i++) {
    const tm__leak_group *g = &g_array_index(f->groups, tm__leak_group, i);
    if (g->reach != reach)
      continue;
    if (rank >= f->top) {
      rest++;
      rest_size += g->size + g->owned_size;
      rest_blocks += g->blocks + g->owned_blocks;
      continue;
    }
    rank++;
    print_group_line(out, f, rank, g, g->size + g->owned_size, g->blocks + g->owned_blocks);
    if (reach == TM_REACH_LOST && g->owned_blocks > 0) {
      char *own = size_blocks(g->size, g->blocks);
      char *owned = size_blocks(g->owned_size, g->owned_blocks);
      fprintf(out, " (%s%s, and %s %s point%s to)", g->blocks == 1 ? "a root of " : "roots: ",
              own, owned, g->blocks == 1 ? "it" : "they", g->blocks == 1 ? "s" : "");
      g_free(own);
      g_free(owned);
    }
    fputc('\n', out);
    /* Every charged group shows its traceback: two indirect groups at one line, reached through
     * different callers, would read the same otherwise. */
    if (reach != TM_REACH_REACHABLE || f->rules.charge_reachable)
      print_traceback(out, f, g->traceback);
  }
  if (rest > 0) {
    char *more = size_blocks(rest_size, rest_blocks);
    fprintf(out, "... and %zu more site%s: %s (TM_LEAK_TOP=%zu)\n", rest, plural(rest), more,
            f->top);
    g_free(more);
  }
}

void tm__leak_report(const tm__leak_findings *f, FILE *out) {
  char *verdict = verdict_text(f);
  char *peak = tm_format_size((int64_t)f->growth.peak, false);
  char *reachable = size_blocks(f->reachable_size, f->reachable_blocks);
  char *ignored = size_blocks(f->ignored_size, f->ignored_blocks);
  fprintf(out, "tracemalloc-check: %s: %s\n", f->test.test ? f->test.test : "(test)", verdict);
  fprintf(out, "tracemalloc-check: peak traced memory %s; still reachable %s (%s); the filters "
          "ignored %s\n", peak, reachable, f->rules.charge_reachable ? "charged" : "not charged",
          ignored);
  /* The lost groups hold every lost and indirectly lost block that was not filtered out: each
   * root with what it owns (findings_fill()). */
  print_section(out, f, TM_REACH_LOST, "Lost", f->lost_size + f->indirect_size,
                f->lost_blocks + f->indirect_blocks);
  print_section(out, f, TM_REACH_INDIRECT, "Indirectly lost (counted with their roots above)",
                f->indirect_size, f->indirect_blocks);
  print_section(out, f, TM_REACH_REACHABLE,
                f->rules.charge_reachable ? "Still reachable, charged"
                                          : "Still reachable, not charged",
                f->reachable_size, f->reachable_blocks);
  if (f->peak_sites != NULL) {
    char *watch = tm_format_size((int64_t)f->peak_watch, false);
    size_t n = MIN(tm_statistics_length(f->peak_sites), f->top);
    fprintf(out, "[ At the peak: the largest sites when traced memory first passed %s ]\n", watch);
    for (size_t i = 0; i < n; i++) {
      const tm_statistic *st = tm_statistics_get(f->peak_sites, i);
      tm__leak_group g = {.traceback = st->traceback};
      print_group_line(out, f, i + 1, &g, st->size, st->count);
      fputc('\n', out);
    }
    g_free(watch);
  }
  if (f->ignored_blocks > 0) {
    fprintf(out, "[ Filtered: %s ]\n", ignored);
    for (guint i = 0; f->ignored_by != NULL && i < f->ignored_by->len; i++) {
      const tm__leak_ignored *by = &g_array_index(f->ignored_by, tm__leak_ignored, i);
      char *what = size_blocks(by->size, by->blocks);
      fprintf(out, "  %s: %s\n", by->pattern, what);
      g_free(what);
    }
  }
  fflush(out);
  g_free(ignored);
  g_free(reachable);
  g_free(peak);
  g_free(verdict);
}
