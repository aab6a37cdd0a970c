/* test_out_of_memory.c — the analysis layer under an address-space limit: taking a snapshot and
 * working on it either succeeds or fails with TM_ERROR_NO_MEMORY; it never aborts in GLib's
 * allocator or crashes. Each attempt runs in a forked child under setrlimit(RLIMIT_AS), with the
 * limit swept over the steps a snapshot of many traces allocates through. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "analysis_fixtures.h"

#define NBLOCKS 300000

static void *blocks[NBLOCKS];

/* Keeps the compiler from eliding the blocks. */
static __attribute__((noinline)) void *alloc_site(size_t size, int site) {
  void *p = malloc(size);
  __asm__ volatile("" : : "g"(p), "g"(site) : "memory");
  return p;
}

/* The process's address-space size now, in bytes (VmSize), or 0. */
static size_t address_space(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  size_t kib = 0;
  if (f == NULL)
    return 0;
  while (fgets(line, sizeof line, f) != NULL)
    if (sscanf(line, "VmSize: %zu kB", &kib) == 1)
      break;
  fclose(f);
  return kib * 1024;
}

/* Touches size bytes of stack below this frame, so that the stack is already that deep when the
 * address space is limited: under RLIMIT_AS a stack that must grow faults (SIGSEGV), which is not
 * the out-of-memory condition this test is about, and how deep the parent's stack once went (what
 * the child inherits) depends on what ran before. */
static __attribute__((noinline)) void stack_pregrow(size_t size) {
  volatile char *p = __builtin_alloca(size);
  for (size_t i = 0; i < size; i += 4096)
    p[i] = 0;
  __asm__ volatile("" : : "r"(p) : "memory");
}

/* In a child: limits the address space to what it uses plus headroom, then takes a snapshot,
 * groups it and formats a statistic. Exit status 0: all succeeded; 1: a clean NO_MEMORY error;
 * 2: another error. A crash or abort shows as a signal. */
static void child_run(size_t headroom) {
  struct rlimit rl;
  stack_pregrow((size_t)512 << 10);
  size_t now = address_space();
  rl.rlim_cur = rl.rlim_max = now + headroom;
  if (now == 0 || setrlimit(RLIMIT_AS, &rl) != 0)
    _exit(3);
  GError *err = NULL;
  tm_snapshot *snap = tm_take_snapshot(&err);
  tm_statistics *stats = NULL;
  if (snap != NULL)
    stats = tm_snapshot_statistics(snap, TM_KEY_LINENO, false, &err);
  if (stats != NULL && tm_statistics_length(stats) > 0) {
    char *line = tm_statistic_format(tm_statistics_get(stats, 0));
    free(line);
  }
  int code = snap != NULL && stats != NULL ? 0
             : err != NULL && err->domain == TM_ERROR && err->code == TM_ERROR_NO_MEMORY ? 1
                                                                                        : 2;
  _exit(code);
}

START_TEST(test_snapshot_out_of_memory_reports_no_memory) {
  ck_assert_int_eq(tm_start(4), 0);
  for (int i = 0; i < NBLOCKS; i++)
    blocks[i] = alloc_site(16, i % 7);
  /* Resolves the few stacks once, here: libdw itself may crash when memory runs out inside it
   * (seen in dwarf_getsrclines), which no caller can prevent. The children then resolve from the
   * cache and exercise our own code only. */
  tm_snapshot *warm = tm_take_snapshot(NULL);
  ck_assert_ptr_nonnull(warm);
  tm_statistics_free(tm_snapshot_statistics(warm, TM_KEY_LINENO, false, NULL));
  tm_snapshot_free(warm);
  int outcomes[4] = {0};
  /* From no headroom (everything fails) to enough for the whole snapshot, by 192 KiB steps. */
  for (size_t headroom = 0; headroom < ((size_t)24 << 20); headroom += 192 << 10) {
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
      child_run(headroom);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status), "headroom %zu KiB: killed by signal %d", headroom >> 10,
                  WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    ck_assert_msg(WEXITSTATUS(status) <= 1, "headroom %zu KiB: exit %d", headroom >> 10,
                  WEXITSTATUS(status));
    outcomes[WEXITSTATUS(status)]++;
  }
  ck_assert_int_gt(outcomes[1], 0); /* the limit did bite */
  ck_assert_int_gt(outcomes[0], 0); /* and was lifted enough to succeed */
  for (int i = 0; i < NBLOCKS; i++)
    free(blocks[i]);
  tm_stop();
}
END_TEST

int main(void) {
  Suite *s = suite_create("out_of_memory");
  TCase *tc = tcase_create("rlimit");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_snapshot_out_of_memory_reports_no_memory);
  suite_add_tcase(s, tc);
  return run_suite(s);
}
