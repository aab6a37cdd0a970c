/* format.c — text exactly as Python's tracemalloc prints it: _format_size, Statistic.__str__,
 * StatisticDiff.__str__, str(Traceback), Traceback.format, and the source-line cache that
 * stands in for Python's linecache.
 *
 * Numbers are formatted with g_ascii_formatd() so that a program's LC_NUMERIC never turns
 * "19.5 KiB" into "19,5 KiB": Python's % operator ignores the locale.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model.h"

/* Largest source file the line cache reads; anything bigger is treated as unreadable, so a frame
 * naming a huge file cannot make formatting read it. */
#define SOURCE_MAX_BYTES (4 * 1024 * 1024)

/* What the whole cache may hold (file bytes plus a pointer per line), and how many files it
 * remembers: past either, files not yet cached give no source line. A dump naming thousands of
 * big files costs at most this much. */
#define SOURCE_CACHE_MAX_BYTES (32 * 1024 * 1024)
#define SOURCE_CACHE_MAX_FILES 4096

/* One source file as the line cache holds it: its bytes, split in place into stripped lines. */
typedef struct source_file {
  char *data;      /* owned; NUL-separated stripped lines */
  GPtrArray *lines; /* line i + 1 => pointer into data; empty when the file could not be read */
} source_file;

/* file name (char*, owned copy) => source_file*. Entries are never removed, so the lines they
 * hold stay valid for the life of the process. Protected by source_lock. */
static GHashTable *source_files;
static GMutex source_lock;

/* Bytes the cached files hold (data and line arrays). Protected by source_lock. */
static size_t source_bytes;

/* tm_set_source_root()'s directory, resolved, or NULL. Protected by source_lock. */
static char *source_root;

/* The cache lock is held across fork(), so that a child forked while another thread reads a
 * file (Check forks for every test) does not find it locked for good. */
static void source_lock_prepare(void) {
  g_mutex_lock(&source_lock);
}

static void source_lock_release(void) {
  g_mutex_unlock(&source_lock);
}

/* Takes source_lock, registering its fork handlers on first use. */
static void source_lock_acquire(void) {
  static gsize registered;
  if (g_once_init_enter(&registered)) {
    pthread_atfork(source_lock_prepare, source_lock_release, source_lock_release);
    g_once_init_leave(&registered, 1);
  }
  g_mutex_lock(&source_lock);
}

/* Python's str.strip() white space, for the ASCII range. */
static bool is_strip_space(char c) {
  return c == ' ' || (c >= '\t' && c <= '\r') || (c >= '\x1c' && c <= '\x1f');
}

/* Reads the regular file at path, up to SOURCE_MAX_BYTES. O_NONBLOCK keeps a FIFO from hanging
 * the open. Returns a NUL-terminated buffer (g_free()) or NULL. */
static char *source_read(const char *path, size_t budget) {
  struct stat st;
  char *data = NULL;
  size_t len = 0;
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0)
    return NULL;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > SOURCE_MAX_BYTES ||
      (size_t)st.st_size + 1 > budget)
    goto out;
  data = g_try_malloc((size_t)st.st_size + 1);
  if (data == NULL)
    goto out;
  while (len < (size_t)st.st_size) {
    ssize_t r = read(fd, data + len, (size_t)st.st_size - len);
    if (r <= 0)
      break;
    len += (size_t)r;
  }
  data[len] = '\0';
out:
  close(fd);
  return data;
}

/* Loads a file into a new source_file: splits at '\n' and strips every line in place. A file
 * that cannot be read, or would take more than budget bytes, gives no line. Stores the bytes
 * the entry holds in *cost. */
static source_file *source_load(const char *path, size_t budget, size_t *cost) {
  source_file *sf = g_new0(source_file, 1);
  sf->lines = g_ptr_array_new();
  sf->data = source_read(path, budget);
  size_t nlines = 1;
  for (const char *c = sf->data; c != NULL && (c = strchr(c, '\n')) != NULL; c++)
    nlines++;
  if (sf->data != NULL && strlen(sf->data) + 1 + nlines * sizeof(gpointer) > budget)
    g_clear_pointer(&sf->data, g_free);
  *cost = sf->data != NULL ? strlen(sf->data) + 1 + nlines * sizeof(gpointer) : 0;
  for (char *line = sf->data; line != NULL;) {
    char *nl = strchr(line, '\n');
    char *end = nl != NULL ? nl : line + strlen(line);
    while (line < end && is_strip_space(*line))
      line++;
    while (end > line && is_strip_space(end[-1]))
      end--;
    if (nl != NULL || line < end) /* no line after a final '\n' */
      g_ptr_array_add(sf->lines, line);
    *end = '\0';
    line = nl != NULL ? nl + 1 : NULL;
  }
  return sf;
}

/* See model.h. */
const char *tm__source_line(const char *filename, unsigned int lineno) {
  source_file *sf;
  if (filename == NULL || lineno == 0)
    return NULL;
  tm__guard_enter();
  source_lock_acquire();
  if (source_files == NULL)
    source_files = g_hash_table_new(g_str_hash, g_str_equal);
  sf = g_hash_table_lookup(source_files, filename);
  if (sf == NULL && g_hash_table_size(source_files) < SOURCE_CACHE_MAX_FILES) {
    size_t cost = 0;
    sf = source_load(filename, SOURCE_CACHE_MAX_BYTES - source_bytes, &cost);
    source_bytes += cost;
    g_hash_table_insert(source_files, g_strdup(filename), sf);
  }
  g_mutex_unlock(&source_lock);
  tm__guard_leave();
  return sf != NULL && lineno <= sf->lines->len ? g_ptr_array_index(sf->lines, lineno - 1) : NULL;
}

/* See tracemalloc.h. */
bool tm_set_source_root(const char *dir) {
  char *resolved = NULL;
  tm__guard_enter();
  if (dir != NULL) {
    char *real = realpath(dir, NULL);
    if (real == NULL || !g_file_test(real, G_FILE_TEST_IS_DIR)) {
      free(real);
      tm__guard_leave();
      return false;
    }
    resolved = g_strdup(real);
    free(real);
  }
  source_lock_acquire();
  g_free(source_root);
  source_root = resolved;
  g_mutex_unlock(&source_lock);
  tm__guard_leave();
  return true;
}

/* The source line of a frame read from a dump: only under the source root (see
 * tm_set_source_root()). Returns NULL when no root is set or the file resolves outside it. */
static const char *loaded_source_line(const tm_frame *f) {
  char *root, *path, *real;
  const char *line = NULL;
  source_lock_acquire();
  root = g_strdup(source_root);
  g_mutex_unlock(&source_lock);
  if (root == NULL)
    return NULL;
  path = g_path_is_absolute(f->filename) ? g_strdup(f->filename)
                                         : g_build_filename(root, f->filename, NULL);
  real = realpath(path, NULL);
  if (real != NULL && g_str_has_prefix(real, root) &&
      (real[strlen(root)] == '/' || g_str_equal(root, "/")))
    line = tm__source_line(real, f->lineno);
  free(real);
  g_free(path);
  g_free(root);
  return line;
}

/* Appends text to s with every control character (C0, DEL, C1) and every byte that is not UTF-8
 * written as \xNN, so that no string from a dump reaches a terminal raw. */
static void append_escaped(GString *s, const char *text) {
  const char *p = text;
  while (*p != '\0') {
    const char *next = g_utf8_find_next_char(p, NULL);
    gunichar c = g_utf8_get_char_validated(p, next != NULL ? next - p : -1);
    if (c == (gunichar)-1 || c == (gunichar)-2) {
      g_string_append_printf(s, "\\x%02x", (unsigned char)*p);
      p++;
      continue;
    }
    if (c < 0x20 || (c >= 0x7f && c < 0xa0)) {
      if (c < 0x80)
        g_string_append_printf(s, "\\x%02x", (unsigned)c);
      else
        for (const char *b = p; b < next; b++)
          g_string_append_printf(s, "\\x%02x", (unsigned char)*b);
    } else {
      g_string_append_len(s, p, next - p);
    }
    p = next;
  }
}

/* A new escaped copy of text (g_free()). */
static char *escaped(const char *text) {
  GString *s = g_string_new(NULL);
  append_escaped(s, text);
  return g_string_free(s, FALSE);
}

/* Python's "%.Nf" (or "%+.Nf" with sign) followed by " unit", independent of the locale. */
static char *format_number(double value, int decimals, bool sign, const char *unit) {
  char buf[G_ASCII_DTOSTR_BUF_SIZE];
  g_ascii_formatd(buf, sizeof(buf), decimals == 1 ? "%.1f" : "%.0f", value);
  return g_strdup_printf("%s%s %s", sign && !signbit(value) ? "+" : "", buf, unit);
}

/* Python's _format_size(size, sign) on a float: "%.1f" below 100 of a unit above B, "%.0f"
 * below 10 * 1024 of a unit (or in TiB), else on to the next unit. */
static char *format_size(double size, bool sign) {
  static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  size_t i = 0;
  for (;; i++) {
    if (fabs(size) < 100 && i != 0)
      return format_number(size, 1, sign, units[i]);
    if (fabs(size) < 10 * 1024 || i == G_N_ELEMENTS(units) - 1)
      return format_number(size, 0, sign, units[i]);
    size /= 1024;
  }
}

/* See tracemalloc.h. An int64 converts to the double Python's float division would use: the
 * first comparisons are exact, and dividing by 1024 commutes with rounding to a double. */
char *tm_format_size(int64_t size, bool sign) {
  tm__guard_enter();
  char *text = format_size((double)size, sign);
  tm__guard_leave();
  return text;
}

/* ", average=..." of Python's Statistic.__str__: size / count as a float; empty when count is 0. */
static char *format_average(size_t size, size_t count) {
  char *avg, *text;
  if (count == 0)
    return g_strdup("");
  avg = format_size((double)size / (double)count, false);
  text = g_strconcat(", average=", avg, NULL);
  g_free(avg);
  return text;
}

/* See tracemalloc.h. Statistic.__str__: "%s: size=%s, count=%i" plus the average. */
char *tm_statistic_format(const tm_statistic *stat) {
  char *tb, *size, *avg, *text;
  if (stat == NULL)
    return NULL;
  tm__guard_enter();
  tb = tm_traceback_to_string(stat->traceback);
  size = format_size((double)stat->size, false);
  avg = format_average(stat->size, stat->count);
  text = g_strdup_printf("%s: size=%s, count=%zu%s", tb, size, stat->count, avg);
  g_free(tb);
  g_free(size);
  g_free(avg);
  tm__guard_leave();
  return text;
}

/* See tracemalloc.h. StatisticDiff.__str__: "%s: size=%s (%s), count=%i (%+i)" plus the
 * average. */
char *tm_statistic_diff_format(const tm_statistic_diff *diff) {
  char *tb, *size, *size_diff, *avg, *text;
  if (diff == NULL)
    return NULL;
  tm__guard_enter();
  tb = tm_traceback_to_string(diff->traceback);
  size = format_size((double)diff->size, false);
  size_diff = format_size((double)diff->size_diff, true);
  avg = format_average(diff->size, diff->count);
  text = g_strdup_printf("%s: size=%s (%s), count=%zu (%+" PRId64 ")%s", tb, size, size_diff,
                         diff->count, diff->count_diff, avg);
  g_free(tb);
  g_free(size);
  g_free(size_diff);
  g_free(avg);
  tm__guard_leave();
  return text;
}

/* Whether module is the path of a shared object installed by the system, rather than the
 * program's own code: under /lib, /lib64, /usr/lib or /usr/lib64. */
static bool module_is_system(const char *module) {
  static const char *const dirs[] = {"/lib/", "/lib64/", "/usr/lib/", "/usr/lib64/"};
  if (module == NULL)
    return false;
  for (size_t i = 0; i < G_N_ELEMENTS(dirs); i++)
    if (g_str_has_prefix(module, dirs[i]))
      return true;
  return false;
}

/* Whether f belongs to the C runtime's start-up, which calls main: glibc's _start,
 * __libc_start_main (__libc_start_main_impl in glibc 2.34 and later) and __libc_start_call_main
 * by name, and any frame without a line in a system library or in no known module (an unwinder
 * that walks past _start). */
static bool frame_is_startup(const tm_frame *f) {
  static const char *const names[] = {"_start", "__libc_start_main", "__libc_start_main_impl",
                                      "__libc_start_call_main"};
  if (f->function != NULL)
    for (size_t i = 0; i < G_N_ELEMENTS(names); i++)
      if (strcmp(f->function, names[i]) == 0)
        return true;
  if (f->flags & TM_FRAME_UNKNOWN)
    return true;
  return (f->flags & TM_FRAME_NO_DEBUG_INFO) && module_is_system(f->module);
}

/* See tracemalloc.h. Python's str(traceback) is str(traceback[0]), the OLDEST frame; in a C
 * program that is _start, the same for every traceback, so the oldest frame of the program's own
 * code takes its place: start-up frames (frame_is_startup()) are skipped, unless every frame is
 * one. A traceback without frames prints as CPython's unknown frame. */
char *tm_traceback_to_string(const tm_traceback *tb) {
  size_t n, k = 0;
  const tm_frame *frames;
  char *text;
  if (tb == NULL)
    return NULL;
  tm__guard_enter();
  frames = tm__traceback_frames(tb, &n);
  while (k < n && frame_is_startup(&frames[k]))
    k++;
  if (k == n)
    k = 0;
  if (n == 0)
    text = g_strdup("<unknown>:0");
  else {
    char *name = escaped(frames[k].filename);
    text = g_strdup_printf("%s:%u", name, frames[k].lineno);
    g_free(name);
  }
  tm__guard_leave();
  return text;
}

/* Appends the lines of one frame: where it is, then its stripped source line when there is one.
 * A frame without line information names its module and symbol, and an address in no module its
 * address, since nothing else locates them. */
static void format_frame(GPtrArray *lines, const tm_frame *f) {
  GString *s = g_string_new(NULL);
  bool has_line = !(f->flags & (TM_FRAME_NO_DEBUG_INFO | TM_FRAME_UNKNOWN));
  const char *code;
  g_string_append(s, "  File \"");
  append_escaped(s, f->filename);
  g_string_append_c(s, '"');
  if (has_line)
    g_string_append_printf(s, ", line %u", f->lineno);
  if (f->function != NULL) {
    g_string_append(s, ", in ");
    append_escaped(s, f->function);
  } else if ((f->flags & TM_FRAME_UNKNOWN) && f->ip != 0) {
    g_string_append_printf(s, ", at 0x%" PRIxPTR, f->ip);
  }
  if (f->flags & TM_FRAME_UNLOADED)
    g_string_append(s, " (in a library unloaded before resolution)");
  g_ptr_array_add(lines, g_string_free(s, FALSE));
  if (!has_line)
    code = NULL;
  else if (f->flags & TM_FRAME_LOADED)
    code = loaded_source_line(f);
  else
    code = tm__source_line(f->filename, f->lineno);
  if (code != NULL && code[0] != '\0') {
    GString *line = g_string_new("    ");
    append_escaped(line, code);
    g_ptr_array_add(lines, g_string_free(line, FALSE));
  }
}

/* The line a truncated traceback adds where its missing (oldest) frames would be. It names the
 * captured stack frames (inlined calls not counted) but not total_nframe: the engine records limit + 1 for any deeper stack rather than
 * walk it, so the true depth is unknown. */
#define TRUNCATED_ONE "  [... traceback truncated: only the most recent frame was captured]"
#define TRUNCATED_MANY "  [... traceback truncated: only the %zu most recent frames were captured]"

/* See tracemalloc.h. The frames kept by limit are those of Python's Traceback.format: the last
 * `limit` (most recent) for limit > 0. For limit < 0 this follows Python's documentation and our
 * header, the oldest -limit frames; CPython 3.11's code slices self[:limit] instead, which drops
 * the -limit most recent frames. */
char **tm_traceback_format(const tm_traceback *tb, int limit, bool most_recent_first) {
  size_t n, start = 0, end;
  const tm_frame *frames;
  GPtrArray *lines;
  if (tb == NULL)
    return NULL;
  tm__guard_enter();
  frames = tm__traceback_frames(tb, &n);
  end = n;
  if (limit > 0 && (size_t)limit < n)
    start = n - (size_t)limit;
  else if (limit < 0 && (size_t)(-(int64_t)limit) < n)
    end = (size_t)(-(int64_t)limit);
  lines = g_ptr_array_new();
  for (size_t k = start; k < end; k++)
    format_frame(lines, &frames[most_recent_first ? end - 1 - (k - start) : k]);
  if (tb->truncated) {
    /* The missing frames are the oldest: the line goes where they would be, last when the most
     * recent frame comes first, first otherwise. */
    size_t nstack = tm__traceback_nstack(tb);
    char *line = nstack == 1 ? g_strdup(TRUNCATED_ONE) : g_strdup_printf(TRUNCATED_MANY, nstack);
    if (most_recent_first)
      g_ptr_array_add(lines, line);
    else
      g_ptr_array_insert(lines, 0, line);
  }
  g_ptr_array_add(lines, NULL);
  tm__guard_leave();
  return (char **)g_ptr_array_free(lines, FALSE);
}
