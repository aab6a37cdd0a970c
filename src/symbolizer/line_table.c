/* line_table.c — a DWARF 2-5 line-program reader: line_table.h says why and what it promises.
 *
 * The program runs the state machine of the DWARF standard (section 6.2) and records one row per
 * emitted line (special opcodes, DW_LNS_copy) and per DW_LNE_end_sequence, as libdw does. The rows
 * are then put in the order libdw sorts them (by address, a sequence's end before a row at the
 * same address, program order otherwise; a stable sort, skipped when the program already is in
 * that order, as compilers write it), and compacted without changing any answer: of the rows at
 * one address only the last can be found, and a row that repeats the file and line of the row
 * before it answers as that row does. A CU of 10,000 small functions, about 50,000 rows, keeps a
 * few thousand, in one array.
 *
 * Sections are read in the process's byte order: every module we read is mapped in this process.
 * Every read is bounds-checked; a malformed program gives NULL, never a read past the section.
 */
#include "line_table.h"

#include <gelf.h>
#include <glib.h>
#include <string.h>

/* A row: [addr, next row's addr) is file:line; file END_SEQUENCE marks addresses in no sequence. */
typedef struct row {
  uint64_t addr;
  uint32_t line;
  uint32_t file;
} row;

#define END_SEQUENCE UINT32_MAX

struct tm__line_table {
  size_t nrows;
  row *rows;      /* sorted by addr, compacted */
  size_t nfiles;  /* file index i names files[i] */
  char **files;   /* each NULL or a path; the strings live in names */
  char *names;
  size_t memory;
};

/* A bounds-checked cursor over a section. Any read past end sets failed and returns 0. */
typedef struct reader {
  const uint8_t *p, *end;
  bool failed;
} reader;

static bool reader_need(reader *r, size_t n) {
  if (r->failed || (size_t)(r->end - r->p) < n) {
    r->failed = true;
    r->p = r->end;
    return false;
  }
  return true;
}

static uint64_t read_uint(reader *r, size_t n) {
  if (!reader_need(r, n))
    return 0;
  uint64_t v = 0;
  switch (n) {
  case 1: v = r->p[0]; break;
  case 2: { uint16_t x; memcpy(&x, r->p, 2); v = x; break; }
  case 4: { uint32_t x; memcpy(&x, r->p, 4); v = x; break; }
  case 8: memcpy(&v, r->p, 8); break;
  default: r->failed = true; return 0;
  }
  r->p += n;
  return v;
}

static uint64_t read_uleb(reader *r) {
  uint64_t v = 0;
  unsigned shift = 0;
  for (;;) {
    if (!reader_need(r, 1))
      return 0;
    uint8_t b = *r->p++;
    if (shift < 64)
      v |= (uint64_t)(b & 0x7f) << shift;
    shift += 7;
    if ((b & 0x80) == 0)
      return v;
  }
}

static int64_t read_sleb(reader *r) {
  uint64_t v = 0;
  unsigned shift = 0;
  uint8_t b;
  do {
    if (!reader_need(r, 1))
      return 0;
    b = *r->p++;
    if (shift < 64)
      v |= (uint64_t)(b & 0x7f) << shift;
    shift += 7;
  } while (b & 0x80);
  if (shift < 64 && (b & 0x40))
    v |= ~(uint64_t)0 << shift;
  return (int64_t)v;
}

/* A NUL-terminated string at the cursor, or NULL. */
static const char *read_cstr(reader *r) {
  if (r->failed)
    return NULL;
  const uint8_t *nul = memchr(r->p, 0, (size_t)(r->end - r->p));
  if (nul == NULL) {
    r->failed = true;
    return NULL;
  }
  const char *s = (const char *)r->p;
  r->p = nul + 1;
  return s;
}

/* The NUL-terminated string at off in a string section, or NULL. */
static const char *section_str(const uint8_t *sec, size_t size, uint64_t off) {
  if (sec == NULL || off >= size || memchr(sec + off, 0, size - off) == NULL)
    return NULL;
  return (const char *)sec + off;
}

/* DWARF forms a DWARF 5 directory or file entry may use. */
enum {
  FORM_block2 = 0x03, FORM_block4 = 0x04, FORM_data2 = 0x05, FORM_data4 = 0x06,
  FORM_data8 = 0x07, FORM_string = 0x08, FORM_block = 0x09, FORM_block1 = 0x0a,
  FORM_data1 = 0x0b, FORM_sdata = 0x0d, FORM_strp = 0x0e, FORM_udata = 0x0f,
  FORM_line_strp = 0x1f, FORM_data16 = 0x1e,
};
enum { LNCT_path = 1, LNCT_directory_index = 2 };

/* Reads one attribute value of form into *num or *str (NULL when not a string). Returns false on
 * an unknown form or a bad read. */
static bool read_form(reader *r, uint64_t form, size_t offset_size, const tm__line_sections *sec,
                      uint64_t *num, const char **str) {
  *num = 0;
  *str = NULL;
  size_t skip = 0;
  switch (form) {
  case FORM_string: *str = read_cstr(r); return *str != NULL;
  case FORM_strp:
    *str = section_str(sec->str, sec->str_size, read_uint(r, offset_size));
    return !r->failed && *str != NULL;
  case FORM_line_strp:
    *str = section_str(sec->line_str, sec->line_str_size, read_uint(r, offset_size));
    return !r->failed && *str != NULL;
  case FORM_data1: *num = read_uint(r, 1); return !r->failed;
  case FORM_data2: *num = read_uint(r, 2); return !r->failed;
  case FORM_data4: *num = read_uint(r, 4); return !r->failed;
  case FORM_data8: *num = read_uint(r, 8); return !r->failed;
  case FORM_udata: *num = read_uleb(r); return !r->failed;
  case FORM_sdata: *num = (uint64_t)read_sleb(r); return !r->failed;
  case FORM_data16: skip = 16; break;
  case FORM_block1: skip = read_uint(r, 1); break;
  case FORM_block2: skip = read_uint(r, 2); break;
  case FORM_block4: skip = read_uint(r, 4); break;
  case FORM_block: skip = read_uleb(r); break;
  default: return false;
  }
  if (!reader_need(r, skip))
    return false;
  r->p += skip;
  return true;
}

/* One directory or file entry of a DWARF 5 table: its path and directory index. */
typedef struct entry {
  const char *path;
  uint64_t dir;
} entry;

/* Reads a DWARF 5 entry-format list and the entries that follow it. Returns a new array
 * (g_free) of *n entries, or NULL on error. */
static entry *read_v5_entries(reader *r, size_t offset_size, const tm__line_sections *sec,
                              size_t *n) {
  uint8_t nformats = (uint8_t)read_uint(r, 1);
  uint64_t formats[2 * 255];
  for (unsigned i = 0; i < nformats; i++) {
    formats[2 * i] = read_uleb(r);
    formats[2 * i + 1] = read_uleb(r);
  }
  uint64_t count = read_uleb(r);
  /* Every entry takes at least one byte per format: a count the section cannot hold is bad. */
  if (r->failed || (nformats == 0 && count > 0) || count > (size_t)(r->end - r->p))
    return NULL;
  entry *out = g_new0(entry, count > 0 ? count : 1);
  for (uint64_t e = 0; e < count; e++) {
    for (unsigned i = 0; i < nformats; i++) {
      uint64_t num;
      const char *str;
      if (!read_form(r, formats[2 * i + 1], offset_size, sec, &num, &str)) {
        g_free(out);
        return NULL;
      }
      if (formats[2 * i] == LNCT_path)
        out[e].path = str;
      else if (formats[2 * i] == LNCT_directory_index)
        out[e].dir = num;
    }
  }
  *n = count;
  return out;
}

/* Builds t->files from the directories and files of the header, as libdw joins them. */
static void files_build(tm__line_table *t, const char *const *dirs, size_t ndirs,
                        const entry *files, size_t nfiles) {
  size_t bytes = 0;
  for (size_t i = 0; i < nfiles; i++) {
    if (files[i].path == NULL)
      continue;
    bytes += strlen(files[i].path) + 1;
    if (files[i].path[0] != '/' && files[i].dir < ndirs && dirs[files[i].dir] != NULL)
      bytes += strlen(dirs[files[i].dir]) + 1;
  }
  t->nfiles = nfiles;
  t->files = g_new0(char *, nfiles > 0 ? nfiles : 1);
  t->names = g_malloc(bytes > 0 ? bytes : 1);
  t->memory += (nfiles > 0 ? nfiles : 1) * sizeof(char *) + (bytes > 0 ? bytes : 1);
  char *cp = t->names;
  for (size_t i = 0; i < nfiles; i++) {
    if (files[i].path == NULL)
      continue;
    t->files[i] = cp;
    if (files[i].path[0] != '/' && files[i].dir < ndirs && dirs[files[i].dir] != NULL) {
      cp = stpcpy(cp, dirs[files[i].dir]);
      *cp++ = '/';
    }
    cp = stpcpy(cp, files[i].path) + 1;
  }
}

/* Reads the directory and file tables of a DWARF 2-4 header, directory 0 being comp_dir. */
static bool read_v4_tables(reader *r, tm__line_table *t, const char *comp_dir) {
  GPtrArray *dirs = g_ptr_array_new();
  g_ptr_array_add(dirs, (gpointer)comp_dir);
  for (;;) {
    const char *d = read_cstr(r);
    if (d == NULL || d[0] == '\0')
      break;
    g_ptr_array_add(dirs, (gpointer)d);
  }
  GArray *files = g_array_new(FALSE, TRUE, sizeof(entry));
  entry none = {"???", UINT64_MAX}; /* file 0 names nothing before DWARF 5: libdw calls it "???" */
  g_array_append_val(files, none);
  for (;;) {
    const char *name = read_cstr(r);
    if (name == NULL || name[0] == '\0')
      break;
    entry e = {.path = name, .dir = read_uleb(r)};
    if (e.dir >= dirs->len)
      r->failed = true; /* libdw refuses the table */
    read_uleb(r); /* modification time */
    read_uleb(r); /* length */
    g_array_append_val(files, e);
  }
  bool ok = !r->failed;
  if (ok)
    files_build(t, (const char *const *)dirs->pdata, dirs->len, (entry *)(void *)files->data,
                files->len);
  g_ptr_array_free(dirs, TRUE);
  g_array_free(files, TRUE);
  return ok;
}

/* Reads the directory and file tables of a DWARF 5 header. */
static bool read_v5_tables(reader *r, tm__line_table *t, size_t offset_size,
                           const tm__line_sections *sec) {
  size_t ndirs = 0, nfiles = 0;
  entry *dirs = read_v5_entries(r, offset_size, sec, &ndirs);
  entry *files = dirs != NULL ? read_v5_entries(r, offset_size, sec, &nfiles) : NULL;
  bool ok = files != NULL;
  for (size_t i = 0; ok && i < nfiles; i++)
    ok = files[i].path != NULL && files[i].dir < ndirs; /* libdw refuses the table otherwise */
  for (size_t i = 0; ok && i < ndirs; i++)
    ok = dirs[i].path != NULL;
  if (ok && nfiles == 0) {
    static const entry none = {"???", UINT64_MAX}; /* libdw's name for a missing file 0 */
    files_build(t, NULL, 0, &none, 1);
  } else if (ok) {
    const char **dirnames = g_new(const char *, ndirs > 0 ? ndirs : 1);
    for (size_t i = 0; i < ndirs; i++)
      dirnames[i] = dirs[i].path;
    files_build(t, dirnames, ndirs, files, nfiles);
    g_free(dirnames);
  }
  g_free(dirs);
  g_free(files);
  return ok;
}

/* A growing array of rows. */
typedef struct rows {
  row *v;
  size_t n, cap;
} rows;

static void rows_push(rows *rs, uint64_t addr, uint32_t line, uint32_t file) {
  if (rs->n == rs->cap) {
    rs->cap = rs->cap > 0 ? rs->cap * 2 : 1024;
    rs->v = g_renew(row, rs->v, rs->cap);
  }
  rs->v[rs->n++] = (row){.addr = addr, .line = line, .file = file};
}

/* libdw's order: by address, a sequence's end first at one address. Ties keep program order
 * (g_qsort_with_data is stable). */
static gint row_cmp(gconstpointer a, gconstpointer b, gpointer unused) {
  const row *x = a, *y = b;
  if (x->addr != y->addr)
    return x->addr < y->addr ? -1 : 1;
  return (int)(y->file == END_SEQUENCE) - (int)(x->file == END_SEQUENCE);
}

/* Runs the line program in [r->p, r->end) into rs. Returns false on a malformed program. */
static bool run_program(reader *r, rows *rs, unsigned version, uint8_t min_inst_len,
                        uint8_t max_ops, bool default_is_stmt, int8_t line_base,
                        uint8_t line_range, uint8_t opcode_base, const uint8_t *opcode_lengths) {
  uint64_t addr = 0, op_index = 0, file = 1;
  uint64_t line = 1; /* wraps as a hostile program drives it; read back as signed */
  (void)default_is_stmt; /* every row is recorded, is_stmt or not, as libdw does */
  if (max_ops == 0)
    max_ops = 1;
  /* Advances the address by an operation advance, VLIW-aware as the standard says. */
#define ADVANCE(adv)                                                                             \
  do {                                                                                           \
    uint64_t adv_ = (adv);                                                                       \
    if (max_ops == 1) {                                                                          \
      addr += min_inst_len * adv_;                                                               \
    } else {                                                                                     \
      addr += min_inst_len * ((op_index + adv_) / max_ops);                                      \
      op_index = (op_index + adv_) % max_ops;                                                    \
    }                                                                                            \
  } while (0)
#define EMIT()                                                                                   \
  rows_push(rs, addr,                                                                            \
            (int64_t)line > 0 && line <= UINT32_MAX - 1 ? (uint32_t)line : 0,                    \
            file < END_SEQUENCE ? (uint32_t)file : END_SEQUENCE - 1)
  while (r->p < r->end && !r->failed) {
    uint8_t op = *r->p++;
    if (op >= opcode_base) {
      uint8_t adj = (uint8_t)(op - opcode_base);
      ADVANCE(adj / line_range);
      line += (uint64_t)(int64_t)(line_base + adj % line_range);
      EMIT();
      continue;
    }
    switch (op) {
    case 0: { /* extended */
      uint64_t len = read_uleb(r);
      if (len == 0 || !reader_need(r, len))
        return false;
      const uint8_t *next = r->p + len;
      uint8_t sub = *r->p++;
      switch (sub) {
      case 1: /* DW_LNE_end_sequence */
        rows_push(rs, addr, 0, END_SEQUENCE);
        addr = 0;
        op_index = 0;
        file = 1;
        line = 1;
        break;
      case 2: /* DW_LNE_set_address */
        if (len - 1 != 4 && len - 1 != 8 && len - 1 != 2 && len - 1 != 1)
          return false;
        addr = read_uint(r, len - 1);
        op_index = 0;
        break;
      case 3: /* DW_LNE_define_file (DWARF 2-4): compilers do not emit it; libdw knows it */
        return false;
      default: /* set_discriminator, vendor extensions */
        break;
      }
      r->p = next;
      break;
    }
    case 1: EMIT(); break;                             /* DW_LNS_copy */
    case 2: ADVANCE(read_uleb(r)); break;              /* DW_LNS_advance_pc */
    case 3: line += (uint64_t)read_sleb(r); break;     /* DW_LNS_advance_line */
    case 4: file = read_uleb(r); break;                /* DW_LNS_set_file */
    case 5: read_uleb(r); break;                       /* DW_LNS_set_column */
    case 6: case 7: case 10: case 11: break;           /* negate_stmt, basic_block, prologue... */
    case 8: ADVANCE((255 - opcode_base) / line_range); break; /* DW_LNS_const_add_pc */
    case 9: addr += read_uint(r, 2); op_index = 0; break;     /* DW_LNS_fixed_advance_pc */
    default: /* an opcode this version does not define: skip its operands as the header says */
      for (unsigned i = 0; i < opcode_lengths[op - 1]; i++)
        read_uleb(r);
      break;
    }
  }
#undef EMIT
#undef ADVANCE
  return !r->failed;
}

/* Sorts rs into libdw's order and compacts it (see the top of the file) into t. */
static void rows_finish(rows *rs, tm__line_table *t) {
  bool sorted = true;
  for (size_t i = 1; i < rs->n && sorted; i++)
    sorted = row_cmp(&rs->v[i - 1], &rs->v[i], NULL) <= 0;
  if (!sorted)
    g_qsort_with_data(rs->v, (gint)rs->n, sizeof(row), row_cmp, NULL);
  /* libdw marks the highest row as an end of sequence, whether the program ended it or not. */
  if (rs->n > 0)
    rs->v[rs->n - 1].file = END_SEQUENCE;
  size_t m = 0;
  for (size_t i = 0; i < rs->n; i++) {
    const row *cur = &rs->v[i];
    if (i + 1 < rs->n && rs->v[i + 1].addr == cur->addr)
      continue; /* a later row at the same address is the one found */
    if (m > 0) {
      const row *prev = &rs->v[m - 1];
      if (prev->file == cur->file && (cur->file == END_SEQUENCE || prev->line == cur->line))
        continue; /* answers as the row before it */
    }
    rs->v[m++] = *cur;
  }
  t->nrows = m;
  t->rows = m > 0 ? g_renew(row, rs->v, m) : (g_free(rs->v), NULL);
  rs->v = NULL;
  t->memory += m * sizeof(row);
}

/* See line_table.h. */
tm__line_table *tm__line_table_new(const tm__line_sections *sec, uint64_t offset,
                                   const char *comp_dir) {
  if (sec->line == NULL || offset >= sec->line_size)
    return NULL;
  reader r = {.p = sec->line + offset, .end = sec->line + sec->line_size};
  size_t offset_size = 4;
  uint64_t unit_length = read_uint(&r, 4);
  if (unit_length == 0xffffffffu) {
    offset_size = 8;
    unit_length = read_uint(&r, 8);
  } else if (unit_length >= 0xfffffff0u) {
    return NULL;
  }
  if (r.failed || unit_length > (uint64_t)(r.end - r.p))
    return NULL;
  r.end = r.p + unit_length; /* this unit only */
  unsigned version = (unsigned)read_uint(&r, 2);
  if (version < 2 || version > 5)
    return NULL;
  if (version >= 5) {
    read_uint(&r, 1); /* address_size: DW_LNE_set_address says its own */
    if (read_uint(&r, 1) != 0)
      return NULL; /* segmented addresses */
  }
  uint64_t header_length = read_uint(&r, offset_size);
  if (r.failed || header_length > (uint64_t)(r.end - r.p))
    return NULL;
  const uint8_t *program = r.p + header_length;
  uint8_t min_inst_len = (uint8_t)read_uint(&r, 1);
  uint8_t max_ops = version >= 4 ? (uint8_t)read_uint(&r, 1) : 1;
  bool default_is_stmt = read_uint(&r, 1) != 0;
  int8_t line_base = (int8_t)read_uint(&r, 1);
  uint8_t line_range = (uint8_t)read_uint(&r, 1);
  uint8_t opcode_base = (uint8_t)read_uint(&r, 1);
  if (r.failed || line_range == 0 || opcode_base == 0 || !reader_need(&r, opcode_base - 1u))
    return NULL;
  const uint8_t *opcode_lengths = r.p;
  r.p += opcode_base - 1u;

  tm__line_table *t = g_new0(tm__line_table, 1);
  t->memory = sizeof(*t);
  bool ok = version >= 5 ? read_v5_tables(&r, t, offset_size, sec)
                         : read_v4_tables(&r, t, comp_dir);
  if (ok && r.p != program)
    ok = false; /* the tables do not end where header_length says: libdw refuses it too */
  rows rs = {0};
  if (ok) {
    reader prog = {.p = program, .end = r.end};
    ok = run_program(&prog, &rs, version, min_inst_len, max_ops, default_is_stmt, line_base,
                     line_range, opcode_base, opcode_lengths);
  }
  if (!ok) {
    g_free(rs.v);
    tm__line_table_free(t);
    return NULL;
  }
  rows_finish(&rs, t);
  return t;
}

/* See line_table.h. */
void tm__line_table_free(tm__line_table *t) {
  if (t == NULL)
    return;
  g_free(t->rows);
  g_free(t->files);
  g_free(t->names);
  g_free(t);
}

/* See line_table.h. */
bool tm__line_table_lookup(const tm__line_table *t, uint64_t pc, uint32_t *file, uint32_t *line) {
  size_t lo = 0, hi = t->nrows;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (t->rows[mid].addr <= pc)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo == 0 || t->rows[lo - 1].file == END_SEQUENCE)
    return false;
  *file = t->rows[lo - 1].file;
  *line = t->rows[lo - 1].line;
  return true;
}

/* See line_table.h. */
const char *tm__line_table_file(const tm__line_table *t, uint64_t i) {
  return i < t->nfiles ? t->files[i] : NULL;
}

/* See line_table.h. */
size_t tm__line_table_nfiles(const tm__line_table *t) { return t->nfiles; }

/* See line_table.h. */
size_t tm__line_table_memory(const tm__line_table *t) { return t != NULL ? t->memory : 0; }

/* See line_table.h. */
bool tm__line_sections_find(Dwarf *dw, tm__line_sections *sec) {
  *sec = (tm__line_sections){0};
  Elf *elf = dw != NULL ? dwarf_getelf(dw) : NULL;
  size_t shstrndx;
  if (elf == NULL || elf_getshdrstrndx(elf, &shstrndx) != 0)
    return false;
  Elf_Scn *scn = NULL;
  while ((scn = elf_nextscn(elf, scn)) != NULL) {
    GElf_Shdr shdr;
    if (gelf_getshdr(scn, &shdr) == NULL || shdr.sh_type == SHT_NOBITS)
      continue;
    const char *name = elf_strptr(elf, shstrndx, shdr.sh_name);
    const uint8_t **bytes;
    size_t *size;
    if (name == NULL || strncmp(name, ".debug_", 7) != 0)
      continue;
    if (strcmp(name, ".debug_line") == 0) {
      bytes = &sec->line;
      size = &sec->line_size;
    } else if (strcmp(name, ".debug_str") == 0) {
      bytes = &sec->str;
      size = &sec->str_size;
    } else if (strcmp(name, ".debug_line_str") == 0) {
      bytes = &sec->line_str;
      size = &sec->line_str_size;
    } else {
      continue;
    }
    Elf_Data *data = (shdr.sh_flags & SHF_COMPRESSED) == 0 ? elf_getdata(scn, NULL) : NULL;
    if (data == NULL || data->d_buf == NULL)
      continue;
    *bytes = data->d_buf;
    *size = data->d_size;
  }
  return sec->line != NULL;
}
