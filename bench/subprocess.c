/* subprocess.c — running another program from a benchmark (see subprocess.h). */
#include "subprocess.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

bool bench_in_path(const char *prog) {
  if (strchr(prog, '/') != NULL)
    return access(prog, X_OK) == 0;
  const char *path = getenv("PATH");
  char buf[PATH_MAX];
  if (path == NULL)
    path = "/usr/bin:/bin";
  while (*path) {
    size_t len = strcspn(path, ":");
    if (len > 0 && snprintf(buf, sizeof buf, "%.*s/%s", (int)len, path, prog) < (int)sizeof buf &&
        access(buf, X_OK) == 0)
      return true;
    path += len + (path[len] == ':');
  }
  return false;
}

/* Whether entry ("NAME=VALUE") sets a variable that would start a tracer in a child. */
static bool starts_tracer(const char *entry) {
  static const char *const names[] = {"TRACEMALLOC=", "LD_PRELOAD=", "LSAN_OPTIONS="};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strncmp(entry, names[i], strlen(names[i])) == 0)
      return true;
  return false;
}

char **bench_env(const char *const *add) {
  size_t n = 0, nadd = 0, k = 0;
  while (environ[n] != NULL)
    n++;
  while (add != NULL && add[nadd] != NULL)
    nadd++;
  char **env = calloc(n + nadd + 1, sizeof *env);
  if (env == NULL) {
    fprintf(stderr, "bench: out of memory for an environment\n");
    exit(1);
  }
  for (size_t i = 0; i < n; i++)
    if (!starts_tracer(environ[i]))
      env[k++] = environ[i];
  for (size_t i = 0; i < nadd; i++)
    env[k++] = (char *)add[i];
  env[k] = NULL;
  return env;
}

void bench_env_free(char **env) { free(env); }

int bench_spawn_wait(char *const argv[], char *const env[], const char *in_path,
                     const char *out_path, int *status, double *cpu_s) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, in_path != NULL ? in_path : "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out_path != NULL ? out_path : "/dev/null",
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid;
  int err = posix_spawnp(&pid, argv[0], &fa, NULL, argv, env);
  posix_spawn_file_actions_destroy(&fa);
  if (err != 0)
    return err;
  struct rusage ru;
  while (wait4(pid, status, 0, &ru) < 0)
    if (errno != EINTR)
      return errno;
  *cpu_s = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
  return 0;
}

const char *bench_lsan_runtime(void) {
  static char path[PATH_MAX];
  static int known; /* 0: not looked up yet; 1: found; 2: absent */
  if (known != 0)
    return known == 1 ? path : NULL;
  known = 2;
  FILE *f = popen("cc -print-file-name=liblsan.so.0 2>/dev/null", "r");
  if (f != NULL) {
    if (fgets(path, sizeof path, f) != NULL) {
      path[strcspn(path, "\n")] = '\0';
      if (path[0] == '/' && access(path, R_OK) == 0)
        known = 1;
    }
    pclose(f);
  }
  static const char *const dirs[] = {"/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
                                     "/usr/lib64", "/usr/lib"};
  for (size_t i = 0; known != 1 && i < sizeof dirs / sizeof dirs[0]; i++) {
    snprintf(path, sizeof path, "%s/liblsan.so.0", dirs[i]);
    if (access(path, R_OK) == 0)
      known = 1;
  }
  return known == 1 ? path : NULL;
}
