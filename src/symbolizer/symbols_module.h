/* symbols_module.h — what the symbolizer module exports to libtracemalloc. Internal.
 *
 * symbols.c resolves addresses with libdw, which maps libdw, libelf, libz and libbz2 into the
 * process. Every mapped library costs each fork()+exit() of a Check test child ~20-25 µs (page
 * tables to copy, a destructor to run), and a passing test never symbolizes anything. So
 * symbols.c is built into its own shared module, libtracemalloc-symbols.so, installed in
 * <libdir>/tracemalloc/, and symbols_loader.c dlopen()s it on the first resolution.
 *
 * The module exports one object, TM_SYMBOLS_MODULE_SYMBOL; everything else in it is hidden.
 */
#ifndef TM_SYMBOLS_MODULE_H
#define TM_SYMBOLS_MODULE_H

#include <stddef.h>
#include <stdint.h>

#include "tracemalloc.h"

/* Bump when a member below, or what it means, changes. */
#define TM_SYMBOLS_MODULE_VERSION 1u
/* The name of the one symbol the module exports. */
#define TM_SYMBOLS_MODULE_SYMBOL "tm__symbols_module"

/* The module's entry points; symbols.h documents their contracts. */
typedef struct tm__symbols_api {
  unsigned int version; /* TM_SYMBOLS_MODULE_VERSION of the build that made the module */
  size_t frame_size;    /* sizeof(tm_frame) there: the frames cross the boundary */
  size_t (*resolve)(uintptr_t ip, tm_frame *out, size_t max);
  size_t (*memory)(void);
} tm__symbols_api;

/* Defined by symbols.c, the only symbol the module exports. */
extern const tm__symbols_api tm__symbols_module;

#endif /* TM_SYMBOLS_MODULE_H */
