/* leak_quiet.c — Check's own messages, untraced (docs/costs.md#the-plugin).
 *
 * Check reports to its runner through a temporary file: every fixture it runs, tcase_fn_start()
 * at the start of each test and _mark_point() behind each passing ck_assert send a message,
 * which costs a strdup(), a packed buffer and, on a fresh file, the FILE and its buffer
 * (docs/check-internals.md#check-heap-use). None of it is the test's memory, but traced, every
 * block is a stack walk through Check's internals: in a CK_FORK=yes child most of those return addresses were never
 * walked by the runner, so libunwind's cache misses on each (a DWARF lookup and a copy-on-write
 * fault, ~16 a test, the largest part of the fixture's cost). And in CK_FORK=no mode the new
 * message file Check opens after every checked setup would make every window a leak candidate.
 *
 * So the three functions that do Check's messaging run with the thread paused
 * (tm_thread_pause()): send_ctx_info, send_loc_info and receive_test_result. Their callers are
 * in other objects of libcheck.a (check_run.o, check.o), so -Wl,--wrap reaches them even though
 * the calls are inside Check; the plugin's link flags add the wraps and -u __wrap_send_ctx_info,
 * which pulls this object out of the archive before libcheck's own objects ask for it. The
 * __real_ references are weak: a Check without these internals links, and simply is not
 * wrapped (so is a shared libcheck, where the calls never reach the link).
 */
#include <check.h>

#include "leak_internal.h"

void __real_send_ctx_info(enum ck_result_ctx ctx) __attribute__((weak));
void __real_send_loc_info(const char *file, int line) __attribute__((weak));
TestResult *__real_receive_test_result(int waserror) __attribute__((weak));

void __wrap_send_ctx_info(enum ck_result_ctx ctx);
void __wrap_send_loc_info(const char *file, int line);
TestResult *__wrap_receive_test_result(int waserror);

void __wrap_send_ctx_info(enum ck_result_ctx ctx) {
  tm_thread_pause();
  if (__real_send_ctx_info != NULL)
    __real_send_ctx_info(ctx);
  tm_thread_resume();
}

void __wrap_send_loc_info(const char *file, int line) {
  tm_thread_pause();
  if (__real_send_loc_info != NULL)
    __real_send_loc_info(file, line);
  tm_thread_resume();
}

TestResult *__wrap_receive_test_result(int waserror) {
  TestResult *result = NULL;

  tm_thread_pause();
  if (__real_receive_test_result != NULL)
    result = __real_receive_test_result(waserror);
  tm_thread_resume();
  return result;
}
