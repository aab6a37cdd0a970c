/* dump.c — tm_snapshot_dump / tm_snapshot_load: a versioned binary file of resolved frames.
 *
 * A dump carries frames already resolved to file, line and function, so it reads the same after
 * the program, its libraries and their debug files are gone (Python pickles its snapshots for the
 * same reason). Format version 1; every integer little-endian whatever the host:
 *
 *   header (40 bytes)
 *     0   "TMDUMP"            magic
 *     6   u16 version         1
 *     8   u32 byte-order mark 0x01020304
 *     12  i32 traceback limit 0..TM_MAX_NFRAME
 *     16  u64 nstrings        < 2^32 - 1
 *     24  u64 ntracebacks     < 2^32
 *     32  u64 ntraces
 *   nstrings strings          u32 length, length bytes without NUL, then one NUL byte
 *   ntracebacks tracebacks    u32 nframes, u32 total_nframe (<= INT_MAX), u32 flags (bit 0:
 *                             truncated), then nframes frames OLDEST FIRST, each
 *                             u32 filename, u32 function, u32 module (string indexes,
 *                             0xffffffff for none; the file name is required), u32 lineno,
 *                             u32 flags (TM_FRAME_*)
 *   ntraces traces            u32 domain, u32 traceback index, u64 size (<= PTRDIFF_MAX)
 *   end of file               nothing may follow
 *
 * The loader trusts nothing: each count is checked against the bytes left before anything is
 * allocated for it (so allocations stay within a small multiple of the file's real size), each
 * record is bounds-checked before it is read, each index is range-checked, and every failure is a
 * GError naming the file, the record and the byte offset.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model.h"

#define DUMP_MAGIC "TMDUMP"
#define DUMP_MAGIC_LEN 6
#define DUMP_VERSION 1u
#define DUMP_BOM 0x01020304u
#define DUMP_HEADER_SIZE 40u
#define DUMP_NONE UINT32_MAX
#define STRING_MIN_SIZE 5u     /* u32 length + NUL */
#define TRACEBACK_HEAD_SIZE 12u
#define FRAME_SIZE 20u
#define TRACE_SIZE 16u
#define TB_FLAG_TRUNCATED 0x1u
#define FRAME_FLAGS_KNOWN                                                                          \
  (TM_FRAME_NO_DEBUG_INFO | TM_FRAME_INLINED | TM_FRAME_UNKNOWN | TM_FRAME_UNLOADED)

/* ------------------------------------------------------------------------------------------------
 * Writing
 * ---------------------------------------------------------------------------------------------- */

/* A buffered writer on a file descriptor. The first error sticks in err (an errno value). */
typedef struct writer {
  int fd;
  int err;
  size_t len;
  guint8 buf[64 * 1024];
} writer;

static void writer_flush(writer *w) {
  size_t off = 0;
  while (w->err == 0 && off < w->len) {
    ssize_t n = write(w->fd, w->buf + off, w->len - off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      w->err = n < 0 ? errno : EIO;
    else
      off += (size_t)n;
  }
  w->len = 0;
}

static void put_bytes(writer *w, const void *p, size_t n) {
  const guint8 *b = p;
  while (n > 0 && w->err == 0) {
    if (w->len == sizeof(w->buf))
      writer_flush(w);
    size_t k = MIN(n, sizeof(w->buf) - w->len);
    memcpy(w->buf + w->len, b, k);
    w->len += k;
    b += k;
    n -= k;
  }
}

static void put_u16(writer *w, uint16_t v) {
  guint8 b[2] = {(guint8)v, (guint8)(v >> 8)};
  put_bytes(w, b, sizeof(b));
}

static void put_u32(writer *w, uint32_t v) {
  guint8 b[4] = {(guint8)v, (guint8)(v >> 8), (guint8)(v >> 16), (guint8)(v >> 24)};
  put_bytes(w, b, sizeof(b));
}

static void put_u64(writer *w, uint64_t v) {
  put_u32(w, (uint32_t)v);
  put_u32(w, (uint32_t)(v >> 32));
}

/* The distinct strings of a snapshot's frames, in order of first use, by content (tracebacks
 * built apart may hold equal strings at different addresses). */
typedef struct string_table {
  GHashTable *index; /* const char* => index + 1 */
  GPtrArray *strings;
} string_table;

static uint32_t string_index(string_table *t, const char *s) {
  if (s == NULL)
    return DUMP_NONE;
  guint idx = GPOINTER_TO_UINT(g_hash_table_lookup(t->index, s));
  if (idx == 0) {
    g_ptr_array_add(t->strings, (gpointer)s);
    idx = t->strings->len;
    g_hash_table_insert(t->index, (gpointer)s, GUINT_TO_POINTER(idx));
  }
  return idx - 1;
}

static const char *frame_filename(const tm_frame *f) {
  return f->filename != NULL ? f->filename : "<unknown>";
}

/* Resolves every traceback of snap and collects their strings. Returns false with
 * TM_ERROR_INVALID when the snapshot is too large for the format. */
static bool collect_strings(tm_snapshot *snap, string_table *t, const char *path,
                            GError **error) {
  for (size_t i = 0; i < snap->ntracebacks; i++) {
    size_t n;
    const tm_frame *frames = tm__traceback_frames(snap->tracebacks[i], &n);
    if (n >= UINT32_MAX) {
      g_set_error(error, TM_ERROR, TM_ERROR_INVALID, "%s: traceback %zu has too many frames (%zu)",
                  path, i, n);
      return false;
    }
    for (size_t j = 0; j < n; j++) {
      string_index(t, frame_filename(&frames[j]));
      string_index(t, frames[j].function);
      string_index(t, frames[j].module);
    }
  }
  if (t->strings->len >= DUMP_NONE || snap->ntracebacks >= UINT32_MAX) {
    g_set_error(error, TM_ERROR, TM_ERROR_INVALID,
                "%s: snapshot too large to dump (%u strings, %zu tracebacks)", path,
                t->strings->len, snap->ntracebacks);
    return false;
  }
  return true;
}

/* Checks that the snapshot can be written as it will be read: a traceback limit the loader
 * accepts, and every trace naming one of the snapshot's tracebacks. */
static bool check_snapshot(tm_snapshot *snap, const char *path, GError **error) {
  if (snap->traceback_limit < 0 || snap->traceback_limit > TM_MAX_NFRAME) {
    g_set_error(error, TM_ERROR, TM_ERROR_INVALID, "%s: traceback limit %d out of range 0..%d",
                path, snap->traceback_limit, TM_MAX_NFRAME);
    return false;
  }
  for (size_t i = 0; i < snap->ntraces; i++) {
    uint32_t idx = snap->tb_index[i];
    if (idx >= snap->ntracebacks || snap->tracebacks[idx] != snap->traces[i].traceback) {
      g_set_error(error, TM_ERROR, TM_ERROR_INVALID,
                  "%s: snapshot is inconsistent: trace %zu has no traceback", path, i);
      return false;
    }
  }
  return true;
}

/* Writes the whole file to w. The caller checks w->err. */
static void write_snapshot(writer *w, tm_snapshot *snap, string_table *t) {
  put_bytes(w, DUMP_MAGIC, DUMP_MAGIC_LEN);
  put_u16(w, DUMP_VERSION);
  put_u32(w, DUMP_BOM);
  put_u32(w, (uint32_t)snap->traceback_limit);
  put_u64(w, t->strings->len);
  put_u64(w, snap->ntracebacks);
  put_u64(w, snap->ntraces);
  for (guint i = 0; i < t->strings->len; i++) {
    const char *s = g_ptr_array_index(t->strings, i);
    size_t len = strlen(s);
    put_u32(w, (uint32_t)MIN(len, (size_t)UINT32_MAX - 1));
    put_bytes(w, s, MIN(len, (size_t)UINT32_MAX - 1));
    put_bytes(w, "", 1);
  }
  for (size_t i = 0; i < snap->ntracebacks; i++) {
    const tm_traceback *tb = snap->tracebacks[i];
    size_t n;
    const tm_frame *frames = tm__traceback_frames(tb, &n);
    put_u32(w, (uint32_t)n);
    put_u32(w, (uint32_t)MAX(tm_traceback_total_nframe(tb), 0));
    put_u32(w, tb->truncated ? TB_FLAG_TRUNCATED : 0);
    for (size_t j = 0; j < n; j++) {
      put_u32(w, string_index(t, frame_filename(&frames[j])));
      put_u32(w, string_index(t, frames[j].function));
      put_u32(w, string_index(t, frames[j].module));
      put_u32(w, frames[j].lineno);
      put_u32(w, frames[j].flags & FRAME_FLAGS_KNOWN);
    }
  }
  for (size_t i = 0; i < snap->ntraces; i++) {
    put_u32(w, snap->traces[i].domain);
    put_u32(w, snap->tb_index[i]);
    put_u64(w, snap->traces[i].size);
  }
  writer_flush(w);
}

/* Writes snap into a new temporary file beside path (named path + TM_DUMP_TEMP_SUFFIX + six
 * random characters), syncs it and renames it over path, so that path holds either its old
 * content or the complete new dump, whatever fails. Only a regular file is replaced (lstat: a
 * symbolic link, a FIFO, a device or a directory is refused before anything is created), and it
 * keeps its permission bits (and, when the caller may, its owner). The temporary file is removed
 * on every error path; one left by a process killed mid-write is recognizable by its name. */
static bool write_atomically(tm_snapshot *snap, string_table *t, const char *path,
                             GError **error) {
  bool ok = false;
  struct stat st;
  bool exists = false;
  char *tmp = g_strdup_printf("%s" TM_DUMP_TEMP_SUFFIX "XXXXXX", path);
  writer *w = g_new0(writer, 1);
  if (lstat(path, &st) == 0) {
    if (!S_ISREG(st.st_mode)) {
      g_set_error(error, TM_ERROR, TM_ERROR_IO,
                  "%s: not a regular file: a dump only creates or replaces a regular file", path);
      goto out;
    }
    exists = true;
  } else if (errno != ENOENT) {
    g_set_error(error, TM_ERROR, TM_ERROR_IO, "%s: cannot write: %s", path, g_strerror(errno));
    goto out;
  }
  /* 0666 so that the umask decides, as for any file the program creates. */
  w->fd = g_mkstemp_full(tmp, O_WRONLY | O_CLOEXEC, 0666);
  if (w->fd < 0) {
    g_set_error(error, TM_ERROR, TM_ERROR_IO, "%s: cannot create a temporary file: %s", path,
                g_strerror(errno));
    goto out;
  }
  if (exists) {
    if (fchmod(w->fd, st.st_mode & 07777) != 0)
      w->err = errno;
    if (fchown(w->fd, st.st_uid, st.st_gid) != 0) {
      /* Only the owner changes hands: a caller who may not give the file away keeps it. */
    }
  }
  if (w->err == 0)
    write_snapshot(w, snap, t);
  if (w->err == 0 && fsync(w->fd) != 0)
    w->err = errno;
  if (close(w->fd) != 0 && w->err == 0)
    w->err = errno;
  if (w->err == 0 && rename(tmp, path) != 0)
    w->err = errno;
  if (w->err != 0) {
    g_set_error(error, TM_ERROR, TM_ERROR_IO, "%s: cannot write: %s", path, g_strerror(w->err));
    unlink(tmp);
    goto out;
  }
  ok = true;
out:
  g_free(w);
  g_free(tmp);
  return ok;
}

/* See tracemalloc.h. */
bool tm_snapshot_dump(tm_snapshot *snap, const char *path, GError **error) {
  bool ok = false;
  string_table t = {NULL, NULL};
  tm__guard_enter();
  if (snap == NULL || path == NULL || path[0] == '\0') {
    g_set_error_literal(error, TM_ERROR, TM_ERROR_INVALID,
                        snap == NULL ? "snapshot is NULL" : "path is NULL or empty");
    goto out;
  }
  t.index = g_hash_table_new(g_str_hash, g_str_equal);
  t.strings = g_ptr_array_new();
  if (!check_snapshot(snap, path, error) || !collect_strings(snap, &t, path, error))
    goto out;
  ok = write_atomically(snap, &t, path, error);
out:
  if (t.index != NULL) {
    g_hash_table_destroy(t.index);
    g_ptr_array_free(t.strings, TRUE);
  }
  tm__guard_leave();
  return ok;
}

/* ------------------------------------------------------------------------------------------------
 * Loading
 * ---------------------------------------------------------------------------------------------- */

/* A bounds-checked cursor over the file's bytes. */
typedef struct reader {
  const guint8 *data;
  size_t len;
  size_t pos;
  const char *path;
  GError **error;
} reader;

static void G_GNUC_PRINTF(3, 4) fail(reader *r, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  g_set_error(r->error, TM_ERROR, code, "%s: %s", r->path, msg);
  g_free(msg);
}

/* The record being read, for error messages: "trace 17 of 100", "traceback 3 of 9, frame 2",
 * "the header". Named only when something is wrong: formatting a name for every record would
 * cost more than reading it. */
typedef struct record {
  const char *kind; /* "string", "traceback", "trace"; or "the header", alone */
  uint64_t index, count;
  int64_t frame; /* a frame of a traceback, or -1 */
} record;

static char *record_name(const record *rec) {
  if (rec->count == 0)
    return g_strdup(rec->kind);
  if (rec->frame < 0)
    return g_strdup_printf("%s %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT, rec->kind,
                           rec->index, rec->count);
  return g_strdup_printf("%s %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT
                         ", frame %" G_GINT64_FORMAT,
                         rec->kind, rec->index, rec->count, rec->frame);
}

/* Fails with TM_ERROR_CORRUPT and "<record> (at byte <at>): <message>". */
static void G_GNUC_PRINTF(4, 5) fail_at(reader *r, const record *rec, size_t at, const char *fmt,
                                        ...) {
  va_list ap;
  va_start(ap, fmt);
  char *msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  char *name = record_name(rec);
  fail(r, TM_ERROR_CORRUPT, "%s (at byte %zu): %s", name, at, msg);
  g_free(name);
  g_free(msg);
}

/* Whether n more bytes are there for the record. Sets a "truncated" error naming it when they
 * are not. */
static bool need(reader *r, size_t n, const record *rec) {
  if (n <= r->len - r->pos)
    return true;
  char *name = record_name(rec);
  if (n > SIZE_MAX - r->pos)
    fail(r, TM_ERROR_CORRUPT, "truncated: %s does not fit in the file (%zu bytes)", name, r->len);
  else
    fail(r, TM_ERROR_CORRUPT, "truncated: %s ends at byte %zu, file has %zu", name, r->pos + n,
         r->len);
  g_free(name);
  return false;
}

static uint16_t get_u16(reader *r) {
  const guint8 *b = r->data + r->pos;
  r->pos += 2;
  return (uint16_t)(b[0] | (b[1] << 8));
}

static uint32_t get_u32(reader *r) {
  const guint8 *b = r->data + r->pos;
  r->pos += 4;
  return (uint32_t)b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16) | ((uint32_t)b[3] << 24);
}

static uint64_t get_u64(reader *r) {
  uint64_t lo = get_u32(r);
  return lo | ((uint64_t)get_u32(r) << 32);
}

/* Checks that count records of at least min_size bytes each can fit in what is left, before
 * anything is allocated for them. */
static bool check_count(reader *r, uint64_t count, size_t min_size, const char *what) {
  size_t left = r->len - r->pos;
  if (count <= left / min_size)
    return true;
  fail(r, TM_ERROR_CORRUPT,
       "truncated or corrupt: %s count %" G_GUINT64_FORMAT " needs at least %" G_GUINT64_FORMAT
       " bytes from byte %zu, file has %zu",
       what, count, count > UINT64_MAX / min_size ? UINT64_MAX : count * min_size, r->pos,
       r->len);
  return false;
}

/* What the header says. */
typedef struct header {
  int traceback_limit;
  uint64_t nstrings, ntracebacks, ntraces;
} header;

static bool read_header(reader *r, header *h) {
  if (r->len == 0) {
    fail(r, TM_ERROR_CORRUPT, "empty file, not a tracemalloc dump");
    return false;
  }
  size_t m = MIN(r->len, (size_t)DUMP_MAGIC_LEN);
  if (memcmp(r->data, DUMP_MAGIC, m) != 0) {
    fail(r, TM_ERROR_CORRUPT, "bad magic: not a tracemalloc dump (expected \"%s\")", DUMP_MAGIC);
    return false;
  }
  const record rec = {.kind = "the header", .frame = -1};
  if (!need(r, DUMP_MAGIC_LEN + 2, &rec))
    return false;
  r->pos = DUMP_MAGIC_LEN;
  uint16_t version = get_u16(r);
  if (version != DUMP_VERSION) {
    fail(r, TM_ERROR_VERSION, "unsupported format version %u (this library reads version %u)",
         version, DUMP_VERSION);
    return false;
  }
  if (!need(r, DUMP_HEADER_SIZE - r->pos, &rec))
    return false;
  uint32_t bom = get_u32(r);
  if (bom != DUMP_BOM) {
    fail(r, TM_ERROR_CORRUPT, "bad byte-order mark 0x%08x (expected 0x%08x%s)", bom, DUMP_BOM,
         bom == GUINT32_SWAP_LE_BE(DUMP_BOM) ? ", byte-swapped" : "");
    return false;
  }
  int32_t limit = (int32_t)get_u32(r);
  h->nstrings = get_u64(r);
  h->ntracebacks = get_u64(r);
  h->ntraces = get_u64(r);
  if (limit < 0 || limit > TM_MAX_NFRAME) {
    fail(r, TM_ERROR_CORRUPT, "traceback limit %d out of range 0..%d", limit, TM_MAX_NFRAME);
    return false;
  }
  h->traceback_limit = limit;
  if (h->nstrings >= DUMP_NONE || h->ntracebacks >= UINT32_MAX) {
    fail(r, TM_ERROR_CORRUPT,
         "%" G_GUINT64_FORMAT " strings and %" G_GUINT64_FORMAT
         " tracebacks: more than the format allows",
         h->nstrings, h->ntracebacks);
    return false;
  }
  /* Arrays of strings and tracebacks are allocated up front: their counts must fit in the file.
   * Traces are appended one by one, each after its bytes were found, so their count needs no
   * check here, and a slightly short file is reported at the exact trace where it ends. */
  return check_count(r, h->nstrings, STRING_MIN_SIZE, "string") &&
         check_count(r, h->ntracebacks, TRACEBACK_HEAD_SIZE, "traceback");
}

/* Reads the string table into strings (pointers into the file's bytes, each NUL-terminated). */
static bool read_strings(reader *r, const header *h, const char **strings) {
  record rec = {.kind = "string", .count = h->nstrings, .frame = -1};
  for (uint64_t i = 0; i < h->nstrings; i++) {
    rec.index = i;
    if (!need(r, 4, &rec))
      return false;
    uint32_t len = get_u32(r);
    if (!need(r, (size_t)len + 1, &rec))
      return false;
    const char *s = (const char *)r->data + r->pos;
    if (s[len] != '\0') {
      fail_at(r, &rec, r->pos, "not NUL-terminated");
      return false;
    }
    if (memchr(s, '\0', len) != NULL) {
      fail_at(r, &rec, r->pos, "holds a NUL byte");
      return false;
    }
    strings[i] = s;
    r->pos += (size_t)len + 1;
  }
  return true;
}

/* Resolves a string index of the frame starting at byte at; none allowed only when optional. */
static bool frame_string(reader *r, const header *h, const char **strings, uint32_t idx,
                         bool optional, const char **out, const record *rec, size_t at,
                         const char *field) {
  if (idx == DUMP_NONE && optional) {
    *out = NULL;
    return true;
  }
  if (idx >= h->nstrings) {
    fail_at(r, rec, at, "%s string index %u out of range (%" G_GUINT64_FORMAT " strings)", field,
            idx, h->nstrings);
    return false;
  }
  *out = strings[idx];
  return true;
}

/* Reads traceback i into a new loaded traceback stored in *out. frames is scratch space that
 * grows as needed. */
static bool read_traceback(reader *r, const header *h, const char **strings, uint64_t i,
                           GArray *frames, tm__strings *owned, tm_traceback **out) {
  record rec = {.kind = "traceback", .index = i, .count = h->ntracebacks, .frame = -1};
  if (!need(r, TRACEBACK_HEAD_SIZE, &rec))
    return false;
  size_t start = r->pos;
  uint32_t nframes = get_u32(r);
  uint32_t total_nframe = get_u32(r);
  uint32_t flags = get_u32(r);
  if (total_nframe > INT_MAX || (flags & ~TB_FLAG_TRUNCATED) != 0) {
    fail_at(r, &rec, start, "bad total_nframe %u or flags 0x%x", total_nframe, flags);
    return false;
  }
  if (!need(r, (size_t)nframes * FRAME_SIZE, &rec))
    return false;
  g_array_set_size(frames, nframes);
  for (uint32_t j = 0; j < nframes; j++) {
    tm_frame *f = &g_array_index(frames, tm_frame, j);
    size_t at = r->pos;
    rec.frame = j;
    uint32_t file = get_u32(r), function = get_u32(r), module = get_u32(r);
    *f = (tm_frame){.lineno = get_u32(r), .flags = get_u32(r), .ip = 0};
    if (!frame_string(r, h, strings, file, false, &f->filename, &rec, at, "filename") ||
        !frame_string(r, h, strings, function, true, &f->function, &rec, at, "function") ||
        !frame_string(r, h, strings, module, true, &f->module, &rec, at, "module"))
      return false;
    if ((f->flags & ~FRAME_FLAGS_KNOWN) != 0) {
      fail_at(r, &rec, at, "unknown flags 0x%x", f->flags);
      return false;
    }
  }
  for (uint32_t j = 0; j < nframes; j++) /* untrusted: see tm_set_source_root() */
    g_array_index(frames, tm_frame, j).flags |= TM_FRAME_LOADED;
  *out = tm__traceback_new_frames_in(owned, (const tm_frame *)(void *)frames->data, nframes,
                                  (int)total_nframe, (flags & TB_FLAG_TRUNCATED) != 0);
  return true;
}

/* Reads the traces into snap. */
static bool read_traces(reader *r, const header *h, tm_traceback **tbs, tm_snapshot *snap) {
  record rec = {.kind = "trace", .count = h->ntraces, .frame = -1};
  uint64_t total = 0;
  for (uint64_t i = 0; i < h->ntraces; i++) {
    rec.index = i;
    if (!need(r, TRACE_SIZE, &rec))
      return false;
    size_t start = r->pos;
    uint32_t domain = get_u32(r);
    uint32_t tb = get_u32(r);
    uint64_t size = get_u64(r);
    if (tb >= h->ntracebacks) {
      fail_at(r, &rec, start, "traceback index %u out of range (%" G_GUINT64_FORMAT " tracebacks)",
              tb, h->ntracebacks);
      return false;
    }
    /* No block is larger than PTRDIFF_MAX, and sums must stay within the int64 diffs. */
    if (size > PTRDIFF_MAX || size > (uint64_t)INT64_MAX - total) {
      fail_at(r, &rec, start, "size %" G_GUINT64_FORMAT " is impossible", size);
      return false;
    }
    total += size;
    tm__snapshot_add(snap, domain, (size_t)size, tbs[tb]);
  }
  if (r->pos != r->len) {
    fail(r, TM_ERROR_CORRUPT, "%zu bytes of garbage after the last trace (from byte %zu)",
         r->len - r->pos, r->pos);
    return false;
  }
  return true;
}

/* Parses a whole dump held in memory. Returns a new snapshot, or NULL with *r->error set. */
static tm_snapshot *parse(reader *r) {
  header h;
  tm_snapshot *snap = NULL;
  const char **strings = NULL;
  tm_traceback **tbs = NULL;
  uint64_t ntbs = 0;
  GArray *frames = g_array_new(FALSE, FALSE, sizeof(tm_frame));
  /* The snapshot's strings: its tracebacks share one table, freed with the last of them. */
  tm__strings *owned = tm__strings_new();
  if (!read_header(r, &h))
    goto out;
  /* read_header() checked every count against the bytes after the header: these allocations
   * are bounded by the file's size. */
  strings = g_new(const char *, h.nstrings + 1);
  if (!read_strings(r, &h, strings))
    goto out;
  tbs = g_new0(tm_traceback *, h.ntracebacks + 1);
  for (; ntbs < h.ntracebacks; ntbs++) {
    if (!read_traceback(r, &h, strings, ntbs, frames, owned, &tbs[ntbs]))
      goto out;
  }
  snap = tm__snapshot_new(h.traceback_limit);
  if (!read_traces(r, &h, tbs, snap)) {
    tm_snapshot_free(snap);
    snap = NULL;
  }
out:
  for (uint64_t i = 0; i < ntbs; i++)
    tm_traceback_free(tbs[i]);
  g_free(tbs);
  g_free(strings);
  g_array_free(frames, TRUE);
  tm__strings_unref(owned);
  return snap;
}

/* Opens path for reading. Regular files and pipes only: a device such as /dev/zero would never
 * end. O_NONBLOCK keeps the open of a FIFO nobody writes to from blocking; it is cleared after.
 * Returns the descriptor, or -1 with error set. */
static int open_dump(const char *path, GError **error) {
  struct stat st;
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    g_set_error(error, TM_ERROR, TM_ERROR_IO, "%s: cannot open: %s", path, g_strerror(errno));
    return -1;
  }
  if (fstat(fd, &st) != 0 || (!S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode)) ||
      fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0) {
    g_set_error(error, TM_ERROR, TM_ERROR_IO, "%s: cannot read: %s", path,
                S_ISDIR(st.st_mode) ? "is a directory" : "not a regular file or a pipe");
    close(fd);
    return -1;
  }
  return fd;
}

/* Reads the whole file at path into *data (g_free) and *len. Reads to the end rather than
 * trusting st_size, which is 0 for pipes. A file too large for memory is an error, not an
 * abort: allocations here may fail. */
static bool read_file(const char *path, guint8 **data, size_t *len, GError **error) {
  int fd = open_dump(path, error);
  if (fd < 0)
    return false;
  size_t cap = 64 * 1024, n = 0;
  struct stat st;
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 &&
      (uint64_t)st.st_size < SIZE_MAX / 2)
    cap = (size_t)st.st_size + 1; /* one more, to see the end without growing */
  guint8 *buf = g_try_malloc(cap);
  int err = buf == NULL ? ENOMEM : 0;
  while (err == 0) {
    if (n == cap) {
      guint8 *bigger = cap <= SIZE_MAX / 2 ? g_try_realloc(buf, cap * 2) : NULL;
      if (bigger == NULL) {
        err = ENOMEM;
        break;
      }
      buf = bigger;
      cap *= 2;
    }
    ssize_t k = read(fd, buf + n, cap - n);
    if (k < 0 && errno == EINTR)
      continue;
    if (k < 0)
      err = errno;
    if (k <= 0)
      break;
    n += (size_t)k;
  }
  close(fd);
  if (err != 0) {
    g_set_error(error, TM_ERROR, err == ENOMEM ? TM_ERROR_NO_MEMORY : TM_ERROR_IO,
                "%s: cannot read: %s", path,
                err == ENOMEM ? "the file does not fit in memory" : g_strerror(err));
    g_free(buf);
    return false;
  }
  *data = buf;
  *len = n;
  return true;
}

/* See tracemalloc.h. */
tm_snapshot *tm_snapshot_load(const char *path, GError **error) {
  tm_snapshot *snap = NULL;
  guint8 *data = NULL;
  size_t len = 0;
  tm__guard_enter();
  if (path == NULL || path[0] == '\0') {
    g_set_error_literal(error, TM_ERROR, TM_ERROR_INVALID, "path is NULL or empty");
    goto out;
  }
  if (!read_file(path, &data, &len, error))
    goto out;
  reader r = {.data = data, .len = len, .pos = 0, .path = path, .error = error};
  snap = parse(&r);
out:
  g_free(data);
  tm__guard_leave();
  return snap;
}
