/* autodump.c — dumps written by the traced process itself, as `tracemalloc run` asks.
 *
 * Off unless TRACEMALLOC_DUMP is set (the `tracemalloc run` command sets it with TRACEMALLOC=N and
 * LD_PRELOAD). Variables, read with secure_getenv() by a constructor that runs after the engine's
 * (priority 102 > 101, so tracing has started when TRACEMALLOC=N asked for it):
 *
 *   TRACEMALLOC_DUMP=PATTERN    where dumps go: %p the pid, %n a counter, %e the program's short
 *                               name, %% a percent sign. A name already taken (a reused pid, an
 *                               exec'ed image keeping its pid) takes the next counter, or a "-N"
 *                               suffix when the pattern has no %n: no dump overwrites another.
 *   TRACEMALLOC_DUMP_AT=exit    one dump at exit() (the default), of the blocks still live;
 *                    peak       one dump at exit() of the largest state a sampler saw (below)
 *   TRACEMALLOC_DUMP_SIGNAL=SIG a dump of the live blocks each time SIG arrives (SIGUSR2 or 12)
 *   TRACEMALLOC_DUMP_LIST=FILE  each dump appends "pid<TAB>reason<TAB>path" to FILE (one write(),
 *                               O_APPEND, so the lines of concurrent processes never mix);
 *                               reason is exit, peak, signal, a fatal signal's name, or
 *                               not-tracing (then path is "-")
 *
 * When. At exit: an atexit() handler registered by the constructor, so it runs after the
 * program's own handlers. A process ending in _exit() (a failing Check test in CK_FORK=yes mode) or
 * SIGKILL writes nothing. A fork child inherits everything and dumps at its own exit; an exec'ed
 * program loads the library again through LD_PRELOAD and starts over.
 *
 * Signals. Dumping allocates and takes the tracer's locks: it is not async-signal-safe, so the
 * dump signal's handler only posts a semaphore (sem_post is async-signal-safe) and a watcher thread,
 * started by the constructor and again in each fork child, takes the snapshot and writes it. Fatal
 * signals (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, and SIGTERM, SIGINT, SIGHUP, SIGQUIT when
 * their disposition was the default) are handled as a best effort, since the process is about to
 * die: the handler dumps in place unless the interrupted thread was inside the tracer (then it
 * cannot, the tracer's locks may be held), with a 5 s alarm() as a watchdog against a lock the
 * crash left held (glibc's malloc arena): the process then dies of SIGALRM instead. Either way
 * the default action is restored and the signal raised again, so the exit status is unchanged. A
 * handler the program installs later replaces ours.
 *
 * Peak. The tracer does not take a snapshot at each new peak (that would be a hot-path cost), so
 * in peak mode the watcher samples the traced size every millisecond and takes a snapshot when it
 * exceeds the largest one held by more than 1%; at exit the current state replaces it if larger.
 * The dump is therefore the largest state sampled, within 1% of it, and a peak shorter than a
 * millisecond can be missed.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "guard.h"
#include "model.h"

#define PATTERN_MAX 4096

typedef enum { AT_EXIT, AT_PEAK } dump_at;

static struct {
  bool enabled;
  dump_at at;
  int signal;                 /* 0: none */
  char pattern[PATTERN_MAX];
  char list[PATTERN_MAX];     /* "" when no list */
} conf;

/* Serializes every dump of the process and the peak snapshot; held across fork() by the atfork
 * handlers so that a child never inherits it locked. */
static pthread_mutex_t dump_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned counter;              /* the next %n; under dump_lock */
static atomic_int exit_dumped;        /* the final dump (exit or fatal signal) was written */
static atomic_int fatal_entered;

/* Peak mode: the largest snapshot sampled, and its traced size. Under dump_lock. */
static tm_snapshot *peak_snap;
static size_t peak_size;

/* The watcher thread. */
static sem_t wake;
static atomic_int dump_requests;
static bool watcher_wanted;

static const int fatal_signals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT,
                                    SIGTERM, SIGINT, SIGHUP, SIGQUIT};

/* Copies the value of name into buf (size PATTERN_MAX). Returns false when unset or too long. */
static bool env_copy(const char *name, char *buf) {
  const char *v = secure_getenv(name);
  if (v == NULL || v[0] == '\0' || strlen(v) >= PATTERN_MAX)
    return false;
  strcpy(buf, v);
  return true;
}

/* Returns the signal number of "SIGUSR2", "USR2" or "12"; 0 when not one we allow to be used. */
static int signal_parse(const char *text) {
  static const struct {
    const char *name;
    int sig;
  } names[] = {{"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"HUP", SIGHUP}, {"PROF", SIGPROF},
               {"WINCH", SIGWINCH}, {"URG", SIGURG}, {"TTIN", SIGTTIN}, {"TTOU", SIGTTOU}};
  if (text == NULL || text[0] == '\0')
    return 0;
  if (text[0] >= '0' && text[0] <= '9') {
    char *end;
    long n = strtol(text, &end, 10);
    if (*end == '\0' && n > 0 && n < NSIG && n != SIGKILL && n != SIGSTOP)
      return (int)n;
    return 0;
  }
  if (strncmp(text, "SIG", 3) == 0)
    text += 3;
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strcmp(text, names[i].name) == 0)
      return names[i].sig;
  if (strncmp(text, "RTMIN+", 6) == 0) {
    long n = strtol(text + 6, NULL, 10);
    if (n >= 0 && SIGRTMIN + n <= SIGRTMAX)
      return SIGRTMIN + (int)n;
  }
  return 0;
}

/* Expands conf.pattern for counter n into out (PATH_MAX). suffix > 0 appends "-suffix". Returns
 * whether the pattern contains %n. */
static bool pattern_expand(unsigned n, unsigned suffix, char *out) {
  size_t len = 0;
  bool has_n = false;
  char tmp[32];
  for (const char *p = conf.pattern; *p != '\0' && len < PATH_MAX - 1; p++) {
    const char *piece = NULL;
    if (p[0] == '%' && p[1] != '\0') {
      p++;
      if (*p == 'p') {
        snprintf(tmp, sizeof tmp, "%ld", (long)getpid());
        piece = tmp;
      } else if (*p == 'n') {
        snprintf(tmp, sizeof tmp, "%u", n);
        piece = tmp;
        has_n = true;
      } else if (*p == 'e') {
        piece = program_invocation_short_name;
      } else if (*p == '%') {
        piece = "%";
      } else {
        tmp[0] = '%';
        tmp[1] = *p;
        tmp[2] = '\0';
        piece = tmp;
      }
      size_t k = strlen(piece);
      if (k > PATH_MAX - 1 - len)
        k = PATH_MAX - 1 - len;
      memcpy(out + len, piece, k);
      len += k;
    } else {
      out[len++] = *p;
    }
  }
  out[len] = '\0';
  if (suffix > 0)
    snprintf(out + len, PATH_MAX - len, "-%u", suffix);
  return has_n;
}

/* Chooses a free name and creates it empty (O_EXCL), so that no other process takes it. Returns
 * false when none could be created (errno set). Under dump_lock. */
static bool path_reserve(char *path) {
  unsigned suffix = 0;
  for (int tries = 0; tries < 100000; tries++) {
    bool has_n = pattern_expand(counter, suffix, path);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd >= 0) {
      close(fd);
      counter++;
      return true;
    }
    if (errno != EEXIST)
      return false;
    if (has_n)
      counter++;
    else
      suffix++;
  }
  errno = EEXIST;
  return false;
}

/* Appends "pid<TAB>reason<TAB>path\n" to the list file, in one write(). */
static void list_append(const char *reason, const char *path) {
  if (conf.list[0] == '\0')
    return;
  char line[PATH_MAX + 64];
  int n = snprintf(line, sizeof line, "%ld\t%s\t%s\n", (long)getpid(), reason, path);
  if (n <= 0 || (size_t)n >= sizeof line)
    return;
  int fd = open(conf.list, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0)
    return;
  ssize_t w = write(fd, line, (size_t)n);
  (void)w;
  close(fd);
}

/* Writes snap (which may be NULL: not tracing) under a fresh name. Under dump_lock. */
static void snapshot_write(tm_snapshot *snap, const char *reason) {
  char path[PATH_MAX];
  GError *error = NULL;
  if (snap == NULL) {
    list_append("not-tracing", "-");
    return;
  }
  if (!path_reserve(path)) {
    fprintf(stderr, "tracemalloc: cannot create a dump from pattern %s: %s\n", conf.pattern,
            strerror(errno));
    return;
  }
  if (!tm_snapshot_dump(snap, path, &error)) {
    fprintf(stderr, "tracemalloc: %s\n", error->message);
    g_error_free(error);
    unlink(path);
    return;
  }
  list_append(reason, path);
}

/* Takes a snapshot of the live blocks and writes it. Under dump_lock. */
static void live_write(const char *reason) {
  tm_snapshot *snap = tm_take_snapshot(NULL);
  snapshot_write(snap, reason);
  tm_snapshot_free(snap);
}

/* Peak mode: takes a snapshot when the traced size passed the held one by more than 1%, or when
 * force is true and it passed it at all. Under dump_lock. */
static void peak_sample(bool force) {
  size_t current = 0;
  tm_get_traced_memory(&current, NULL);
  if (current == 0 || current <= peak_size)
    return;
  if (!force && peak_snap != NULL && current - peak_size <= peak_size / 100)
    return;
  tm_snapshot *snap = tm_take_snapshot(NULL);
  if (snap == NULL)
    return;
  tm_snapshot_free(peak_snap);
  peak_snap = snap;
  peak_size = current;
}

/* The final dump, at exit(): the live blocks, or the peak sampled. */
static void exit_dump(void) {
  if (atomic_exchange(&exit_dumped, 1))
    return;
  pthread_mutex_lock(&dump_lock);
  if (conf.at == AT_PEAK) {
    peak_sample(true);
    if (peak_snap != NULL)
      snapshot_write(peak_snap, "peak");
    else
      live_write("peak");
  } else {
    live_write("exit");
  }
  pthread_mutex_unlock(&dump_lock);
}

/* The dump signal's handler: async-signal-safe, wakes the watcher. */
static void dump_signal_handler(int sig) {
  int saved = errno;
  atomic_fetch_add(&dump_requests, 1);
  sem_post(&wake);
  errno = saved;
}

/* A fatal signal's handler: best-effort dump (see the top of the file), then the default action. */
static void fatal_handler(int sig) {
  if (!atomic_exchange(&fatal_entered, 1) && !tm__guard_held() &&
      !atomic_exchange(&exit_dumped, 1) && pthread_mutex_trylock(&dump_lock) == 0) {
    signal(SIGALRM, SIG_DFL);
    alarm(5);
    tm_thread_pause();
    const char *name = sigabbrev_np(sig);
    char reason[32];
    snprintf(reason, sizeof reason, "SIG%s", name != NULL ? name : "?");
    live_write(reason);
    alarm(0);
    pthread_mutex_unlock(&dump_lock);
  }
  signal(sig, SIG_DFL);
  raise(sig);
}

/* The watcher: dumps on request, and samples the peak in peak mode. Runs with every signal
 * blocked, so that signals go to the program's threads. */
static void *watcher_main(void *arg) {
  for (;;) {
    if (conf.at == AT_PEAK) {
      struct timespec ts;
      clock_gettime(CLOCK_REALTIME, &ts);
      ts.tv_nsec += 1000000;
      if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
      }
      while (sem_timedwait(&wake, &ts) != 0 && errno == EINTR)
        ;
    } else {
      while (sem_wait(&wake) != 0 && errno == EINTR)
        ;
    }
    if (atomic_load(&exit_dumped))
      continue;
    pthread_mutex_lock(&dump_lock);
    while (atomic_load(&dump_requests) > 0) {
      atomic_fetch_sub(&dump_requests, 1);
      live_write("signal");
    }
    if (conf.at == AT_PEAK)
      peak_sample(false);
    pthread_mutex_unlock(&dump_lock);
  }
  return NULL;
}

/* Starts the watcher with every signal blocked; its own allocations are not the program's. */
static void watcher_start(void) {
  sigset_t all, old;
  pthread_t thread;
  pthread_attr_t attr;
  sem_init(&wake, 0, 0);
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  tm_thread_pause();
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  if (pthread_create(&thread, &attr, watcher_main, NULL) != 0)
    fprintf(stderr, "tracemalloc: cannot start the dump thread: dumps on signal and at the peak "
                    "are off\n");
  pthread_attr_destroy(&attr);
  tm_thread_resume();
  pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static void fork_prepare(void) { pthread_mutex_lock(&dump_lock); }

static void fork_parent(void) { pthread_mutex_unlock(&dump_lock); }

/* The child: its own dumps, its own peak, its own watcher (threads do not survive fork()). */
static void fork_child(void) {
  pthread_mutex_unlock(&dump_lock);
  counter = 0;
  tm_snapshot_free(peak_snap);
  peak_snap = NULL;
  peak_size = 0;
  atomic_store(&dump_requests, 0);
  if (watcher_wanted)
    watcher_start();
}

/* Installs handler for sig when its disposition is the default (always for forced signals). */
static void handler_install(int sig, void (*handler)(int), bool only_if_default) {
  struct sigaction sa, old;
  if (only_if_default && (sigaction(sig, NULL, &old) != 0 || old.sa_handler != SIG_DFL))
    return;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = handler;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(sig, &sa, NULL);
}

/* Reads the TRACEMALLOC_DUMP* variables (see the top of the file) and installs the exit and
 * signal handlers, the fork handlers and the watcher. Runs once, before main(). */
__attribute__((constructor(102))) static void autodump_init(void) {
  int saved = errno;
  char value[PATTERN_MAX];
  if (!env_copy("TRACEMALLOC_DUMP", conf.pattern))
    return;
  conf.enabled = true;
  if (!env_copy("TRACEMALLOC_DUMP_LIST", conf.list))
    conf.list[0] = '\0';
  if (env_copy("TRACEMALLOC_DUMP_AT", value)) {
    if (strcmp(value, "peak") == 0)
      conf.at = AT_PEAK;
    else if (strcmp(value, "exit") != 0)
      fprintf(stderr, "tracemalloc: TRACEMALLOC_DUMP_AT=%s is neither exit nor peak; using exit\n",
              value);
  }
  if (env_copy("TRACEMALLOC_DUMP_SIGNAL", value)) {
    conf.signal = signal_parse(value);
    if (conf.signal == 0)
      fprintf(stderr, "tracemalloc: TRACEMALLOC_DUMP_SIGNAL=%s is not a signal to dump on\n",
              value);
  }
  pthread_atfork(fork_prepare, fork_parent, fork_child);
  atexit(exit_dump);
  for (size_t i = 0; i < sizeof fatal_signals / sizeof fatal_signals[0]; i++)
    if (fatal_signals[i] != conf.signal)
      handler_install(fatal_signals[i], fatal_handler, true);
  watcher_wanted = conf.signal != 0 || conf.at == AT_PEAK;
  if (watcher_wanted)
    watcher_start();
  if (conf.signal != 0)
    handler_install(conf.signal, dump_signal_handler, false);
  errno = saved;
}
