/* leak_suppress.c — the suppression files a team already has, as leak filters: LeakSanitizer's
 * (`leak:PATTERN` lines) and Valgrind's (`{ name  Memcheck:Leak  fun:/obj: frames }` blocks).
 *
 * LeakSanitizer: a trace is suppressed when PATTERN matches the function, the source file or the
 * module of any of its frames, as LSan's TemplateMatch does: a substring match, where `*` matches
 * any run of characters, a leading `^` anchors at the start and a trailing `$` at the end. Like
 * LSan, which refuses a file with any other type (race:, interceptor_via_fun: belong to other
 * sanitizers' files), anything but leak: is an error.
 *
 * Valgrind: the frame lines are matched in order against the stack from the allocation outwards,
 * as Valgrind does: `fun:GLOB` against the function, `obj:GLOB` against the module path,
 * `src:FILE[:LINE]` against the source file, `...` against any number of frames, with `*` and `?`
 * wildcards, and frames past the last line are not looked at. Valgrind's stacks start in its own
 * malloc, which tracebacks here do not contain (the hooks are not frames of the trace): a first
 * line that names an allocation function (`fun:malloc`, `fun:calloc`, `fun:_Znwm`, ...) or
 * Valgrind's preload object matches that missing frame. match-leak-kinds is honoured: the
 * fixture asks with the block's class (lost: definite, indirectly lost: indirect, still
 * reachable: reachable). Blocks of other tools or other Memcheck kinds are skipped; an unknown
 * Memcheck kind, an unknown `match-leak-kinds` or a malformed block is an error.
 *
 * Every error names the file and the line.
 */
#include <stdarg.h>
#include <string.h>

#include "leak_internal.h"

/* One frame line of a Valgrind suppression. */
typedef enum frame_kind { FRAME_FUN, FRAME_OBJ, FRAME_SRC, FRAME_ANY } frame_kind;

typedef struct supp_frame {
  frame_kind kind;
  GPatternSpec *glob; /* NULL for FRAME_ANY */
  unsigned line;      /* src:FILE:LINE; 0 for any line */
} supp_frame;

/* One suppression, of either format. */
typedef struct suppression {
  char *name;      /* reported in the "filtered" section */
  char *lsan;      /* LSan: the pattern after "leak:"; NULL for Valgrind */
  GArray *frames;  /* Valgrind: of supp_frame */
  unsigned kinds;  /* Valgrind match-leak-kinds: TM__LEAK_SUPP_* bits */
} suppression;

struct tm__leak_suppressions {
  GPtrArray *all; /* of suppression*, in load order */
};

/* Memcheck's error kinds (Valgrind's manual, "Writing suppression files"). */
static const char *const memcheck_kinds[] = {
  "Value1", "Value2", "Value4", "Value8", "Value16", "Value32", "Cond", "Addr1", "Addr2",
  "Addr4", "Addr8", "Addr16", "Addr32", "Jump", "Param", "Free", "Overlap", "Leak",
  "ClientCheck", "FishyValue", "ReallocZero", NULL,
};

/* Names under which a program calls the allocator: Valgrind's stacks start in one of them. */
static const char *const allocation_functions[] = {
  "malloc", "calloc", "realloc", "reallocarray", "memalign", "posix_memalign", "aligned_alloc",
  "valloc", "pvalloc", "_Znwm", "_Znam", "_ZnwmRKSt9nothrow_t", "_ZnamRKSt9nothrow_t",
  "_ZnwmSt11align_val_t", "_ZnamSt11align_val_t", "_ZnwmSt11align_val_tRKSt9nothrow_t",
  "_ZnamSt11align_val_tRKSt9nothrow_t", "operator new(unsigned long)",
  "operator new[](unsigned long)", NULL,
};

static bool in_list(const char *const *list, const char *s) {
  for (; *list != NULL; list++)
    if (g_str_equal(*list, s))
      return true;
  return false;
}

static void suppression_free(gpointer data) {
  suppression *s = data;

  if (s->frames != NULL) {
    for (guint i = 0; i < s->frames->len; i++) {
      supp_frame *f = &g_array_index(s->frames, supp_frame, i);
      if (f->glob != NULL)
        g_pattern_spec_free(f->glob);
    }
    g_array_unref(s->frames);
  }
  g_free(s->name);
  g_free(s->lsan);
  g_free(s);
}

tm__leak_suppressions *tm__leak_suppressions_new(void) {
  tm__leak_suppressions *set = g_new0(tm__leak_suppressions, 1);

  set->all = g_ptr_array_new_with_free_func(suppression_free);
  return set;
}

void tm__leak_suppressions_free(tm__leak_suppressions *set) {
  if (set == NULL)
    return;
  g_ptr_array_unref(set->all);
  g_free(set);
}

size_t tm__leak_suppressions_length(const tm__leak_suppressions *set) {
  return set == NULL ? 0 : set->all->len;
}

static bool syntax_error(GError **error, const char *path, unsigned line, const char *fmt, ...)
  G_GNUC_PRINTF(4, 5);

static bool syntax_error(GError **error, const char *path, unsigned line, const char *fmt, ...) {
  va_list ap;
  char *what;

  va_start(ap, fmt);
  what = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_PARSE, "%s:%u: %s", path, line, what);
  g_free(what);
  return false;
}

/* ---- LeakSanitizer --------------------------------------------------------------------------- */

bool tm__leak_lsan_match(const char *templ, const char *str) {
  bool start = false, asterisk = false;

  if (str == NULL || str[0] == '\0')
    return false;
  if (templ[0] == '^') {
    start = true;
    templ++;
  }
  while (templ[0] != '\0') {
    if (templ[0] == '*') {
      templ++;
      start = false;
      asterisk = true;
      continue;
    }
    if (templ[0] == '$')
      return str[0] == '\0' || asterisk;
    if (str[0] == '\0')
      return false;
    /* The literal run up to the next '*' or '$', found at its first occurrence (as LSan does: no
     * backtracking). */
    size_t n = strcspn(templ, "*$");
    char *literal = g_strndup(templ, n);
    const char *found = strstr(str, literal);
    g_free(literal);
    if (found == NULL || (start && found != str))
      return false;
    str = found + n;
    templ += n;
    start = asterisk = false;
  }
  return true;
}

/* Parses one line of an LSan file. */
static bool parse_lsan_line(tm__leak_suppressions *set, const char *path, unsigned lineno,
                            const char *line, GError **error) {
  const char *colon = strchr(line, ':');
  char *type;

  if (colon == NULL || colon == line)
    return syntax_error(error, path, lineno,
                        "'%s' is not a suppression: write TYPE:PATTERN, such as leak:my_cache_*",
                        line);
  type = g_strndup(line, (gsize)(colon - line));
  g_strstrip(type);
  if (g_str_equal(type, "leak")) {
    char *pattern = g_strstrip(g_strdup(colon + 1));
    if (pattern[0] == '\0') {
      g_free(pattern);
      g_free(type);
      return syntax_error(error, path, lineno, "leak: needs a pattern");
    }
    suppression *s = g_new0(suppression, 1);
    s->name = g_strdup_printf("leak:%s", pattern);
    s->lsan = pattern;
    s->kinds = TM__LEAK_SUPP_ALL;
    g_ptr_array_add(set->all, s);
    g_free(type);
    return true;
  }
  syntax_error(error, path, lineno,
               "'%s' is not a LeakSanitizer suppression type: LeakSanitizer reads leak:PATTERN "
               "only", type);
  g_free(type);
  return false;
}

/* ---- Valgrind -------------------------------------------------------------------------------- */

/* Parses "match-leak-kinds: definite,possible" into TM__LEAK_SUPP_* bits. */
static bool parse_leak_kinds(const char *path, unsigned lineno, const char *text, unsigned *out,
                             GError **error) {
  char **names = g_strsplit(text, ",", -1);
  unsigned kinds = 0;
  bool ok = true;

  for (char **n = names; ok && *n != NULL; n++) {
    g_strstrip(*n);
    if (g_str_equal(*n, "definite"))
      kinds |= TM__LEAK_SUPP_DEFINITE;
    else if (g_str_equal(*n, "indirect"))
      kinds |= TM__LEAK_SUPP_INDIRECT;
    else if (g_str_equal(*n, "possible"))
      kinds |= TM__LEAK_SUPP_POSSIBLE;
    else if (g_str_equal(*n, "reachable"))
      kinds |= TM__LEAK_SUPP_REACHABLE;
    else if (g_str_equal(*n, "all"))
      kinds |= TM__LEAK_SUPP_ALL;
    else if (!g_str_equal(*n, "none"))
      ok = syntax_error(error, path, lineno,
                        "unknown leak kind '%s': use definite, indirect, possible, reachable, "
                        "all or none", *n);
  }
  g_strfreev(names);
  *out = kinds;
  return ok;
}

/* Parses one frame line ("fun:GLOB", "obj:GLOB", "src:FILE[:LINE]", "..."). */
static bool parse_frame(const char *path, unsigned lineno, const char *line, supp_frame *out,
                        GError **error) {
  *out = (supp_frame){0};
  if (g_str_equal(line, "...")) {
    out->kind = FRAME_ANY;
    return true;
  }
  if (g_str_has_prefix(line, "fun:"))
    out->kind = FRAME_FUN;
  else if (g_str_has_prefix(line, "obj:"))
    out->kind = FRAME_OBJ;
  else if (g_str_has_prefix(line, "src:"))
    out->kind = FRAME_SRC;
  else
    return syntax_error(error, path, lineno,
                        "'%s' is not a frame: write fun:NAME, obj:PATH, src:FILE[:LINE] or ...",
                        line);
  char *glob = g_strdup(line + 4);
  if (out->kind == FRAME_SRC) {
    char *colon = strrchr(glob, ':');
    if (colon != NULL && colon[1] != '\0' && strspn(colon + 1, "0123456789") == strlen(colon + 1)) {
      out->line = (unsigned)g_ascii_strtoull(colon + 1, NULL, 10);
      *colon = '\0';
    }
  }
  if (glob[0] == '\0') {
    g_free(glob);
    return syntax_error(error, path, lineno, "'%s' has no name after the colon", line);
  }
  out->glob = g_pattern_spec_new(glob);
  g_free(glob);
  return true;
}

/* Parses one "{ ... }" block, the cursor at the line after "{". Leak suppressions are added; the
 * others are skipped. On return *i is the index of the closing "}". */
static bool parse_valgrind_block(tm__leak_suppressions *set, const char *path, char **lines,
                                 size_t *i, GError **error) {
  unsigned open_line = (unsigned)*i; /* 1-based line of "{" */
  char *name = NULL;
  suppression *s = NULL;
  bool ok = true, leak = false, skip = false;
  int state = 0; /* 0: name, 1: kind, 2: frames (or match-leak-kinds) */

  for (; ok && lines[*i] != NULL; (*i)++) {
    unsigned lineno = (unsigned)*i + 1;
    char *line = g_strstrip(lines[*i]);
    if (line[0] == '\0' || line[0] == '#')
      continue;
    if (g_str_equal(line, "}")) {
      if (state < 2) {
        ok = syntax_error(error, path, lineno, "suppression '%s' ends before its kind line",
                          name ? name : "");
        break;
      }
      if (leak) {
        g_ptr_array_add(set->all, s);
        s = NULL;
      }
      g_free(name);
      return true;
    }
    if (g_str_equal(line, "{")) {
      ok = syntax_error(error, path, lineno, "'{' inside the suppression opened at line %u",
                        open_line);
      break;
    }
    if (state == 0) {
      name = g_strdup(line);
      state = 1;
    } else if (state == 1) {
      const char *colon = strchr(line, ':');
      if (colon == NULL) {
        ok = syntax_error(error, path, lineno, "'%s' is not a kind: write TOOL:KIND, such as "
                          "Memcheck:Leak", line);
        break;
      }
      char *tools = g_strndup(line, (gsize)(colon - line));
      bool memcheck = false;
      char **names = g_strsplit(tools, ",", -1);
      for (char **t = names; *t != NULL; t++)
        memcheck = memcheck || g_str_equal(g_strstrip(*t), "Memcheck");
      g_strfreev(names);
      g_free(tools);
      if (memcheck && !in_list(memcheck_kinds, colon + 1)) {
        ok = syntax_error(error, path, lineno, "unknown Memcheck kind '%s'", colon + 1);
        break;
      }
      leak = memcheck && g_str_equal(colon + 1, "Leak");
      skip = !leak;
      if (leak) {
        s = g_new0(suppression, 1);
        s->name = g_strdup(name);
        s->frames = g_array_new(false, true, sizeof(supp_frame));
        s->kinds = TM__LEAK_SUPP_ALL;
      }
      state = 2;
    } else if (skip) {
      continue; /* another tool's or kind's lines, such as Param's extra line */
    } else if (g_str_has_prefix(line, "match-leak-kinds:")) {
      ok = parse_leak_kinds(path, lineno, line + strlen("match-leak-kinds:"), &s->kinds, error);
    } else {
      supp_frame f;
      ok = parse_frame(path, lineno, line, &f, error);
      if (ok)
        g_array_append_val(s->frames, f);
    }
  }
  if (ok)
    syntax_error(error, path, open_line, "the suppression opened here has no closing '}'");
  if (s != NULL)
    suppression_free(s);
  g_free(name);
  return false;
}

bool tm__leak_suppressions_load(tm__leak_suppressions *set, const char *path, GError **error) {
  char *text = NULL;
  GError *local = NULL;
  char **lines;
  bool ok = true, valgrind = false, decided = false;

  if (!g_file_get_contents(path, &text, NULL, &local)) {
    g_set_error(error, G_FILE_ERROR, local->code, "suppression file %s", local->message);
    g_error_free(local);
    return false;
  }
  lines = g_strsplit(text, "\n", -1);
  g_free(text);
  for (size_t i = 0; ok && lines[i] != NULL; i++) {
    char *line = g_strstrip(lines[i]);
    if (line[0] == '\0' || line[0] == '#')
      continue;
    if (!decided) { /* the first line tells the format */
      valgrind = g_str_equal(line, "{");
      decided = true;
    }
    if (!valgrind) {
      ok = parse_lsan_line(set, path, (unsigned)i + 1, line, error);
    } else if (g_str_equal(line, "{")) {
      i++;
      ok = parse_valgrind_block(set, path, lines, &i, error);
      if (lines[i] == NULL)
        break;
    } else {
      ok = syntax_error(error, path, (unsigned)i + 1,
                        "'%s' is outside a suppression: Valgrind's begin with '{'", line);
    }
  }
  g_strfreev(lines);
  return ok;
}

/* ---- matching -------------------------------------------------------------------------------- */

/* A function name without its symbol version ("dlerror@@GLIBC_2.34"). g_free(). */
static char *unversioned(const char *function) {
  return g_strndup(function, strcspn(function, "@"));
}

static bool frame_matches(const supp_frame *sf, const tm_frame *frame) {
  bool hit = false;

  switch (sf->kind) {
  case FRAME_ANY:
    return true;
  case FRAME_FUN:
    if (frame->function != NULL) {
      char *name = unversioned(frame->function);
      hit = g_pattern_spec_match_string(sf->glob, name);
      g_free(name);
    }
    return hit;
  case FRAME_OBJ:
    return frame->module != NULL && g_pattern_spec_match_string(sf->glob, frame->module);
  case FRAME_SRC:
    if (frame->filename == NULL || (frame->flags & (TM_FRAME_UNKNOWN | TM_FRAME_NO_DEBUG_INFO)))
      return false;
    if (sf->line != 0 && sf->line != frame->lineno)
      return false;
    if (g_pattern_spec_match_string(sf->glob, frame->filename))
      return true;
    char *base = g_path_get_basename(frame->filename);
    hit = g_pattern_spec_match_string(sf->glob, base);
    g_free(base);
    return hit;
  }
  return false;
}

/* Whether a suppression's first line matches the allocator frame Valgrind's stacks start with. */
static bool matches_allocator(const supp_frame *sf) {
  if (sf->kind == FRAME_FUN) {
    for (const char *const *a = allocation_functions; *a != NULL; a++)
      if (g_pattern_spec_match_string(sf->glob, *a))
        return true;
    return false;
  }
  return sf->kind == FRAME_OBJ &&
         g_pattern_spec_match_string(sf->glob,
                                     "/usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so");
}

/* Matches frames[i..] of the suppression against the stack from position j outwards, where
 * position 0 is the allocator frame the traceback lacks and position k > 0 is the k-th most
 * recent frame of tb. */
static bool match_from(const GArray *frames, guint i, const tm_traceback *tb, size_t j) {
  size_t n = tm_traceback_length(tb);

  if (i == frames->len)
    return true; /* frames past the last line are not looked at */
  const supp_frame *sf = &g_array_index(frames, supp_frame, i);
  if (sf->kind == FRAME_ANY) {
    for (size_t k = j; k <= n + 1; k++)
      if (match_from(frames, i + 1, tb, k))
        return true;
    return false;
  }
  if (j > n)
    return false;
  if (j == 0 ? !matches_allocator(sf) : !frame_matches(sf, tm_traceback_get(tb, n - j)))
    return false;
  return match_from(frames, i + 1, tb, j + 1);
}

static bool lsan_matches(const char *pattern, const tm_traceback *tb) {
  size_t n = tm_traceback_length(tb);

  for (size_t i = 0; i < n; i++) {
    const tm_frame *frame = tm_traceback_get(tb, i);
    bool debug = !(frame->flags & (TM_FRAME_UNKNOWN | TM_FRAME_NO_DEBUG_INFO));
    if (frame->function != NULL) {
      char *name = unversioned(frame->function);
      bool hit = tm__leak_lsan_match(pattern, name);
      g_free(name);
      if (hit)
        return true;
    }
    if ((debug && tm__leak_lsan_match(pattern, frame->filename)) ||
        tm__leak_lsan_match(pattern, frame->module))
      return true;
  }
  return false;
}

const char *tm__leak_suppressions_match(const tm__leak_suppressions *set, const tm_traceback *tb,
                                        unsigned kind) {
  if (set == NULL)
    return NULL;
  for (guint i = 0; i < set->all->len; i++) {
    const suppression *s = g_ptr_array_index(set->all, i);
    if (!(s->kinds & kind))
      continue;
    if (s->lsan != NULL ? lsan_matches(s->lsan, tb) : match_from(s->frames, 0, tb, 0))
      return s->name;
  }
  return NULL;
}

bool tm__leak_filters_load_suppressions(tm__leak_filters *filters, const char *what,
                                        const char *list, char separator, const char *base_dir,
                                        GError **error) {
  char sep[2] = {separator, '\0'};
  char **paths = g_strsplit(list, sep, -1);
  bool ok = true;

  for (char **p = paths; ok && *p != NULL; p++) {
    GError *local = NULL;
    g_strstrip(*p);
    if ((*p)[0] == '\0')
      continue;
    char *path = base_dir != NULL && !g_path_is_absolute(*p) ? g_build_filename(base_dir, *p, NULL)
                                                             : g_strdup(*p);
    ok = tm__leak_suppressions_load(tm__leak_filters_suppressions(filters), path, &local);
    if (!ok) {
      g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE, "%s: %s", what,
                  local->message);
      g_error_free(local);
    }
    g_free(path);
  }
  g_strfreev(paths);
  return ok;
}
