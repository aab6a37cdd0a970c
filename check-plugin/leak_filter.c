/* leak_filter.c — which traces are not the test's leak, and where a leak was made.
 *
 * Users drop leak checkers that cry wolf, so the defaults remove the one-time caches of
 * the C library, the loader, Check and GLib. Every rule is "some frame of the traceback is in one
 * of these functions / files / modules": the public entry points of a cache (tzset, g_quark_*,
 * pthread_create) are exported symbols, so they resolve even in libraries without debug info,
 * where internal functions have no name. A rule never names a function that also returns memory
 * the caller must free (newlocale, getaddrinfo, g_type_create_instance), so a real leak through
 * the same library is still caught.
 */
#include <string.h>

#include "leak_internal.h"

/* A set of glob patterns, with a fast path for patterns without wildcards. */
typedef struct pattern_set {
  GHashTable *literals; /* name (owned) => the same string */
  GPtrArray *globs;     /* GPatternSpec*, owned */
  GPtrArray *sources;   /* char* (owned), the text of globs[i] */
} pattern_set;

struct tm__leak_filters {
  pattern_set functions;  /* ignore: some frame's function matches */
  pattern_set files;      /* ignore: some frame's source file matches */
  pattern_set modules;    /* ignore: some frame's module path matches */
  pattern_set loader_functions; /* ignore: as functions and modules, where no frame more recent */
  pattern_set loader_modules;   /* is the program's own code (the loader ran a constructor) */
  pattern_set allocators; /* the allocation site skips these frames */
  tm__leak_suppressions *suppressions; /* LSan and Valgrind files (leak_suppress.c), or NULL */
  /* What tm__leak_filters_match_kind() answered, per traceback: tm_traceback* (a reference, so
   * that the address cannot be reused) => verdict*, the matching pattern or suppression (or
   * no_match) per kind of block, filled as kinds are asked. Emptied whenever an ignore pattern or
   * a suppression is added. Live tracebacks are shared and immortal (one per engine stack), so
   * in CK_FORK=no mode a stack that every test repeats (Check's message file, a stdio buffer) is
   * resolved and matched once per process. */
  GHashTable *verdicts;
};

/* The cached answer "no pattern matches". */
static const char no_match[] = "";

/* The answers for one traceback, by kind of block (TM__LEAK_SUPP_* bit index): NULL while not
 * asked. A pattern answers for every kind; a suppression may name kinds (match-leak-kinds). */
typedef struct verdict {
  const char *answer[4];
} verdict;

/* stdio buffers: allocated on a stream's first read or write and kept until fclose/exit; a
 * wide-oriented stream's second buffer, and the locale's conversion functions that wide output
 * loads once (printf("%ls"), fwprintf). The wide output functions return nothing to free. */
static const char *const stdio_functions[] = {
  "_IO_file_doallocate", "_IO_wfile_doallocate", "__wcsmbs_load_conv", "fwprintf", "vfwprintf",
  "wprintf", "vwprintf", "fputwc", "putwc", "putwchar", "fputws", NULL,
};

/* The text of an unknown errno or signal value: a buffer glibc keeps per thread and replaces on
 * the next call. Neither function returns memory to free. */
static const char *const strerror_functions[] = {
  "strerror", "strerror_l", "__strerror_r", "strsignal", NULL,
};

/* iconv's loaded conversion modules (gconv_dl.c), kept after iconv_close() for the next
 * iconv_open(): only the module records, not the descriptor iconv_open() returns. */
static const char *const iconv_functions[] = {"__gconv_find_shlib", NULL};

/* Time zone, locale and message catalogs: loaded once per process. With glibc's debug symbols
 * the frames are glibc's internal functions (localtime_r tail-calls __tz_convert), so those are
 * named too; without them, the exported entry points are what resolves. */
static const char *const tz_locale_functions[] = {
  "__tz_convert", "tzset_internal", "__tzfile_read", "__tzfile_compute", "__tzset_parse_tz",
  "_nl_find_domain", "_nl_load_domain", "_nl_find_locale", "_nl_load_locale*",
  "tzset", "localtime", "localtime_r", "gmtime", "gmtime_r", "mktime", "timelocal", "ctime",
  "ctime_r", "strftime",
  "strftime_l", "wcsftime", "setlocale", "gettext", "dgettext", "dcgettext", "ngettext",
  "dngettext", "dcngettext", "bindtextdomain", "bind_textdomain_codeset", "textdomain", NULL,
};

/* NSS and the resolver: the nsswitch configuration, loaded service modules, and the static
 * results of the non-reentrant lookups (which the caller never frees). */
static const char *const nss_functions[] = {
  "__nss_*", "_nss_*", "__resolv_context_get*", "__resolv_conf*", "getpwnam", "getpwuid",
  "getpwent", "getpwnam_r", "getpwuid_r", "getgrnam", "getgrgid", "getgrent", "getgrnam_r",
  "getgrgid_r", "getgrouplist", "initgroups", "getspnam", "getlogin", "getlogin_r",
  "gethostbyname", "gethostbyname2", "gethostbyaddr", "getservbyname", "getservbyport",
  "getprotobyname", "getprotobynumber", "getnetbyname",
  "__check_pf", /* what getaddrinfo() learnt about the interfaces, kept for the next call */
  NULL,
};

/* The dynamic loader (link maps, dlerror buffers) and glibc's thread TLS: pthread_create callocs
 * a TLS vector that glibc keeps with the stack of a joined thread for reuse
 * (docs/costs.md#hazards-seen). The loader also runs the program's code: the constructors of a
 * module that dlopen() loads. A block that code allocated is the program's, so these rules match
 * only frames more recent than any of the program's own (match_frames()). */
static const char *const loader_functions[] = {
  "dlopen", "dlmopen", "dlsym", "dlvsym", "dlerror", "_dl_*", "__libc_dlopen_mode",
  "pthread_create", NULL,
};
static const char *const loader_modules[] = {"*/ld-linux*.so*", "*/libnss_*.so*", NULL};

/* Check's message file in no-fork mode: after each checked setup Check replaces it by a new FILE
 * whose buffer the next message allocates (docs/check-internals.md#check-heap-use). */
static const char *const check_functions[] = {"open_tmp_file", "ppack", NULL};

/* GLib and GObject one-time data: quarks, interned strings, the type system (types, classes,
 * signals, properties), lazily allocated static locks and privates, g_once, cached user and
 * system information. */
static const char *const glib_functions[] = {
  "g_quark_from_string", "g_quark_from_static_string", "g_intern_string",
  "g_intern_static_string", "g_type_register_*", "g_type_add_interface_*", "g_type_class_ref",
  "g_type_default_interface_ref", "g_type_interface_add_prerequisite", "g_type_ensure",
  "g_type_init*", "g_type_add_instance_private", "g_type_add_class_private",
  "g_type_class_adjust_private_offset", "g_type_set_qdata", "g_type_plugin_*",
  "g_boxed_type_register_static", "g_enum_register_static", "g_flags_register_static",
  "g_pointer_type_register_static", "g_param_type_register_static",
  "g_value_register_transform_func", "g_signal_new*", "g_signal_override_class_*",
  "g_object_class_install_propert*", "g_object_interface_install_property", "g_once_impl", "g_private_get", "g_private_set", "g_private_replace",
  "g_rec_mutex_lock", "g_rec_mutex_trylock", "g_rw_lock_reader_lock", "g_rw_lock_reader_trylock",
  "g_rw_lock_writer_lock", "g_rw_lock_writer_trylock", "g_thread_self", "g_main_context_default",
  "g_get_worker_context", "g_get_charset", "g_get_codeset", "g_get_filename_charsets",
  "g_get_language_names*", "g_get_user_name", "g_get_real_name", "g_get_home_dir",
  "g_get_tmp_dir", "g_get_host_name", "g_get_prgname", "g_set_prgname",
  "g_get_application_name", "g_set_application_name", "g_get_user_*_dir", "g_get_system_*_dirs",
  "g_random_*", "g_error_domain_register*", NULL,
};

/* GSlice's magazine allocator (GLib < 2.76 without G_SLICE=always-malloc) carves objects out of
 * slabs it keeps per thread: the blocks malloc sees under g_slice_* are its slabs and magazines,
 * never an object. With always-malloc every g_slice_alloc is one malloc block, which must count. */
static const char *const gslice_functions[] = {"g_slice_*", NULL};

/* Allocator wrappers: the site of an allocation is the first frame that is not one of these. */
static const char *const default_allocators[] = {
  "malloc", "calloc", "realloc", "reallocarray", "posix_memalign", "aligned_alloc", "memalign",
  "valloc", "pvalloc", "strdup", "strndup", "__strdup", "__strndup", "wcsdup", "asprintf",
  "vasprintf", "__asprintf*", "__vasprintf*", "g_malloc*", "g_try_malloc*", "g_realloc*",
  "g_try_realloc*", "g_aligned_alloc*", "g_slice_*", "g_strdup*", "g_strndup", "g_strnfill",
  "g_memdup*", "g_strconcat", "g_strjoin*", "g_vasprintf", NULL,
};

/* Where system libraries live: their frames are never the site of a leak in the test's code. */
static const char *const system_prefixes[] = {"/lib/", "/lib64/", "/usr/lib/", "/usr/lib64/", NULL};

static void pattern_set_init(pattern_set *set) {
  set->literals = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  set->globs = g_ptr_array_new_with_free_func((GDestroyNotify)g_pattern_spec_free);
  set->sources = g_ptr_array_new_with_free_func(g_free);
}

static void pattern_set_clear(pattern_set *set) {
  g_hash_table_unref(set->literals);
  g_ptr_array_unref(set->globs);
  g_ptr_array_unref(set->sources);
}

static void pattern_set_add(pattern_set *set, const char *pattern) {
  if (strpbrk(pattern, "*?") == NULL) {
    char *copy = g_strdup(pattern);
    g_hash_table_insert(set->literals, copy, copy);
    return;
  }
  g_ptr_array_add(set->globs, g_pattern_spec_new(pattern));
  g_ptr_array_add(set->sources, g_strdup(pattern));
}

static void pattern_set_add_all(pattern_set *set, const char *const *patterns) {
  for (; *patterns != NULL; patterns++)
    pattern_set_add(set, *patterns);
}

/* Returns the pattern that matches s, or NULL. A symbol version ("dlerror@@GLIBC_2.34", as the
 * resolver names versioned symbols) is not part of the name. */
static const char *pattern_set_match(const pattern_set *set, const char *s) {
  char name[256];
  const char *hit = NULL;

  if (s == NULL)
    return NULL;
  if (strchr(s, '@') != NULL) {
    g_strlcpy(name, s, MIN(sizeof name, strcspn(s, "@") + 1));
    s = name;
  }
  hit = g_hash_table_lookup(set->literals, s);
  for (guint i = 0; hit == NULL && i < set->globs->len; i++)
    if (g_pattern_spec_match_string(g_ptr_array_index(set->globs, i), s))
      hit = g_ptr_array_index(set->sources, i);
  return hit;
}

tm__leak_filters *tm__leak_filters_new(void) {
  tm__leak_filters *filters = g_new0(tm__leak_filters, 1);

  pattern_set_init(&filters->functions);
  pattern_set_init(&filters->files);
  pattern_set_init(&filters->modules);
  pattern_set_init(&filters->loader_functions);
  pattern_set_init(&filters->loader_modules);
  pattern_set_init(&filters->allocators);
  pattern_set_add_all(&filters->allocators, default_allocators);
  filters->verdicts =
    g_hash_table_new_full(g_direct_hash, g_direct_equal, (GDestroyNotify)tm_traceback_free, g_free);
  return filters;
}

void tm__leak_filters_free(tm__leak_filters *filters) {
  if (filters == NULL)
    return;
  pattern_set_clear(&filters->functions);
  pattern_set_clear(&filters->files);
  pattern_set_clear(&filters->modules);
  pattern_set_clear(&filters->loader_functions);
  pattern_set_clear(&filters->loader_modules);
  pattern_set_clear(&filters->allocators);
  g_hash_table_unref(filters->verdicts);
  tm__leak_suppressions_free(filters->suppressions);
  g_free(filters);
}

/* True when GSlice hands out one malloc block per object: since GLib 2.76, or when G_SLICE asks
 * for it. (g_slice_get_config() cannot tell: in GLib 2.74 it reads a default configuration that
 * G_SLICE never reaches.) */
static bool gslice_uses_malloc(void) {
  static const GDebugKey keys[] = {{"always-malloc", 1}};
  const char *value = secure_getenv("G_SLICE"); /* a setuid program ignores the environment */

  if (glib_check_version(2, 76, 0) == NULL)
    return true;
  G_GNUC_BEGIN_IGNORE_DEPRECATIONS
  if (g_slice_get_config(G_SLICE_CONFIG_ALWAYS_MALLOC)) /* set by the plugin's preinit */
    return true;
  G_GNUC_END_IGNORE_DEPRECATIONS
  return value != NULL && g_parse_debug_string(value, keys, G_N_ELEMENTS(keys)) != 0;
}

void tm__leak_filters_add_defaults(tm__leak_filters *filters) {
  g_hash_table_remove_all(filters->verdicts);
  pattern_set_add_all(&filters->functions, stdio_functions);
  pattern_set_add_all(&filters->functions, strerror_functions);
  pattern_set_add_all(&filters->functions, iconv_functions);
  pattern_set_add_all(&filters->functions, tz_locale_functions);
  pattern_set_add_all(&filters->functions, nss_functions);
  pattern_set_add_all(&filters->loader_functions, loader_functions);
  pattern_set_add_all(&filters->loader_modules, loader_modules);
  pattern_set_add_all(&filters->functions, check_functions);
  pattern_set_add_all(&filters->functions, glib_functions);
  if (!gslice_uses_malloc())
    pattern_set_add_all(&filters->functions, gslice_functions);
}

void tm__leak_filters_add_function(tm__leak_filters *filters, const char *pattern) {
  g_hash_table_remove_all(filters->verdicts);
  pattern_set_add(&filters->functions, pattern);
}

void tm__leak_filters_add_file(tm__leak_filters *filters, const char *pattern) {
  g_hash_table_remove_all(filters->verdicts);
  pattern_set_add(&filters->files, pattern);
}

void tm__leak_filters_add_module(tm__leak_filters *filters, const char *pattern) {
  g_hash_table_remove_all(filters->verdicts);
  pattern_set_add(&filters->modules, pattern);
}

tm__leak_suppressions *tm__leak_filters_suppressions(tm__leak_filters *filters) {
  g_hash_table_remove_all(filters->verdicts);
  if (filters->suppressions == NULL)
    filters->suppressions = tm__leak_suppressions_new();
  return filters->suppressions;
}

void tm__leak_filters_add_allocator(tm__leak_filters *filters, const char *pattern) {
  pattern_set_add(&filters->allocators, pattern);
}

static bool is_program_frame(const tm__leak_filters *filters, const tm_frame *frame);

/* The first pattern that one of tb's frames matches, or NULL. Resolves tb. */
static const char *match_frames(const tm__leak_filters *filters, const tm_traceback *tb) {
  size_t n = tm_traceback_length(tb);
  size_t program_end = 0; /* frames [program_end, n) hold none of the program's code */

  for (size_t i = n; i-- > 0;) {
    if (is_program_frame(filters, tm_traceback_get(tb, i))) {
      program_end = i + 1;
      break;
    }
  }
  for (size_t i = 0; i < n; i++) {
    const tm_frame *frame = tm_traceback_get(tb, i);
    const char *hit = pattern_set_match(&filters->functions, frame->function);
    if (hit == NULL && !(frame->flags & (TM_FRAME_NO_DEBUG_INFO | TM_FRAME_UNKNOWN)))
      hit = pattern_set_match(&filters->files, frame->filename);
    if (hit == NULL)
      hit = pattern_set_match(&filters->modules, frame->module);
    if (hit == NULL && i >= program_end) {
      hit = pattern_set_match(&filters->loader_functions, frame->function);
      if (hit == NULL)
        hit = pattern_set_match(&filters->loader_modules, frame->module);
    }
    if (hit != NULL)
      return hit;
  }
  return NULL;
}

const char *tm__leak_filters_match_kind(const tm__leak_filters *filters, const tm_traceback *tb,
                                        unsigned kind) {
  verdict *v = g_hash_table_lookup(filters->verdicts, tb);
  unsigned k = kind != 0 ? (unsigned)__builtin_ctz(kind) : 0;

  if (k >= G_N_ELEMENTS(v->answer))
    k = 0;
  if (v == NULL) {
    const char *hit = match_frames(filters, tb);
    v = g_new0(verdict, 1);
    for (size_t i = 0; hit != NULL && i < G_N_ELEMENTS(v->answer); i++)
      v->answer[i] = hit;
    /* The reference only pins the address: the traceback itself is immutable. */
    g_hash_table_insert(filters->verdicts, tm_traceback_ref((tm_traceback *)tb), v);
  }
  if (v->answer[k] == NULL) { /* leak_suppress.c: suppression files, by kind */
    const char *hit = tm__leak_suppressions_match(filters->suppressions, tb, 1u << k);
    v->answer[k] = hit != NULL ? hit : no_match;
  }
  return v->answer[k] == no_match ? NULL : v->answer[k];
}

const char *tm__leak_filters_match(const tm__leak_filters *filters, const tm_traceback *tb) {
  return tm__leak_filters_match_kind(filters, tb, TM__LEAK_SUPP_DEFINITE);
}

static bool in_system_library(const tm_frame *frame) {
  if (frame->module == NULL)
    return false;
  for (const char *const *p = system_prefixes; *p != NULL; p++)
    if (g_str_has_prefix(frame->module, *p))
      return true;
  return false;
}

/* Where the compiler and the system keep their headers: a frame in one of them, with a line, is an
 * inline function of a library (glibc's getline() in <bits/stdio.h> once optimized), not the
 * program's own code, even though it was compiled into the program. */
static const char *const system_header_prefixes[] = {
    "/usr/include/", "/usr/local/include/", "/usr/lib/gcc/", "/usr/lib/llvm-", NULL,
};

static bool in_system_header(const tm_frame *frame) {
  if (frame->filename == NULL || (frame->flags & TM_FRAME_NO_DEBUG_INFO))
    return false;
  for (const char *const *p = system_header_prefixes; *p != NULL; p++)
    if (g_str_has_prefix(frame->filename, *p))
      return true;
  return false;
}

/* A project's own allocation wrappers (o_malloc, cork_alloc_xmalloc, xstrdup, buf_alloc, a
 * class's operator new): the function that called the allocator, named like one, is looked
 * through when its caller is in the program too, and so is each caller in turn that is named like
 * one (gnulib's xstrdup calls xmemdup, which calls xmalloc). Only an unbroken chain from the
 * allocator: a wrapper returns what the allocator returned, while a function further out, named
 * otherwise, did other work. */
static const char *const wrapper_names[] = {
  "*malloc", "*calloc", "*realloc", "*zalloc", "*xalloc", "*_alloc", "*strdup", "*strndup",
  "*memdup", "*operator new*", NULL, /* also a class's own operator new */
};

/* Whether the name, or the name in lower case (secMalloc, XStrdup), matches a wrapper's; a
 * camelCase name ending in "Alloc" (secAlloc, poolAlloc) is one too. */
static bool looks_like_wrapper(const tm_frame *frame) {
  static GPatternSpec *globs[G_N_ELEMENTS(wrapper_names)];
  char name[256];
  if (frame->function == NULL)
    return false;
  g_strlcpy(name, frame->function, MIN(sizeof name, strcspn(frame->function, ".@") + 1));
  size_t len = strlen(name);
  if (len > 5 && strcmp(name + len - 5, "Alloc") == 0)
    return true;
  char lower[sizeof name];
  for (size_t i = 0; i <= len; i++)
    lower[i] = g_ascii_tolower(name[i]);
  for (size_t i = 0; wrapper_names[i] != NULL; i++) {
    if (globs[i] == NULL)
      globs[i] = g_pattern_spec_new(wrapper_names[i]);
    if (g_pattern_spec_match_string(globs[i], name) ||
        g_pattern_spec_match_string(globs[i], lower))
      return true;
  }
  return false;
}

/* Check's runner, which calls the test function (srunner_run_tagged, tcase_run_tfun_fork, ...):
 * never where a test allocated. Its frame is the program's most recent one when the test's own
 * frame is gone, because the test ended with a tail call to the allocator. */
static bool in_check_runner(const tm_frame *frame) {
  return frame->function != NULL && (g_str_has_prefix(frame->function, "srunner_") ||
                                     g_str_has_prefix(frame->function, "tcase_run_"));
}

/* Whether frame is the program's own code: what tm__leak_site() may name, allocator wrappers
 * aside. */
static bool is_program_frame(const tm__leak_filters *filters, const tm_frame *frame) {
  return !(frame->flags & TM_FRAME_UNKNOWN) &&
         pattern_set_match(&filters->allocators, frame->function) == NULL &&
         !in_system_library(frame) && !in_system_header(frame) && !in_check_runner(frame);
}

const tm_frame *tm__leak_site(const tm__leak_filters *filters, const tm_traceback *tb) {
  size_t n = tm_traceback_length(tb);
  const tm_frame *wrapper = NULL;

  if (n == 0)
    return NULL;
  for (size_t i = n; i-- > 0;) { /* most recent first */
    const tm_frame *frame = tm_traceback_get(tb, i);
    if (frame->flags & TM_FRAME_UNKNOWN)
      continue;
    if (pattern_set_match(&filters->allocators, frame->function) != NULL)
      continue;
    if (in_system_library(frame) || in_system_header(frame))
      continue;
    if (in_check_runner(frame))
      return wrapper; /* the test's frame is gone (a tail call): no site of its own to name */
    if (i > 0 && looks_like_wrapper(frame)) {
      wrapper = frame; /* the site is its caller, when that is the program's own code */
      continue;
    }
    if (wrapper != NULL && (frame->flags & TM_FRAME_NO_DEBUG_INFO))
      return wrapper; /* called from a framework (Check's runner): the wrapper is the site */
    return frame;
  }
  return wrapper != NULL ? wrapper : tm_traceback_get(tb, n - 1);
}

const tm_frame *tm__leak_test_frame(const tm_traceback *tb, const char *test_name) {
  size_t n = tm_traceback_length(tb);
  size_t len;

  if (test_name == NULL)
    return NULL;
  len = strlen(test_name);
  for (size_t i = n; i-- > 0;) {
    const tm_frame *frame = tm_traceback_get(tb, i);
    const char *name = frame->function;
    if (name == NULL)
      continue;
    /* A C++ suite's test is a C++ function: demangled "test_x_fn(int)", maybe in a namespace. */
    const char *params = strchr(name, '(');
    for (const char *q = name; (q = strstr(q, "::")) != NULL && (params == NULL || q < params);)
      name = q += 2;
    /* gcc may add a clone suffix to the symbol: test_x_fn.constprop.0 */
    if (strncmp(name, test_name, len) == 0 && strncmp(name + len, "_fn", 3) == 0 &&
        strchr(".( ", name[len + 3]) != NULL)
      return frame;
  }
  return NULL;
}
