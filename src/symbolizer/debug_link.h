/* debug_link.h — the separate debug file a module's .gnu_debuglink section names. Internal.
 *
 * `objcopy --only-keep-debug` and `--add-gnu-debuglink` (CMake and autotools recipes, embedded
 * distributions) leave the DWARF in a file beside the stripped object, found by name only. libdw's
 * standard search finds it, but also asks debuginfod servers, which the symbolizer never does by
 * default (docs/symbolizer.md, "Debug files"); this is the name search alone.
 */
#ifndef TM_DEBUG_LINK_H
#define TM_DEBUG_LINK_H

#include <elfutils/libdwfl.h>

/* Looks for debug_name (the section's file name) where GDB and libdw look: in the directory of
 * file_name (the module's file), in its .debug subdirectory, and under /usr/lib/debug followed by
 * that directory. A candidate is taken only when it is the module's own: the same build-id, or,
 * for a module without one, the CRC-32 the link records (crc). Returns an open file descriptor
 * and stores the file's path in *path (malloc()ed, the caller's), or returns -1 with *path
 * untouched. Reads files; allocates; thread-safe (no state). */
int tm__debug_link_find(Dwfl_Module *mod, const char *file_name, const char *debug_name,
                        GElf_Word crc, char **path);

#endif
