/* symbols_loader.c — tm__symbols_resolve() and tm__symbols_memory() through the symbolizer
 * module, which the first resolution dlopen()s (symbols_module.h says why it is a module).
 *
 * Where the module is looked for; the first file that exists is the one loaded:
 *   1. $TM_SYMBOLS_MODULE, a full path, when set; then nowhere else, so that a test can make
 *      loading fail. Read with secure_getenv(): a setuid program loads no code the caller names.
 *   2. tracemalloc/ beside the libtracemalloc.so this code runs from, wherever it was installed
 *      or moved to.
 *   3. <prefix>/<libdir>/tracemalloc, the install directory, compiled in.
 *   4. The module's build directory (src/symbolizer/), compiled in, for a libtracemalloc.so
 *      copied elsewhere.
 * Linked statically into a program (the internal archive our tests link), or running as the
 * libtracemalloc.so of the build tree, the build directory comes first and nothing is looked for
 * beside the library: a build never loads the module of an older install.
 * A file that exists but fails to load ends the search: falling through to another copy could
 * load a module of another version without saying so.
 *
 * Loading runs once (pthread_once), with the caller's reentrancy guard held: the loader's own
 * mallocs are counted as tracer memory. In a child forked after the module was loaded, it stays
 * loaded; in a child forked before, the child loads it for itself. The module is never unloaded.
 */
#include "symbols.h"
#include "symbols_module.h"

#include <dlfcn.h>
#include <glib.h>
#include <link.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef TM_SYMBOLS_MODULE_NAME
#error "meson defines TM_SYMBOLS_MODULE_NAME, TM_SYMBOLS_INSTALL_DIR, TM_SYMBOLS_BUILD_DIR and TM_LIBRARY_BUILD_DIR"
#endif

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
/* The module's entry points: NULL before the first resolution and when loading failed. Written
 * once by load(); atomic because tm__symbols_memory() reads it without going through load_once. */
static _Atomic(const tm__symbols_api *) api;

/* Returns the directory of the libtracemalloc.so this code was loaded from (the caller frees
 * it), or NULL when there is none: the code is linked into the main program, or the loader
 * cannot say. */
static char *library_dir(void) {
  Dl_info info;
  struct link_map *map = NULL;
  if (dladdr1((const void *)(uintptr_t)library_dir, &info, (void **)&map, RTLD_DL_LINKMAP) == 0 ||
      map == NULL || map->l_name == NULL || map->l_name[0] == '\0' || info.dli_fname == NULL ||
      strchr(info.dli_fname, '/') == NULL)
    return NULL;
  return g_path_get_dirname(info.dli_fname);
}

/* Returns the places the module is looked for, in order, as a NULL-terminated array the caller
 * frees with g_strfreev(). Sets *override when the one place is $TM_SYMBOLS_MODULE. */
static char **candidates(bool *override) {
  const char *env = secure_getenv("TM_SYMBOLS_MODULE");
  GPtrArray *paths = g_ptr_array_new();
  *override = env != NULL && env[0] != '\0';
  if (*override) {
    g_ptr_array_add(paths, g_strdup(env));
  } else {
    char *dir = library_dir();
    /* The library of a build tree loads the module of the same build tree, never an installed
     * one of another version; an installed library finds its module beside it. */
    bool in_build_tree = dir != NULL && strcmp(dir, TM_LIBRARY_BUILD_DIR) == 0;
    if (dir != NULL && !in_build_tree)
      g_ptr_array_add(paths, g_build_filename(dir, "tracemalloc", TM_SYMBOLS_MODULE_NAME, NULL));
    const char *dirs[2] = {TM_SYMBOLS_INSTALL_DIR, TM_SYMBOLS_BUILD_DIR};
    if (dir == NULL || in_build_tree) { /* statically linked (our tests), or the build tree */
      dirs[0] = TM_SYMBOLS_BUILD_DIR;
      dirs[1] = TM_SYMBOLS_INSTALL_DIR;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(dirs); i++)
      g_ptr_array_add(paths, g_build_filename(dirs[i], TM_SYMBOLS_MODULE_NAME, NULL));
    g_free(dir);
  }
  g_ptr_array_add(paths, NULL);
  return (char **)g_ptr_array_free(paths, FALSE);
}

/* dlopen()s the module at path and returns its entry points. On failure, stores a new string
 * saying why in *why (the caller frees it) and returns NULL, leaving nothing loaded. */
static const tm__symbols_api *module_open(const char *path, char **why) {
  void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (handle == NULL) {
    const char *error = dlerror();
    *why = g_strdup(error != NULL ? error : "dlopen failed");
    return NULL;
  }
  const tm__symbols_api *found = dlsym(handle, TM_SYMBOLS_MODULE_SYMBOL);
  if (found == NULL)
    *why = g_strdup("it defines no " TM_SYMBOLS_MODULE_SYMBOL);
  else if (found->version != TM_SYMBOLS_MODULE_VERSION || found->frame_size != sizeof(tm_frame))
    *why = g_strdup_printf("it is version %u, this libtracemalloc needs %u", found->version,
                           TM_SYMBOLS_MODULE_VERSION);
  else
    return found;
  dlclose(handle);
  return NULL;
}

/* pthread_once body: loads the module, or says on stderr, in one line, why frames will be
 * addresses. */
static void load(void) {
  bool override;
  char **paths = candidates(&override);
  char *why = NULL;
  for (size_t i = 0; paths[i] != NULL; i++) {
    /* An override is loaded, or fails, whether its file exists or not. */
    if (!override && access(paths[i], F_OK) != 0)
      continue;
    const tm__symbols_api *found = module_open(paths[i], &why);
    if (found != NULL)
      atomic_store_explicit(&api, found, memory_order_release);
    else
      fprintf(stderr, "tracemalloc: cannot load %s: %s; frames are shown as addresses\n",
              paths[i], why);
    goto out;
  }
  for (size_t i = 0; paths[i] != NULL; i++) {
    char *dir = g_path_get_dirname(paths[i]);
    g_free(paths[i]);
    paths[i] = dir;
  }
  why = g_strjoinv(", ", paths);
  fprintf(stderr, "tracemalloc: cannot load %s: not in %s; frames are shown as addresses\n",
          TM_SYMBOLS_MODULE_NAME, why);
out:
  g_free(why);
  g_strfreev(paths);
}

/* See symbols.h. Without the module, every address is unknown. */
size_t tm__symbols_resolve(uintptr_t ip, tm_frame *out, size_t max) {
  if (max == 0)
    return 0;
  pthread_once(&load_once, load);
  const tm__symbols_api *loaded = atomic_load_explicit(&api, memory_order_acquire);
  if (loaded != NULL)
    return loaded->resolve(ip, out, max);
  out[0] = tm__symbols_unknown_frame(ip);
  return 1;
}

/* See symbols.h. */
size_t tm__symbols_memory(void) {
  const tm__symbols_api *loaded = atomic_load_explicit(&api, memory_order_acquire);
  return loaded != NULL ? loaded->memory() : 0;
}
