/* test_symbols_scopes.c — the resolver's chains of inlined calls agree with a plain walk of the
 * DIE tree (dwarf_haspc on every DIE that can hold code), at addresses sampled from every line table of this test, of the helper
 * libraries (gcc -O2, -O0, DWARF 4, a unit without inlined calls; clang -O2 and -O0 when clang is
 * installed) and of libc (when libc6-dbg is installed): the same number of inlined frames, the same
 * callee names, the same call lines. The resolver indexes a unit's functions without entering
 * them, enters one function when a frame falls in it, and skips units whose abbreviations hold no
 * inlined call; the reference walks the whole DIE tree for each address.
 */
#include <check.h>
#include <dlfcn.h>
#include <dwarf.h>
#include <elfutils/libdwfl.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dwfl_reference.h"
#include "engine.h"
#include "run_suite.h"
#include "symbols.h"

#define MAX_FRAMES 64


static size_t resolve(uintptr_t ip, tm_frame *out, size_t max) {
  tm__guard_enter();
  size_t n = tm__symbols_resolve(ip, out, max);
  tm__guard_leave();
  return n;
}

static unsigned int call_line(Dwarf_Die *die) {
  Dwarf_Attribute attr;
  Dwarf_Word line;
  return dwarf_formudata(dwarf_attr(die, DW_AT_call_line, &attr), &line) == 0 ? (unsigned)line : 0;
}

/* The reference: the DIEs of functions and inlined calls holding pc, found by a plain recursive
 * walk of the whole unit (dwarf_haspc on every DIE that can hold code), appended outermost first
 * to chain. dwarf_getscopes() cannot serve: past an inlined call it continues with the scopes of
 * the callee's abstract definition, not with its caller. */
static void reference_walk(Dwarf_Die *parent, Dwarf_Addr pc, GArray *chain, int depth) {
  Dwarf_Die child;
  if (depth > 256 || dwarf_child(parent, &child) != 0)
    return;
  do {
    int tag = dwarf_tag(&child);
    bool holds;
    switch (tag) {
    case DW_TAG_subprogram:
    case DW_TAG_inlined_subroutine:
    case DW_TAG_entry_point:
      if (dwarf_haspc(&child, pc) <= 0)
        break;
      g_array_append_val(chain, child);
      reference_walk(&child, pc, chain, depth + 1);
      break;
    case DW_TAG_lexical_block:
    case DW_TAG_try_block:
    case DW_TAG_catch_block:
      /* A block without addresses of its own is entered: what it holds may have some. */
      holds = dwarf_haspc(&child, pc) > 0 ||
              (!dwarf_hasattr(&child, DW_AT_low_pc) && !dwarf_hasattr(&child, DW_AT_ranges));
      if (holds)
        reference_walk(&child, pc, chain, depth + 1);
      break;
    case DW_TAG_namespace:
    case DW_TAG_module:
      reference_walk(&child, pc, chain, depth + 1);
      break;
    default:
      break;
    }
  } while (dwarf_siblingof(&child, &child) == 0);
}

/* Compares the resolver's frames for DWARF address pc of a module loaded at base with the
 * reference walk. Returns the number of inlined frames checked there. */
static size_t compare_pc(const char *path, uintptr_t base, Dwarf_Die *cu, Dwarf_Addr pc) {
  GArray *chain = g_array_new(FALSE, FALSE, sizeof(Dwarf_Die));
  reference_walk(cu, pc, chain, 0);
  /* Innermost first: the inlined calls, up to the innermost function that holds them. */
  Dwarf_Die *inlined[MAX_FRAMES];
  size_t ninlined = 0;
  bool in_function = false;
  for (guint i = chain->len; i-- > 0;) {
    Dwarf_Die *die = &g_array_index(chain, Dwarf_Die, i);
    if (dwarf_tag(die) != DW_TAG_inlined_subroutine) {
      in_function = true;
      break;
    }
    if (ninlined < MAX_FRAMES - 1)
      inlined[ninlined++] = die;
  }
  if (!in_function) {
    g_array_free(chain, TRUE);
    return 0;
  }
  tm_frame f[MAX_FRAMES];
  size_t n = resolve(base + pc + 1, f, MAX_FRAMES); /* the resolver looks up ip - 1 */
  ck_assert_msg((f[0].flags & (TM_FRAME_NO_DEBUG_INFO | TM_FRAME_UNKNOWN)) == 0,
                "%s: pc 0x%lx: no debug information found (%s %s %s flags %u)", path,
                (unsigned long)pc, f[0].filename, f[0].function, f[0].module, f[0].flags);
  ck_assert_msg(n == ninlined + 1, "%s: pc 0x%lx: %zu frames, the walk finds %zu inlined calls",
                path, (unsigned long)pc, n, ninlined);
  for (size_t i = 0; i < ninlined; i++) {
    const char *want = dwarf_diename(inlined[i]);
    ck_assert_uint_eq(f[i].flags, TM_FRAME_INLINED);
    if (want != NULL)
      ck_assert_msg(g_strcmp0(f[i].function, want) == 0, "%s: pc 0x%lx: frame %zu is %s, not %s",
                    path, (unsigned long)pc, i, f[i].function, want);
    ck_assert_msg(f[i + 1].lineno == call_line(inlined[i]),
                  "%s: pc 0x%lx: frame %zu at line %u, called at line %u", path,
                  (unsigned long)pc, i + 1, f[i + 1].lineno, call_line(inlined[i]));
  }
  ck_assert_uint_eq(f[n - 1].flags & TM_FRAME_INLINED, 0);
  g_array_free(chain, TRUE);
  return ninlined;
}

/* Compares every step-th row address of every unit of the file at path, loaded at base. Returns
 * the number of addresses compared; *inlined counts the inlined frames among them. The reference
 * maps the file a second time (libelf mmap()s it) before the resolver's first look at the module:
 * the resolver takes its modules from the loader, not from the process's mappings. */
static size_t compare_module(const char *path, uintptr_t base, size_t step, size_t *inlined) {
  Dwfl *dwfl;
  Dwfl_Module *mod = dwfl_reference_open(path, &dwfl);
  Dwarf_Addr bias;
  Dwarf *dw = dwfl_module_getdwarf(mod, &bias);
  size_t compared = 0, row = 0;
  Dwarf_CU *unit = NULL;
  Dwarf_Die cu;
  uint8_t type;
  while (dw != NULL && dwarf_get_units(dw, unit, &unit, NULL, &type, &cu, NULL) == 0) {
    Dwarf_Lines *lines;
    size_t nlines;
    if (dwarf_getsrclines(&cu, &lines, &nlines) != 0)
      continue;
    for (size_t i = 0; i < nlines; i++) {
      Dwarf_Line *line = dwarf_onesrcline(lines, i);
      bool end = false;
      Dwarf_Addr addr;
      if (dwarf_lineendsequence(line, &end) != 0 || end || dwarf_lineaddr(line, &addr) != 0 ||
          addr == 0 || row++ % step != 0)
        continue;
      *inlined += compare_pc(path, base, &cu, addr);
      compared++;
    }
  }
  dwfl_end(dwfl);
  printf("test_symbols_scopes: %s: %zu addresses, %zu inlined frames\n", path, compared,
         *inlined);
  return compared;
}

/* Path of a helper library built beside this executable by tests/symbolizer/meson.build. */
static char *helper_path(const char *name) {
  char *exe = g_file_read_link("/proc/self/exe", NULL);
  char *dir = g_path_get_dirname(exe);
  char *path = g_build_filename(dir, name, NULL);
  g_free(dir);
  g_free(exe);
  return path;
}

START_TEST(test_helpers) {
  static const char *const names[] = {
      "libtm_symbols_helper.so",        "libtm_symbols_helper_O0.so",
      "libtm_symbols_helper_dwarf4.so", "libtm_symbols_helper_noinline.so",
      "libtm_symbols_helper_clang_O2.so", "libtm_symbols_helper_clang_O0.so"};
  size_t total_inlined = 0;
  for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
    char *path = helper_path(names[i]);
    if (!g_file_test(path, G_FILE_TEST_EXISTS)) {
      printf("test_symbols_scopes: %s not built (no clang): skipped\n", names[i]);
      g_free(path);
      continue;
    }
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    ck_assert_msg(handle != NULL, "%s", dlerror());
    struct link_map *map = NULL;
    ck_assert_int_eq(dlinfo(handle, RTLD_DI_LINKMAP, &map), 0);
    size_t inlined = 0;
    size_t n = compare_module(path, map->l_addr, 1, &inlined);
    ck_assert_msg(n >= 5, "%s: %zu addresses", path, n);
    total_inlined += inlined;
    dlclose(handle);
    g_free(path);
  }
  ck_assert_uint_ge(total_inlined, 3); /* each gcc build of helper_inlined has one */
}
END_TEST

/* What loaded_base() looks for and finds. */
typedef struct object_query {
  const char *name; /* a part of the object's file name, "" for the program itself */
  uintptr_t base;
  const char *file;
} object_query;

static int find_base(struct dl_phdr_info *info, size_t size, void *data) {
  object_query *q = data;
  bool program = q->name[0] == '\0' && info->dlpi_name[0] == '\0';
  if (!program && (q->name[0] == '\0' || strstr(info->dlpi_name, q->name) == NULL))
    return 0;
  q->base = info->dlpi_addr;
  q->file = info->dlpi_name;
  return 1;
}

/* The load address and file name of the first loaded object whose name contains name ("" for
 * the program itself). */
static uintptr_t loaded_base(const char *name, const char **file) {
  object_query q = {.name = name};
  ck_assert_int_eq(dl_iterate_phdr(find_base, &q), 1);
  *file = q.file;
  return q.base;
}

START_TEST(test_self) {
  const char *file;
  uintptr_t base = loaded_base("", &file);
  char *exe = g_file_read_link("/proc/self/exe", NULL);
  size_t inlined = 0;
  ck_assert_uint_ge(compare_module(exe, base, 3, &inlined), 100);
  g_free(exe);
}
END_TEST

/* glibc built with -O2: inlined calls everywhere, nested a few deep. */
START_TEST(test_libc) {
  const char *file;
  uintptr_t base = loaded_base("/libc.so.6", &file);
  size_t inlined = 0;
  size_t n = compare_module(file, base, 97, &inlined);
  if (n == 0) {
    printf("test_symbols_scopes: no debug information for %s (libc6-dbg): skipped\n", file);
    return;
  }
  ck_assert_uint_ge(n, 1000);
  ck_assert_uint_ge(inlined, 100);
}
END_TEST

int main(void) {
  Suite *s = suite_create("symbols_scopes");
  TCase *tc = tcase_create("walk");
  tcase_set_timeout(tc, 240);
  tcase_add_test(tc, test_helpers);
  tcase_add_test(tc, test_self);
  tcase_add_test(tc, test_libc);
  suite_add_tcase(s, tc);
  return run_suite(s);
}
