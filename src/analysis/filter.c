/* filter.c — Python's Filter and DomainFilter.
 *
 * File names match with glibc fnmatch(pattern, name, 0): without FNM_PATHNAME '*' and '?' also
 * match '/', as Python's fnmatch does. glibc never reports a malformed pattern (an unterminated
 * '[' silently becomes a literal, a trailing '\' or an unknown [:class:] silently matches
 * nothing), so tm_filter_new() checks the pattern itself and rejects what glibc would not read as
 * written.
 */
#include <fnmatch.h>
#include <string.h>

#include "model.h"

/* Returns true when the bracket expression starting at *p (just after its '[') is closed, and
 * moves *p past the closing ']'. Otherwise stores a reason in *why. Follows glibc: a ']' first
 * (after an optional '!' or '^') is a member, '\' escapes, "[:name:]" must name a known class. */
static bool bracket_parse(const char **p, const char **why) {
  static const char *const classes[] = {"alnum", "alpha", "blank", "cntrl", "digit", "graph",
                                        "lower", "print", "punct", "space", "upper", "xdigit"};
  const char *s = *p;
  if (*s == '!' || *s == '^')
    s++;
  if (*s == ']')
    s++;
  for (; *s != ']'; s++) {
    if (*s == '\0')
      goto unterminated;
    if (*s == '\\' && *++s == '\0')
      goto unterminated;
    if (s[0] == '[' && s[1] == ':') {
      const char *end = strstr(s + 2, ":]");
      bool known = false;
      if (end == NULL)
        goto unterminated;
      size_t len = (size_t)(end - s - 2);
      for (size_t i = 0; i < G_N_ELEMENTS(classes); i++)
        known |= strlen(classes[i]) == len && strncmp(classes[i], s + 2, len) == 0;
      if (!known) {
        *why = "unknown character class";
        return false;
      }
      s = end + 1;
    }
  }
  *p = s + 1;
  return true;
unterminated:
  *why = "unterminated '['";
  return false;
}

/* Checks that glibc fnmatch reads pattern as written. Returns false with a reason in *why. */
static bool pattern_check(const char *pattern, const char **why) {
  const char *s = pattern;
  while (*s != '\0') {
    if (*s == '\\') {
      if (s[1] == '\0') {
        *why = "trailing '\\'";
        return false;
      }
      s += 2;
    } else if (*s == '[') {
      s++;
      if (!bracket_parse(&s, why))
        return false;
    } else {
      s++;
    }
  }
  return true;
}

/* See tracemalloc.h. */
tm_filter *tm_filter_new(bool inclusive, const char *filename_pattern, unsigned int lineno,
                         bool all_frames, int64_t domain, GError **error) {
  tm_filter *f = NULL;
  const char *why = NULL;
  tm__guard_enter();
  if (filename_pattern == NULL || filename_pattern[0] == '\0') {
    g_set_error(error, TM_ERROR, TM_ERROR_INVALID, "invalid filename pattern %s: %s",
                filename_pattern == NULL ? "NULL" : "''", "empty");
    goto out;
  }
  if (!pattern_check(filename_pattern, &why)) {
    g_set_error(error, TM_ERROR, TM_ERROR_INVALID, "invalid filename pattern '%s': %s",
                filename_pattern, why);
    goto out;
  }
  f = g_new0(tm_filter, 1);
  f->inclusive = inclusive;
  f->pattern = g_strdup(filename_pattern);
  f->lineno = lineno;
  f->all_frames = all_frames;
  f->domain = domain < 0 ? -1 : domain;
out:
  tm__guard_leave();
  return f;
}

/* See tracemalloc.h. */
tm_filter *tm_domain_filter_new(bool inclusive, unsigned int domain) {
  tm__guard_enter();
  tm_filter *f = g_new0(tm_filter, 1);
  f->is_domain_filter = true;
  f->inclusive = inclusive;
  f->domain = domain;
  tm__guard_leave();
  return f;
}

/* See tracemalloc.h. */
void tm_filter_free(tm_filter *filter) {
  if (filter == NULL)
    return;
  tm__guard_enter();
  g_free(filter->pattern);
  g_free(filter);
  tm__guard_leave();
}

/* Whether the interned file name matches the pattern, through the per-call cache. */
static bool filename_match(const tm_filter *f, const char *filename, GHashTable *cache) {
  gpointer hit = cache != NULL ? g_hash_table_lookup(cache, filename) : NULL;
  bool match;
  if (hit != NULL)
    return GPOINTER_TO_INT(hit) - 1;
  match = fnmatch(f->pattern, filename, 0) == 0;
  if (cache != NULL)
    g_hash_table_insert(cache, (gpointer)filename, GINT_TO_POINTER(1 + match));
  return match;
}

/* Python's Filter._match_frame_impl: the file name matches and, when the filter has a line
 * number, so does the line. */
static bool frame_match(const tm_filter *f, const tm_frame *frame, GHashTable *cache) {
  if (!filename_match(f, frame->filename, cache))
    return false;
  return f->lineno == 0 || frame->lineno == f->lineno;
}

/* See model.h. With all_frames, any frame decides; otherwise the most recent frame alone, as
 * Python matches its raw traceback[0]. */
bool tm__filter_match_traceback(const tm_filter *f, const tm_traceback *tb, GHashTable *cache) {
  size_t n;
  const tm_frame *frames;
  if (!f->all_frames)
    return frame_match(f, tm__traceback_most_recent(tb), cache) ^ !f->inclusive;
  frames = tm__traceback_frames(tb, &n);
  for (size_t i = 0; i < n; i++) {
    if (frame_match(f, &frames[i], cache))
      return f->inclusive;
  }
  return !f->inclusive;
}

/* See model.h. */
bool tm__filter_match_trace(const tm_filter *f, unsigned int domain, bool tb_match) {
  if (f->is_domain_filter)
    return ((int64_t)domain == f->domain) ^ !f->inclusive;
  if (f->domain < 0)
    return tb_match;
  if (f->inclusive)
    return tb_match && (int64_t)domain == f->domain;
  return tb_match || (int64_t)domain != f->domain;
}
