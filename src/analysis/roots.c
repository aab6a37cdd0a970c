/* roots.c — the roots of the reachability scan (roots.h; docs/plugin.md "Reachability").
 *
 * Every range is clipped to what /proc/self/maps says is readable, so that a guess about glibc's
 * layout (the size of the static TLS, the thread descriptor) can cost a missed word, never a
 * fault. Where /proc is not mounted, the ranges are taken as they are (the guesses stay inside
 * the static TLS block and the thread descriptor), and other threads' stacks are not found.
 */
#define UNW_LOCAL_ONLY
#include <dlfcn.h>
#include <libunwind.h>
#include <errno.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include "engine.h"
#include "roots.h"

/* How much of glibc's struct pthread, above the thread pointer, to scan when libc does not say
 * (thread_descriptor_size()): more than any glibc's (2368 bytes in Debian 12's 2.36, whose
 * per-thread strerror() and strsignal() buffers sit at its end); the range is clipped to its
 * mapping, and a larger value only scans a few more words of it. */
#define THREAD_DESCRIPTOR_FALLBACK 4096
/* glibc's struct malloc_state (main_arena) on 64-bit targets, and the offset of its unsorted bin
 * head bin_at(av, 1) (glibc 2.26 and later). */
#define MALLOC_STATE_SIZE 2200
#define UNSORTED_BIN_OFFSET 96

/* One mapping of /proc/self/maps. */
typedef struct mapping {
  uintptr_t lo, hi;
  bool readable, writable, anonymous;
  bool main_stack; /* [stack]: the main thread's */
} mapping;

/* Reads the process's mappings, in address order. */
static GArray *mappings_read(void) {
  GArray *maps = g_array_new(false, false, sizeof(mapping));
  FILE *f = fopen("/proc/self/maps", "re");
  char line[512];
  if (f == NULL)
    return maps;
  while (fgets(line, sizeof line, f) != NULL) {
    unsigned long lo, hi, offset, inode;
    char perms[5] = "", path[256] = "";
    unsigned int major, minor;
    if (sscanf(line, "%lx-%lx %4s %lx %x:%x %lu %255s", &lo, &hi, perms, &offset, &major, &minor,
               &inode, path) < 7)
      continue;
    mapping m = {lo, hi, perms[0] == 'r', perms[1] == 'w', inode == 0 && path[0] != '/',
                 strcmp(path, "[stack]") == 0};
    g_array_append_val(maps, m);
    /* A line longer than the buffer: skip its rest. */
    while (strchr(line, '\n') == NULL && fgets(line, sizeof line, f) != NULL)
      ;
  }
  fclose(f);
  return maps;
}

/* The mapping of maps that holds addr, or NULL. */
static const mapping *mapping_of(const GArray *maps, uintptr_t addr) {
  for (guint i = 0; i < maps->len; i++) {
    const mapping *m = &g_array_index(maps, mapping, i);
    if (addr >= m->lo && addr < m->hi)
      return m;
  }
  return NULL;
}

/* Appends [lo, hi) to ranges, cut to the readable mappings it overlaps and aligned to words. */
static void ranges_add(GArray *ranges, const GArray *maps, uintptr_t lo, uintptr_t hi) {
  lo = (lo + 7) & ~(uintptr_t)7;
  hi &= ~(uintptr_t)7;
  if (maps->len == 0 && lo < hi) { /* no /proc here: trust the range rather than scan nothing */
    tm__range r = {lo, hi};
    g_array_append_val(ranges, r);
    return;
  }
  for (guint i = 0; i < maps->len && lo < hi; i++) {
    const mapping *m = &g_array_index(maps, mapping, i);
    if (!m->readable || m->hi <= lo || m->lo >= hi)
      continue;
    tm__range r = {MAX(lo, m->lo), MIN(hi, m->hi)};
    if (r.lo < r.hi)
      g_array_append_val(ranges, r);
  }
}

/* Appends [lo, hi) minus [cut_lo, cut_hi). */
static void ranges_add_except(GArray *ranges, const GArray *maps, uintptr_t lo, uintptr_t hi,
                              uintptr_t cut_lo, uintptr_t cut_hi) {
  if (cut_hi <= lo || cut_lo >= hi) {
    ranges_add(ranges, maps, lo, hi);
    return;
  }
  if (lo < cut_lo)
    ranges_add(ranges, maps, lo, cut_lo);
  if (cut_hi < hi)
    ranges_add(ranges, maps, cut_hi, hi);
}

/* The writable segment of the object that holds glibc's malloc (libc.so.6), where main_arena
 * lives: stores it in [*lo, *hi) and returns true, or false when not found. */
typedef struct writable_of {
  uintptr_t base, lo, hi;
} writable_of;

static int writable_segment_find(struct dl_phdr_info *info, size_t size, void *data) {
  writable_of *w = data;
  (void)size;
  if (info->dlpi_addr != w->base)
    return 0;
  for (size_t i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type == PT_LOAD && (ph->p_flags & PF_W)) {
      w->lo = info->dlpi_addr + ph->p_vaddr;
      w->hi = w->lo + ph->p_memsz;
      return 1;
    }
  }
  return 0;
}

static bool malloc_data_segment(uintptr_t *lo, uintptr_t *hi) {
  extern void *__libc_malloc(size_t);
  Dl_info info;
  writable_of w = {0, 0, 0};
  if (dladdr((void *)__libc_malloc, &info) == 0 || info.dli_fbase == NULL)
    return false;
  /* dl_iterate_phdr gives load biases: an object's is its base for the shared objects here. */
  w.base = (uintptr_t)info.dli_fbase;
  if (dl_iterate_phdr(writable_segment_find, &w) == 0 || w.hi <= w.lo)
    return false;
  *lo = w.lo;
  *hi = w.hi;
  return true;
}

/* Where glibc's main arena lies, or 0. Its bins and fast bins point at chunk headers, which sit in
 * the last bytes of the blocks before them, and its top pointer at the chunk after the last block
 * carved from the heap: scanned, they would make those blocks reachable (a leaked 24-byte block
 * at the top of the heap passed so). A block too large for the tcache and fast bins, freed
 * between two blocks in use, lands at the head of the unsorted bin, whose list head it then
 * points back to. In a fragmented heap (a library's initialisation freed much) the blocks of a
 * probe are rarely carved one after the other, so adjacency is not required: a candidate is taken
 * only when it lies, with the whole struct, in libc's writable segment, which a word left in a
 * block that merged with a free neighbour never does. Read once; forks inherit it. */
static uintptr_t malloc_state_address(void) {
  enum { TRIES = 16 };
  static const size_t sizes[] = {4096, 2064, 8192, 16400};
  static uintptr_t found;
  static bool probed;
  /* Through pointers the compiler cannot see through: it would pair and drop the calls. */
  void *(*volatile alloc)(size_t) = malloc;
  void (*volatile release)(void *) = free;
  void *held[TRIES * 3] = {0};
  uintptr_t lo, hi;

  if (probed)
    return found;
  probed = true;
  if (!tm__malloc_is_glibc() || !malloc_data_segment(&lo, &hi))
    return 0; /* another allocator serves malloc: glibc's arena holds none of its blocks */
  for (int t = 0; t < TRIES && found == 0; t++) {
    size_t size = sizes[t % G_N_ELEMENTS(sizes)];
    uintptr_t *a = held[3 * t] = alloc(size), *b = held[3 * t + 1] = alloc(size);
    held[3 * t + 2] = alloc(size);
    if (a == NULL || b == NULL || held[3 * t + 2] == NULL)
      continue;
    /* A chunk glibc mapped on its own (M_MMAP_THRESHOLD tuned down, by mallopt() or
     * GLIBC_TUNABLES) is unmapped by free(): reading it then would fault. It never reaches a
     * bin. */
    if (tm__malloc_chunk_mapped(b))
      continue;
    held[3 * t + 1] = NULL;
    release(b);
    uintptr_t fd = ((volatile uintptr_t *)b)[0], bk = ((volatile uintptr_t *)b)[1];
    uintptr_t candidate = bk - UNSORTED_BIN_OFFSET;
    if (fd != 0 && bk > UNSORTED_BIN_OFFSET && candidate % sizeof(uintptr_t) == 0 &&
        candidate >= lo && candidate + MALLOC_STATE_SIZE <= hi)
      found = candidate;
  }
  for (size_t i = 0; i < G_N_ELEMENTS(held); i++)
    release(held[i]);
  return found;
}

typedef struct segments_ctx {
  GArray *ranges;
  const GArray *maps;
  uintptr_t arena;
  uintptr_t self; /* load address of the object this code is in: the tracer's own data */
} segments_ctx;

static int segment_add(struct dl_phdr_info *info, size_t size, void *data) {
  segments_ctx *ctx = data;
  /* The tracer's own statics (its tables, caches, the arrays of the last scan) hold no pointer of
   * the program's, and a stale one to memory it freed would keep a block the program lost. When
   * the tracer is linked into the program itself (static archives), its data is the program's:
   * scanned with it. */
  if (ctx->self != 0 && info->dlpi_addr == ctx->self)
    return 0;
  for (size_t i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_W))
      continue;
    uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
    ranges_add_except(ctx->ranges, ctx->maps, lo, lo + ph->p_memsz, ctx->arena,
                      ctx->arena != 0 ? ctx->arena + MALLOC_STATE_SIZE : 0);
  }
  return 0;
}

/* The top of the calling thread's stack. Kept per thread: a forked child runs on the same stack. */
static uintptr_t stack_top(void) {
  static __thread uintptr_t top;
  if (top == 0) {
    pthread_attr_t attr;
    void *addr;
    size_t size;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
      if (pthread_attr_getstack(&attr, &addr, &size) == 0)
        top = (uintptr_t)addr + size;
      pthread_attr_destroy(&attr);
    }
  }
  return top;
}

/* The size of the static TLS block, thread descriptor included (ld.so's _dl_get_tls_static_info,
 * what LeakSanitizer reads too), or 0 when the loader does not say. */
static size_t static_tls_size(void) {
  static size_t size;
  static bool asked;
  if (!asked) {
    asked = true;
    void (*info)(size_t *, size_t *) =
        (void (*)(size_t *, size_t *))dlsym(RTLD_DEFAULT, "_dl_get_tls_static_info");
    size_t align = 0;
    if (info != NULL)
      info(&size, &align);
  }
  return size;
}

/* The size of glibc's struct pthread, the thread descriptor above the thread pointer, as libc
 * tells libthread_db (_thread_db_sizeof_pthread, in libc itself since glibc 2.34), or 0 when it
 * does not. */
static size_t thread_descriptor_told(void) {
  static size_t size;
  static bool asked;
  if (!asked) {
    asked = true;
    const uint32_t *sizeof_pthread = dlsym(RTLD_DEFAULT, "_thread_db_sizeof_pthread");
    if (sizeof_pthread != NULL && *sizeof_pthread >= 1024 && *sizeof_pthread <= 65536)
      size = *sizeof_pthread;
  }
  return size;
}

/* The size of the thread descriptor: libc's (thread_descriptor_told()), else
 * THREAD_DESCRIPTOR_FALLBACK. */
static size_t thread_descriptor_size(void) {
  size_t size = thread_descriptor_told();
  return size != 0 ? size : THREAD_DESCRIPTOR_FALLBACK;
}

/* The low end of the calling thread's static TLS block, which ends at the thread pointer tp.
 * _dl_get_tls_static_info's size (tls, 0: unknown) counts the thread descriptor above tp too, so
 * the block starts that much higher than tp - tls. A thread other than main's has its TLS block at
 * the top of its own stack mapping, right above its first frames: where the stack scanned from sp
 * up to top already covers the block, the range never reaches below sp either, since what lies
 * there are dead frames, the very words that made a leak of the test look reachable when the
 * runner ran shallow on such a thread. */
static uintptr_t static_tls_low(uintptr_t tp, size_t tls, uintptr_t sp, uintptr_t top) {
  size_t descriptor = thread_descriptor_told(); /* a guess would cut the block short */
  size_t below = tls == 0 ? 4096 : tls > descriptor ? tls - descriptor : tls;
  uintptr_t lo = tp >= below ? tp - below : 0;
  if (sp <= tp && tp < top && lo < sp)
    lo = sp;
  return lo;
}

/* Adds the calling thread's dynamic thread vector: glibc's array of dtv_t (16 bytes each: the
 * address of a module's TLS block and the block malloc returned for it), which x86_64's TCB
 * points to at the thread pointer + 8, one entry past its length slot. A library loaded with
 * dlopen() gets its TLS block from malloc on the thread's first access, and the vector is all
 * that points to it; the main thread's vector was allocated by the loader before malloc existed,
 * in memory no segment covers, so without this a cache kept in a __thread variable of a dlopen'ed
 * library looked lost. Other threads' vectors are reached from their descriptors, which lie in
 * their scanned stack mappings. */
static void dtv_add(GArray *ranges, const GArray *maps, uintptr_t tp) {
#if defined(__x86_64__) && defined(__GLIBC__)
  enum { ENTRY = 16, MAX_ENTRIES = 1 << 16 };
  uintptr_t dtv = ((const uintptr_t *)tp)[1];
  const mapping *m = dtv >= ENTRY ? mapping_of(maps, dtv - ENTRY) : NULL; /* its length slot */
  if (m == NULL || !m->readable || dtv + ENTRY > m->hi || dtv % 8 != 0)
    return;
  size_t entries = *(const size_t *)(dtv - ENTRY); /* the highest module id it has room for */
  if (entries == 0 || entries > MAX_ENTRIES)
    return;
  ranges_add(ranges, maps, dtv - ENTRY, dtv + (entries + 1) * ENTRY);
#else
  (void)ranges;
  (void)maps;
  (void)tp;
#endif
}

/* How often, and how far apart, a thread seen running is asked again for its stack pointer. */
enum { THREAD_SP_RETRIES = 50, THREAD_SP_RETRY_US = 1000 };

/* A few thread ids remembered process-wide, the oldest forgotten first. A thread id can be
 * reused: what a remembered id spares (a wait) then costs once. */
enum { TID_RING_KEPT = 16 };
typedef struct tid_ring {
  long ids[TID_RING_KEPT];
  unsigned next;
} tid_ring;

static bool tid_ring_has(const tid_ring *ring, long tid) {
  for (unsigned i = 0; i < TID_RING_KEPT; i++)
    if (ring->ids[i] == tid)
      return true;
  return false;
}

static void tid_ring_add(tid_ring *ring, long tid) {
  if (!tid_ring_has(ring, tid))
    ring->ids[ring->next++ % TID_RING_KEPT] = tid;
}

/* Threads that were still running after every retry of an earlier scan (a thread that computes
 * all along): asked only once more after that, so that each window does not wait 50 ms for them. */
static tid_ring busy_threads;

static bool thread_known_busy(const char *tid) { return tid_ring_has(&busy_threads, atol(tid)); }

/* The stack pointer of thread tid, from /proc/self/task/TID/syscall (a thread blocked in a system
 * call, or stopped, reports its registers there; a running one says "running"): 0 when unknown. */
static uintptr_t thread_sp(const char *tid) {
  char path[64], text[256] = "";
  snprintf(path, sizeof path, "/proc/self/task/%s/syscall", tid);
  FILE *f = fopen(path, "re");
  if (f == NULL)
    return 0;
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = '\0';
  char **fields = g_strsplit_set(g_strstrip(text), " ", -1);
  guint count = g_strv_length(fields);
  uintptr_t sp = count >= 3 && !g_str_equal(fields[0], "running")
                   ? (uintptr_t)g_ascii_strtoull(fields[count - 2], NULL, 16)
                   : 0;
  g_strfreev(fields);
  return sp;
}

/* Whole stacks that the last tm__roots_collect() could not rule out while a thread was running
 * (anonymous writable mappings just above a guard page): tm__roots_registers_add() reads, of each,
 * only what lies above the stack pointer of a running thread that answered its signal, and the
 * others whole only while some running thread's stack pointer stays unknown. The others are then
 * the stacks glibc keeps from joined threads, whose dead frames hold stale pointers. */
enum { PENDING_STACKS_MAX = 256 };
static uintptr_t pending_stacks[PENDING_STACKS_MAX][2];
static unsigned pending_stacks_n;

/* Adds to ranges what tm__roots_registers_add() keeps of the pending stacks (see above), given the
 * stack pointers known now (sps), and forgets them. */
static void pending_stacks_flush(GArray *ranges, const uintptr_t *sps, unsigned nsps,
                                 bool all_known) {
  for (unsigned i = 0; i < pending_stacks_n; i++) {
    uintptr_t lo = pending_stacks[i][0], hi = pending_stacks[i][1];
    bool found = false;
    for (unsigned k = 0; k < nsps && !found; k++) {
      if (sps[k] >= lo && sps[k] < hi) {
        lo = sps[k] & ~(uintptr_t)7;
        hi = tm__tracer_map_start(lo, hi);
        found = true;
      }
    }
    if (found || !all_known) {
      tm__range r = {lo, hi};
      g_array_append_val(ranges, r);
    }
  }
  pending_stacks_n = 0;
}

/* The registers of threads that compute all along (no system call says where their stack pointer
 * or their registers are), caught by a signal whose handler copies its context: a block such a
 * thread holds in a register alone would look lost. Only threads still running after every retry
 * get the signal, so that none is woken from a blocking call; its handler is installed only while
 * the program has none for it, and stays (a late delivery must not find the default action). */
enum { BUSY_REGS_MAX = 16, BUSY_REGS_WAIT_US = 20000 };
#ifdef __linux__
#define BUSY_REGS_WORDS ((size_t)NGREG)
typedef struct busy_regs {
  _Atomic long tid;     /* the thread asked; 0: free */
  atomic_int done;      /* 1 once the handler copied the registers */
  uintptr_t regs[NGREG];
} busy_regs;
static busy_regs busy_slots[BUSY_REGS_MAX];
/* Threads that did not answer within the wait: not asked again, so that each window does not
 * wait for them. */
static tid_ring deaf_threads;
/* The threads the last tm__roots_collect() found running after every retry. */
static long busy_pending[BUSY_REGS_MAX];
static unsigned busy_pending_n;
static bool busy_pending_overflow; /* more than BUSY_REGS_MAX were running */

static void busy_regs_handler(int sig, siginfo_t *info, void *context) {
  (void)sig;
  (void)info;
  int saved = errno;
  long self = (long)syscall(SYS_gettid);
  const ucontext_t *uc = context;
  for (int i = 0; i < BUSY_REGS_MAX; i++) {
    busy_regs *slot = &busy_slots[i];
    if (atomic_load(&slot->tid) != self || atomic_load(&slot->done))
      continue;
    for (size_t r = 0; r < BUSY_REGS_WORDS; r++)
      slot->regs[r] = (uintptr_t)uc->uc_mcontext.gregs[r];
    atomic_store(&slot->done, 1);
  }
  errno = saved;
}

/* Whether thread tid blocks signal sig (SigBlk in /proc/self/task/TID/status), or cannot say: a
 * blocked signal would stay pending, and reach a sigwait() of the program's later. */
static bool thread_blocks(const char *tid, int sig) {
  char path[64], *text = NULL;
  snprintf(path, sizeof path, "/proc/self/task/%s/status", tid);
  if (!g_file_get_contents(path, &text, NULL, NULL))
    return true;
  const char *line = strstr(text, "\nSigBlk:");
  bool blocked = true;
  if (line != NULL) {
    unsigned long long mask = g_ascii_strtoull(line + strlen("\nSigBlk:"), NULL, 16);
    blocked = sig > 64 || (mask >> (sig - 1) & 1) != 0;
  }
  g_free(text);
  return blocked;
}

/* The signal: the highest real-time one, when the program handles it not itself. 0: none. */
static int busy_regs_signal(void) {
  int sig = SIGRTMAX;
  struct sigaction old;
  if (sigaction(sig, NULL, &old) != 0)
    return 0;
  if ((old.sa_flags & SA_SIGINFO) != 0 && old.sa_sigaction == busy_regs_handler)
    return sig;
  if ((old.sa_flags & SA_SIGINFO) != 0 || old.sa_handler != SIG_DFL)
    return 0; /* the program's */
  struct sigaction act = {.sa_sigaction = busy_regs_handler, .sa_flags = SA_SIGINFO | SA_RESTART};
  sigfillset(&act.sa_mask);
  return sigaction(sig, &act, NULL) == 0 ? sig : 0;
}

void tm__roots_registers_add(GArray *ranges) {
  /* What an earlier scan caught is stale now: where this library's data is a root (linked into the
   * program), it would keep blocks at those addresses reachable. */
  for (int i = 0; i < BUSY_REGS_MAX; i++)
    memset(busy_slots[i].regs, 0, sizeof busy_slots[i].regs);
  int sig = busy_pending_n > 0 ? busy_regs_signal() : 0;
  uintptr_t sps[BUSY_REGS_MAX];
  unsigned nsps = 0;
  bool all_known = sig != 0 && !busy_pending_overflow;
  if (sig == 0) {
    busy_pending_n = 0;
    pending_stacks_flush(ranges, NULL, 0, false);
    return;
  }
  guint n = 0;
  for (unsigned k = 0; k < busy_pending_n; k++) {
    long tid = busy_pending[k];
    char name[32];
    snprintf(name, sizeof name, "%ld", tid);
    /* Blocked in a system call by now: a signal could make it return early (a sleep, a poll). */
    bool deaf = tid_ring_has(&deaf_threads, tid);
    uintptr_t sp = deaf ? 0 : thread_sp(name);
    if (sp != 0) {
      sps[nsps++] = sp;
      continue;
    }
    if (deaf || thread_blocks(name, sig)) { /* its stack pointer stays unknown */
      all_known = false;
      continue;
    }
    atomic_store(&busy_slots[n].done, 0);
    atomic_store(&busy_slots[n].tid, tid);
    if (syscall(SYS_tgkill, (long)getpid(), tid, sig) != 0)
      atomic_store(&busy_slots[n].tid, 0);
    n++;
  }
  busy_pending_n = 0;
  for (int waited = 0; waited < BUSY_REGS_WAIT_US; waited += 100) {
    guint answered = 0;
    for (guint k = 0; k < n; k++)
      answered += atomic_load(&busy_slots[k].tid) == 0 || atomic_load(&busy_slots[k].done);
    if (answered == n)
      break;
    g_usleep(100);
  }
  for (guint k = 0; k < n; k++) {
    long tid = atomic_load(&busy_slots[k].tid);
    if (tid != 0 && atomic_load(&busy_slots[k].done)) {
      tm__range r = {(uintptr_t)busy_slots[k].regs,
                     (uintptr_t)(busy_slots[k].regs + BUSY_REGS_WORDS)};
      g_array_append_val(ranges, r);
#ifdef REG_RSP
      sps[nsps++] = busy_slots[k].regs[REG_RSP];
#else
      all_known = false;
#endif
    } else {
      all_known = false;
      if (tid != 0)
        tid_ring_add(&deaf_threads, tid);
    }
    atomic_store(&busy_slots[k].tid, 0); /* a late handler finds no slot */
  }
  pending_stacks_flush(ranges, sps, nsps, all_known);
}
/* Notes the threads still running after the retries, for tm__roots_registers_add(). */
static void busy_regs_note(const GPtrArray *tids) {
  busy_pending_n = 0;
  for (guint k = 0; k < tids->len && busy_pending_n < BUSY_REGS_MAX; k++)
    busy_pending[busy_pending_n++] = atol(g_ptr_array_index(tids, k));
  busy_pending_overflow = tids->len > BUSY_REGS_MAX;
}
#else
static void busy_regs_note(const GPtrArray *tids) {
  (void)tids;
}

void tm__roots_registers_add(GArray *ranges) {
  pending_stacks_flush(ranges, NULL, 0, false);
}
#endif

/* The anonymous mappings the program made itself (tm__program_maps_copy()). */
typedef struct program_maps {
  uintptr_t (*list)[2];
  size_t n;
} program_maps;

static program_maps program_maps_read(void) {
  program_maps pm = {NULL, 0};
  size_t room = 64;
  for (;;) {
    pm.list = g_realloc(pm.list, room * sizeof *pm.list);
    pm.n = tm__program_maps_copy(pm.list, room);
    if (pm.n <= room)
      return pm;
    room = pm.n + 64; /* the program mapped more meanwhile */
  }
}

/* The end of the stack of a thread whose stack pointer is sp, in a mapping that ends at hi: the
 * kernel merges neighbouring anonymous mappings of the same protection into one line of
 * /proc/self/maps, so a stack the program mapped ends with its own mmap() (which the program's
 * list knows), and no stack reaches into the tracer's own mappings, which point to every block. */
static uintptr_t stack_end(uintptr_t sp, uintptr_t hi, const program_maps *pm) {
  for (size_t i = 0; i < pm->n; i++)
    if (sp >= pm->list[i][0] && sp < pm->list[i][1] && pm->list[i][1] < hi)
      hi = pm->list[i][1];
  return tm__tracer_map_start(sp, hi);
}

/* Adds the stacks of the other threads, from each one's stack pointer to the top of its mapping
 * (its TLS and descriptor sit there). A thread seen running is asked again, every millisecond for
 * up to 50 ms (once, for threads that stayed running through an earlier scan's retries). While one
 * still runs (computing all that time), every anonymous writable mapping just above a guard page,
 * as glibc lays out the stacks it creates, is left pending for tm__roots_registers_add(), which
 * reads it from the stack pointer the thread's signal gives, or whole when some stack pointer stays
 * unknown: conservative, since the stacks glibc keeps from joined threads look the same. Stacks of
 * joined threads are never scanned otherwise. The stack pointers read are appended to sps. */
static void other_stacks_add(GArray *ranges, const GArray *maps, uintptr_t own_sp, GArray *sps,
                             const program_maps *pm) {
  char self[32];
  GDir *dir = g_dir_open("/proc/self/task", 0, NULL);
  const char *tid;
  bool unknown = false;

  pending_stacks_n = 0;
  if (dir == NULL)
    return;
  snprintf(self, sizeof self, "%ld", (long)gettid());
  GPtrArray *running = g_ptr_array_new_with_free_func(g_free);
  while ((tid = g_dir_read_name(dir)) != NULL) {
    if (g_str_equal(tid, self))
      continue;
    uintptr_t sp = thread_sp(tid);
    if (sp != 0)
      g_array_append_val(sps, sp);
    else
      g_ptr_array_add(running, g_strdup(tid));
  }
  g_dir_close(dir);
  /* A thread seen running is most often on its way back to wait (a worker that just handed the
   * test its result): asked again a little later, it tells its stack pointer, and only the frames
   * above it are read, not the dead ones below, which hold what its deeper calls left (the test's
   * leak among them, once kept reachable that way in one run out of three). */
  bool all_busy = true;
  for (guint k = 0; k < running->len && all_busy; k++)
    all_busy = thread_known_busy(g_ptr_array_index(running, k));
  int retries = all_busy ? 1 : THREAD_SP_RETRIES;
  for (int attempt = 0; running->len > 0 && attempt < retries; attempt++) {
    g_usleep(THREAD_SP_RETRY_US);
    for (guint k = running->len; k-- > 0;) {
      uintptr_t sp = thread_sp(g_ptr_array_index(running, k));
      if (sp != 0) {
        g_array_append_val(sps, sp);
        g_ptr_array_remove_index_fast(running, k);
      }
    }
  }
  for (guint k = 0; k < running->len; k++)
    tid_ring_add(&busy_threads, atol(g_ptr_array_index(running, k)));
  unknown = running->len > 0;
  busy_regs_note(running);
  g_ptr_array_free(running, TRUE);
  for (guint i = 0; i < maps->len; i++) {
    const mapping *m = &g_array_index(maps, mapping, i);
    if (!m->readable || (own_sp >= m->lo && own_sp < m->hi))
      continue;
    bool scanned = false;
    for (guint k = 0; k < sps->len && !scanned; k++) {
      uintptr_t sp = g_array_index(sps, uintptr_t, k);
      if (sp >= m->lo && sp < m->hi) {
        ranges_add(ranges, maps, sp, stack_end(sp, m->hi, pm));
        scanned = true;
      }
    }
    const mapping *below = i > 0 ? &g_array_index(maps, mapping, i - 1) : NULL;
    bool guarded = below != NULL && below->hi == m->lo && !below->readable && !below->writable;
    bool arena = (m->lo & ((64u << 20) - 1)) == 0; /* glibc's arenas: 64 MiB-aligned heaps */
    if (!scanned && unknown && m->writable && m->anonymous && guarded && !arena &&
        !tm__mapped_by_tracer(m->lo, m->hi)) {
      if (pending_stacks_n < PENDING_STACKS_MAX) { /* decided by tm__roots_registers_add() */
        pending_stacks[pending_stacks_n][0] = m->lo;
        pending_stacks[pending_stacks_n++][1] = m->hi;
      } else {
        ranges_add(ranges, maps, m->lo, m->hi);
      }
    }
  }
}

/* Appends the resident pages of [lo, hi) (page-aligned), cut to the readable mappings. A page
 * never touched holds nothing: a reservation of gigabytes costs what it holds, not its size. */
static void resident_add(GArray *ranges, const GArray *maps, uintptr_t lo, uintptr_t hi) {
  enum { PAGES = 4096 };
  unsigned char vec[PAGES];
  uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  for (uintptr_t at = lo; at < hi;) {
    uintptr_t end = hi - at > PAGES * page ? at + PAGES * page : hi;
    if (mincore((void *)at, end - at, vec) != 0) { /* partly unmapped since: clipped below */
      ranges_add(ranges, maps, at, end);
      at = end;
      continue;
    }
    for (uintptr_t p = at; p < end;) {
      uintptr_t run = p;
      while (run < end && (vec[(run - at) / page] & 1))
        run += page;
      if (run > p)
        ranges_add(ranges, maps, p, run);
      p = run;
      while (p < end && !(vec[(p - at) / page] & 1))
        p += page;
    }
    at = end;
  }
}

/* Adds the anonymous memory the program mapped itself (a pool, an arena, an interpreter's object
 * heap: tm__program_maps_copy()), except a mapping that holds a thread's stack pointer (sps): a
 * stack the program mapped (a coroutine's, or one given to pthread_attr_setstack) is scanned from
 * its stack pointer up like any stack, since below it lie dead frames. */
static void program_maps_add(GArray *ranges, const GArray *maps, const GArray *sps,
                             const program_maps *pm) {
  uintptr_t(*list)[2] = pm->list;
  for (size_t i = 0; i < pm->n; i++) {
    bool stack = false;
    for (guint k = 0; k < sps->len && !stack; k++) {
      uintptr_t sp = g_array_index(sps, uintptr_t, k);
      stack = sp >= list[i][0] && sp < list[i][1];
    }
    if (!stack)
      resident_add(ranges, maps, list[i][0], list[i][1]);
  }
}

/* The calling thread's alternate signal stack (sigaltstack()), which only the kernel points to once
 * it is installed: a program that allocates one with malloc() and keeps it installed still has it.
 * Its address is copied into a word the scan then reads. Other threads' are not known. */
static void altstack_add(GArray *ranges, const GArray *maps) {
  static uintptr_t altstack_word;
  stack_t ss;
  if (sigaltstack(NULL, &ss) != 0 || (ss.ss_flags & SS_DISABLE) != 0 || ss.ss_sp == NULL)
    return;
  altstack_word = (uintptr_t)ss.ss_sp;
  ranges_add(ranges, maps, (uintptr_t)&altstack_word, (uintptr_t)(&altstack_word + 1));
}

/* Returns ranges less the alternate signal stacks the program installed (tm__altstacks_copy())
 * in static storage, and less the one installed now, but not the one this thread runs on: what
 * lies there are the dead frames of signal handlers, and a static array used as one is part of a
 * writable segment, whose scan took a pointer a handler's frame left there for the program's (a
 * block the handler leaked passed). An old stack outside every loaded object (a block or a
 * mapping since given back) is left alone: its memory may hold the program's data now. Frees
 * ranges. */
static GArray *altstacks_cut(GArray *ranges) {
  uintptr_t alt[8][2];
  size_t n = tm__altstacks_copy(alt, G_N_ELEMENTS(alt));
  stack_t now;
  bool installed = sigaltstack(NULL, &now) == 0 && !(now.ss_flags & SS_DISABLE);
  for (size_t k = 0; k < n; k++) {
    bool current = installed && (uintptr_t)now.ss_sp == alt[k][0];
    Dl_info in;
    if (current ? (now.ss_flags & SS_ONSTACK) != 0
                : dladdr((const void *)alt[k][0], &in) == 0 || in.dli_fbase == NULL)
      continue;
    GArray *out = g_array_sized_new(false, false, sizeof(tm__range), ranges->len + 1);
    for (guint i = 0; i < ranges->len; i++) {
      tm__range r = g_array_index(ranges, tm__range, i);
      if (r.hi <= alt[k][0] || r.lo >= alt[k][1]) {
        g_array_append_val(out, r);
        continue;
      }
      tm__range below = {r.lo, alt[k][0]}, above = {alt[k][1], r.hi};
      if (below.lo < below.hi)
        g_array_append_val(out, below);
      if (above.lo < above.hi)
        g_array_append_val(out, above);
    }
    g_array_unref(ranges);
    ranges = out;
  }
  return ranges;
}

/* The main thread's stack when no thread runs on it (a fork() child of a program whose main()
 * waits for the thread that runs the suite: the child has the runner's thread alone, and main()'s
 * frames as they were), its resident pages whole: the caller reads only what was written since the
 * fork (tm_reach_options.since_fork), the test's own stores into main()'s frame. */
static void dead_main_stack_add(GArray *ranges, const GArray *maps, const GArray *sps) {
  for (guint i = 0; i < maps->len; i++) {
    const mapping *m = &g_array_index(maps, mapping, i);
    bool live = false;
    for (guint k = 0; k < sps->len && !live; k++) {
      uintptr_t sp = g_array_index(sps, uintptr_t, k);
      live = sp >= m->lo && sp < m->hi;
    }
    if (m->main_stack && !live)
      resident_add(ranges, maps, m->lo, m->hi);
  }
}

GArray *tm__roots_collect(const void *stack_from, bool forked) {
  GArray *ranges = g_array_new(false, false, sizeof(tm__range));
  GArray *maps = mappings_read();
  segments_ctx ctx = {ranges, maps, malloc_state_address(), 0};
  Dl_info self;
  struct link_map *map = NULL;
  if (dladdr1((const void *)(uintptr_t)tm__roots_collect, &self, (void **)&map, RTLD_DL_LINKMAP) &&
      map != NULL && map->l_name != NULL && map->l_name[0] != '\0')
    ctx.self = map->l_addr; /* a shared object: libtracemalloc.so, not the main program */
  uintptr_t sp = (uintptr_t)stack_from, top = stack_top(), tp = (uintptr_t)pthread_self();
  size_t tls = static_tls_size();

  dl_iterate_phdr(segment_add, &ctx);
  const mapping *stack = top == 0 ? mapping_of(maps, sp) : NULL;
  if (stack != NULL) /* pthread_getattr_np failed: the mapping */
    top = stack->hi;
  if (top > sp)
    ranges_add(ranges, maps, sp, top);
  ranges_add(ranges, maps, static_tls_low(tp, tls, sp, top), tp + thread_descriptor_size());
  dtv_add(ranges, maps, tp);
  altstack_add(ranges, maps);
  GArray *sps = g_array_new(false, false, sizeof(uintptr_t));
  g_array_append_val(sps, sp);
  program_maps pm = program_maps_read();
  other_stacks_add(ranges, maps, sp, sps, &pm);
  if (forked)
    dead_main_stack_add(ranges, maps, sps);
  program_maps_add(ranges, maps, sps, &pm);
  g_free(pm.list);
  g_array_unref(sps);
  g_array_unref(maps);
  return altstacks_cut(ranges);
}

void tm_stack_mark_take(tm_stack_mark *mark) {
  void *ips[TM_STACK_MARK_DEPTH];
  if (mark == NULL)
    return;
  tm__guard_enter();
  int n = unw_backtrace(ips, TM_STACK_MARK_DEPTH);
  tm__guard_leave();
  mark->n = n > 0 ? n : 0;
  for (int i = 0; i < mark->n; i++)
    mark->ips[i] = (uintptr_t)ips[i];
}

/* Whether a function is Check's runner (srunner_run_all() and the calls that lead to the test). */
static bool runner_function(const char *name) {
  return strncmp(name, "srunner_", 8) == 0 || strncmp(name, "tcase_run_", 10) == 0;
}

/* The stack pointer to scan from when the runner's frames are skipped (tm_reach_options), given
 * shared_sp, the one of the first frame that differs: that of the frame that called Check's
 * runner (srunner_run_all() or another srunner_ entry), found by name in a second walk, so that
 * the program's own frames between main() and the runner (a function of the suite that keeps a
 * context on its stack and runs the suite) stay roots; main()'s when no runner frame is named;
 * without either (a stripped program, a suite run on another thread), shared_sp. */
static uintptr_t program_frame_sp(uintptr_t shared_sp, int max_frames) {
  unw_context_t context;
  unw_cursor_t cursor;
  uintptr_t caller_sp = 0, main_sp = 0;
  bool in_runner = false;
  if (unw_getcontext(&context) != 0 || unw_init_local(&cursor, &context) != 0)
    return shared_sp;
  for (int k = 0; k < max_frames && unw_step(&cursor) > 0; k++) {
    unw_word_t sp = 0, off;
    char name[32];
    unw_get_reg(&cursor, UNW_REG_SP, &sp);
    if ((uintptr_t)sp < shared_sp)
      continue;
    int rc = unw_get_proc_name(&cursor, name, sizeof name, &off);
    bool named = rc == 0 || rc == -UNW_ENOMEM; /* ENOMEM: cut to the buffer, still named */
    if ((uintptr_t)sp == shared_sp && !(named && strcmp(name, "main") == 0)) {
      in_runner = named && runner_function(name); /* the shared frame: Check's tcase_run_* */
      continue;
    }
    if (named && runner_function(name)) {
      in_runner = true;
      continue;
    }
    if (in_runner) { /* the first frame out of the runner: the one that called it */
      caller_sp = (uintptr_t)sp;
      break;
    }
    if (named && strcmp(name, "main") == 0) {
      main_sp = (uintptr_t)sp;
      break;
    }
  }
  if (caller_sp != 0)
    return caller_sp;
  return main_sp != 0 ? main_sp : shared_sp;
}

uintptr_t tm__stack_shared_sp(const tm_stack_mark *mark, bool skip_runner) {
  enum { MAX = TM_STACK_MARK_DEPTH * 2 };
  uintptr_t ips[MAX], sps[MAX];
  int n = 0;
  unw_context_t context;
  unw_cursor_t cursor;

  if (mark == NULL || mark->n <= 0 || mark->n >= TM_STACK_MARK_DEPTH)
    return 0; /* no mark, or a truncated one whose outermost frames cannot be aligned */
  if (unw_getcontext(&context) != 0 || unw_init_local(&cursor, &context) != 0)
    return 0;
  do {
    unw_word_t ip = 0, sp = 0;
    unw_get_reg(&cursor, UNW_REG_IP, &ip);
    unw_get_reg(&cursor, UNW_REG_SP, &sp);
    ips[n] = ip;
    sps[n] = sp;
    n++;
  } while (n < MAX && unw_step(&cursor) > 0);
  if (n == MAX)
    return 0;
  /* Align both chains on their outermost frame; the first return address that differs, from
   * the outside in, is the one into the shared frame. */
  int j = 0;
  while (j < n && j < mark->n && ips[n - 1 - j] == mark->ips[mark->n - 1 - j])
    j++;
  if (j == 0 || j >= n || j >= mark->n)
    return 0; /* nothing shared, or one chain holds the other */
  return skip_runner ? program_frame_sp(sps[n - 1 - j], MAX) : sps[n - 1 - j];
}
