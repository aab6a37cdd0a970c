/* subprocess.h — running another program from a benchmark: a peer tool, a real program, this
 * executable in a child mode. Shared by the benchmarks that compare the tracer with valgrind,
 * heaptrack and LeakSanitizer side by side. Not thread-safe: call from the main thread.
 */
#ifndef TM_BENCH_SUBPROCESS_H
#define TM_BENCH_SUBPROCESS_H

#include <stdbool.h>

/* Returns whether prog is executable: as given when it holds a '/', else in one of PATH's
 * directories (/usr/bin:/bin when PATH is unset). */
bool bench_in_path(const char *prog);

/* Returns a new environment: this process's, without the variables that start a tracer in a child
 * (TRACEMALLOC, LD_PRELOAD, LSAN_OPTIONS), plus the entries of add ("NAME=VALUE", NULL-terminated;
 * add may be NULL). The array is the caller's to free() with bench_env_free(); its strings belong
 * to environ and to add. Exits with a message when out of memory. */
char **bench_env(const char *const *add);

/* Frees an environment bench_env() returned. NULL is accepted. */
void bench_env_free(char **env);

/* Runs argv (argv[0] looked up in PATH unless it holds a '/') with env, stdin from in_path
 * (/dev/null when NULL), stdout and stderr to out_path (/dev/null when NULL), and waits for it.
 * Stores its wait status in *status and the CPU time (user + system) of it and the children it
 * waited for in *cpu_s. Returns 0, or an errno value when it could not be run. */
int bench_spawn_wait(char *const argv[], char *const env[], const char *in_path,
                     const char *out_path, int *status, double *cpu_s);

/* Returns the path of LeakSanitizer's standalone runtime (liblsan.so.0, the library a
 * -fsanitize=leak build links), found through the C compiler or the usual library directories,
 * or NULL when it is not installed. Preloaded into an uninstrumented program, it serves malloc
 * exactly as in a rebuild: LeakSanitizer instruments no code. The string is static. */
const char *bench_lsan_runtime(void);

#endif
