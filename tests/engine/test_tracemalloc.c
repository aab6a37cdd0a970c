/* test_tracemalloc.c — the runtime API: start/stop, limits, counters, peak, clear, domains,
 * threads, fork and TRACEMALLOC=N. Links the shared library, as users do. */
#include <check.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "run_suite.h"
#include "tracemalloc.h"

#define TM_ETOOMANYDOMAINS_MESSAGE_FOR_TEST \
  "too many domains: tm_track() records at most TM_MAX_DOMAINS distinct domains, 0 included"

static const char *self_path;

/* Keeps the compiler from eliding a malloc/free pair whose block is never used. */
static inline void *escape(void *p) {
  __asm__ volatile("" : : "g"(p) : "memory");
  return p;
}

static size_t traced(void) {
  size_t current;
  tm_get_traced_memory(&current, NULL);
  return current;
}

static void teardown(void) { tm_stop(); }

/* What tm_get_traced_memory() said at one point of a test. A passing ck_assert allocates (Check
 * packs a message), which would move the counters: a test takes every reading first and checks
 * them all afterwards. */
typedef struct reading {
  size_t current, peak;
} reading;

static void reading_take(reading *r) { tm_get_traced_memory(&r->current, &r->peak); }

/* Asserts readings got[0..n) against want[0..n). */
static void readings_assert(const reading *got, const reading *want, size_t n) {
  for (size_t i = 0; i < n; i++)
    ck_assert_msg(got[i].current == want[i].current && got[i].peak == want[i].peak,
                  "reading %zu: current %zu, peak %zu; want %zu, %zu", i, got[i].current,
                  got[i].peak, want[i].current, want[i].peak);
}

START_TEST(test_start_validates_nframe) {
  ck_assert_int_eq(tm_start(0), TM_EINVAL);
  ck_assert_int_eq(tm_start(-3), TM_EINVAL);
  ck_assert_int_eq(tm_start(TM_MAX_NFRAME + 1), TM_EINVAL);
  ck_assert(!tm_is_tracing());
  ck_assert_int_ge(TM_MAX_NFRAME, 256);
  ck_assert_int_eq(tm_start(TM_MAX_NFRAME), 0);
  ck_assert(tm_is_tracing());
  ck_assert_int_eq(tm_get_traceback_limit(), TM_MAX_NFRAME);
  ck_assert_int_eq(tm_start(25), 0); /* restart while tracing changes the limit */
  ck_assert_int_eq(tm_get_traceback_limit(), 25);
  ck_assert_str_eq(tm_strerror(TM_EINVAL), "invalid argument");
  ck_assert_str_eq(tm_strerror(12345), "unknown error");
}
END_TEST

START_TEST(test_stop_clears_traces) {
  ck_assert_int_eq(tm_start(1), 0);
  void *p = escape(malloc(500));
  ck_assert_uint_ge(traced(), 500);
  tm_stop();
  ck_assert(!tm_is_tracing());
  size_t current = 1, peak = 1;
  tm_get_traced_memory(&current, &peak);
  ck_assert_uint_eq(current, 0);
  ck_assert_uint_eq(peak, 0);
  ck_assert_int_eq(tm_start(1), 0);
  ck_assert_uint_eq(traced(), 0); /* the old trace is gone for good */
  free(p);
  ck_assert_uint_eq(traced(), 0);
  tm_stop();
  tm_stop(); /* twice is harmless */
}
END_TEST

/* The peak is exact whichever way the total fell from its maximum: a free, a replaced trace (the
 * same address tracked again, smaller), or not at all yet (the maximum is the total now). Domain
 * traces only: no ck_assert allocation moves the counters before they are all read. */
START_TEST(test_peak_through_replacement) {
  reading r[4];
  ck_assert_int_eq(tm_start(1), 0);
  tm_track(7, 0x7000, 1000);
  tm_track(7, 0x8000, 300);
  reading_take(&r[0]); /* at the maximum: no decrement has seen it */
  tm_track(7, 0x7000, 10); /* replaced, smaller */
  reading_take(&r[1]);
  tm_track(7, 0x9000, 900);
  reading_take(&r[2]); /* 1210: under the old maximum */
  tm_track(7, 0xa000, 200);
  tm_untrack(7, 0x8000);
  reading_take(&r[3]); /* 1410 was reached, then left by the untrack */
  tm_untrack(7, 0x7000);
  tm_untrack(7, 0x9000);
  tm_untrack(7, 0xa000);
  readings_assert(r, (const reading[]){{1300, 1300}, {310, 1300}, {1210, 1300}, {1110, 1410}}, 4);
  tm_stop();
}
END_TEST

START_TEST(test_clear_traces_and_peak) {
  reading r[6]; /* taken first, asserted afterwards (reading) */
  ck_assert_int_eq(tm_start(1), 0);
  void *a = escape(malloc(10000));
  void *b = escape(malloc(3000));
  reading_take(&r[0]);
  free(a);
  reading_take(&r[1]);
  tm_reset_peak();
  reading_take(&r[2]);
  void *c = escape(malloc(100));
  reading_take(&r[3]);
  free(c);
  tm_clear_traces();
  reading_take(&r[4]);
  free(b); /* cleared: freeing it changes nothing */
  void *d = escape(malloc(42));
  reading_take(&r[5]);
  free(d);
  ck_assert(tm_is_tracing());
  readings_assert(r, (const reading[]){{13000, 13000}, {3000, 13000}, {3000, 3000}, {3100, 3100},
                                       {0, 0}, {42, 42}},
                  6);
}
END_TEST

START_TEST(test_track_untrack_domains) {
  ck_assert_int_eq(tm_track(5, 0x1000, 10), TM_ENOTTRACING);
  ck_assert_int_eq(tm_untrack(5, 0x1000), TM_ENOTTRACING);
  ck_assert_int_eq(tm_start(3), 0);
  size_t base = traced();
  ck_assert_int_eq(tm_track(5, 0x1000, 10), 0);
  ck_assert_int_eq(tm_track(6, 0x1000, 20), 0); /* same address, other domain: separate trace */
  ck_assert_uint_eq(traced() - base, 30);
  ck_assert_int_eq(tm_track(5, 0x1000, 15), 0); /* re-tracking replaces */
  ck_assert_uint_eq(traced() - base, 35);
  ck_assert_int_eq(tm_untrack(5, 0x1000), 0);
  ck_assert_uint_eq(traced() - base, 20);
  ck_assert_int_eq(tm_untrack(5, 0x1000), 0); /* unknown: 0, as CPython */
  ck_assert_int_eq(tm_untrack(99, 0x2000), 0);
  ck_assert_int_eq(tm_untrack(6, 0x1000), 0);
  ck_assert_uint_eq(traced(), base);
  ck_assert_int_eq(tm_track(5, 0, 10), TM_EINVAL);
  /* A size the table cannot hold is the tracer failing to record: -1, and nothing drifts. */
  ck_assert_int_eq(tm_track(5, 0x8000, (size_t)1 << 41), TM_ENOMEM);
  ck_assert_uint_eq(traced(), base);
  /* Domain 0 is the malloc domain: a custom allocator's block there is freed by untrack. */
  ck_assert_int_eq(tm_track(0, 0x4000, 64), 0);
  ck_assert_uint_eq(traced() - base, 64);
  ck_assert_int_eq(tm_untrack(0, 0x4000), 0);
  ck_assert_uint_eq(traced(), base);
}
END_TEST

/* Domains are never forgotten, so the limit is reached in a child of its own (CK_FORK=no too). */
START_TEST(test_track_domain_limit_has_own_error) {
  ck_assert_str_eq(tm_strerror(TM_ETOOMANYDOMAINS), TM_ETOOMANYDOMAINS_MESSAGE_FOR_TEST);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    int rc = 0;
    unsigned int d = 1000;
    tm_start(1);
    /* Domain 0 is the first of the 64; earlier tests of this process (CK_FORK=no) may have
     * registered a few more. */
    for (; d < 1000 + TM_MAX_DOMAINS && rc == 0; d++)
      rc = tm_track(d, 0x1000, 1);
    if (rc != TM_ETOOMANYDOMAINS || d < 1000 + TM_MAX_DOMAINS - 8)
      _exit(11);
    if (tm_track(1000, 0x2000, 1) != 0) /* a known domain still records */
      _exit(12);
    _exit(0);
  }
  int status;
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
}
END_TEST

/* A block the tracer allocates and hands to the program (a formatted string) is the tracer's
 * memory until the program frees it, then no longer: the free is recognized without the guard.
 * Nothing between the measures allocates (a Check assertion does, in a forked test: it is traced,
 * and a first capture grows the tracer's caches). */
START_TEST(test_tracer_blocks_handed_to_the_program) {
  ck_assert_int_eq(tm_start(1), 0);
  enum { N = 2000 };
  char **texts = malloc(N * sizeof *texts);
  size_t before = tm_get_tracemalloc_memory();
  size_t traced_before = tm_get_traced_blocks();
  for (size_t i = 0; i < N; i++)
    texts[i] = tm_format_size((int64_t)i * 1000, true);
  size_t held = tm_get_tracemalloc_memory();
  size_t traced_held = tm_get_traced_blocks();
  for (size_t i = 0; i < N; i++)
    free(texts[i]); /* by the program, with no guard held */
  size_t after = tm_get_tracemalloc_memory();
  ck_assert_uint_ge(held, before + N * 16); /* every string counted, none traced */
  ck_assert_uint_eq(traced_held, traced_before);
  ck_assert_uint_le(after + N * 16, held);
  ck_assert_uint_eq(tm_get_traced_blocks(), traced_before);
  free(texts);
}
END_TEST

/* tm_get_tracemalloc_memory() counts what stays resident: the arrays a table retires as it grows,
 * and those a clear drops, give their pages back, so after a clear the count returns near where
 * it was (it used to be the mapped bytes, which forgot retired arrays that stayed resident). */
START_TEST(test_tracemalloc_memory_returns_after_clear) {
  ck_assert_int_eq(tm_start(1), 0);
  enum { N = 300000 };
  void **blocks = malloc(N * sizeof *blocks);
  size_t before = tm_get_tracemalloc_memory();
  for (size_t i = 0; i < N; i++)
    blocks[i] = malloc(8);
  size_t full = tm_get_tracemalloc_memory();
  for (size_t i = 0; i < N; i++)
    free(blocks[i]);
  size_t emptied = tm_get_tracemalloc_memory(); /* the arrays stay, empty, until a clear */
  tm_clear_traces();
  size_t after = tm_get_tracemalloc_memory();
  free(blocks);
  ck_assert_uint_gt(full, before + N * 16);
  ck_assert_uint_lt(full, before + N * 64);
  ck_assert_uint_ge(emptied + N * 4, full);
  ck_assert_msg(after < before + (512u << 10), "%zu KiB stay after the clear (%zu KiB when full)",
                (after - before) >> 10, (full - before) >> 10);
}
END_TEST

START_TEST(test_tracemalloc_memory_grows_with_traces) {
  ck_assert_int_eq(tm_start(1), 0);
  size_t before = tm_get_tracemalloc_memory();
  ck_assert_uint_gt(before, 0);
  enum { N = 100000 };
  void **blocks = malloc(N * sizeof *blocks);
  for (size_t i = 0; i < N; i++)
    blocks[i] = malloc(8);
  size_t after = tm_get_tracemalloc_memory();
  ck_assert_uint_gt(after, before + N * 16); /* at least one 16-byte entry a block */
  ck_assert_uint_lt(after, before + N * 64);
  for (size_t i = 0; i < N; i++)
    free(blocks[i]);
  free(blocks);
  ck_assert_uint_eq(traced(), 0);
}
END_TEST

/* ---- threads ------------------------------------------------------------------------------------ */

enum { NTHREADS = 6, ROUNDS = 20000, LIVE = 64 };

static void *churn(void *arg) {
  size_t seed = (size_t)(uintptr_t)arg;
  void *live[LIVE] = {0};
  for (size_t i = 0; i < ROUNDS; i++) {
    size_t slot = (seed * 31 + i * 17) % LIVE;
    free(live[slot]);
    seed = seed * 6364136223846793005u + 1442695040888963407u;
    size_t size = 1 + (seed >> 33) % 2048;
    live[slot] = (i % 3 == 0) ? calloc(1, size) : malloc(size);
    if (i % 5 == 0)
      live[slot] = realloc(live[slot], size + 100);
  }
  /* Leave exactly LIVE blocks of 1000 bytes each. */
  for (size_t j = 0; j < LIVE; j++) {
    free(live[j]);
    live[j] = malloc(1000);
  }
  return NULL;
}

START_TEST(test_threads_keep_exact_counters) {
  ck_assert_int_eq(tm_start(4), 0);
  size_t base = traced();
  pthread_t th[NTHREADS];
  for (size_t i = 0; i < NTHREADS; i++)
    ck_assert_int_eq(pthread_create(&th[i], NULL, churn, (void *)(uintptr_t)(i + 1)), 0);
  for (size_t i = 0; i < NTHREADS; i++)
    pthread_join(th[i], NULL);
  /* Each thread leaked its LIVE blocks on purpose. pthread_create's own TLS/stack bookkeeping is
   * traced too (glibc keeps it for reuse), so compare against a second, identical run. */
  size_t after_first = traced();
  ck_assert_uint_ge(after_first - base, (size_t)NTHREADS * LIVE * 1000);
  for (size_t i = 0; i < NTHREADS; i++)
    ck_assert_int_eq(pthread_create(&th[i], NULL, churn, (void *)(uintptr_t)(i + 100)), 0);
  for (size_t i = 0; i < NTHREADS; i++)
    pthread_join(th[i], NULL);
  ck_assert_uint_eq(traced() - after_first, (size_t)NTHREADS * LIVE * 1000);
  ck_assert_uint_eq(tm_get_lost_traces(), 0);
}
END_TEST

/* ---- fork ------------------------------------------------------------------------------------- */

static void *alloc_128(void *arg) {
  (void)arg;
  return malloc(128);
}

/* tm_thread_pause(): the paused thread's new blocks are not traced, frees still are, pairs nest,
 * and other threads go on being traced. */
START_TEST(test_thread_pause) {
  ck_assert_int_eq(tm_start(5), 0);
  ck_assert(!tm_thread_is_paused());
  char *kept = escape(malloc(64));
  size_t base = traced();
  ck_assert_uint_ge(base, 64);

  tm_thread_pause();
  ck_assert(tm_thread_is_paused());
  char *hidden = escape(malloc(1000));
  char *zeroed = escape(calloc(10, 30));
  ck_assert_uint_eq(traced(), base);
  ck_assert_ptr_null(tm_get_object_traceback(hidden));

  /* Another thread is still traced. */
  pthread_t thread;
  void *other = NULL;
  ck_assert_int_eq(pthread_create(&thread, NULL, alloc_128, NULL), 0);
  ck_assert_int_eq(pthread_join(thread, &other), 0);
  ck_assert_uint_eq(traced(), base + 128);

  /* Pairs nest. */
  tm_thread_pause();
  tm_thread_resume();
  ck_assert(tm_thread_is_paused());
  ck_assert_uint_eq((uintptr_t)escape(hidden = realloc(hidden, 2000)) != 0, 1);
  ck_assert_uint_eq(traced(), base + 128);

  /* A traced block freed or reallocated while paused leaves the traces. */
  free(other);
  ck_assert_uint_eq(traced(), base);
  kept = escape(realloc(kept, 4096));
  ck_assert_ptr_null(tm_get_object_traceback(kept));
  ck_assert_uint_eq(traced(), base - 64);

  tm_thread_resume();
  ck_assert(!tm_thread_is_paused());
  tm_thread_resume(); /* ignored: nothing to end */
  char *seen = escape(malloc(48));
  ck_assert_uint_eq(traced(), base - 64 + 48);
  tm_thread_pause(); /* one pause is enough after the ignored resume */
  char *unseen = escape(malloc(48));
  ck_assert_uint_eq(traced(), base - 64 + 48);
  tm_thread_resume();

  free(unseen);
  free(seen);
  free(kept);
  free(zeroed);
  free(hidden);
  ck_assert_uint_eq(traced(), base - 64);
}
END_TEST

static void *fork_noise(void *arg) {
  volatile int *stop = arg;
  while (!*stop) {
    void *p = escape(malloc(64));
    free(p);
  }
  return NULL;
}

START_TEST(test_forked_child_keeps_tracing) {
  ck_assert_int_eq(tm_start(2), 0);
  void *parent_block = escape(malloc(700));
  volatile int stop = 0;
  pthread_t noise;
  ck_assert_int_eq(pthread_create(&noise, NULL, fork_noise, (void *)&stop), 0);
  for (int round = 0; round < 20; round++) {
    size_t base = traced();
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
      /* The noise thread holds at most one 64-byte block at a time, when base was read and when
       * fork() copied the tables; threads do not survive fork, so its block stays live here. */
      size_t c0 = traced();
      int ok = tm_is_tracing() && (c0 == base || c0 == base + 64 || c0 + 64 == base);
      void *p = escape(malloc(333));
      ok = ok && traced() == c0 + 333;
      free(parent_block); /* inherited traces are the child's own to free */
      ok = ok && traced() == c0 + 333 - 700;
      free(p);
      _exit(ok ? 0 : 1);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
  }
  stop = 1;
  pthread_join(noise, NULL);
  free(parent_block);
}
END_TEST

/* ---- TRACEMALLOC=N ---------------------------------------------------------------------------- */

static int run_self(const char *env_value, char *out, size_t outsize) {
  int fds[2];
  if (pipe(fds) != 0)
    return -1;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], 1);
    dup2(fds[1], 2);
    close(fds[0]);
    if (env_value)
      setenv("TRACEMALLOC", env_value, 1);
    else
      unsetenv("TRACEMALLOC");
    execl(self_path, self_path, "--report-env", (char *)NULL);
    _exit(127);
  }
  close(fds[1]);
  size_t n = 0;
  ssize_t r;
  while (n + 1 < outsize && (r = read(fds[0], out + n, outsize - 1 - n)) > 0)
    n += (size_t)r;
  out[n] = '\0';
  close(fds[0]);
  int status;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

START_TEST(test_env_variable_starts_tracing) {
  char out[1024];
  ck_assert_int_eq(run_self("25", out, sizeof out), 0);
  ck_assert_str_eq(out, "tracing=1 limit=25\n");
  ck_assert_int_eq(run_self(NULL, out, sizeof out), 0);
  ck_assert_str_eq(out, "tracing=0 limit=1\n");
  ck_assert_int_eq(run_self("", out, sizeof out), 0);
  ck_assert_str_eq(out, "tracing=0 limit=1\n");
  ck_assert_int_eq(run_self("abc", out, sizeof out), 0);
  ck_assert_str_eq(out, "tracemalloc: TRACEMALLOC=abc is not a number of frames in 1..1024; "
                        "tracing not started\ntracing=0 limit=1\n");
  ck_assert_int_eq(run_self("0", out, sizeof out), 0);
  ck_assert_ptr_nonnull(strstr(out, "tracing=0"));
  ck_assert_int_eq(run_self("5000", out, sizeof out), 0);
  ck_assert_ptr_nonnull(strstr(out, "TRACEMALLOC=5000 is not"));
}
END_TEST

/* The traces generation moves each time the traces are forgotten, and only then. */
START_TEST(test_traces_generation) {
  tm_stop();
  unsigned long g = tm_get_traces_generation();
  tm_clear_traces(); /* not tracing: nothing to forget */
  tm_stop();
  ck_assert_uint_eq(tm_get_traces_generation(), g);
  ck_assert_int_eq(tm_start(1), 0);
  ck_assert_uint_eq(tm_get_traces_generation(), g + 1);
  ck_assert_int_eq(tm_start(5), 0); /* already tracing: the traces stay */
  void *p = escape(malloc(10));
  tm_reset_peak();
  ck_assert_uint_eq(tm_get_traces_generation(), g + 1);
  tm_clear_traces();
  ck_assert_uint_eq(tm_get_traces_generation(), g + 2);
  tm_stop();
  ck_assert_uint_eq(tm_get_traces_generation(), g + 3);
  free(p);
}
END_TEST

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--report-env") == 0) {
    printf("tracing=%d limit=%d\n", tm_is_tracing(), tm_get_traceback_limit());
    return 0;
  }
  self_path = argv[0];
  Suite *s = suite_create("tracemalloc");
  TCase *tc = tcase_create("runtime");
  tcase_add_checked_fixture(tc, NULL, teardown);
  tcase_add_test(tc, test_start_validates_nframe);
  tcase_add_test(tc, test_stop_clears_traces);
  tcase_add_test(tc, test_clear_traces_and_peak);
  tcase_add_test(tc, test_traces_generation);
  tcase_add_test(tc, test_peak_through_replacement);
  tcase_add_test(tc, test_track_untrack_domains);
  tcase_add_test(tc, test_track_domain_limit_has_own_error);
  tcase_add_test(tc, test_tracemalloc_memory_grows_with_traces);
  tcase_add_test(tc, test_tracer_blocks_handed_to_the_program);
  tcase_add_test(tc, test_tracemalloc_memory_returns_after_clear);
  tcase_add_test(tc, test_threads_keep_exact_counters);
  tcase_add_test(tc, test_forked_child_keeps_tracing);
  tcase_add_test(tc, test_thread_pause);
  tcase_add_test(tc, test_env_variable_starts_tracing);
  suite_add_tcase(s, tc);
  return run_suite(s);
}
