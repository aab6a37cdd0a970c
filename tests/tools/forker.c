/* forker.c — the program tests/tools traces with `tracemalloc run`: blocks left live at exit by
 * the parent, by a forked child, and by an exec'ed copy of itself. The lines marked SITE_* are the
 * allocation sites the tests look for (they find the line numbers in this file).
 *
 *   forker              parent: SITE_PARENT (10 x 100 B); child 1 forks and adds SITE_CHILD
 *                       (5 x 200 B); child 2 execs `forker exec` which adds SITE_EXEC (3 x 300 B)
 *   forker grow N       SITE_GROW: N x 1 KiB, for compare (run twice with different N)
 *   forker wait         SITE_PARENT, then waits for SIGTERM (signal dumps)
 *   forker crash        SITE_PARENT, then SIGSEGV
 *   forker peak         SITE_PEAK 100 x 10 KiB held 200 ms then freed, SITE_PARENT left live
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void *volatile keep[200];

static __attribute__((noinline)) void parent_blocks(void) {
  for (int i = 0; i < 10; i++)
    keep[i] = malloc(100); /* SITE_PARENT */
}

static __attribute__((noinline)) void child_blocks(void) {
  for (int i = 0; i < 5; i++)
    keep[20 + i] = malloc(200); /* SITE_CHILD */
}

static __attribute__((noinline)) void exec_blocks(void) {
  for (int i = 0; i < 3; i++)
    keep[40 + i] = malloc(300); /* SITE_EXEC */
}

static __attribute__((noinline)) void grow_blocks(int n) {
  for (int i = 0; i < n && i < 100; i++)
    keep[60 + i] = malloc(1024); /* SITE_GROW */
}

static __attribute__((noinline)) void peak_blocks(void) {
  void *big[100];
  for (int i = 0; i < 100; i++)
    big[i] = malloc(10240); /* SITE_PEAK */
  nanosleep(&(struct timespec){0, 200 * 1000 * 1000}, NULL);
  for (int i = 0; i < 100; i++)
    free(big[i]);
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "exec") == 0) {
    exec_blocks();
    return 0;
  }
  if (argc > 2 && strcmp(argv[1], "grow") == 0) {
    grow_blocks(atoi(argv[2]));
    return 0;
  }
  parent_blocks(); /* CALL_PARENT */
  if (argc > 1 && strcmp(argv[1], "wait") == 0) {
    printf("ready\n");
    fflush(stdout);
    for (;;)
      pause();
  }
  if (argc > 1 && strcmp(argv[1], "crash") == 0)
    raise(SIGSEGV);
  if (argc > 1 && strcmp(argv[1], "peak") == 0) {
    peak_blocks();
    return 0;
  }
  pid_t pid = fork();
  if (pid == 0) {
    child_blocks(); /* CALL_CHILD */
    exit(0);
  }
  waitpid(pid, NULL, 0);
  pid = fork();
  if (pid == 0) {
    execl("/proc/self/exe", argv[0], "exec", (char *)NULL);
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
