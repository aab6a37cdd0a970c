/* build_note.h — each benchmark says which build it measures.
 *
 * The figures in README.md and docs/costs.md come from a release build (-O3, no assertions): a
 * debugoptimized build (meson's default, -O2 -g) measures the same code less steadily. Meson
 * passes its build type as TM_BENCH_BUILDTYPE (bench/meson.build).
 */
#ifndef TM_BENCH_BUILD_NOTE_H
#define TM_BENCH_BUILD_NOTE_H

#include <stdio.h>
#include <string.h>

#ifndef TM_BENCH_BUILDTYPE
#define TM_BENCH_BUILDTYPE "unknown"
#endif

/* Prints one line naming the build type, with a note when it is not a release build. */
static inline void bench_print_build(const char *bench) {
  if (strcmp(TM_BENCH_BUILDTYPE, "release") == 0)
    printf("%s: release build\n", bench);
  else
    printf("%s: %s build; the published figures come from a release build "
           "(meson setup <dir> --buildtype=release)\n",
           bench, TM_BENCH_BUILDTYPE);
}

#endif
