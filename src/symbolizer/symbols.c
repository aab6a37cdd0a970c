/* symbols.c — resolve return addresses to frames with libdw (elfutils dwfl).
 *
 * Built into its own shared module, libtracemalloc-symbols.so, never into libtracemalloc itself:
 * symbols_loader.c loads it on the first resolution, so that processes that never symbolize
 * never map libdw (symbols_module.h says why). It exports only tm__symbols_module.
 *
 * One Dwfl session describes the process: every object the loader has loaded is a module, at the
 * addresses dl_iterate_phdr() gives for it (its load bias and PT_LOAD segments). The process's
 * mappings (/proc/<pid>/maps) would also show any other mapping of a loaded file, made by libelf
 * or by a program reading a binary, and libdwfl would take it for the module or stretch the
 * module over it, at a wrong bias. Each module's file is opened on its first address only; the
 * vDSO, which has no file, is reported as "[vdso: <pid>]", which dwfl_linux_proc_find_elf reads
 * from memory. For an address we find its module, the source line of ip - 1 from the line
 * table (read by line_table.c, libdw's reader being the fallback), the chain of inlined calls from
 * the DIE tree (the unit's functions indexed once without entering them, then the one function
 * the address falls in), and the function name from our own sorted copy of the module's ELF
 * symbol table, demangled when it is a C++ name. docs/symbolizer.md, "The first report", says
 * what each of these costs on first use. dwfl_module_addrname()
 * would give the same name but costs ~36 µs per call because it scans the whole table
 * (docs/costs.md, "Symbolization"); a binary search of a table built once per module costs well
 * under a microsecond.
 *
 * Every result is cached per return address, so a snapshot of a million traces resolves each
 * distinct address once.
 *
 * Fork. A child has the parent's mappings, so the Dwfl session, the symbol tables and the cache
 * stay valid in it. The module list is read from the calling process's loader each time it is
 * refreshed, so a child that dlopen()s finds what it loaded. libelf reads files
 * with pread()/mmap(), so the ELF descriptors the child inherits share no file offset that could
 * race with the parent. The one thing that would break in a child is our mutex, had another thread
 * held it at fork time: a pthread_atfork() handler takes it around fork().
 *
 * dlopen and dlclose. The loader counts the objects it has loaded and unloaded (dl_iterate_phdr's
 * dlpi_adds and dlpi_subs; reading them costs ~10 ns). An address in no known module re-reads
 * the module list, but only when something was loaded since the last read, so unknown addresses
 * (JIT code, garbage) cost no walk of the loader's list each; the objects already known are not
 * reported again. When something was unloaded, everything is thrown
 * away and rebuilt on demand: another library may now sit at the same addresses (dlopen, dlclose,
 * dlopen of another library reuses them at once), and answering from the first one would be
 * wrong. The frames already handed out stay valid, their strings being interned.
 * dl_iterate_phdr takes the loader's lock: in a child forked while another thread of the parent
 * was inside dlopen, resolution blocks, as dlopen itself would there.
 */
#include "symbols.h"
#include "debug_link.h"
#include "line_table.h"
#include "symbols_module.h"

#include <dlfcn.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwelf.h>
#include <elfutils/libdwfl.h>
#include <dwarf.h>
#include <gelf.h>
#include <glib.h>
#include <link.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

/* Most frames one address may expand to (inline depth + 1); deeper chains are cut. */
#define MAX_INLINE_FRAMES 64
/* Deepest DIE nesting walked when indexing a CU (bounds the recursion on odd DWARF). */
#define MAX_DIE_DEPTH 256

/* One function symbol of a module: [start, start + size), size 0 meaning "up to the next". */
typedef struct sym {
  uintptr_t start;
  uintptr_t size;
  const char *name; /* points into the module's ELF string table, which libdw keeps mapped */
} sym;

/* What we keep per module: its function symbols sorted by start address, one per address, and
 * the name frames without debug info show. */
typedef struct modinfo {
  size_t n;
  sym *syms;
  const char *display; /* interned DT_SONAME ("libglib-2.0.so.0"), else the file's basename */
  const char *module;  /* the interned path of the module's file, or NULL */
  bool cus_built;      /* cus is built on the first address libdwfl cannot place in a CU */
  size_t ncus;
  struct cu_range *cus;
  bool sections_found; /* sections is looked up on the first line table of the module */
  tm__line_sections sections; /* .debug_line of the module's DWARF; line NULL when unusable */
} modinfo;

/* One address range of a compilation unit, in DWARF addresses. */
typedef struct cu_range {
  Dwarf_Addr lo, hi; /* [lo, hi) */
  Dwarf_Die cu;      /* a copy; valid as long as the module's Dwarf */
} cu_range;

/* One DW_TAG_subprogram or DW_TAG_inlined_subroutine address range of a CU, in DWARF addresses. */
typedef struct scope_range {
  Dwarf_Addr lo, hi; /* [lo, hi) */
  Dwarf_Die die;     /* a copy; valid as long as the module's Dwarf, i.e. for the process */
  int32_t enclosing; /* index of the innermost range that encloses this one, or -1 */
  bool inlined;      /* DW_TAG_inlined_subroutine, else a subprogram */
  bool leaf;         /* a CU's function found to hold no inlined call nor nested function */
} scope_range;

/* Code ranges sorted by lo (outer first on ties), each linked to the innermost that encloses it. */
typedef struct scope_index {
  size_t n;
  scope_range *ranges;
} scope_index;

/* What we keep per CU, each part built on first use. */
typedef struct cu_index {
  int8_t inlines;        /* whether the CU can hold inlined calls: -1 until asked, 0 or 1 */
  bool functions_built;
  scope_index functions; /* the CU's functions, found without reading what is inside them */
  bool lines_built;
  tm__line_table *lines; /* NULL when our reader cannot read the CU's: libdw's then serve */
  const char **paths;    /* lines' file i as source_path() gives it, interned; NULL until asked */
} cu_index;

/* What one return address resolved to, frames most recent first. */
typedef struct cache_entry {
  uint32_t nframes;
  uint64_t loader_adds; /* the loader's load count when the entry was made */
  tm_frame frames[];
} cache_entry;

/* Everything below is protected by lock. */
static GMutex lock;
/* The process's modules; NULL until the first resolution. */
static Dwfl *dwfl;
/* The loader's load and unload counts when the module list was last read. */
static uint64_t reported_adds, reported_subs;
/* return address (uintptr_t as pointer) => cache_entry* (owned). */
static GHashTable *cache;
/* Dwfl_Module* => modinfo* (owned), built on the first address found in the module. */
static GHashTable *modinfos;
/* address of a CU's DIE in the mapped .debug_info => cu_index* (owned), built on first use. */
static GHashTable *cu_indexes;
/* address of a function's DIE => scope_index* (owned) of the ranges inside it, on first use. */
static GHashTable *function_scopes;
/* Bytes allocated for the tables above, as an estimate including hash table slots. */
static size_t memory_bytes;

/* Separate debug files are looked up by build-id under /usr/lib/debug (where Debian's -dbg and
 * -dbgsym packages put them), then by the name a .gnu_debuglink section gives (debug_link.h),
 * never through debuginfod: Debian 12 sets DEBUGINFOD_URLS in login shells, and a download
 * inside a failing test's report would blow Check's timeout. Set
 * TM_DEBUGINFOD=1 to let libdw use its standard search, debuginfod included. */
static int find_debuginfo(Dwfl_Module *mod, void **userdata, const char *modname, Dwarf_Addr base,
                          const char *file_name, const char *debuglink_file,
                          GElf_Word debuglink_crc, char **debuginfo_file_name) {
  static int use_standard = -1;
  if (use_standard < 0) {
    const char *value = secure_getenv("TM_DEBUGINFOD"); /* a setuid program ignores it */
    use_standard = value != NULL && strcmp(value, "1") == 0;
  }
  if (use_standard)
    return dwfl_standard_find_debuginfo(mod, userdata, modname, base, file_name, debuglink_file,
                                        debuglink_crc, debuginfo_file_name);
  int fd = dwfl_build_id_find_debuginfo(mod, userdata, modname, base, file_name, debuglink_file,
                                        debuglink_crc, debuginfo_file_name);
  if (fd < 0)
    fd = tm__debug_link_find(mod, file_name, debuglink_file, debuglink_crc, debuginfo_file_name);
  return fd;
}

/* Opens the module's file as dwfl_linux_proc_find_elf does (the vDSO from memory), but refuses a
 * file whose build-id is not the one reported from the loaded object's memory: a library
 * replaced on disk since it was loaded (renamed over by a package upgrade) is another build, and
 * its symbols and lines, read at the loaded one's addresses, would name the wrong code. libdwfl
 * (0.188) keeps such a file and forgets the reported build-id. */
static int find_elf(Dwfl_Module *mod, void **userdata, const char *modname, Dwarf_Addr base,
                    char **file_name, Elf **elfp) {
  int fd = dwfl_linux_proc_find_elf(mod, userdata, modname, base, file_name, elfp);
  const unsigned char *want;
  GElf_Addr vaddr;
  int want_len = fd >= 0 && *elfp == NULL ? dwfl_module_build_id(mod, &want, &vaddr) : 0;
  if (want_len <= 0)
    return fd;
  Elf *elf = elf_begin(fd, ELF_C_READ_MMAP_PRIVATE, NULL); /* as libdwfl opens files */
  const void *have = NULL;
  ssize_t have_len = elf != NULL ? dwelf_elf_gnu_build_id(elf, &have) : -1;
  if (have_len >= 0 && (have_len != want_len || memcmp(have, want, (size_t)want_len) != 0)) {
    /* A file without a build-id note (have_len 0) cannot be the loaded object either. */
    elf_end(elf);
    close(fd);
    free(*file_name); /* strdup()ed by dwfl_linux_proc_find_elf */
    *file_name = NULL;
    return -1;
  }
  *elfp = elf; /* libdwfl takes it, or opens fd itself when NULL */
  return fd;
}

static char *debuginfo_path;
static const Dwfl_Callbacks callbacks = {
    .find_elf = find_elf,
    .find_debuginfo = find_debuginfo,
    .debuginfo_path = &debuginfo_path,
};

/* Rough cost of one GHashTable slot (key, value, hash) with the table kept at most 3/4 full. */
#define HASH_SLOT_BYTES (2 * sizeof(void *) + sizeof(guint) + 8)

static void atfork_prepare(void) { g_mutex_lock(&lock); }
static void atfork_release(void) { g_mutex_unlock(&lock); }

static void modinfo_free(gpointer p) {
  modinfo *t = p;
  if (t == NULL)
    return;
  g_free(t->syms);
  g_free(t->cus);
  g_free(t);
}

static void scope_index_free(gpointer p) {
  scope_index *idx = p;
  if (idx == NULL)
    return;
  g_free(idx->ranges);
  g_free(idx);
}

static void cu_index_free(gpointer p) {
  cu_index *idx = p;
  if (idx == NULL)
    return;
  g_free(idx->functions.ranges);
  g_free(idx->paths);
  tm__line_table_free(idx->lines);
  g_free(idx);
}

/* Registers the fork handler once. Called without lock held. */
static void register_atfork_once(void) {
  static gsize done;
  if (g_once_init_enter(&done)) {
    pthread_atfork(atfork_prepare, atfork_release, atfork_release);
    g_once_init_leave(&done, 1);
  }
}

static int loader_counts_cb(struct dl_phdr_info *info, size_t size, void *data) {
  uint64_t *counts = data;
  counts[0] = info->dlpi_adds;
  counts[1] = info->dlpi_subs;
  return 1; /* every object carries the same counters: the first one is enough */
}

/* The loader's counts of objects loaded and unloaded since the process started. */
static void loader_counts(uint64_t *adds, uint64_t *subs) {
  uint64_t counts[2] = {0, 0};
  dl_iterate_phdr(loader_counts_cb, counts);
  *adds = counts[0];
  *subs = counts[1];
}

/* Returns the module whose address range holds addr, or NULL. dwfl_addrmodule() alone was seen
 * (elfutils 0.188) to answer the highest module, ld.so, for addresses above every module such as
 * 0x7fffffffffff or the vsyscall page. Requires lock. */
static Dwfl_Module *module_at_unlocked(Dwarf_Addr addr) {
  Dwfl_Module *mod = dwfl_addrmodule(dwfl, addr);
  Dwarf_Addr start, end;
  if (mod == NULL || dwfl_module_info(mod, NULL, &start, &end, NULL, NULL, NULL, NULL) == NULL ||
      addr < start || addr >= end)
    return NULL;
  return mod;
}

/* One object of the loader's list, as loaded_objects_cb() copies it. */
typedef struct loaded_object {
  char *name;     /* dlpi_name (owned); "" for the program */
  Dwarf_Addr low; /* the first PT_LOAD's start aligned down as libdwfl aligns it, plus the bias */
  Dwarf_Addr high; /* the end of the highest PT_LOAD, page-aligned up */
  uint8_t build_id_len; /* 0 when the object has no build-id note in memory */
  unsigned char build_id[64];
  Dwarf_Addr build_id_vaddr; /* where the build-id bits are in memory */
} loaded_object;

/* Copies the GNU build-id of the object into o, read from its PT_NOTE segments in memory. */
static void loaded_object_build_id(const struct dl_phdr_info *info, loaded_object *o) {
  for (ElfW(Half) i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_NOTE)
      continue;
    size_t align = ph->p_align == 8 ? 8 : 4;
    const unsigned char *p = (const unsigned char *)(info->dlpi_addr + ph->p_vaddr);
    const unsigned char *end = p + ph->p_memsz;
    while ((size_t)(end - p) >= sizeof(ElfW(Nhdr))) {
      const ElfW(Nhdr) *n = (const ElfW(Nhdr) *)(const void *)p;
      size_t name_at = sizeof(*n);
      size_t desc_at = name_at + ((n->n_namesz + align - 1) & -align);
      size_t next = desc_at + ((n->n_descsz + align - 1) & -align);
      if (next > (size_t)(end - p) || next < desc_at)
        break;
      if (n->n_type == NT_GNU_BUILD_ID && n->n_namesz == 4 &&
          memcmp(p + name_at, "GNU", 4) == 0 && n->n_descsz > 0 &&
          n->n_descsz <= sizeof(o->build_id)) {
        memcpy(o->build_id, p + desc_at, n->n_descsz);
        o->build_id_len = (uint8_t)n->n_descsz;
        o->build_id_vaddr = (Dwarf_Addr)(uintptr_t)(p + desc_at);
        return;
      }
      p += next;
    }
  }
}

/* Copies each object of dl_iterate_phdr's list that has a PT_LOAD segment into the GArray of
 * loaded_object at data. The range starts where libdwfl expects it to (the first PT_LOAD's
 * p_vaddr & -p_align, plus the load bias), so that the bias libdwfl computes from it is the
 * loader's. Runs under the loader's lock: copies, calls nothing else. */
static int loaded_objects_cb(struct dl_phdr_info *info, size_t size, void *data) {
  GArray *out = data;
  bool found = false;
  Dwarf_Addr low = 0, end = 0;
  for (ElfW(Half) i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD)
      continue;
    if (!found)
      low = ph->p_vaddr & -ph->p_align;
    found = true;
    end = MAX(end, (Dwarf_Addr)ph->p_vaddr + ph->p_memsz);
  }
  if (!found || end <= low)
    return 0;
  Dwarf_Addr page = (Dwarf_Addr)getpagesize();
  loaded_object o = {
      .name = g_strdup(info->dlpi_name != NULL ? info->dlpi_name : ""),
      .low = info->dlpi_addr + low,
      .high = (info->dlpi_addr + end + page - 1) & -page,
  };
  loaded_object_build_id(info, &o);
  g_array_append_val(out, o);
  return 0;
}

/* The program's file: the target of /proc/self/exe; the link itself when the file was deleted
 * since the program started (the kernel still opens it through the link, where the target's name
 * says "(deleted)"); without /proc, the name it was started by (AT_EXECFN), made absolute.
 * find_elf() refuses a file whose build-id is not the loaded program's. New string, g_free. */
static char *program_file(void) {
  char *target = g_file_read_link("/proc/self/exe", NULL);
  if (target != NULL && !g_str_has_suffix(target, " (deleted)"))
    return target;
  if (target != NULL) {
    g_free(target);
    return g_strdup("/proc/self/exe");
  }
  const char *execfn = (const char *)getauxval(AT_EXECFN);
  if (execfn == NULL)
    return NULL;
  char *real = realpath(execfn, NULL); /* malloc()ed */
  char *name = g_strdup(real != NULL ? real : execfn);
  free(real);
  return name;
}

/* Returns the module name to report for o, the first object of the loader's list when first
 * (new string, g_free), or NULL to leave it out: the file's canonical path as the kernel shows
 * it (the program's from program_file(), whose loader name is empty), or "[vdso: <pid>]" for the
 * vDSO (vdso is its address, 0 when none), which dwfl_linux_proc_find_elf then reads from
 * memory. */
static char *loaded_object_module_name(const loaded_object *o, bool first, Dwarf_Addr vdso) {
  if (vdso != 0 && vdso >= o->low && vdso < o->high)
    return g_strdup_printf("[vdso: %d]", (int)getpid());
  if (o->name[0] == '\0')
    return first ? program_file() : NULL;
  char *real = realpath(o->name, NULL); /* malloc()ed */
  char *name = g_strdup(real != NULL ? real : o->name);
  free(real);
  return name;
}

/* Reports the loader's objects (dl_iterate_phdr) to the session, each at the addresses the
 * loader gave it. With add, keeps the modules already known and reports only the objects not
 * yet among them. adds and subs are the loader's counts read before. Returns true on success.
 * Requires lock. */
static bool report_modules_unlocked(bool add, uint64_t adds, uint64_t subs) {
  GArray *objects = g_array_new(FALSE, FALSE, sizeof(loaded_object));
  dl_iterate_phdr(loaded_objects_cb, objects);
  Dwarf_Addr vdso = getauxval(AT_SYSINFO_EHDR);
  /* An object already known, at the same addresses, needs no new report (nor its path). */
  bool *known = g_new0(bool, objects->len + 1);
  for (guint i = 0; add && i < objects->len; i++) {
    const loaded_object *o = &g_array_index(objects, loaded_object, i);
    Dwfl_Module *mod = module_at_unlocked(o->low);
    Dwarf_Addr start, end;
    known[i] = mod != NULL &&
               dwfl_module_info(mod, NULL, &start, &end, NULL, NULL, NULL, NULL) != NULL &&
               start == o->low && end == o->high;
  }
  if (add)
    dwfl_report_begin_add(dwfl);
  else
    dwfl_report_begin(dwfl);
  bool ok = true;
  for (guint i = 0; i < objects->len; i++) {
    loaded_object *o = &g_array_index(objects, loaded_object, i);
    char *name = known[i] ? NULL : loaded_object_module_name(o, i == 0, vdso);
    Dwfl_Module *mod = name != NULL ? dwfl_report_module(dwfl, name, o->low, o->high) : NULL;
    if (name != NULL && mod == NULL)
      ok = false; /* overlapping another module: the others are still worth reporting */
    /* find_elf() then refuses a file whose build-id is not the loaded one's. */
    if (mod != NULL && o->build_id_len > 0)
      dwfl_module_report_build_id(mod, o->build_id, o->build_id_len, o->build_id_vaddr);
    g_free(name);
    g_free(o->name);
  }
  g_free(known);
  g_array_free(objects, TRUE);
  /* dwfl_report_end must be called even when reporting failed half way. */
  if (dwfl_report_end(dwfl, NULL, NULL) != 0)
    ok = false;
  reported_adds = adds;
  reported_subs = subs;
  return ok;
}

/* Forgets the session and everything derived from it, after a library was unloaded. The
 * interned strings, and the frames that point to them, stay valid. Requires lock. */
static void session_reset_unlocked(void) {
  dwfl_end(dwfl);
  dwfl = NULL;
  g_hash_table_remove_all(cache);
  g_hash_table_remove_all(modinfos);
  g_hash_table_remove_all(cu_indexes);
  g_hash_table_remove_all(function_scopes);
  memory_bytes = 0;
}

/* Creates the session and tables on first use. Returns false when libdw cannot start, in which
 * case every address resolves as unknown. Requires lock. */
static bool ensure_init_unlocked(uint64_t adds, uint64_t subs) {
  if (dwfl != NULL)
    return true;
  if (cache == NULL) {
    cache = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
    modinfos = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, modinfo_free);
    cu_indexes = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, cu_index_free);
    function_scopes =
        g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, scope_index_free);
  }
  dwfl = dwfl_begin(&callbacks);
  if (dwfl == NULL)
    return false;
  report_modules_unlocked(false, adds, subs); /* a partial list is still useful: keep it */
  return true;
}

/* Returns the module holding addr, re-reading the module list when none does and the loader has
 * loaded something since the last read (adds is its current count). Requires lock. */
static Dwfl_Module *module_find_unlocked(Dwarf_Addr addr, uint64_t adds) {
  Dwfl_Module *mod = module_at_unlocked(addr);
  if (mod == NULL && adds != reported_adds) {
    report_modules_unlocked(true, adds, reported_subs);
    mod = module_at_unlocked(addr);
  }
  return mod;
}

/* Ranks aliases at one address: exported (global or weak) before local, then the name with the
 * fewest leading underscores, which is the one programs call ("malloc" over "__libc_malloc";
 * "strdup", a weak alias, over glibc's global "__strdup"), then global before weak, then the
 * shorter. Lower is better; fits in SYM_RANK_BITS. */
#define SYM_RANK_BITS 23
static uint32_t sym_rank(const GElf_Sym *s, const char *name) {
  int bind = GELF_ST_BIND(s->st_info);
  uint32_t local = bind != STB_GLOBAL && bind != STB_WEAK, weak = bind == STB_WEAK;
  size_t underscores = strspn(name, "_");
  return local << 22 | (uint32_t)MIN(underscores, 127) << 15 | weak << 14 |
         (uint32_t)MIN(strlen(name), 16383);
}

typedef struct sym_build {
  sym s;
  uint64_t key; /* set by syms_sort() */
  uint32_t rank;
} sym_build;

static gint sym_build_cmp(gconstpointer a, gconstpointer b, gpointer unused) {
  const sym_build *x = a, *y = b;
  if (x->s.start != y->s.start)
    return x->s.start < y->s.start ? -1 : 1;
  return (x->rank > y->rank) - (x->rank < y->rank);
}

/* Sorts v by start address, best rank first at one address, equal ones in table order: an LSD
 * radix sort on (start - lowest start, rank), a few passes over a table of tens of thousands of
 * symbols where a comparison sort costs a millisecond. Falls back to a stable comparison sort when
 * the module spans more than the key holds. */
static void syms_sort(sym_build *v, size_t n) {
  if (n < 2)
    return;
  uintptr_t lowest = UINTPTR_MAX, highest = 0;
  for (size_t i = 0; i < n; i++) {
    lowest = MIN(lowest, v[i].s.start);
    highest = MAX(highest, v[i].s.start);
  }
  if (highest - lowest >= (uint64_t)1 << (64 - SYM_RANK_BITS) || n > UINT32_MAX) {
    g_qsort_with_data(v, (gint)n, sizeof(*v), sym_build_cmp, NULL);
    return;
  }
  for (size_t i = 0; i < n; i++)
    v[i].key = (uint64_t)(v[i].s.start - lowest) << SYM_RANK_BITS | v[i].rank;
  sym_build *tmp = g_new(sym_build, n);
  sym_build *from = v, *to = tmp;
  for (unsigned shift = 0; shift < 64; shift += 8) {
    size_t count[256] = {0};
    for (size_t i = 0; i < n; i++)
      count[(from[i].key >> shift) & 0xff]++;
    if (count[(from[0].key >> shift) & 0xff] == n)
      continue; /* every key has this byte: the pass would change nothing */
    size_t pos = 0;
    for (unsigned d = 0; d < 256; d++) {
      size_t c = count[d];
      count[d] = pos;
      pos += c;
    }
    for (size_t i = 0; i < n; i++)
      to[count[(from[i].key >> shift) & 0xff]++] = from[i];
    sym_build *swap = from;
    from = to;
    to = swap;
  }
  if (from != v)
    memcpy(v, from, n * sizeof(*v));
  g_free(tmp);
}

/* Returns the DT_SONAME of the module's ELF file, or NULL. The name a program links against
 * ("libglib-2.0.so.0") reads better than the file /proc/self/maps shows
 * (libglib-2.0.so.0.7400.6). */
static const char *module_soname(Dwfl_Module *mod) {
  GElf_Addr bias;
  Elf *elf = dwfl_module_getelf(mod, &bias);
  Elf_Scn *scn = NULL;
  while (elf != NULL && (scn = elf_nextscn(elf, scn)) != NULL) {
    GElf_Shdr shdr;
    if (gelf_getshdr(scn, &shdr) == NULL || shdr.sh_type != SHT_DYNAMIC || shdr.sh_entsize == 0)
      continue;
    Elf_Data *data = elf_getdata(scn, NULL);
    for (size_t i = 0; data != NULL && i < shdr.sh_size / shdr.sh_entsize; i++) {
      GElf_Dyn dyn;
      if (gelf_getdyn(data, (int)i, &dyn) == NULL || dyn.d_tag == DT_NULL)
        break;
      if (dyn.d_tag == DT_SONAME)
        return elf_strptr(elf, shdr.sh_link, dyn.d_un.d_val);
    }
  }
  return NULL;
}

static const char *module_display_name(Dwfl_Module *mod) {
  const char *soname = module_soname(mod);
  if (soname != NULL && soname[0] != '\0')
    return g_intern_string(soname);
  const char *path = dwfl_module_info(mod, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
  char *base = g_path_get_basename(path != NULL ? path : "<unknown>");
  const char *display = g_intern_string(base);
  g_free(base);
  return display;
}

/* A symbol without a size (hand-written assembly such as _init) covers code up to the end of its
 * section, never into the next one (the PLT follows .init). Returns 0 when unknown. */
static GElf_Xword sizeless_extent(Elf *elf, GElf_Word shndx, Dwarf_Addr bias, GElf_Addr addr) {
  GElf_Shdr shdr;
  Elf_Scn *scn = elf != NULL ? elf_getscn(elf, shndx) : NULL;
  if (scn == NULL || gelf_getshdr(scn, &shdr) == NULL)
    return 0;
  GElf_Addr end = shdr.sh_addr + bias + shdr.sh_size;
  return end > addr ? end - addr : 0;
}

/* Adds symbol s (named name, at addr, in section shndx of elf) to tmp when it names a function,
 * as the symbol table of a module keeps it. */
static void sym_add(sym_build *tmp, size_t *m, const GElf_Sym *s, const char *name, GElf_Addr addr,
                    GElf_Word shndx, Elf *elf, Dwarf_Addr bias) {
  int type = GELF_ST_TYPE(s->st_info);
  if (name == NULL || name[0] == '\0' || s->st_shndx == SHN_UNDEF || shndx == (GElf_Word)-1)
    return;
  if (type != STT_FUNC && type != STT_GNU_IFUNC)
    return;
  GElf_Xword size = s->st_size;
  if (size == 0)
    size = sizeless_extent(elf, shndx, bias, addr);
  const char *at = strchr(name, '@');
  if (at != NULL && at != name) {
    /* A .symtab names versioned definitions "__libc_start_main@@GLIBC_2.34": keep the name
     * the program calls. The few such names are interned here, once per module. */
    char *plain = g_strndup(name, (gsize)(at - name));
    name = g_intern_string(plain);
    g_free(plain);
  }
  tmp[*m].s = (sym){.start = addr, .size = size, .name = name};
  tmp[*m].rank = sym_rank(s, name);
  (*m)++;
}

/* Reads the function symbols of the module's own .symtab straight from its section, when its ELF
 * file has one (a program or library that is not stripped): libdwfl's per-symbol call costs
 * about ten times more. Returns a new array (g_free) of *m symbols, or NULL when the file has no
 * .symtab or one this reader leaves to libdwfl (extended section indexes). */
static sym_build *symtab_read(Dwfl_Module *mod, size_t *m) {
  GElf_Addr bias;
  Elf *elf = dwfl_module_getelf(mod, &bias);
  GElf_Ehdr ehdr;
  if (elf == NULL || gelf_getehdr(elf, &ehdr) == NULL ||
      (ehdr.e_type != ET_DYN && ehdr.e_type != ET_EXEC))
    return NULL;
  Elf_Scn *scn = NULL;
  GElf_Shdr shdr;
  while ((scn = elf_nextscn(elf, scn)) != NULL)
    if (gelf_getshdr(scn, &shdr) != NULL && shdr.sh_type == SHT_SYMTAB)
      break;
  if (scn == NULL || shdr.sh_entsize == 0)
    return NULL;
  Elf_Scn *strscn = elf_getscn(elf, shdr.sh_link);
  Elf_Data *data = elf_getdata(scn, NULL);
  Elf_Data *strings = strscn != NULL ? elf_getdata(strscn, NULL) : NULL;
  if (data == NULL || strings == NULL || strings->d_buf == NULL)
    return NULL;
  size_t n = shdr.sh_size / shdr.sh_entsize;
  sym_build *tmp = g_new(sym_build, n > 0 ? n : 1);
  *m = 0;
  for (size_t i = 1; i < n; i++) {
    GElf_Sym s;
    if (gelf_getsym(data, (int)i, &s) == NULL)
      break;
    if (s.st_shndx == SHN_XINDEX) {
      g_free(tmp);
      return NULL;
    }
    if (s.st_name >= strings->d_size || s.st_shndx >= SHN_LORESERVE)
      continue;
    const char *name = (const char *)strings->d_buf + s.st_name;
    if (memchr(name, 0, strings->d_size - s.st_name) == NULL)
      continue;
    sym_add(tmp, m, &s, name, s.st_value + bias, s.st_shndx, elf, bias);
  }
  return tmp;
}

/* Builds what we keep of mod: the sorted function table from its symbol table (.symtab when
 * present, in the file or its separate debug file, else .dynsym) and its display name.
 * Never returns NULL. Requires lock. */
static modinfo *modinfo_build_unlocked(Dwfl_Module *mod) {
  modinfo *t = g_new0(modinfo, 1);
  t->display = module_display_name(mod);
  const char *modname = dwfl_module_info(mod, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
  t->module = modname != NULL ? g_intern_string(modname) : NULL;
  size_t m = 0;
  sym_build *tmp = symtab_read(mod, &m);
  if (tmp == NULL) {
    int n = dwfl_module_getsymtab(mod);
    if (n <= 1) {
      memory_bytes += sizeof(*t) + HASH_SLOT_BYTES;
      return t;
    }
    tmp = g_new(sym_build, n);
    for (int i = 1; i < n; i++) {
      GElf_Sym s;
      GElf_Addr addr;
      GElf_Word shndx;
      Elf *elf;
      Dwarf_Addr bias;
      const char *name = dwfl_module_getsym_info(mod, i, &s, &addr, &shndx, &elf, &bias);
      sym_add(tmp, &m, &s, name, addr, shndx, elf, bias);
    }
  }
  syms_sort(tmp, m);
  t->syms = g_new(sym, m > 0 ? m : 1);
  for (size_t i = 0; i < m; i++) {
    /* Sorted best first within one address: keep the first of each run. */
    if (t->n > 0 && t->syms[t->n - 1].start == tmp[i].s.start) {
      sym *kept = &t->syms[t->n - 1];
      kept->size = MAX(kept->size, tmp[i].s.size);
      continue;
    }
    t->syms[t->n++] = tmp[i].s;
  }
  g_free(tmp);
  t->syms = g_renew(sym, t->syms, t->n > 0 ? t->n : 1);
  memory_bytes += sizeof(*t) + MAX(t->n, 1) * sizeof(sym) + HASH_SLOT_BYTES;
  return t;
}

static modinfo *modinfo_get_unlocked(Dwfl_Module *mod) {
  modinfo *t = g_hash_table_lookup(modinfos, mod);
  if (t == NULL) {
    t = modinfo_build_unlocked(mod);
    g_hash_table_insert(modinfos, mod, t);
  }
  return t;
}

/* Returns the name of the function symbol of t holding addr, or NULL. */
static const char *symbol_name(const modinfo *t, uintptr_t addr) {
  /* The last symbol starting at or before addr. */
  size_t lo = 0, hi = t->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (t->syms[mid].start <= addr)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo == 0)
    return NULL;
  const sym *s = &t->syms[lo - 1];
  if (s->size != 0 && addr - s->start >= s->size)
    return NULL; /* in padding after a function, or in code no symbol covers */
  return s->name;
}

/* libstdc++'s demangler, as <cxxabi.h> declares abi::__cxa_demangle. */
typedef char *cxa_demangle_fn(const char *mangled, char *buf, size_t *len, int *status);

/* Returns name interned, demangled when it is a C++ (Itanium ABI, "_Z") name and the process has
 * __cxa_demangle, which it has when libstdc++ is loaded: looked up with dlsym() when a name needs
 * it, never linked, so a C program does not load libstdc++ for us. A name that does not demangle
 * is kept as it is. NULL gives NULL. Requires lock (the lookup result is cached). */
static const char *function_name_intern(const char *name) {
  static cxa_demangle_fn *demangle;
  if (name == NULL)
    return NULL;
  if (name[0] != '_' || name[1] != 'Z')
    return g_intern_string(name);
  if (demangle == NULL)
    demangle = (cxa_demangle_fn *)(uintptr_t)dlsym(RTLD_DEFAULT, "__cxa_demangle");
  int status = -1;
  char *plain = demangle != NULL ? demangle(name, NULL, NULL, &status) : NULL;
  const char *interned = g_intern_string(status == 0 && plain != NULL ? plain : name);
  free(plain); /* malloc()ed by the demangler */
  return interned;
}

/* The CU's compilation directory, or NULL. */
static const char *comp_dir(Dwarf_Die *cu) {
  Dwarf_Attribute attr;
  return dwarf_formstring(dwarf_attr(cu, DW_AT_comp_dir, &attr));
}

/* Returns the interned absolute, lexically canonical path of a DWARF file name. libdw gives file
 * names as the compiler saw them: meson builds give "../tests/x.c", relative to the CU's
 * compilation directory, which is only right when run from there; and joining the two gives
 * "/src/build/../tests/x.c". Absolute paths let format.c read source lines from anywhere and
 * filters match the file wherever it was built from. The path is not resolved against the file
 * system (no symlink is followed), as the debugger shows it. */
static const char *source_path(const char *file, const char *dir) {
  if (file == NULL)
    return NULL;
  char *joined = NULL;
  if (!g_path_is_absolute(file) && dir != NULL && g_path_is_absolute(dir))
    joined = g_build_filename(dir, file, NULL);
  const char *path = joined != NULL ? joined : file;
  const char *result;
  if (g_path_is_absolute(path) && (strstr(path, "/./") != NULL || strstr(path, "/../") != NULL ||
                                   strstr(path, "//") != NULL)) {
    char *canon = g_canonicalize_filename(path, NULL);
    result = g_intern_string(canon);
    g_free(canon);
  } else {
    result = g_intern_string(path);
  }
  g_free(joined);
  return result;
}

/* Name of a subprogram or inlined-subroutine DIE, following DW_AT_abstract_origin and
 * DW_AT_specification; the linkage name is not preferred so C++ frames read as written. */
static const char *die_name(Dwarf_Die *die) {
  const char *name = dwarf_diename(die);
  if (name == NULL) {
    Dwarf_Attribute attr;
    name = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_linkage_name, &attr));
  }
  return name;
}

/* Returns what we keep of the CU whose DIE is cudie, made empty on first use. Requires lock. */
static cu_index *cu_index_get_unlocked(Dwarf_Die *cudie) {
  /* cudie->addr points into the mapped .debug_info: unique to this CU for the process. */
  cu_index *idx = g_hash_table_lookup(cu_indexes, cudie->addr);
  if (idx == NULL) {
    idx = g_new0(cu_index, 1);
    idx->inlines = -1;
    g_hash_table_insert(cu_indexes, cudie->addr, idx);
    memory_bytes += sizeof(*idx) + HASH_SLOT_BYTES;
  }
  return idx;
}

/* Finds the sections our line-table reader reads in the module's DWARF file. Requires lock. */
static void line_sections_find_unlocked(Dwfl_Module *mod, modinfo *info) {
  info->sections_found = true;
  Dwarf_Addr bias;
  Dwarf *dw = dwfl_module_getdwarf(mod, &bias);
  if (dw == NULL || !tm__line_sections_find(dw, &info->sections))
    info->sections = (tm__line_sections){0};
}

/* Returns the line table of the CU whose DIE is cudie, decoded by our reader on first use, or
 * NULL when it cannot be (no DW_AT_stmt_list, a split unit, a form or version it does not know):
 * the caller then asks libdw. Requires lock. */
static const tm__line_table *cu_lines_unlocked(Dwfl_Module *mod, modinfo *info,
                                               Dwarf_Die *cudie) {
  cu_index *idx = cu_index_get_unlocked(cudie);
  if (idx->lines_built)
    return idx->lines;
  idx->lines_built = true;
  if (!info->sections_found)
    line_sections_find_unlocked(mod, info);
  Dwarf_Attribute attr;
  Dwarf_Word offset;
  if (info->sections.line == NULL ||
      dwarf_formudata(dwarf_attr(cudie, DW_AT_stmt_list, &attr), &offset) != 0)
    return NULL;
  idx->lines = tm__line_table_new(&info->sections, offset, comp_dir(cudie));
  memory_bytes += tm__line_table_memory(idx->lines);
  return idx->lines;
}

/* The path of file i of the CU's line table (lines, read by our reader) as source_path() makes it,
 * made once per file of the CU rather than once per address. NULL when i names no file. Requires
 * lock. */
static const char *cu_path_unlocked(Dwarf_Die *cudie, const tm__line_table *lines, uint64_t i) {
  cu_index *idx = cu_index_get_unlocked(cudie);
  size_t n = tm__line_table_nfiles(lines);
  if (i >= n)
    return NULL;
  if (idx->paths == NULL) {
    idx->paths = g_new0(const char *, n);
    memory_bytes += n * sizeof(char *);
  }
  if (idx->paths[i] == NULL)
    idx->paths[i] = source_path(tm__line_table_file(lines, i), comp_dir(cudie));
  return idx->paths[i];
}

/* The source file a DW_AT_call_file attribute names, interned, or NULL. */
static const char *call_file(Dwfl_Module *mod, modinfo *info, Dwarf_Die *die) {
  Dwarf_Attribute attr;
  Dwarf_Word idx;
  if (dwarf_formudata(dwarf_attr(die, DW_AT_call_file, &attr), &idx) != 0)
    return NULL;
  Dwarf_Die cu;
  if (dwarf_diecu(die, &cu, NULL, NULL) == NULL)
    return NULL;
  const tm__line_table *lines = cu_lines_unlocked(mod, info, &cu);
  if (lines != NULL)
    return cu_path_unlocked(&cu, lines, idx);
  Dwarf_Files *files;
  size_t nfiles;
  if (dwarf_getsrcfiles(&cu, &files, &nfiles) != 0 || idx >= nfiles)
    return NULL;
  return source_path(dwarf_filesrc(files, idx, NULL, NULL), comp_dir(&cu));
}

static unsigned int call_line(Dwarf_Die *die) {
  Dwarf_Attribute attr;
  Dwarf_Word line;
  if (dwarf_formudata(dwarf_attr(die, DW_AT_call_line, &attr), &line) != 0 || line > UINT_MAX)
    return 0;
  return (unsigned int)line;
}

/* Appends the code ranges of die (a subprogram, an inlined call or an entry point) to out. */
static void die_ranges_append(Dwarf_Die *die, int tag, GArray *out) {
  Dwarf_Addr base, lo, hi;
  ptrdiff_t off = 0;
  while ((off = dwarf_ranges(die, off, &base, &lo, &hi)) > 0) {
    if (hi > lo) {
      scope_range r = {.lo = lo, .hi = hi, .die = *die, .enclosing = -1,
                       .inlined = tag == DW_TAG_inlined_subroutine};
      g_array_append_val(out, r);
    }
  }
}

/* Appends the code ranges inside a function: its inlined calls, at any depth, and the functions
 * nested in it. Walks only DIEs that can hold code (subprograms, inlined calls, lexical blocks)
 * and skips every other subtree, types included. */
static void function_walk(Dwarf_Die *parent, int depth, GArray *out) {
  Dwarf_Die child;
  if (depth > MAX_DIE_DEPTH || dwarf_child(parent, &child) != 0)
    return;
  do {
    int tag = dwarf_tag(&child);
    switch (tag) {
    case DW_TAG_subprogram:
    case DW_TAG_inlined_subroutine:
    case DW_TAG_entry_point:
      die_ranges_append(&child, tag, out);
      /* fallthrough */
    case DW_TAG_lexical_block:
    case DW_TAG_try_block:
    case DW_TAG_catch_block:
      function_walk(&child, depth + 1, out);
      break;
    default:
      break;
    }
  } while (dwarf_siblingof(&child, &child) == 0);
}

/* Appends the code ranges of a CU's functions, through namespaces and modules, without entering
 * them: a CU of 10,000 functions is read at the depth of its functions, and only the functions
 * that frames fall in are read further (function_walk). */
static void cu_walk(Dwarf_Die *parent, int depth, GArray *out) {
  Dwarf_Die child;
  if (depth > MAX_DIE_DEPTH || dwarf_child(parent, &child) != 0)
    return;
  do {
    int tag = dwarf_tag(&child);
    switch (tag) {
    case DW_TAG_subprogram:
    case DW_TAG_entry_point:
      die_ranges_append(&child, tag, out);
      break;
    case DW_TAG_namespace:
    case DW_TAG_module:
      cu_walk(&child, depth + 1, out);
      break;
    default:
      break;
    }
  } while (dwarf_siblingof(&child, &child) == 0);
}

/* Outer ranges first at one start address, so the last range starting at or before a pc is the
 * innermost candidate. */
static gint scope_range_cmp(gconstpointer a, gconstpointer b) {
  const scope_range *x = a, *y = b;
  if (x->lo != y->lo)
    return x->lo < y->lo ? -1 : 1;
  if (x->hi != y->hi)
    return x->hi > y->hi ? -1 : 1;
  return (int)x->inlined - (int)y->inlined; /* a subprogram encloses its inlined calls */
}

/* Makes idx of ranges (consumed): sorted by start, each linked to the innermost range that
 * encloses it. Inlined instances nest inside their callers, so the ranges form a tree. Requires
 * lock (counts memory). */
static void scope_index_build_unlocked(scope_index *idx, GArray *ranges) {
  g_array_sort(ranges, scope_range_cmp);
  idx->n = ranges->len;
  idx->ranges = (scope_range *)(void *)g_array_free(ranges, FALSE);
  /* A stack of open ranges: pop those that end before this one starts; the top encloses it. */
  int32_t *stack = g_new(int32_t, idx->n + 1);
  size_t depth = 0;
  for (size_t i = 0; i < idx->n; i++) {
    scope_range *r = &idx->ranges[i];
    while (depth > 0 && idx->ranges[stack[depth - 1]].hi <= r->lo)
      depth--;
    r->enclosing = depth > 0 ? stack[depth - 1] : -1;
    stack[depth++] = (int32_t)i;
  }
  g_free(stack);
  memory_bytes += idx->n * sizeof(scope_range);
}

/* Finds the ranges of idx holding pc, innermost first, up to the first subprogram, and stores
 * them in chain (at most max). Returns how many. */
static size_t scope_index_chain(const scope_index *idx, Dwarf_Addr pc, const scope_range **chain,
                                size_t max) {
  size_t lo = 0, hi = idx->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (idx->ranges[mid].lo <= pc)
      lo = mid + 1;
    else
      hi = mid;
  }
  /* A range before the last candidate that holds pc must enclose that candidate, so walking the
   * enclosing links visits every range holding pc, innermost first. */
  size_t n = 0;
  for (int32_t i = (int32_t)lo - 1; i >= 0 && n < max; i = idx->ranges[i].enclosing) {
    const scope_range *r = &idx->ranges[i];
    if (pc < r->lo || pc >= r->hi)
      continue;
    chain[n++] = r;
    if (!r->inlined)
      break;
  }
  return n;
}

/* Whether the CU whose DIE is cudie can hold an inlined call: whether its abbreviation table,
 * which lists the kinds of DIE the CU uses (a few hundred entries, read once per CU), has one for
 * DW_TAG_inlined_subroutine. A CU built without inlining (a -O0 build, the benchmark's call sites)
 * then needs no walk of its DIEs at all. Any doubt (an abbreviation libdw cannot read) answers
 * yes. Requires lock. */
static bool cu_inlines_unlocked(Dwarf_Die *cudie) {
  cu_index *idx = cu_index_get_unlocked(cudie);
  if (idx->inlines >= 0)
    return idx->inlines != 0;
  idx->inlines = 0;
  Dwarf_Off offset = 0;
  for (;;) {
    size_t length = 0;
    (void)dwarf_errno(); /* clears the last error: the end of the table sets none */
    Dwarf_Abbrev *abbrev = dwarf_getabbrev(cudie, offset, &length);
    /* The end of the table is (Dwarf_Abbrev *)-1 in libdw 0.188 (DWARF_END_ABBREV, private); a
     * NULL after it is an error. */
    if (abbrev == (Dwarf_Abbrev *)-1l || abbrev == NULL) {
      if (abbrev == NULL || dwarf_errno() != 0)
        idx->inlines = 1;
      break;
    }
    if (dwarf_getabbrevtag(abbrev) == DW_TAG_inlined_subroutine || length == 0) {
      idx->inlines = 1;
      break;
    }
    offset += length;
  }
  return idx->inlines != 0;
}

/* Finds the code ranges of the CU holding pc (a DWARF address), innermost first, and stores them
 * in chain (at most max). Returns how many, 0 when pc is in no function. The function holding pc
 * is found among the CU's functions, then the ranges inside it are indexed, once per function.
 * Requires lock. */
static size_t scope_chain_unlocked(Dwarf_Die *cudie, Dwarf_Addr pc, const scope_range **chain,
                                   size_t max) {
  cu_index *idx = cu_index_get_unlocked(cudie);
  if (!idx->functions_built) {
    GArray *ranges = g_array_new(FALSE, FALSE, sizeof(scope_range));
    cu_walk(cudie, 0, ranges);
    scope_index_build_unlocked(&idx->functions, ranges);
    idx->functions_built = true;
  }
  const scope_range *found;
  if (max == 0 || scope_index_chain(&idx->functions, pc, &found, 1) == 0)
    return 0;
  scope_range *function = (scope_range *)found; /* idx->functions, which we own */
  if (function->leaf) {
    chain[0] = function;
    return 1;
  }
  scope_index *inside = g_hash_table_lookup(function_scopes, function->die.addr);
  if (inside == NULL) {
    Dwarf_Die die = function->die;
    GArray *ranges = g_array_new(FALSE, FALSE, sizeof(scope_range));
    die_ranges_append(&die, dwarf_tag(&die), ranges);
    guint own = ranges->len;
    function_walk(&die, 0, ranges);
    if (ranges->len == own) { /* most functions: nothing inside to index */
      g_array_free(ranges, TRUE);
      function->leaf = true;
      chain[0] = function;
      return 1;
    }
    inside = g_new0(scope_index, 1);
    scope_index_build_unlocked(inside, ranges);
    g_hash_table_insert(function_scopes, function->die.addr, inside);
    memory_bytes += sizeof(*inside) + HASH_SLOT_BYTES;
  }
  return scope_index_chain(inside, pc, chain, max);
}

static gint cu_range_cmp(gconstpointer a, gconstpointer b) {
  const cu_range *x = a, *y = b;
  return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* Builds the sorted address ranges of every compilation unit of the module's DWARF. libdwfl finds
 * CUs through .debug_aranges, which clang does not emit unless asked (-gdwarf-aranges) and which
 * elfutils 0.188 does not make up from the CUs: without this, code built by clang would have no
 * lines. Requires lock. */
static void cu_table_build_unlocked(Dwfl_Module *mod, modinfo *info) {
  Dwarf_Addr bias;
  Dwarf *dw = dwfl_module_getdwarf(mod, &bias);
  GArray *out = g_array_new(FALSE, FALSE, sizeof(cu_range));
  Dwarf_CU *unit = NULL;
  Dwarf_Die cudie;
  uint8_t unit_type;
  while (dw != NULL &&
         dwarf_get_units(dw, unit, &unit, NULL, &unit_type, &cudie, NULL) == 0) {
    if (unit_type != DW_UT_compile && unit_type != DW_UT_skeleton && unit_type != DW_UT_partial)
      continue;
    Dwarf_Addr base, lo, hi;
    ptrdiff_t off = 0;
    while ((off = dwarf_ranges(&cudie, off, &base, &lo, &hi)) > 0) {
      if (hi > lo) {
        cu_range r = {.lo = lo, .hi = hi, .cu = cudie};
        g_array_append_val(out, r);
      }
    }
  }
  g_array_sort(out, cu_range_cmp);
  info->ncus = out->len;
  info->cus = (cu_range *)(void *)g_array_free(out, FALSE);
  info->cus_built = true;
  memory_bytes += info->ncus * sizeof(cu_range);
}

/* Returns the CU holding addr (ip - 1) in mod and stores the module's DWARF bias in *bias, or NULL
 * when there is no DWARF for it. libdwfl's answer is checked against the CU's own ranges: it
 * takes an address in a gap between two .debug_aranges entries for the first one's CU, and a
 * unit without them (clang's, in a module that also holds gcc's) lies in such a gap. Requires
 * lock. */
static Dwarf_Die *cu_find_unlocked(Dwfl_Module *mod, modinfo *info, Dwarf_Addr addr,
                                   Dwarf_Addr *bias) {
  Dwarf_Die *cu = dwfl_module_addrdie(mod, addr, bias);
  if (cu != NULL && dwarf_haspc(cu, addr - *bias) > 0)
    return cu;
  if (dwfl_module_getdwarf(mod, bias) == NULL)
    return NULL;
  if (!info->cus_built)
    cu_table_build_unlocked(mod, info);
  Dwarf_Addr pc = addr - *bias;
  size_t lo = 0, hi = info->ncus;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (info->cus[mid].lo <= pc)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo == 0 || pc >= info->cus[lo - 1].hi)
    return NULL;
  return &info->cus[lo - 1].cu;
}

/* Resolves pc (a DWARF address, of ip - 1) in a CU with line information, file:lineno being its
 * line (file interned, as source_path() gives it, or NULL): one frame per inlined call from the innermost outwards, then the frame of the function
 * that holds them. Returns the number of frames written (>= 1). Requires lock. */
static size_t resolve_dwarf_unlocked(Dwfl_Module *mod, modinfo *info, Dwarf_Die *cu,
                                     const char *file, unsigned int lineno, Dwarf_Addr pc,
                                     const char *module, const char *symbol, tm_frame *out,
                                     size_t max) {
  tm_frame cur = {.filename = file, .lineno = lineno, .module = module};
  if (cur.filename == NULL)
    cur.filename = g_intern_static_string("<unknown>");

  /* Split DWARF (-gsplit-dwarf): the skeleton unit in the module has the lines, the unit in the
   * .dwo file (libdw finds it by the skeleton's name and directory) has the functions and the
   * inlined calls. Without the .dwo, the skeleton: names from the ELF symbols only. */
  Dwarf_Die split;
  uint8_t unit_type;
  if (dwarf_cu_info(cu->cu, NULL, &unit_type, NULL, &split, NULL, NULL, NULL) == 0 &&
      unit_type == DW_UT_skeleton && split.addr != NULL && dwarf_tag(&split) == DW_TAG_compile_unit)
    cu = &split;
  const scope_range *chain[MAX_INLINE_FRAMES];
  /* Without inlined calls in the CU, the chain would be the function alone, whose name the ELF
   * symbol gives: no need to find it. */
  size_t nchain = symbol != NULL && !cu_inlines_unlocked(cu)
                      ? 0
                      : scope_chain_unlocked(cu, pc, chain, G_N_ELEMENTS(chain));
  size_t n = 0;
  const char *outer_name = NULL;
  for (size_t i = 0; i < nchain; i++) {
    Dwarf_Die die = chain[i]->die;
    if (!chain[i]->inlined) {
      outer_name = die_name(&die);
      break;
    }
    /* cur is a position inside this inlined callee; the caller's position is its call site.
     * Without room for every inlined frame, the innermost are kept and the rest skipped, but the
     * last frame always shows the real function at its own line. */
    if (n + 1 < max) {
      cur.function = function_name_intern(die_name(&die));
      cur.flags = TM_FRAME_INLINED;
      out[n++] = cur;
    }
    const char *cfile = call_file(mod, info, &die);
    cur.filename = cfile != NULL ? cfile : cur.filename;
    cur.lineno = call_line(&die);
    cur.function = NULL;
    cur.flags = 0;
  }
  /* The ELF symbol names the real function; the DWARF name covers stripped local symbols. */
  const char *fn = symbol != NULL ? symbol : outer_name;
  cur.function = function_name_intern(fn);
  out[n++] = cur;
  return n;
}

/* Resolves ip without the cache into out (max >= 1). Requires lock and init. */
static size_t resolve_uncached_unlocked(uintptr_t ip, uint64_t adds, tm_frame *out, size_t max) {
  Dwarf_Addr addr = ip - 1;
  Dwfl_Module *mod = ip > 1 && dwfl != NULL ? module_find_unlocked(addr, adds) : NULL;
  if (mod == NULL) {
    out[0] = tm__symbols_unknown_frame(ip);
    return 1;
  }
  modinfo *info = modinfo_get_unlocked(mod);
  const char *module = info->module;
  const char *symbol = symbol_name(info, addr);

  Dwarf_Addr bias;
  Dwarf_Die *cu = cu_find_unlocked(mod, info, addr, &bias);
  if (cu != NULL) {
    const tm__line_table *lines = cu_lines_unlocked(mod, info, cu);
    uint32_t file, lineno;
    if (lines != NULL && tm__line_table_lookup(lines, addr - bias, &file, &lineno))
      return resolve_dwarf_unlocked(mod, info, cu, cu_path_unlocked(cu, lines, file), lineno,
                                    addr - bias, module, symbol, out, max);
    Dwarf_Line *line = lines == NULL ? dwarf_getsrc_die(cu, addr - bias) : NULL;
    int n = 0;
    if (line != NULL && dwarf_lineno(line, &n) == 0)
      return resolve_dwarf_unlocked(mod, info, cu,
                                    source_path(dwarf_linesrc(line, NULL, NULL), comp_dir(cu)),
                                    n > 0 ? (unsigned int)n : 0, addr - bias, module, symbol, out,
                                    max);
  }

  out[0] = (tm_frame){.filename = info->display, .lineno = 0,
                      .function = function_name_intern(symbol),
                      .module = module, .flags = TM_FRAME_NO_DEBUG_INFO};
  return 1;
}

static size_t copy_frames(const cache_entry *e, uintptr_t ip, tm_frame *out, size_t max) {
  size_t n = MIN((size_t)e->nframes, max);
  for (size_t i = 0; i < n; i++) {
    out[i] = e->frames[i];
    out[i].ip = ip;
  }
  return n;
}

/* tm__symbols_resolve() as symbols.h describes it, reached through tm__symbols_module. */
static size_t resolve(uintptr_t ip, tm_frame *out, size_t max) {
  if (max == 0)
    return 0;
  register_atfork_once();
  g_mutex_lock(&lock);
  uint64_t adds, subs;
  loader_counts(&adds, &subs);
  if (dwfl != NULL && subs != reported_subs)
    session_reset_unlocked();
  ensure_init_unlocked(adds, subs); /* on failure every address resolves as unknown */
  gpointer key = (gpointer)ip;
  cache_entry *e = g_hash_table_lookup(cache, key);
  /* An address found in no module is looked up again once the loader has loaded something. */
  bool stale_unknown = e != NULL && (e->frames[0].flags & TM_FRAME_UNKNOWN) &&
                       e->loader_adds != adds;
  if (e == NULL || stale_unknown) {
    tm_frame tmp[MAX_INLINE_FRAMES];
    size_t n = resolve_uncached_unlocked(ip, adds, tmp, G_N_ELEMENTS(tmp));
    cache_entry *ne = g_malloc(sizeof(*ne) + n * sizeof(tm_frame));
    ne->nframes = (uint32_t)n;
    ne->loader_adds = adds;
    memcpy(ne->frames, tmp, n * sizeof(tm_frame));
    if (e != NULL)
      memory_bytes -= sizeof(*e) + e->nframes * sizeof(tm_frame);
    else
      memory_bytes += HASH_SLOT_BYTES;
    memory_bytes += sizeof(*ne) + n * sizeof(tm_frame);
    g_hash_table_insert(cache, key, ne); /* frees e */
    e = ne;
  }
  size_t n = copy_frames(e, ip, out, max);
  g_mutex_unlock(&lock);
  return n;
}

/* tm__symbols_memory() as symbols.h describes it, reached through tm__symbols_module. */
static size_t memory(void) {
  g_mutex_lock(&lock);
  size_t n = memory_bytes;
  g_mutex_unlock(&lock);
  return n;
}

__attribute__((visibility("default"))) const tm__symbols_api tm__symbols_module = {
    .version = TM_SYMBOLS_MODULE_VERSION,
    .frame_size = sizeof(tm_frame),
    .resolve = resolve,
    .memory = memory,
};
