/* test_symbols.c — resolving return addresses: this file's own functions with their lines, an
 * inlined call as its own frame, libraries with and without debug information, a library
 * dlopen()ed after resolution began (also in a forked child), unknown addresses, and the cache.
 * Linked statically (the internal archive), it reaches the resolver through the loader, which
 * finds the symbolizer module in the build tree.
 *
 * Return addresses are captured by capture_ip(), which returns its own return address: a real
 * return address into the caller, as the tracer captures them. The resolver looks up ip - 1.
 */
#include <check.h>
#include <link.h>
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <gelf.h>
#include <sys/mman.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine.h"
#include "run_suite.h"
#include "symbols.h"

#define MAX_FRAMES 16

/* Never inlined, cloned or assumed pure, so every call is a real call (GCC's noipa; clang has
 * no such attribute, and the empty asm with a memory clobber keeps it from thinking the
 * function pure). */
#if defined(__clang__)
#define NOIPA __attribute__((noinline))
#else
#define NOIPA __attribute__((noipa))
#endif

static NOIPA uintptr_t capture_ip(void) {
  __asm__ volatile("" ::: "memory");
  return (uintptr_t)__builtin_return_address(0);
}

static NOIPA uintptr_t call_site(unsigned int *line) {
  uintptr_t ip = capture_ip(); *line = __LINE__;
  return ip;
}

static inline __attribute__((always_inline)) uintptr_t inlined_helper(unsigned int *line) {
  uintptr_t ip = capture_ip(); *line = __LINE__;
  return ip;
}

static NOIPA uintptr_t inline_caller(unsigned int *inl_line,
                                                      unsigned int *call_line) {
  uintptr_t ip = inlined_helper(inl_line); *call_line = __LINE__;
  return ip;
}

/* A C function whose symbol is a C++ mangled name (foo::bar()), to see what a C program makes of
 * one. */
NOIPA uintptr_t mangled_call_site(unsigned int *line) __asm__("_ZN3foo3barEPj");
NOIPA uintptr_t mangled_call_site(unsigned int *line) {
  uintptr_t ip = capture_ip(); *line = __LINE__;
  return ip;
}

/* Resolves ip with the reentrancy guard held, as the analysis layer calls the resolver. */
static size_t resolve(uintptr_t ip, tm_frame *out, size_t max) {
  tm__guard_enter();
  size_t n = tm__symbols_resolve(ip, out, max);
  tm__guard_leave();
  return n;
}

static bool ends_with(const char *s, const char *suffix) {
  return s != NULL && g_str_has_suffix(s, suffix);
}

/* Path of a helper library built beside this executable by tests/meson.build. */
static char *helper_path(const char *name) {
  char *exe = g_file_read_link("/proc/self/exe", NULL);
  ck_assert_ptr_nonnull(exe);
  char *dir = g_path_get_dirname(exe);
  char *path = g_build_filename(dir, name, NULL);
  g_free(dir);
  g_free(exe);
  return path;
}

typedef uintptr_t (*helper_fn)(uintptr_t (*cb)(void), unsigned int *line);

static helper_fn helper_open(const char *name, void **handle) {
  char *path = helper_path(name);
  *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  ck_assert_msg(*handle != NULL, "dlopen %s: %s", path, dlerror());
  g_free(path);
  helper_fn fn = (helper_fn)dlsym(*handle, "symbols_helper_call");
  ck_assert_ptr_nonnull(fn);
  return fn;
}

START_TEST(test_own_function) {
  unsigned int line;
  uintptr_t ip = call_site(&line);
  tm_frame f[MAX_FRAMES];
  size_t n = resolve(ip, f, MAX_FRAMES);
  ck_assert_uint_eq(n, 1);
  ck_assert_msg(ends_with(f[0].filename, "tests/symbolizer/test_symbols.c"), "filename %s", f[0].filename);
  /* Absolute, whatever directory the compiler ran in, so the source line can be read. */
  ck_assert_msg(g_path_is_absolute(f[0].filename) && strstr(f[0].filename, "/../") == NULL &&
                    g_file_test(f[0].filename, G_FILE_TEST_IS_REGULAR),
                "filename %s", f[0].filename);
  ck_assert_uint_eq(f[0].lineno, line);
  ck_assert_str_eq(f[0].function, "call_site");
  ck_assert_uint_eq(f[0].flags, 0);
  ck_assert_uint_eq(f[0].ip, ip);
  char *exe = g_file_read_link("/proc/self/exe", NULL);
  ck_assert_str_eq(f[0].module, exe);
  g_free(exe);
  /* Strings are interned: comparable by pointer. */
  ck_assert_ptr_eq(f[0].filename, g_intern_string(f[0].filename));
  ck_assert_ptr_eq(f[0].function, g_intern_string("call_site"));
}
END_TEST

/* Names are demangled with libstdc++'s __cxa_demangle only when the process already has it: a C
 * program keeps the mangled name, and resolving never loads libstdc++ into it. A sanitizer
 * runtime (the UBSan build) brings libstdc++ along: then the name is demangled. (test_cxx checks
 * that a C++ program gets demangled names.) */
START_TEST(test_c_program_never_loads_libstdcxx) {
  void *had = dlopen("libstdc++.so.6", RTLD_LAZY | RTLD_NOLOAD);
  unsigned int line;
  uintptr_t ip = mangled_call_site(&line);
  tm_frame f[MAX_FRAMES];
  size_t n = resolve(ip, f, MAX_FRAMES);
  ck_assert_uint_eq(n, 1);
  ck_assert_uint_eq(f[0].lineno, line);
  if (had == NULL) {
    ck_assert_str_eq(f[0].function, "_ZN3foo3barEPj");
    ck_assert_ptr_null(dlopen("libstdc++.so.6", RTLD_LAZY | RTLD_NOLOAD));
  } else {
    ck_assert_str_eq(f[0].function, "foo::bar(unsigned int*)");
    dlclose(had);
  }
}
END_TEST

START_TEST(test_inlined_frame) {
  unsigned int inl_line, call_line;
  uintptr_t ip = inline_caller(&inl_line, &call_line);
  tm_frame f[MAX_FRAMES];
  size_t n = resolve(ip, f, MAX_FRAMES);
  ck_assert_uint_eq(n, 2);
  /* Most recent first: the inlined callee, then the function it was inlined into. */
  ck_assert_msg(ends_with(f[0].filename, "tests/symbolizer/test_symbols.c"), "filename %s", f[0].filename);
  ck_assert_uint_eq(f[0].lineno, inl_line);
  ck_assert_str_eq(f[0].function, "inlined_helper");
  ck_assert_uint_eq(f[0].flags, TM_FRAME_INLINED);
  ck_assert_ptr_eq(f[1].filename, f[0].filename);
  ck_assert_uint_eq(f[1].lineno, call_line);
  ck_assert_str_eq(f[1].function, "inline_caller");
  ck_assert_uint_eq(f[1].flags, 0);
  ck_assert_uint_eq(f[0].ip, ip);
  ck_assert_uint_eq(f[1].ip, ip);
  /* With room for one frame, the most recent one. */
  tm_frame one;
  ck_assert_uint_eq(resolve(ip, &one, 1), 1);
  ck_assert_str_eq(one.function, "inlined_helper");
  ck_assert_uint_eq(resolve(ip, &one, 0), 0);
}
END_TEST

/* dl_iterate_phdr, an exported libc function, calls back into us directly: the callback's return
 * address is inside it, so the frame has an ELF symbol even without libc's debug information. (A
 * static helper such as qsort's msort has none in a stripped libc.) */
static uintptr_t libc_ip;

static int phdr_capture(struct dl_phdr_info *info, size_t size, void *data) {
  libc_ip = (uintptr_t)__builtin_return_address(0);
  return 1; /* stop after the first object */
}

START_TEST(test_libc_frame) {
  dl_iterate_phdr(phdr_capture, NULL);
  ck_assert_uint_ne(libc_ip, 0);
  tm_frame f[MAX_FRAMES];
  size_t n = resolve(libc_ip, f, MAX_FRAMES);
  ck_assert_uint_ge(n, 1);
  const tm_frame *outer = &f[n - 1];
  ck_assert_msg(ends_with(outer->module, "/libc.so.6"), "module %s", outer->module);
  ck_assert_ptr_nonnull(outer->function);
  if (f[0].flags & TM_FRAME_NO_DEBUG_INFO) {
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(f[0].filename, "libc.so.6");
    ck_assert_uint_eq(f[0].lineno, 0);
  } else {
    /* This machine has libc's debug information (libc6-dbg): a real source position. */
    ck_assert_uint_gt(f[0].lineno, 0);
    ck_assert_msg(ends_with(f[0].filename, ".c"), "filename %s", f[0].filename);
  }
}
END_TEST

/* A library built without any DWARF: module name, ELF symbol, no file or line. The same for a
 * stripped library whose .gnu_debuglink names a file that is another build's debug file. */
START_TEST(test_no_debug_info_frame) {
  static const char *const names[] = {"libtm_symbols_helper_nodebug.so",
                                      "libtm_symbols_helper_debuglink_stale.so"};
  for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
    char *path = helper_path(names[i]);
    bool built = g_file_test(path, G_FILE_TEST_EXISTS);
    g_free(path);
    if (!built) /* objcopy missing at build time */
      continue;
    void *handle;
    helper_fn call = helper_open(names[i], &handle);
    unsigned int line;
    uintptr_t ip = call(capture_ip, &line);
    tm_frame f[MAX_FRAMES];
    size_t n = resolve(ip, f, MAX_FRAMES);
    ck_assert_uint_eq(n, 1);
    ck_assert_msg(f[0].flags == TM_FRAME_NO_DEBUG_INFO, "%s: flags %u", names[i], f[0].flags);
    ck_assert_str_eq(f[0].filename, names[i]);
    ck_assert_uint_eq(f[0].lineno, 0);
    ck_assert_str_eq(f[0].function, "symbols_helper_call");
    ck_assert_msg(ends_with(f[0].module, names[i]), "module %s", f[0].module);
    dlclose(handle);
  }
}
END_TEST

/* glib has no debug information on a stock system: its SONAME and the symbol, as in the issue. */
static uintptr_t glib_ip;

static void foreach_capture(gpointer data, gpointer user_data) {
  glib_ip = (uintptr_t)__builtin_return_address(0);
}

START_TEST(test_glib_frame) {
  GPtrArray *a = g_ptr_array_new();
  g_ptr_array_add(a, a);
  g_ptr_array_foreach(a, foreach_capture, NULL);
  g_ptr_array_free(a, TRUE);
  tm_frame f[MAX_FRAMES];
  size_t n = resolve(glib_ip, f, MAX_FRAMES);
  ck_assert_uint_ge(n, 1);
  ck_assert_msg(strstr(f[n - 1].module, "/libglib-2.0.so") != NULL, "module %s", f[n - 1].module);
  ck_assert_str_eq(f[n - 1].function, "g_ptr_array_foreach");
  if (f[0].flags & TM_FRAME_NO_DEBUG_INFO)
    ck_assert_str_eq(f[0].filename, "libglib-2.0.so.0");
}
END_TEST

typedef uintptr_t (*helper_inline_fn)(uintptr_t (*cb)(void), unsigned int *inl_line,
                                      unsigned int *call_line);

/* The helper library as gcc (-O2, -O0, DWARF 4) and clang (-O2, -O0) build it: each call resolves
 * to its exact file and line, and an inlined call to the callee at its line, then its caller at
 * the line of the inlined call. Also as a unit without any inlined call, whose DIEs are not
 * walked, as a unit without .debug_aranges between two units with them, and stripped with its
 * DWARF in the file its .gnu_debuglink names (with a build-id, and without one), and with split
 * DWARF (gcc's and clang's -gsplit-dwarf: the inlined calls are in the .dwo file). */
START_TEST(test_compilers_and_levels) {
  static const char *const names[] = {
      "libtm_symbols_helper.so",          "libtm_symbols_helper_O0.so",
      "libtm_symbols_helper_dwarf4.so",   "libtm_symbols_helper_clang_O2.so",
      "libtm_symbols_helper_clang_O0.so", "libtm_symbols_helper_noaranges.so",
      "libtm_symbols_helper_noinline.so", "libtm_symbols_helper_mixed.so",
      "libtm_symbols_helper_debuglink.so", "libtm_symbols_helper_debuglink_crc.so",
      "libtm_symbols_helper_split.so",    "libtm_symbols_helper_clang_split.so"};
  size_t checked = 0;
  for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
    char *path = helper_path(names[i]);
    bool built = g_file_test(path, G_FILE_TEST_EXISTS);
    g_free(path);
    if (!built) { /* clang or objcopy missing at build time */
      printf("test_compilers_and_levels: %s not built: skipped\n", names[i]);
      continue;
    }
    void *handle;
    helper_fn call = helper_open(names[i], &handle);
    helper_inline_fn inline_call =
        (helper_inline_fn)dlsym(handle, "symbols_helper_inline_call");
    bool has_inline = strstr(names[i], "noinline") == NULL; /* a unit without inlined calls */
    ck_assert(has_inline == (inline_call != NULL));
    unsigned int line, inl_line, call_line;
    tm_frame f[MAX_FRAMES];
    uintptr_t ip = call(capture_ip, &line);
    ck_assert_uint_eq(resolve(ip, f, MAX_FRAMES), 1);
    ck_assert_msg(ends_with(f[0].filename, "tests/symbolizer/symbols_helper.c"), "%s: %s",
                  names[i], f[0].filename);
    ck_assert_msg(f[0].lineno == line, "%s: line %u, not %u", names[i], f[0].lineno, line);
    ck_assert_str_eq(f[0].function, "symbols_helper_call");
    ck_assert_uint_eq(f[0].flags, 0);

    if (!has_inline) {
      dlclose(handle);
      checked++;
      continue;
    }
    ip = inline_call(capture_ip, &inl_line, &call_line);
    size_t n = resolve(ip, f, MAX_FRAMES);
    ck_assert_msg(n == 2, "%s: %zu frames", names[i], n);
    ck_assert_msg(f[0].lineno == inl_line, "%s: inlined line %u, not %u", names[i], f[0].lineno,
                  inl_line);
    ck_assert_str_eq(f[0].function, "helper_inlined");
    ck_assert_uint_eq(f[0].flags, TM_FRAME_INLINED);
    ck_assert_msg(ends_with(f[0].filename, "tests/symbolizer/symbols_helper.c"), "%s: %s",
                  names[i], f[0].filename);
    ck_assert_ptr_eq(f[1].filename, f[0].filename);
    ck_assert_msg(f[1].lineno == call_line, "%s: caller line %u, not %u", names[i], f[1].lineno,
                  call_line);
    ck_assert_str_eq(f[1].function, "symbols_helper_inline_call");
    ck_assert_uint_eq(f[1].flags, 0);
    dlclose(handle);
    checked++;
  }
  ck_assert_uint_ge(checked, 3);
}
END_TEST

/* The helper is loaded after the first resolution read the process's modules. */
START_TEST(test_dlopen_after_first_resolution) {
  unsigned int line;
  tm_frame f[MAX_FRAMES];
  ck_assert_uint_eq(resolve(call_site(&line), f, MAX_FRAMES), 1);
  void *handle;
  helper_fn call = helper_open("libtm_symbols_helper.so", &handle);
  uintptr_t ip = call(capture_ip, &line);
  size_t n = resolve(ip, f, MAX_FRAMES);
  ck_assert_uint_eq(n, 1);
  ck_assert_msg(ends_with(f[0].filename, "tests/symbolizer/symbols_helper.c"), "filename %s", f[0].filename);
  ck_assert_uint_eq(f[0].lineno, line);
  ck_assert_str_eq(f[0].function, "symbols_helper_call");
  ck_assert_uint_eq(f[0].flags, 0);
  ck_assert_msg(ends_with(f[0].module, "/libtm_symbols_helper.so"), "module %s", f[0].module);
  dlclose(handle);
}
END_TEST

/* dlclose() then dlopen() of another library: it usually lands at the same addresses, with the
 * same code at the same offsets here, and must not be resolved as the first one. */
START_TEST(test_dlclose_then_other_library) {
  void *handle;
  unsigned int line;
  tm_frame f[MAX_FRAMES];
  helper_fn call = helper_open("libtm_symbols_helper_nodebug.so", &handle);
  uintptr_t ip = call(capture_ip, &line);
  ck_assert_uint_eq(resolve(ip, f, MAX_FRAMES), 1);
  ck_assert_uint_eq(f[0].flags, TM_FRAME_NO_DEBUG_INFO);
  dlclose(handle);
  call = helper_open("libtm_symbols_helper.so", &handle);
  ip = call(capture_ip, &line);
  ck_assert_uint_eq(resolve(ip, f, MAX_FRAMES), 1);
  ck_assert_uint_eq(f[0].flags, 0);
  ck_assert_msg(ends_with(f[0].filename, "tests/symbolizer/symbols_helper.c"), "filename %s", f[0].filename);
  ck_assert_uint_eq(f[0].lineno, line);
  dlclose(handle);
}
END_TEST

/* The address of the vDSO's function symbol name, read from its image in memory, or 0. */
static uintptr_t vdso_function(const char *name) {
  const unsigned char *image = (const unsigned char *)getauxval(AT_SYSINFO_EHDR);
  if (image == NULL)
    return 0;
  const ElfW(Ehdr) *ehdr = (const ElfW(Ehdr) *)image;
  size_t size = ehdr->e_shoff + (size_t)ehdr->e_shnum * ehdr->e_shentsize;
  elf_version(EV_CURRENT);
  Elf *elf = elf_memory((char *)image, size);
  uintptr_t found = 0;
  Elf_Scn *scn = NULL;
  while (found == 0 && elf != NULL && (scn = elf_nextscn(elf, scn)) != NULL) {
    GElf_Shdr shdr;
    if (gelf_getshdr(scn, &shdr) == NULL || shdr.sh_type != SHT_DYNSYM || shdr.sh_entsize == 0)
      continue;
    Elf_Data *data = elf_getdata(scn, NULL);
    for (size_t i = 1; data != NULL && i < shdr.sh_size / shdr.sh_entsize; i++) {
      GElf_Sym sym;
      const char *sname = gelf_getsym(data, (int)i, &sym) != NULL
                              ? elf_strptr(elf, shdr.sh_link, sym.st_name)
                              : NULL;
      if (sname != NULL && strcmp(sname, name) == 0 && GELF_ST_TYPE(sym.st_info) == STT_FUNC) {
        found = (uintptr_t)image + sym.st_value; /* the vDSO is linked at 0 */
        break;
      }
    }
  }
  elf_end(elf);
  return found;
}

/* Aliases at one address are named as programs call them: glibc defines strdup and getdelim as
 * weak aliases of its global __strdup and __getdelim, and a leak through strdup() reads "from
 * strdup()". */
START_TEST(test_weak_alias_named) {
  const char *names[] = {"strdup", "getdelim"};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
    uintptr_t fn = (uintptr_t)dlsym(RTLD_DEFAULT, names[i]);
    ck_assert_msg(fn != 0, "%s", names[i]);
    tm_frame f[MAX_FRAMES];
    ck_assert_uint_ge(resolve(fn + 2, f, MAX_FRAMES), 1);
    ck_assert_str_eq(f[0].function, names[i]);
  }
}
END_TEST

/* The vDSO has no file: its module is read from memory, and its functions are named, by the name
 * programs call (its weak clock_gettime, rather than the global __vdso_clock_gettime at the same
 * address). */
START_TEST(test_vdso_frame) {
  uintptr_t fn = vdso_function("__vdso_clock_gettime");
  if (fn == 0) {
    printf("test_vdso_frame: no vDSO or no __vdso_clock_gettime in it: skipped\n");
    return;
  }
  tm_frame f[MAX_FRAMES];
  ck_assert_uint_eq(resolve(fn + 2, f, MAX_FRAMES), 1); /* the resolver looks up ip - 1 */
  ck_assert_str_eq(f[0].function, "clock_gettime");
  ck_assert_str_eq(f[0].filename, "linux-vdso.so.1");
  ck_assert_uint_eq(f[0].flags, TM_FRAME_NO_DEBUG_INFO);
  printf("test_vdso_frame: module %s\n", f[0].module);
}
END_TEST

/* A library replaced on disk after it was loaded (renamed over, as package managers do): the
 * file now at its path is another build, whose code lies elsewhere. It is refused, its
 * build-id not being the loaded one's: the frame shows no file:line rather than a wrong one. */
START_TEST(test_replaced_library_file) {
  char *dir = g_dir_make_tmp("tm_symbols_XXXXXX", NULL);
  ck_assert_ptr_nonnull(dir);
  char *loaded = g_build_filename(dir, "libreplaced.so", NULL);
  char *other = g_build_filename(dir, "libreplaced.so.new", NULL);
  char *first = helper_path("libtm_symbols_helper.so");
  char *second = helper_path("libtm_symbols_helper_dwarf4.so"); /* other code than the default build, even at -O0 */
  gchar *bytes;
  gsize size;
  ck_assert(g_file_get_contents(first, &bytes, &size, NULL));
  ck_assert(g_file_set_contents(loaded, bytes, (gssize)size, NULL));
  g_free(bytes);
  ck_assert(g_file_get_contents(second, &bytes, &size, NULL));
  ck_assert(g_file_set_contents(other, bytes, (gssize)size, NULL));
  g_free(bytes);
  void *handle = dlopen(loaded, RTLD_NOW | RTLD_LOCAL);
  ck_assert_msg(handle != NULL, "%s", dlerror());
  helper_fn call = (helper_fn)dlsym(handle, "symbols_helper_call");
  ck_assert_ptr_nonnull(call);
  unsigned int line;
  uintptr_t ip = call(capture_ip, &line);
  ck_assert_int_eq(rename(other, loaded), 0);
  tm_frame f[MAX_FRAMES];
  ck_assert_uint_eq(resolve(ip, f, MAX_FRAMES), 1);
  ck_assert_msg(f[0].flags == TM_FRAME_NO_DEBUG_INFO && f[0].lineno == 0,
                "%s at %s:%u, flags %u (called at line %u)", f[0].function, f[0].filename,
                f[0].lineno, f[0].flags, line);
  ck_assert_ptr_null(f[0].function);
  dlclose(handle);
  unlink(loaded);
  rmdir(dir);
  g_free(first);
  g_free(second);
  g_free(other);
  g_free(loaded);
  g_free(dir);
}
END_TEST

/* Allocates a block for the helper library and returns it: the stack goes through the library. */
static NOIPA uintptr_t alloc_from_helper(void) {
  void *p = malloc(40);
  __asm__ volatile("" : : "g"(p) : "memory");
  return (uintptr_t)p;
}

/* A stack captured while a library was loaded, resolved after dlclose() and after another library
 * took its addresses: the library's frame is unknown, flagged TM_FRAME_UNLOADED, and names
 * nothing of the library now mapped there. */
START_TEST(test_unloaded_library_frame_is_unknown) {
  void *handle;
  unsigned int line;
  ck_assert_int_eq(tm_start(8), 0);
  helper_fn call = helper_open("libtm_symbols_helper.so", &handle);
  void *p = (void *)call(alloc_from_helper, &line);
  tm_traceback *tb = tm_get_object_traceback(p); /* not resolved yet */
  ck_assert_ptr_nonnull(tb);
  dlclose(handle);
  call = helper_open("libtm_symbols_helper_nodebug.so", &handle); /* usually at the same place */
  size_t unloaded = 0;
  for (size_t i = 0; i < tm_traceback_length(tb); i++) {
    const tm_frame *f = tm_traceback_get(tb, i);
    ck_assert_msg(f->function == NULL || strcmp(f->function, "symbols_helper_call") != 0,
                  "frame %zu named %s in %s", i, f->function, f->module ? f->module : "?");
    if (f->flags & TM_FRAME_UNLOADED) {
      ck_assert_uint_eq(f->flags, TM_FRAME_UNKNOWN | TM_FRAME_UNLOADED);
      ck_assert_str_eq(f->filename, "<unknown>");
      unloaded++;
    }
  }
  ck_assert_uint_eq(unloaded, 1);
  char **lines = tm_traceback_format(tb, 0, false);
  bool said = false;
  for (char **l = lines; *l != NULL; l++)
    said = said || strstr(*l, "(in a library unloaded before resolution)") != NULL;
  ck_assert(said);
  g_strfreev(lines);
  tm_traceback_free(tb);
  free(p);
  dlclose(handle);
  tm_stop();
}
END_TEST

/* clang emits no .debug_aranges, through which libdwfl finds a CU; lines must still be found. */
START_TEST(test_no_aranges) {
  char *path = helper_path("libtm_symbols_helper_noaranges.so");
  if (!g_file_test(path, G_FILE_TEST_EXISTS)) { /* no objcopy at build time */
    g_free(path);
    return;
  }
  g_free(path);
  void *handle;
  unsigned int line;
  tm_frame f[MAX_FRAMES];
  helper_fn call = helper_open("libtm_symbols_helper_noaranges.so", &handle);
  uintptr_t ip = call(capture_ip, &line);
  ck_assert_uint_eq(resolve(ip, f, MAX_FRAMES), 1);
  ck_assert_uint_eq(f[0].flags, 0);
  ck_assert_msg(ends_with(f[0].filename, "tests/symbolizer/symbols_helper.c"), "filename %s", f[0].filename);
  ck_assert_uint_eq(f[0].lineno, line);
  ck_assert_str_eq(f[0].function, "symbols_helper_call");
  dlclose(handle);
}
END_TEST

/* A child inherits the parent's resolver state; what it dlopen()s is found from its own maps. */
START_TEST(test_fork_then_dlopen) {
  unsigned int line;
  tm_frame f[MAX_FRAMES];
  uintptr_t ip = call_site(&line);
  ck_assert_uint_eq(resolve(ip, f, MAX_FRAMES), 1);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    tm_frame g[MAX_FRAMES];
    int bad = 0;
    if (resolve(ip, g, MAX_FRAMES) != 1 || g[0].lineno != line)
      bad |= 1;
    char *path = helper_path("libtm_symbols_helper.so");
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    helper_fn call = handle != NULL ? (helper_fn)dlsym(handle, "symbols_helper_call") : NULL;
    if (call == NULL)
      _exit(2);
    unsigned int hline;
    uintptr_t hip = call(capture_ip, &hline);
    if (resolve(hip, g, MAX_FRAMES) != 1 || g[0].lineno != hline ||
        g_strcmp0(g[0].function, "symbols_helper_call") != 0)
      bad |= 4;
    _exit(bad);
  }
  int status;
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status 0x%x", status);
}
END_TEST

static void assert_unknown(uintptr_t ip) {
  tm_frame f[MAX_FRAMES];
  ck_assert_uint_eq(resolve(ip, f, MAX_FRAMES), 1);
  ck_assert_str_eq(f[0].filename, "<unknown>");
  ck_assert_uint_eq(f[0].flags, TM_FRAME_UNKNOWN);
  ck_assert_uint_eq(f[0].lineno, 0);
  ck_assert_ptr_null(f[0].function);
  ck_assert_ptr_null(f[0].module);
  ck_assert_uint_eq(f[0].ip, ip);
}

START_TEST(test_unknown_addresses) {
  assert_unknown(0);
  assert_unknown(1);
  assert_unknown(0x1234);
  assert_unknown(UINTPTR_MAX);
  /* Mapped, but anonymous memory is no module. */
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  void *p = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ck_assert_ptr_ne(p, MAP_FAILED);
  assert_unknown((uintptr_t)p + 16);
  assert_unknown((uintptr_t)p + 16); /* cached */
  munmap(p, page);
}
END_TEST

/* Each address is resolved once; the cache is counted in the symbol memory. */
START_TEST(test_cache_and_memory) {
  unsigned int line;
  uintptr_t ip = call_site(&line);
  tm_frame a[MAX_FRAMES], b[MAX_FRAMES];
  ck_assert_uint_eq(resolve(ip, a, MAX_FRAMES), 1);
  size_t mem = tm__symbols_memory();
  ck_assert_uint_gt(mem, 0);
  ck_assert_uint_eq(resolve(ip, b, MAX_FRAMES), 1);
  ck_assert_uint_eq(tm__symbols_memory(), mem); /* a hit allocates nothing */
  ck_assert_ptr_eq(a[0].filename, b[0].filename);
  ck_assert_ptr_eq(a[0].function, b[0].function);
  ck_assert_uint_eq(a[0].lineno, b[0].lineno);
  /* An address no other test resolves, so that this holds with CK_FORK=no too. */
  resolve((uintptr_t)inline_caller + 2, a, MAX_FRAMES);
  ck_assert_uint_gt(tm__symbols_memory(), mem);
}
END_TEST

/* Runs this program again with TEST_SYMBOLS_CHILD=scenario and asserts that it exits with 0. */
static void child_run(const char *scenario) {
  char *self = g_file_read_link("/proc/self/exe", NULL);
  char *argv[] = {self, NULL};
  char **envp = g_environ_setenv(g_get_environ(), "TEST_SYMBOLS_CHILD", scenario, TRUE);
  int status = -1;
  GError *error = NULL;
  ck_assert_msg(g_spawn_sync(NULL, argv, envp, G_SPAWN_DEFAULT, NULL, NULL, NULL,
                             NULL, &status, &error),
                "spawn %s: %s", self, error != NULL ? error->message : "?");
  ck_assert_msg(g_spawn_check_wait_status(status, NULL), "%s: child status 0x%x", scenario,
                status);
  g_strfreev(envp);
  g_free(self);
}

/* Run in a fresh process (TEST_SYMBOLS_CHILD=memory): the resolver reports no memory, and asking
 * maps nothing, until the first resolution loads the module. Returns the exit status. */
static int child_memory(void) {
  char *maps = NULL;
  if (tm__symbols_memory() != 0 || !g_file_get_contents("/proc/self/maps", &maps, NULL, NULL) ||
      strstr(maps, "/libdw") != NULL)
    return 1;
  g_free(maps);
  unsigned int line;
  tm_frame f[MAX_FRAMES];
  if (resolve(call_site(&line), f, MAX_FRAMES) != 1 || f[0].lineno != line ||
      tm__symbols_memory() == 0)
    return 2;
  return 0;
}

START_TEST(test_memory_before_loading) { child_run("memory"); }
END_TEST

/* Run in a fresh process (TEST_SYMBOLS_CHILD=deleted), a copy of this program that deletes its
 * own file first, as a rebuild that replaces a running test binary does: /proc/self/exe then
 * names "... (deleted)", and the program's frames still resolve to their lines through the link
 * itself. Returns the exit status. */
static int child_deleted(void) {
  char *self = g_file_read_link("/proc/self/exe", NULL);
  if (self == NULL || unlink(self) != 0)
    return 1;
  g_free(self);
  unsigned int line;
  tm_frame f[MAX_FRAMES];
  if (resolve(call_site(&line), f, MAX_FRAMES) != 1 || f[0].lineno != line ||
      f[0].function == NULL || strcmp(f[0].function, "call_site") != 0)
    return 2;
  return 0;
}

START_TEST(test_deleted_program_file) {
  char *self = g_file_read_link("/proc/self/exe", NULL);
  char *copy = g_strdup_printf("%s.deleted-%d", self, (int)getpid());
  char *bytes = NULL;
  gsize len = 0;
  ck_assert(g_file_get_contents(self, &bytes, &len, NULL));
  ck_assert(g_file_set_contents(copy, bytes, (gssize)len, NULL));
  ck_assert_int_eq(chmod(copy, 0700), 0);
  char *argv[] = {copy, NULL};
  char **envp = g_environ_setenv(g_get_environ(), "TEST_SYMBOLS_CHILD", "deleted", TRUE);
  int status = -1;
  ck_assert(g_spawn_sync(NULL, argv, envp, G_SPAWN_DEFAULT, NULL, NULL, NULL, NULL, &status, NULL));
  unlink(copy); /* when the child did not get that far */
  ck_assert_msg(g_spawn_check_wait_status(status, NULL), "child status 0x%x", status);
  g_strfreev(envp);
  g_free(bytes);
  g_free(copy);
  g_free(self);
}
END_TEST

/* Maps the whole file at path a second time, read-only, as libelf's ELF_C_READ_MMAP or a program
 * reading a binary does. Returns the mapping (never unmapped: it must outlive the resolution) or
 * NULL. */
static void *file_map_again(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0 || st.st_size == 0)
    return NULL;
  void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  return p == MAP_FAILED ? NULL : p;
}

/* Run in a fresh process (TEST_SYMBOLS_CHILD=remapped): the program's own file and a dlopen()ed
 * library are each mapped a second time before anything is resolved; frames in both still get
 * their function, file and line. (The library's second mapping usually lands right below it:
 * read from /proc/self/maps, the two looked like one module starting at the copy.) Returns the
 * exit status, what went wrong on stderr. */
static int child_remapped(void) {
  /* No ck_assert here (helper_path has some): outside a test, Check exits on the first one. */
  char *exe = g_file_read_link("/proc/self/exe", NULL);
  char *dir = exe != NULL ? g_path_get_dirname(exe) : NULL;
  char *path = dir != NULL ? g_build_filename(dir, "libtm_symbols_helper.so", NULL) : NULL;
  g_free(dir);
  void *handle = path != NULL ? dlopen(path, RTLD_NOW | RTLD_LOCAL) : NULL;
  helper_fn call = handle != NULL ? (helper_fn)dlsym(handle, "symbols_helper_call") : NULL;
  if (call == NULL || file_map_again(exe) == NULL || file_map_again(path) == NULL) {
    fprintf(stderr, "remapped: setup failed\n");
    return 1;
  }
  unsigned int line, hline;
  uintptr_t ip = call_site(&line);
  uintptr_t hip = call(capture_ip, &hline);
  tm_frame f[MAX_FRAMES];
  int bad = 0;
  size_t n = resolve(ip, f, MAX_FRAMES);
  if (n != 1 || f[0].flags != 0 || g_strcmp0(f[0].function, "call_site") != 0 ||
      !ends_with(f[0].filename, "tests/symbolizer/test_symbols.c") || f[0].lineno != line ||
      g_strcmp0(f[0].module, exe) != 0) {
    fprintf(stderr, "remapped: program frame %s at %s:%u in %s, flags %u; want call_site at :%u\n",
            f[0].function, f[0].filename, f[0].lineno, f[0].module, f[0].flags, line);
    bad |= 2;
  }
  n = resolve(hip, f, MAX_FRAMES);
  if (n != 1 || f[0].flags != 0 || g_strcmp0(f[0].function, "symbols_helper_call") != 0 ||
      !ends_with(f[0].filename, "tests/symbolizer/symbols_helper.c") || f[0].lineno != hline ||
      !ends_with(f[0].module, "/libtm_symbols_helper.so")) {
    fprintf(stderr,
            "remapped: library frame %s at %s:%u in %s, flags %u; want symbols_helper_call at "
            ":%u\n",
            f[0].function, f[0].filename, f[0].lineno, f[0].module, f[0].flags, hline);
    bad |= 4;
  }
  g_free(exe);
  g_free(path);
  return bad;
}

/* A loaded ELF file mapped a second time when the module list is first read is not taken for
 * the module: the list comes from the loader, not from the process's mappings. */
START_TEST(test_file_mapped_twice) { child_run("remapped"); }
END_TEST

/* Threads resolving the same addresses at once agree. */
static unsigned int thread_line;
static uintptr_t thread_ip;

static gpointer resolve_thread(gpointer data) {
  for (int i = 0; i < 200; i++) {
    tm_frame f[MAX_FRAMES];
    if (resolve(thread_ip + (uintptr_t)(i % 2), f, MAX_FRAMES) < 1 || f[0].filename == NULL)
      return GINT_TO_POINTER(1);
    if (i % 2 == 0 && f[0].lineno != thread_line)
      return GINT_TO_POINTER(1);
  }
  return NULL;
}

START_TEST(test_threads) {
  thread_ip = call_site(&thread_line);
  GThread *t[4];
  for (int i = 0; i < 4; i++)
    t[i] = g_thread_new("resolve", resolve_thread, NULL);
  for (int i = 0; i < 4; i++)
    ck_assert_ptr_null(g_thread_join(t[i]));
}
END_TEST

static Suite *symbols_suite(void) {
  Suite *s = suite_create("symbols");
  TCase *tc = tcase_create("resolve");
  tcase_add_test(tc, test_own_function);
  tcase_add_test(tc, test_c_program_never_loads_libstdcxx);
  tcase_add_test(tc, test_inlined_frame);
  tcase_add_test(tc, test_libc_frame);
  tcase_add_test(tc, test_no_debug_info_frame);
  tcase_add_test(tc, test_glib_frame);
  tcase_add_test(tc, test_vdso_frame);
  tcase_add_test(tc, test_weak_alias_named);
  tcase_add_test(tc, test_replaced_library_file);
  tcase_add_test(tc, test_dlopen_after_first_resolution);
  tcase_add_test(tc, test_dlclose_then_other_library);
  tcase_add_test(tc, test_unloaded_library_frame_is_unknown);
  tcase_add_test(tc, test_no_aranges);
  tcase_add_test(tc, test_compilers_and_levels);
  tcase_add_test(tc, test_fork_then_dlopen);
  tcase_add_test(tc, test_unknown_addresses);
  tcase_add_test(tc, test_cache_and_memory);
  tcase_add_test(tc, test_threads);
  tcase_add_test(tc, test_memory_before_loading);
  tcase_add_test(tc, test_deleted_program_file);
  tcase_add_test(tc, test_file_mapped_twice);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  const char *child = getenv("TEST_SYMBOLS_CHILD");
  if (child != NULL)
    return strcmp(child, "memory") == 0     ? child_memory()
           : strcmp(child, "remapped") == 0 ? child_remapped()
           : strcmp(child, "deleted") == 0  ? child_deleted()
                                            : 3;
  return run_suite(symbols_suite());
}
