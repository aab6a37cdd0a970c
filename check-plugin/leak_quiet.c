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
 *
 * A passing result leaves the thread paused a little longer: Check then gives it the message
 * "Passed" with a strdup() of its own (set_nofork_info(), set_fork_info(): static functions, out
 * of the wraps' reach), and in CK_FORK=no mode, after each checked setup, frees it again before
 * the test starts. Traced, those 7 bytes were in the test's window: its peak, and a peak limit
 * under 7 B failed a test that allocated nothing. The pause ends at Check's next message or at
 * the end of the test's logging (tm__leak_pass_pause_end()), both in Check's own code.
 */
#include <check.h>

#include "leak_internal.h"

void __real_send_ctx_info(enum ck_result_ctx ctx) __attribute__((weak));
void __real_send_loc_info(const char *file, int line) __attribute__((weak));
TestResult *__real_receive_test_result(int waserror) __attribute__((weak));

void __wrap_send_ctx_info(enum ck_result_ctx ctx);
void __wrap_send_loc_info(const char *file, int line);
TestResult *__wrap_receive_test_result(int waserror);

/* Whether the thread is paused past a passing receive_test_result() (above). */
static bool pass_paused;

void tm__leak_pass_pause_end(void) {
  if (!pass_paused)
    return;
  pass_paused = false;
  tm_thread_resume();
}

void tm__leak_pass_pause_forget(void) { pass_paused = false; }

void __wrap_send_ctx_info(enum ck_result_ctx ctx) {
  tm__leak_pass_pause_end();
  tm_thread_pause();
  if (__real_send_ctx_info != NULL)
    __real_send_ctx_info(ctx);
  tm_thread_resume();
}

void __wrap_send_loc_info(const char *file, int line) {
  tm__leak_pass_pause_end();
  tm_thread_pause();
  if (__real_send_loc_info != NULL)
    __real_send_loc_info(file, line);
  tm_thread_resume();
}

TestResult *__wrap_receive_test_result(int waserror) {
  TestResult *result = NULL;

  tm__leak_pass_pause_end();
  tm_thread_pause();
  if (__real_receive_test_result != NULL)
    result = __real_receive_test_result(waserror);
  if (result != NULL && tr_msg(result) == NULL)
    pass_paused = true; /* Check's "Passed" comes next */
  else
    tm_thread_resume();
  return result;
}
