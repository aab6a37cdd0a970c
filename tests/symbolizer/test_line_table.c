/* test_line_table.c — our DWARF line-table reader (src/symbolizer/line_table.c) answers as libdw
 * does: for every row of every compilation unit, at its address and beside it, the same file and
 * line or the same "no line"; and the same file table. Checked on this test (gcc, the build's
 * level), the helper libraries built by gcc at -O2, -O0 and in DWARF 4 and by clang at -O2 and -O0
 * (when clang is installed), and glibc's separate debug file (when libc6-dbg is installed). Bad
 * input (every truncation of a real program, random bytes) gives NULL, never a crash.
 */
#include <check.h>
#include <elfutils/libdwfl.h>
#include <dwarf.h>
#include <glib.h>
#include <link.h>
#include <stdlib.h>
#include <string.h>

#include "dwfl_reference.h"
#include "line_table.h"
#include "run_suite.h"


/* What comparing one file found. */
typedef struct compared {
  size_t units, rows, files;
} compared;

static const char *comp_dir(Dwarf_Die *cu) {
  Dwarf_Attribute attr;
  return dwarf_formstring(dwarf_attr(cu, DW_AT_comp_dir, &attr));
}

/* Compares our answer for pc with libdw's. */
static void compare_pc(Dwarf_Die *cu, const tm__line_table *t, Dwarf_Addr pc, const char *what) {
  Dwarf_Line *line = dwarf_getsrc_die(cu, pc);
  uint32_t file = 0, lineno = 0;
  bool ours = tm__line_table_lookup(t, pc, &file, &lineno);
  ck_assert_msg(ours == (line != NULL), "%s: pc 0x%lx: ours %d, libdw %d", what,
                (unsigned long)pc, ours, line != NULL);
  if (line == NULL)
    return;
  int want = 0;
  ck_assert_int_eq(dwarf_lineno(line, &want), 0);
  ck_assert_msg(lineno == (uint32_t)want, "%s: pc 0x%lx: line %u, libdw %d", what,
                (unsigned long)pc, lineno, want);
  const char *want_file = dwarf_linesrc(line, NULL, NULL);
  ck_assert_msg(g_strcmp0(tm__line_table_file(t, file), want_file) == 0,
                "%s: pc 0x%lx: file %s, libdw %s", what, (unsigned long)pc,
                tm__line_table_file(t, file), want_file);
}

/* Compares every compilation unit of the ELF file at path (or its separate debug file). */
static compared compare_file(const char *path) {
  compared c = {0};
  Dwfl *dwfl;
  Dwfl_Module *mod = dwfl_reference_open(path, &dwfl);
  Dwarf_Addr bias;
  Dwarf *dw = dwfl_module_getdwarf(mod, &bias);
  if (dw == NULL) {
    dwfl_end(dwfl);
    return c;
  }
  tm__line_sections sec;
  ck_assert_msg(tm__line_sections_find(dw, &sec), "%s: no .debug_line found", path);
  Dwarf_CU *unit = NULL;
  Dwarf_Die cu;
  uint8_t type;
  while (dwarf_get_units(dw, unit, &unit, NULL, &type, &cu, NULL) == 0) {
    Dwarf_Attribute attr;
    Dwarf_Word offset;
    Dwarf_Lines *lines;
    size_t nlines;
    if (dwarf_formudata(dwarf_attr(&cu, DW_AT_stmt_list, &attr), &offset) != 0 ||
        dwarf_getsrclines(&cu, &lines, &nlines) != 0)
      continue;
    tm__line_table *t = tm__line_table_new(&sec, offset, comp_dir(&cu));
    ck_assert_msg(t != NULL, "%s: unit at .debug_line+0x%lx not read", path, (unsigned long)offset);
    c.units++;
    for (size_t i = 0; i < nlines; i++) {
      Dwarf_Addr addr;
      ck_assert_int_eq(dwarf_lineaddr(dwarf_onesrcline(lines, i), &addr), 0);
      compare_pc(&cu, t, addr, path);
      compare_pc(&cu, t, addr + 1, path);
      if (addr > 0)
        compare_pc(&cu, t, addr - 1, path);
      c.rows++;
    }
    Dwarf_Files *files;
    size_t nfiles;
    ck_assert_int_eq(dwarf_getsrcfiles(&cu, &files, &nfiles), 0);
    for (size_t i = 0; i < nfiles + 2; i++) {
      const char *want = i < nfiles ? dwarf_filesrc(files, i, NULL, NULL) : NULL;
      ck_assert_msg(g_strcmp0(tm__line_table_file(t, i), want) == 0, "%s: file %zu: %s, libdw %s",
                    path, i, tm__line_table_file(t, i), want);
    }
    c.files += nfiles;
    ck_assert_uint_gt(tm__line_table_memory(t), 0);
    tm__line_table_free(t);
  }
  dwfl_end(dwfl);
  return c;
}

/* Path of a helper library built beside this executable by tests/symbolizer/meson.build. */
static char *helper_path(const char *name) {
  char *exe = g_file_read_link("/proc/self/exe", NULL);
  ck_assert_ptr_nonnull(exe);
  char *dir = g_path_get_dirname(exe);
  char *path = g_build_filename(dir, name, NULL);
  g_free(dir);
  g_free(exe);
  return path;
}

static void compare_helper(const char *name, bool optional) {
  char *path = helper_path(name);
  if (optional && !g_file_test(path, G_FILE_TEST_EXISTS)) {
    printf("test_line_table: %s not built (no clang or objcopy): skipped\n", name);
    g_free(path);
    return;
  }
  compared c = compare_file(path);
  ck_assert_msg(c.units >= 1 && c.rows >= 5 && c.files >= 1, "%s: %zu units, %zu rows", path,
                c.units, c.rows);
  g_free(path);
}

START_TEST(test_self) {
  char *exe = g_file_read_link("/proc/self/exe", NULL);
  compared c = compare_file(exe);
  ck_assert_uint_ge(c.units, 2); /* this file and line_table.c */
  ck_assert_uint_ge(c.rows, 100);
  g_free(exe);
}
END_TEST

START_TEST(test_gcc_helpers) {
  compare_helper("libtm_symbols_helper.so", false);
  compare_helper("libtm_symbols_helper_O0.so", false);
  compare_helper("libtm_symbols_helper_dwarf4.so", false);
  compare_helper("libtm_symbols_helper_noinline.so", false);
  compare_helper("libtm_symbols_helper_noaranges.so", true);
}
END_TEST

START_TEST(test_clang_helpers) {
  compare_helper("libtm_symbols_helper_clang_O2.so", true);
  compare_helper("libtm_symbols_helper_clang_O0.so", true);
}
END_TEST

static int find_libc(struct dl_phdr_info *info, size_t size, void *data) {
  if (strstr(info->dlpi_name, "/libc.so.6") != NULL) {
    *(char **)data = g_strdup(info->dlpi_name);
    return 1;
  }
  return 0;
}

/* glibc's debug file: thousands of units, DWARF 5 from gcc, sequences out of address order. */
START_TEST(test_libc_debug_file) {
  char *libc = NULL;
  dl_iterate_phdr(find_libc, &libc);
  ck_assert_ptr_nonnull(libc);
  compared c = compare_file(libc);
  if (c.units == 0)
    printf("test_line_table: no debug information for %s (libc6-dbg): skipped\n", libc);
  else
    ck_assert_uint_ge(c.rows, 10000);
  g_free(libc);
}
END_TEST

/* The first unit of this executable's .debug_line with a program of some length (a startup
 * file's unit may hold a header alone), copied so that it can be cut. */
static GByteArray *own_unit(tm__line_sections *sec, Dwfl **dwfl) {
  char *exe = g_file_read_link("/proc/self/exe", NULL);
  Dwfl_Module *mod = dwfl_reference_open(exe, dwfl);
  Dwarf_Addr bias;
  Dwarf *dw = dwfl_module_getdwarf(mod, &bias);
  ck_assert_ptr_nonnull(dw);
  ck_assert(tm__line_sections_find(dw, sec));
  size_t off = 0;
  uint32_t len = 0;
  for (;;) {
    ck_assert_uint_le(off + 4, sec->line_size);
    memcpy(&len, sec->line + off, 4);
    ck_assert_uint_lt(len, 0xfffffff0u);
    ck_assert_uint_le(off + len + 4u, sec->line_size);
    if (len >= 512)
      break;
    off += len + 4u;
  }
  GByteArray *unit = g_byte_array_new();
  g_byte_array_append(unit, sec->line + off, len + 4u);
  g_free(exe);
  return unit;
}

/* Every truncation of a real unit, its length cut to match: refused while the header is cut or
 * an opcode is (as libdw refuses them), read within its bytes otherwise (the program just ends
 * early); never a read past them (the sanitizer builds check). */
START_TEST(test_truncated_units) {
  tm__line_sections sec;
  Dwfl *dwfl;
  GByteArray *unit = own_unit(&sec, &dwfl);
  tm__line_table *whole = tm__line_table_new(
      &(tm__line_sections){unit->data, unit->len, sec.str, sec.str_size, sec.line_str,
                           sec.line_str_size},
      0, "/nowhere");
  ck_assert_ptr_nonnull(whole);
  tm__line_table_free(whole);
  size_t refused = 0, read = 0;
  for (size_t len = 0; len < unit->len; len++) {
    /* A copy of exactly len bytes, so that any read past them is one past a heap block. */
    uint8_t *cut = g_memdup2(unit->data, len);
    if (len >= 4) {
      uint32_t unit_length = (uint32_t)(len - 4);
      memcpy(cut, &unit_length, 4);
    }
    tm__line_sections s = {cut, len, sec.str, sec.str_size, sec.line_str, sec.line_str_size};
    tm__line_table *t = tm__line_table_new(&s, 0, "/nowhere");
    if (t == NULL)
      refused++;
    else
      read++;
    tm__line_table_free(t);
    g_free(cut);
  }
  ck_assert_uint_gt(refused, 20); /* the header of a DWARF 5 unit is longer than that */
  ck_assert_uint_gt(read, unit->len / 4); /* most opcodes are one byte */
  g_byte_array_free(unit, TRUE);
  dwfl_end(dwfl);
}
END_TEST

/* Random bytes after a valid header, and random headers: no crash, and what is read is usable. */
START_TEST(test_random_programs) {
  tm__line_sections sec;
  Dwfl *dwfl;
  GByteArray *unit = own_unit(&sec, &dwfl);
  GRand *rand = g_rand_new_with_seed(42);
  for (int round = 0; round < 2000; round++) {
    uint8_t *copy = g_memdup2(unit->data, unit->len);
    /* Keep the unit length (else nearly every round is refused at once); scramble the rest. */
    size_t from = round % 2 == 0 ? 4 : unit->len / 2;
    for (int k = 0; k < 8; k++)
      copy[from + (size_t)g_rand_int_range(rand, 0, (gint32)(unit->len - from))] =
          (uint8_t)g_rand_int(rand);
    tm__line_sections s = {copy, unit->len, sec.str, sec.str_size, sec.line_str,
                           sec.line_str_size};
    tm__line_table *t = tm__line_table_new(&s, 0, NULL);
    if (t != NULL) {
      uint32_t file, line;
      for (uint64_t pc = 0; pc < 4096; pc += 7)
        if (tm__line_table_lookup(t, pc, &file, &line))
          (void)tm__line_table_file(t, file); /* in range or NULL */
    }
    tm__line_table_free(t);
    g_free(copy);
  }
  g_rand_free(rand);
  /* An offset past the section, and no section at all. */
  ck_assert_ptr_null(tm__line_table_new(&sec, sec.line_size, NULL));
  ck_assert_ptr_null(tm__line_table_new(&(tm__line_sections){0}, 0, NULL));
  tm__line_table_free(NULL);
  g_byte_array_free(unit, TRUE);
  dwfl_end(dwfl);
}
END_TEST

static Suite *line_table_suite(void) {
  Suite *s = suite_create("line_table");
  TCase *tc = tcase_create("libdw");
  tcase_set_timeout(tc, 240);
  tcase_add_test(tc, test_self);
  tcase_add_test(tc, test_gcc_helpers);
  tcase_add_test(tc, test_clang_helpers);
  tcase_add_test(tc, test_libc_debug_file);
  suite_add_tcase(s, tc);
  TCase *bad = tcase_create("bad input");
  tcase_add_test(bad, test_truncated_units);
  tcase_add_test(bad, test_random_programs);
  suite_add_tcase(s, bad);
  return s;
}

int main(void) { return run_suite(line_table_suite()); }
