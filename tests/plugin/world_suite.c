/* world_suite.c — clean tests that touch what real suites touch (environment, thread keys, a
 * thread still running, regex, iconv, locale and time, texts of unknown errno and signal values,
 * NSS and the resolver, syslog, dlopen, a __thread cache in a dlopen'ed library, GLib and
 * GObject, a GLib thread pool, stdio, caches kept in statics, a pool in memory the suite maps
 * itself, an alternate signal stack left installed, a worker computing with its block in a
 * register, a block stored into one an unchecked fixture made), each of which must pass, and
 * eight real leaks, each of which must fail at its line (one through an inline function of a
 * system header, one whose address a reused chunk still holds, one whose address a running
 * worker thread left in its dead frames, one carved from a heap full of free chunks, one after
 * the test made stderr wide-oriented). test_plugin_world.c runs it in both fork
 * modes, on main's thread and on a thread of its own (WORLD_SUITE_THREAD=1). "site:NAME" marks a
 * failure's line. */
#include <check.h>
#include <tracemalloc-check.h>
#include <tracemalloc.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <regex.h>
#include <iconv.h>
#include <locale.h>
#include <time.h>
#include <netdb.h>
#include <pwd.h>
#include <syslog.h>
#include <dlfcn.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>
#include <glib.h>
#include <glib-object.h>
#include <errno.h>
#include <wchar.h>

#include "lose.h"

static pthread_key_t key;
static void *worker(void *arg) { char *mine = malloc(64); strcpy(mine, "worker"); pause(); free(mine); return arg; }
static void *pool_worker(void *arg) { (void)arg; void *p = malloc(100); sleep(1000); free(p); return NULL; }

START_TEST(t_setenv) { setenv("ZOO_VAR", "value", 1); setenv("ZOO_VAR2", "value2", 1); }
END_TEST
static void at_exit(void) {}
START_TEST(t_atexit) { static int once; if (!once++) atexit(at_exit); }
END_TEST
START_TEST(t_key) { pthread_key_create(&key, free); pthread_setspecific(key, malloc(40)); }
END_TEST
START_TEST(t_live_thread) { pthread_t t; pthread_create(&t, NULL, worker, NULL); usleep(20000); }
END_TEST
START_TEST(t_regex) { regex_t re; ck_assert_int_eq(regcomp(&re, "a[bc]+d", REG_EXTENDED), 0); regexec(&re, "abcd", 0, NULL, 0); regfree(&re); }
END_TEST
START_TEST(t_iconv) { iconv_t cd = iconv_open("UTF-8", "ISO-8859-1"); ck_assert(cd != (iconv_t)-1); iconv_close(cd); }
END_TEST
START_TEST(t_locale_time) { setlocale(LC_ALL, "C.UTF-8"); time_t t = time(NULL); char buf[64]; strftime(buf, sizeof buf, "%c", localtime(&t)); (void)strerror(EINVAL); setlocale(LC_ALL, "C"); }
END_TEST
START_TEST(t_nss) { (void)getpwnam("root"); (void)gethostbyname("localhost"); struct addrinfo *r; if (getaddrinfo("localhost", "80", NULL, &r) == 0) freeaddrinfo(r); }
END_TEST
START_TEST(t_syslog) { openlog("zoo", LOG_PID, LOG_USER); closelog(); }
END_TEST
START_TEST(t_dlopen) { void *h = dlopen("libm.so.6", RTLD_NOW); ck_assert_ptr_nonnull(h); (void)dlsym(h, "cos"); }
END_TEST
START_TEST(t_glib_misc) { g_get_user_name(); g_get_home_dir(); g_get_tmp_dir(); g_quark_from_string("zoo-quark"); g_intern_string("zoo-intern"); GRegex *r = g_regex_new("a+b", 0, 0, NULL); g_regex_unref(r); char *u = g_utf8_strdown("ABC", -1); g_free(u); g_get_charset(NULL); }
END_TEST
START_TEST(t_gobject) { GObject *o = g_object_new(G_TYPE_OBJECT, NULL); g_object_set_data_full(o, "k", g_strdup("v"), g_free); g_object_unref(o); }
END_TEST
static void pool_free(gpointer data, gpointer user_data) { (void)user_data; g_free(data); }
START_TEST(t_thread_pool) { GThreadPool *p = g_thread_pool_new(pool_free, NULL, 2, FALSE, NULL); for (int i = 0; i < 10; i++) g_thread_pool_push(p, g_strdup("x"), NULL); g_thread_pool_free(p, FALSE, TRUE); }
END_TEST
/* A library loaded with dlopen() keeps a cache in a __thread variable (tls_cache_module.c). */
START_TEST(t_dlopen_tls) {
  void *h = dlopen(TLS_CACHE_MODULE, RTLD_NOW);
  ck_assert_ptr_nonnull(h);
  const char *(*get)(void) = (const char *(*)(void))dlsym(h, "tls_cache_get");
  ck_assert_ptr_nonnull(get);
  ck_assert_str_eq(get(), "cached");
}
END_TEST
/* A worker that computes while the test's window closes, its block held in a register only: no
 * system call tells where its stack or its registers are. t_busy_worker_join stops it (in
 * CK_FORK=yes mode it ended with the test's child). */
static atomic_int busy_state; /* 1: the worker holds its block; 2: asked to stop */
static pthread_t busy_thread;
static void *busy_worker(void *arg) {
  uintptr_t held = (uintptr_t)malloc(64);
  atomic_store(&busy_state, 1);
  while (atomic_load_explicit(&busy_state, memory_order_relaxed) != 2)
    __asm__ volatile("" : "+r"(held)); /* in a register, and nowhere else */
  free((void *)held);
  return arg;
}
START_TEST(t_busy_worker) {
  atomic_store(&busy_state, 0);
  ck_assert_int_eq(pthread_create(&busy_thread, NULL, busy_worker, NULL), 0);
  while (atomic_load(&busy_state) != 1)
    usleep(100);
}
END_TEST
/* Asks a worker that holds its block (*state 1) to stop (2), and joins it. */
static void worker_stop(atomic_int *state, pthread_t thread) {
  if (atomic_load(state) == 1) {
    atomic_store(state, 2);
    pthread_join(thread, NULL);
  }
}
START_TEST(t_busy_worker_join) { worker_stop(&busy_state, busy_thread); }
END_TEST
/* A worker computing with every signal blocked, as servers keep their workers: the scan must
 * not leave a signal pending on it, which a sigwait() of the program would receive later. Its
 * block is kept in a global: only the pending signal is looked at (t_blocked_worker_join, in
 * CK_FORK=no mode, where the worker outlives the test). */
static atomic_int blocked_state; /* 1: running; 2: asked to stop; 3: stopped, nothing pending */
static pthread_t blocked_thread;
static void *volatile blocked_block;
static void *blocked_worker(void *arg) {
  sigset_t all, pending;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL);
  blocked_block = malloc(32);
  atomic_store(&blocked_state, 1);
  while (atomic_load_explicit(&blocked_state, memory_order_relaxed) != 2)
    ;
  sigpending(&pending);
  bool clean = true;
  for (int sig = SIGRTMIN; sig <= SIGRTMAX; sig++)
    clean = clean && !sigismember(&pending, sig);
  free(blocked_block);
  atomic_store(&blocked_state, clean ? 3 : 4);
  return arg;
}
START_TEST(t_blocked_worker) {
  atomic_store(&blocked_state, 0);
  ck_assert_int_eq(pthread_create(&blocked_thread, NULL, blocked_worker, NULL), 0);
  while (atomic_load(&blocked_state) != 1)
    usleep(100);
}
END_TEST
START_TEST(t_blocked_worker_join) {
  if (atomic_load(&blocked_state) == 1) {
    atomic_store(&blocked_state, 2);
    pthread_join(blocked_thread, NULL);
    ck_assert_msg(atomic_load(&blocked_state) == 3, "a real-time signal is pending on the worker");
  }
}
END_TEST
/* An alternate signal stack from malloc(), left installed: only the kernel points to it. */
START_TEST(t_sigaltstack) {
  stack_t ss = {.ss_sp = malloc(4 * SIGSTKSZ), .ss_size = 4 * SIGSTKSZ, .ss_flags = 0};
  ck_assert_int_eq(sigaltstack(&ss, NULL), 0);
}
END_TEST
/* A block a signal handler leaks while it runs on a static alternate stack: the handler's dead
 * frames there, in the program's writable segment, still hold the block's address. */
static char handler_stack[64 * 1024];
static void leak_in_handler(int sig) {
  (void)sig;
  lose(malloc(36)); /* site:altstack */
}
START_TEST(l_altstack_handler) {
  stack_t ss = {.ss_sp = handler_stack, .ss_size = sizeof handler_stack, .ss_flags = 0}, old;
  ck_assert_int_eq(sigaltstack(&ss, &old), 0);
  struct sigaction sa = {.sa_handler = leak_in_handler, .sa_flags = SA_ONSTACK}, was;
  sigemptyset(&sa.sa_mask);
  ck_assert_int_eq(sigaction(SIGUSR1, &sa, &was), 0);
  raise(SIGUSR1);
  sigaction(SIGUSR1, &was, NULL);
  ck_assert_int_eq(sigaltstack(&old, NULL), 0); /* the one before, or none */
}
END_TEST
/* A pool carved out of memory the suite maps itself, as allocators and interpreters do: the
 * strings it holds are reachable through it, and it lives across tests. */
static char **mapped_pool;
START_TEST(t_mmap_pool) {
  if (mapped_pool == NULL)
    mapped_pool = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ck_assert_ptr_ne(mapped_pool, MAP_FAILED);
  mapped_pool[1000] = strdup("kept in the pool");
}
END_TEST
/* A block kept only in System V shared memory the test attached, or in heap it took itself with
 * sbrk(): both are scanned, as Valgrind scans them. */
static char **shm_pool;
START_TEST(t_shm_pool) {
  if (shm_pool == NULL) {
    int id = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
    ck_assert_int_ge(id, 0);
    shm_pool = shmat(id, NULL, 0);
    shmctl(id, IPC_RMID, NULL); /* gone once the last process detaches */
    ck_assert_ptr_ne(shm_pool, (void *)-1);
  }
  shm_pool[100] = strdup("kept in shared memory");
}
END_TEST
/* A block whose only reference left is its end (one past its last byte) is lost, as Valgrind and
 * LeakSanitizer call it: an end pointer is no pointer to the block. */
static char *volatile end_pointer;
START_TEST(l_end_pointer) {
  char *block = malloc(64); /* site:end */
  ck_assert_ptr_nonnull(block);
  memset(block, 0, 64);
  end_pointer = block + 64;
}
END_TEST
static char **brk_pool;
START_TEST(t_sbrk_pool) {
  if (brk_pool == NULL) {
    brk_pool = sbrk(4096);
    ck_assert_ptr_ne(brk_pool, (void *)-1);
  }
  brk_pool[10] = strdup("kept in the program's own heap");
}
END_TEST
/* A page the suite shares with its own children (MAP_SHARED, mapped and written by main() before
 * the runner forks): never this process's alone, so that pagemap cannot tell what the test wrote
 * to it, and the block kept there is reachable. */
static uintptr_t *shared_page;
START_TEST(t_shared_map) {
  ck_assert_ptr_ne(shared_page, MAP_FAILED);
  shared_page[7] = (uintptr_t)malloc(300);
}
END_TEST
/* A test that starts a daemon the classic way (fork, fork, the middle process exits): the daemon
 * shares the pages the test wrote before, the global among them, after the test has no child
 * left. The daemon waits for the test's process to end, output closed. */
static void *volatile daemon_kept[4096 / sizeof(void *)] __attribute__((aligned(4096))); /* its page */
static int daemon_pipe[2] = {-1, -1};
START_TEST(t_daemon_global) {
  daemon_kept[0] = malloc(200);
  if (daemon_pipe[1] < 0)
    ck_assert_int_eq(pipe(daemon_pipe), 0);
  pid_t child = fork();
  if (child == 0) {
    if (fork() == 0) {
      int null = open("/dev/null", O_RDWR);
      dup2(null, 1);
      dup2(null, 2);
      close(daemon_pipe[1]);
      char c;
      (void)!read(daemon_pipe[0], &c, 1);
      _exit(0);
    }
    _exit(0);
  }
  int status;
  ck_assert_int_eq(waitpid(child, &status, 0), child);
}
END_TEST
/* A box in main()'s frame: with the suite run on a thread of its own (WORLD_SUITE_THREAD), main()
 * waits in pthread_join(), and a fork()ed test has no thread on main()'s stack at all. */
struct main_box { void *slot[4]; };
static struct main_box *main_frame_box;
START_TEST(t_main_frame) { main_frame_box->slot[1] = malloc(38); }
END_TEST
/* An errno and a signal glibc has no text for: it formats one into a per-thread buffer kept in
 * the thread descriptor, freed by the next such call. */
START_TEST(t_unknown_errno) { ck_assert_ptr_nonnull(strerror(12345)); ck_assert_ptr_nonnull(strsignal(77)); }
END_TEST
START_TEST(t_stdio) { FILE *f = tmpfile(); fprintf(f, "%ls %d\n", L"wide", 3); fclose(f); printf("%s\n", "hello"); fflush(stdout); }
END_TEST
START_TEST(t_live_pool_thread) { pthread_t t; pthread_create(&t, NULL, pool_worker, NULL); pthread_detach(t); usleep(20000); }
END_TEST
START_TEST(t_realloc_growth) { static char *buf; static size_t cap; cap = cap ? cap * 2 : 64; buf = realloc(buf, cap); memset(buf, 1, cap); }
END_TEST
START_TEST(t_glib_hash_global) { static GHashTable *cache; if (!cache) cache = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free); g_hash_table_insert(cache, g_strdup_printf("k%d", rand()), g_strdup("v")); }
END_TEST
/* Real leaks that must fail */
START_TEST(l_strdup) { char *volatile p = strdup("leak"); /* site:strdup */ (void)p; }
END_TEST
/* getline() is an inline function of glibc's <bits/stdio.h> in an optimized build: a frame with
 * a line, in a system header, which is not where the test allocated. */
START_TEST(l_getline) {
  FILE *f = fmemopen((char *)"one\ntwo\n", 8, "r");
  char *volatile line = NULL;
  size_t n = 0;
  ck_assert_int_eq(getline((char **)&line, &n, f), 4); /* site:getline */
  fclose(f);
}
END_TEST
START_TEST(l_glib_list) { GList *volatile l = NULL; for (int i = 0; i < 3; i++) l = g_list_prepend(l, g_strdup("x")); /* site:list */ }
END_TEST
static void *thread_strdup(void *arg) {
  char *copy = strdup(arg); /* site:thread */
  copy[0] = 'T';
  return copy;
}
/* A record is freed with a pointer still in it, after the block it points to. malloc hands the
 * record's memory to a buffer the test keeps (reachable) and never writes, and the other block to
 * the leak: the stale word in the buffer must not keep the leak reachable. Called through volatile
 * pointers, so that no compiler drops a malloc() and free() pair. */
struct record { void *link[2]; char *name; char rest[24]; }; /* malloc's own words come first */
static void *(*volatile call_malloc)(size_t) = malloc;
static void (*volatile call_free)(void *) = free;
static void *volatile kept_buffer;
START_TEST(l_stale_word) {
  struct record *r = call_malloc(sizeof *r);
  r->name = call_malloc(28);
  call_free(r->name);
  call_free(r);
  kept_buffer = call_malloc(sizeof *r);
  char *volatile leak = call_malloc(28); /* site:stale */
  (void)leak;
}
END_TEST
/* A worker thread takes a block from the test, stores its address deep in its stack, tells the
 * test it is done, then computes for a few milliseconds before it waits again: while the leak is
 * judged, it is running, its stack pointer unknown, and the address it left lies below it, in
 * frames that are dead. */
static sem_t work_ready, work_done;
static char *volatile work_item;
static __attribute__((noinline)) void work_store(char *item) {
  char *volatile copies[16];
  for (int i = 0; i < 16; i++)
    copies[i] = item;
  copies[0][0] = 'W';
}
static __attribute__((noinline)) void work_handle(void) {
  char deep[4096]; /* puts work_store()'s frame below any frame of the wait */
  __asm__ volatile("" : : "r"(deep) : "memory"); /* its address escapes: no compiler drops it */
  work_store(work_item);
  work_item = NULL;
  __asm__ volatile("" : : "r"(deep) : "memory");
}
static void *worker_loop(void *arg) {
  for (;;) {
    sem_wait(&work_ready);
    work_handle();
    sem_post(&work_done);
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    do /* runs while the test's leak is judged */
      clock_gettime(CLOCK_MONOTONIC, &now);
    while ((now.tv_sec - start.tv_sec) * 1000000000L + (now.tv_nsec - start.tv_nsec) < 8000000L);
  }
  return arg;
}
START_TEST(l_worker_leak) {
  static pthread_t worker_thread;
  if (worker_thread == 0) {
    sem_init(&work_ready, 0, 0);
    sem_init(&work_done, 0, 0);
    pthread_create(&worker_thread, NULL, worker_loop, NULL);
  }
  work_item = strdup("for the worker"); /* site:worker */
  sem_post(&work_ready);
  sem_wait(&work_done);
}
END_TEST
/* A leak whose only copy lies in the dead stack of a joined worker (glibc keeps the stack for the
 * next thread, as it was), while another thread computes: that thread's stack is read from the
 * stack pointer its signal gives, and the joined worker's not at all, even though a running
 * thread's stack pointer is unknown at first. t_bystander_join stops it (in CK_FORK=no mode). */
static atomic_int bystander_state; /* 1: computing; 2: asked to stop */
static pthread_t bystander_thread;
static void *bystander(void *arg) {
  atomic_store(&bystander_state, 1);
  while (atomic_load_explicit(&bystander_state, memory_order_relaxed) != 2)
    ;
  return arg;
}
static void *dead_holder(void *arg) {
  void *volatile slots[8];
  slots[3] = arg;
  (void)slots;
  return NULL;
}
/* A module loaded by the test loses a block in its constructor (ctor_leak_module.c): the loader
 * ran that code, but it is the program's, and its block a leak. */
START_TEST(l_module_ctor) {
  void *h = dlopen(CTOR_LEAK_MODULE, RTLD_NOW); /* kept loaded, as a program would */
  ck_assert_ptr_nonnull(h);
}
END_TEST
START_TEST(l_busy_bystander) {
  atomic_store(&bystander_state, 0);
  ck_assert_int_eq(pthread_create(&bystander_thread, NULL, bystander, NULL), 0);
  while (atomic_load(&bystander_state) != 1)
    usleep(100);
  pthread_t t;
  ck_assert_int_eq(pthread_create(&t, NULL, dead_holder, call_malloc(44)), 0); /* site:bystander */
  pthread_join(t, NULL);
}
END_TEST
START_TEST(t_bystander_join) { worker_stop(&bystander_state, bystander_thread); }
END_TEST
/* A heap full of free chunks from before the first test (main() fragments it, as a library's
 * initialisation can). The leak is carved from the top of the heap and fills its chunk, so
 * malloc's own pointer to the top chunk's header lies inside its last bytes: it must not count as
 * a pointer to the leak. With the heap so fragmented, the blocks of a probe for where malloc keeps
 * that pointer are never carved one after the other. */
static void *volatile fragment_keepers[256]; /* volatile: no compiler drops the stores */
/* What a library's initialisation leaves before the first test: free chunks all over the heap. */
static void heap_fragment(void) {
  void *big[256];
  for (int i = 0; i < 256; i++) {
    big[i] = call_malloc(4200 + 16 * (size_t)(i % 64));
    fragment_keepers[i] = call_malloc(40);
  }
  for (int i = 0; i < 256; i++)
    call_free(big[i]);
}
START_TEST(l_fragmented_heap) {
  char *volatile leak = call_malloc(100008); /* site:fragmented (from the top of the heap) */
  (void)leak;
}
END_TEST
/* Two sites that leak the same size: the message names the same one in every run (the earlier
 * line), whatever the addresses of their stacks. */
__attribute__((noinline)) static void lose_block(void *p) { void *volatile sink = p; (void)sink; }
START_TEST(l_equal_sites) {
  lose_block(malloc(24)); /* site:equal-first */
  lose_block(malloc(24)); /* site:equal-second */
}
END_TEST
/* A test that resets the tracer's peak (Python's reset_peak()) after passing its own peak limit:
 * the limit still holds. */
START_TEST(l_reset_peak) {
  tm_leak_limit_peak(16 << 10);
  char *volatile big = malloc(64 << 10);
  memset(big, 1, 64 << 10);
  free(big);
  tm_reset_peak();
}
END_TEST
/* A box an unchecked fixture allocates in the runner (between two tests' windows, in CK_FORK=no
 * mode), into which the test stores a new block: reachable through the box. */
struct kept_box { void *slot; };
static struct kept_box *kept_box;
static void kept_box_make(void) { kept_box = calloc(1, sizeof *kept_box); }
static void kept_box_free(void) {
  free(kept_box->slot);
  free(kept_box);
  kept_box = NULL;
}
START_TEST(t_store_in_kept) { kept_box->slot = malloc(48); }
END_TEST
/* A test that makes stderr wide-oriented, when nothing was written to it before (run alone, in
 * TCase Wide): byte output to it would be dropped, the plugin's report with it. */
START_TEST(l_wide_stderr) {
  fwprintf(stderr, L"%ls\n", L"wide stderr");
  char *volatile leak = malloc(21); /* site:wide */
  (void)leak;
}
END_TEST
START_TEST(l_thread_leak) { pthread_t t; pthread_create(&t, NULL, thread_strdup, "thread leak"); void *r; pthread_join(t, &r); }
END_TEST

/* Runs the suite; returns the process's exit status. */
static int suite_main(void) {
  Suite *s = suite_create("Zoo");
  TCase *c = tcase_create("Clean");
  tcase_add_checked_fixture(c, TM_LEAK_FIXTURE);
  tcase_add_test(c, t_setenv); tcase_add_test(c, t_atexit); tcase_add_test(c, t_key); tcase_add_test(c, t_live_thread);
  tcase_add_test(c, t_regex); tcase_add_test(c, t_iconv); tcase_add_test(c, t_locale_time); tcase_add_test(c, t_nss);
  tcase_add_test(c, t_syslog); tcase_add_test(c, t_dlopen); tcase_add_test(c, t_glib_misc); tcase_add_test(c, t_gobject);
  tcase_add_test(c, t_thread_pool); tcase_add_test(c, t_stdio); tcase_add_test(c, t_live_pool_thread);
  tcase_add_test(c, t_unknown_errno); tcase_add_test(c, t_dlopen_tls);
  tcase_add_test(c, t_mmap_pool); tcase_add_test(c, t_sigaltstack);
  tcase_add_test(c, t_shm_pool); tcase_add_test(c, t_sbrk_pool);
  tcase_add_test(c, t_shared_map); tcase_add_test(c, t_daemon_global); tcase_add_test(c, t_main_frame);
  tcase_add_test(c, t_busy_worker); tcase_add_test(c, t_busy_worker_join);
  tcase_add_test(c, t_blocked_worker); tcase_add_test(c, t_blocked_worker_join);
  tcase_add_loop_test(c, t_realloc_growth, 0, 3); tcase_add_loop_test(c, t_glib_hash_global, 0, 3);
  suite_add_tcase(s, c);
  TCase *l = tcase_create("Leaks");
  tcase_add_checked_fixture(l, TM_LEAK_FIXTURE);
  tcase_add_test(l, l_strdup); tcase_add_test(l, l_glib_list); tcase_add_test(l, l_thread_leak);
  tcase_add_test(l, l_getline); tcase_add_test(l, l_stale_word); tcase_add_test(l, l_worker_leak);
  tcase_add_test(l, l_fragmented_heap); tcase_add_test(l, l_equal_sites);
  tcase_add_test(l, l_reset_peak); tcase_add_test(l, l_busy_bystander); tcase_add_test(l, l_module_ctor);
  tcase_add_test(l, l_altstack_handler); tcase_add_test(l, l_end_pointer);
  suite_add_tcase(s, l);
  TCase *k = tcase_create("Kept");
  tcase_add_unchecked_fixture(k, kept_box_make, kept_box_free);
  tcase_add_checked_fixture(k, TM_LEAK_FIXTURE);
  tcase_add_test(k, t_store_in_kept); tcase_add_test(k, t_bystander_join);
  suite_add_tcase(s, k);
  TCase *w = tcase_create("Wide");
  tcase_add_checked_fixture(w, TM_LEAK_FIXTURE);
  tcase_add_test(w, l_wide_stderr);
  suite_add_tcase(s, w);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_ENV);
  int f = srunner_ntests_failed(sr);
  srunner_free(sr);
  return f == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

static void *suite_thread(void *status) {
  *(int *)status = suite_main();
  return NULL;
}

/* WORLD_SUITE_THREAD=1 runs the whole suite on a thread of its own, as a program that wants a
 * larger stack for its tests does: the runner's frames then lie just below that thread's static
 * TLS block, at the top of the same mapping. */
int main(void) {
  struct main_box box = {{NULL}};
  main_frame_box = &box;
  heap_fragment();
  shared_page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (shared_page != MAP_FAILED)
    shared_page[0] = 1;
  const char *threaded = getenv("WORLD_SUITE_THREAD");
  if (threaded == NULL || strcmp(threaded, "1") != 0)
    return suite_main();
  pthread_t t;
  int status = EXIT_FAILURE;
  if (pthread_create(&t, NULL, suite_thread, &status) != 0 || pthread_join(t, NULL) != 0)
    return EXIT_FAILURE;
  return status;
}
