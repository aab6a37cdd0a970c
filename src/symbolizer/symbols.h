/* symbols.h — resolve return addresses to frames with libdw (elfutils dwfl). Internal.
 *
 * Implemented by symbols_loader.c, which forwards to symbols.c in the symbolizer module
 * (symbols_module.h), loaded on the first resolution. Resolution is lazy and cached per address
 * for the life of the process.
 */
#ifndef TM_SYMBOLS_H
#define TM_SYMBOLS_H

#include <stddef.h>
#include <stdint.h>

#include <glib.h>

#include "tracemalloc.h"

/* Resolves one captured return address into frames, MOST RECENT FIRST: the innermost inlined
 * callee first, the function that holds the address last. Looks up ip - 1 (return addresses point
 * after the call). Writes at most max frames into out and returns how many it wrote (>= 1 when
 * max >= 1): an address in no module gives one frame flagged TM_FRAME_UNKNOWN, filename
 * "<unknown>"; a module without debug info gives one frame flagged TM_FRAME_NO_DEBUG_INFO whose
 * filename is the module's basename and whose function is the ELF symbol. Strings are
 * g_intern_string()ed. Libraries dlopen()ed after start are found (the module list is refreshed
 * when an address falls outside every known module). Thread-safe; call with the guard held.
 * The first call loads the symbolizer module. When it cannot be loaded, one line saying so goes to
 * stderr, once, and every address gives the TM_FRAME_UNKNOWN frame, never a crash. */
size_t tm__symbols_resolve(uintptr_t ip, tm_frame *out, size_t max);

/* The one frame an address in no module resolves to (and every address, when the symbolizer
 * module cannot be loaded). */
static inline tm_frame tm__symbols_unknown_frame(uintptr_t ip) {
  return (tm_frame){.filename = g_intern_static_string("<unknown>"), .flags = TM_FRAME_UNKNOWN,
                    .ip = ip};
}

/* Memory held by the resolver's own tables (symbol tables, inline-scope indexes, the address
 * cache), in bytes, an estimate that includes hash-table slots. libdw's own heap is not included;
 * both are allocated under the guard, so tm_get_tracemalloc_memory() already counts them.
 * Never loads the symbolizer module: 0 until tm__symbols_resolve() has loaded it. */
size_t tm__symbols_memory(void);

#endif /* TM_SYMBOLS_H */
