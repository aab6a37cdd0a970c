/* test_reachability.c — tm_reachability_scan() on live tracing: which traced blocks are lost,
 * indirectly lost or reachable, who owns what, and the roots (globals, blocks allocated before
 * tracing, the live stack, other threads' stacks); the peak watch; and the errors. Links the
 * shared library as programs do, with the heap registry asked for. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <check.h>
#include <glib.h>

#include "../run_suite.h"
#include "tracemalloc.h"

TM_HEAP_REGISTRY;

typedef struct node {
  struct node *next;
  char payload[24];
} node;

static void *volatile global_slot;
static void **volatile old_holder; /* allocated before tracing starts: a registered block */

/* Finds the classified block at ptr; fails the test when it is not there. */
static const tm_reach_block *block_of(const tm_reachability *r, const void *ptr) {
  for (size_t i = 0; i < tm_reachability_length(r); i++)
    if (tm_reachability_get(r, i)->ptr == (uintptr_t)ptr)
      return tm_reachability_get(r, i);
  ck_abort_msg("no traced block at %p", ptr);
  return NULL;
}

/* The test's call chain, taken before make_graph(): the scan starts from the frame it shares with
 * the scan's chain (the test function), so that the frames of scan() and of the scan itself,
 * which sit where make_graph()'s were, cannot pass stale copies of its pointers for live ones. */
static tm_stack_mark mark;

static tm_reachability *scan(void) {
  GError *error = NULL;
  tm_reach_options options = {.since = &mark};
  tm_reachability *r = tm_reachability_scan(&options, &error);
  ck_assert_msg(r != NULL, "%s", error ? error->message : "?");
  return r;
}

/* Each scenario leaves its addresses in these, from a frame that is gone by the scan, hidden
 * (complemented) so that the globals holding them are not pointers to the blocks themselves. */
#define HIDE(p) (~(uintptr_t)(p))
#define SHOW(h) ((void *)~(h))
static uintptr_t lost_one, list_head, list_second, list_third, cycle_first, cycle_second, freed_target;
static uintptr_t owner, back_ref, owned_big;
static uintptr_t kept_global, kept_inside, kept_by_old, behind_paused, behind_scanned_pause;
static uintptr_t behind_nested_pause;
static void **volatile paused_holder; /* allocated by a paused thread: never read */
static void **volatile scanned_holder; /* allocated in tm_thread_pause_scanned(): read */
static void **volatile nested_holder; /* a tm_thread_pause() inside one: never read */

__attribute__((noinline)) static void make_graph(void) {
  void *volatile p = malloc(40);
  lost_one = HIDE(p);
  node *c = malloc(sizeof *c), *b = malloc(sizeof *b), *a = malloc(sizeof *a);
  a->next = b, b->next = c, c->next = NULL;
  list_head = HIDE(a), list_second = HIDE(b), list_third = HIDE(c);
  node *x = malloc(sizeof *x), *y = malloc(64);
  x->next = (node *)y, ((node *)y)->next = x; /* a cycle: each points to the other */
  cycle_first = HIDE(x), cycle_second = HIDE(y);
  /* An object and its back-reference, pointing to a larger block allocated before them (as a
   * parsed document points back and forth to its nodes, and to its older dictionary). */
  void **big = malloc(512);
  big[0] = NULL;
  void **o = malloc(4 * sizeof *o), **back = malloc(3 * sizeof *back);
  o[0] = back, o[1] = big, back[0] = o;
  owner = HIDE(o), back_ref = HIDE(back), owned_big = HIDE(big);
  o = back = big = NULL;
  void *volatile *holder = malloc(4 * sizeof *holder);
  holder[2] = malloc(24);
  freed_target = HIDE(holder[2]);
  free((void *)holder); /* freed memory is never scanned */
  global_slot = malloc(16);
  kept_global = HIDE(global_slot);
  char *inner = malloc(100);
  global_slot = inner + 50; /* a pointer inside a block counts */
  kept_inside = HIDE(inner);
  old_holder[0] = malloc(8);
  kept_by_old = HIDE(old_holder[0]);
  tm_thread_pause();
  paused_holder = malloc(2 * sizeof(void *));
  tm_thread_resume();
  paused_holder[0] = malloc(12);
  behind_paused = HIDE(paused_holder[0]);
  tm_thread_pause_scanned();
  tm_thread_pause();
  nested_holder = malloc(2 * sizeof(void *));
  tm_thread_resume();
  scanned_holder = malloc(2 * sizeof(void *));
  tm_thread_resume();
  scanned_holder[0] = malloc(20);
  behind_scanned_pause = HIDE(scanned_holder[0]);
  nested_holder[0] = malloc(28);
  behind_nested_pause = HIDE(nested_holder[0]);
  p = NULL, a = b = c = x = NULL, y = NULL, inner = NULL;
}

static void *make_graph_thread(void *arg) {
  make_graph();
  return arg;
}

START_TEST(test_classes_and_roots) {
  old_holder = calloc(4, sizeof(void *)); /* before tracing: registered, not traced */
  ck_assert_int_eq(tm_start(8), 0);
  tm_clear_traces();
  tm_stack_mark_take(&mark);
  /* Built on a thread that is gone by the scan: no frame of this thread ever held the graph's
   * pointers, so no slot of a live frame can keep a stale copy of one (an optimizing or
   * instrumenting compiler decides what a live frame holds). */
  pthread_t builder;
  ck_assert_int_eq(pthread_create(&builder, NULL, make_graph_thread, NULL), 0);
  ck_assert_int_eq(pthread_join(builder, NULL), 0);
  tm_reachability *r = scan();
  const tm_reach_block *b = block_of(r, SHOW(lost_one));
  ck_assert_int_eq(b->reach, TM_REACH_LOST);
  ck_assert_uint_eq(b->owned_size, 40);
  ck_assert_uint_eq(b->owned_blocks, 1);
  /* The list: the head is the root and owns the two nodes it leads to. */
  const tm_reach_block *head = block_of(r, SHOW(list_head));
  ck_assert_int_eq(head->reach, TM_REACH_LOST);
  ck_assert_uint_eq(head->owned_blocks, 3);
  ck_assert_uint_eq(head->owned_size, 3 * sizeof(node));
  size_t head_index = (size_t)(head - tm_reachability_get(r, 0));
  ck_assert_int_eq(block_of(r, SHOW(list_second))->reach, TM_REACH_INDIRECT);
  ck_assert_uint_eq(block_of(r, SHOW(list_third))->root, head_index);
  /* A cycle has no lost block of its own: the block allocated first stands as the root. */
  ck_assert_int_eq(block_of(r, SHOW(cycle_first))->reach, TM_REACH_LOST);
  ck_assert_uint_eq(block_of(r, SHOW(cycle_first))->owned_blocks, 2);
  ck_assert_int_eq(block_of(r, SHOW(cycle_second))->reach, TM_REACH_INDIRECT);
  /* Only blocks that nothing outside their cycle points to can be roots: the larger, older
   * block the cycle points to is owned by it. */
  const tm_reach_block *o = block_of(r, SHOW(owner));
  ck_assert_int_eq(o->reach, TM_REACH_LOST);
  ck_assert_uint_eq(o->owned_blocks, 3);
  ck_assert_uint_eq(o->owned_size, 512 + 7 * sizeof(void *));
  ck_assert_int_eq(block_of(r, SHOW(back_ref))->reach, TM_REACH_INDIRECT);
  ck_assert_int_eq(block_of(r, SHOW(owned_big))->reach, TM_REACH_INDIRECT);
  ck_assert_uint_eq(block_of(r, SHOW(owned_big))->root, (size_t)(o - tm_reachability_get(r, 0)));
  ck_assert_int_eq(block_of(r, SHOW(freed_target))->reach, TM_REACH_LOST);
  /* Reachable: from a global, through an interior pointer, through a block from before. */
  ck_assert_int_eq(block_of(r, SHOW(kept_inside))->reach, TM_REACH_REACHABLE);
  ck_assert_uint_eq(block_of(r, SHOW(kept_inside))->root, SIZE_MAX);
  ck_assert_int_eq(block_of(r, SHOW(kept_global))->reach, TM_REACH_LOST); /* overwritten */
  ck_assert_int_eq(block_of(r, SHOW(kept_by_old))->reach, TM_REACH_REACHABLE);
  /* A block a paused thread allocated is not the program's: its contents are never read. */
  ck_assert_int_eq(block_of(r, SHOW(behind_paused))->reach, TM_REACH_LOST);
  /* One allocated in tm_thread_pause_scanned() is, as if allocated while not tracing. */
  ck_assert_int_eq(block_of(r, SHOW(behind_scanned_pause))->reach, TM_REACH_REACHABLE);
  ck_assert_int_eq(block_of(r, SHOW(behind_nested_pause))->reach, TM_REACH_LOST);
  size_t size, blocks;
  tm_reachability_totals(r, TM_REACH_INDIRECT, &size, &blocks);
  ck_assert_uint_eq(blocks, 5);
  tm_reachability_free(r);
  tm_stop();
}
END_TEST

/* A pointer held by the caller's live frame, and one held on the stack of another thread blocked
 * in a system call, keep their blocks reachable. */
static int pipe_fds[2];
static void *volatile thread_block;

/* The thread keeps its pointer in its stack frame (volatile), where the scan reads it: a pointer
 * held only in a register of a thread blocked in the kernel is out of its sight (docs/plugin.md). */
static void *blocked_holder(void *arg) {
  char *volatile mine = malloc(72);
  thread_block = mine;
  char c;
  ssize_t n = read(pipe_fds[0], &c, 1); /* blocked until the scan is done */
  free(mine);
  return (void *)(intptr_t)n;
}

/* A runner that calls a setup and a teardown from one frame, as Check calls a fixture: the block
 * only its own frame points to is reachable from that frame, unless the scan skips the frames
 * between the shared one and main() (runner_frames_skipped), as the Check plugin asks. */
static __attribute__((noinline)) tm_reachability *runner_setup(void) {
  tm_stack_mark_take(&mark);
  return NULL;
}

static __attribute__((noinline)) tm_reachability *runner_teardown(bool skip) {
  GError *error = NULL;
  tm_reach_options options = {.since = &mark, .runner_frames_skipped = skip};
  tm_reachability *r = tm_reachability_scan(&options, &error);
  ck_assert_msg(r != NULL, "%s", error ? error->message : "?");
  return r;
}

static __attribute__((noinline)) tm_reach runner_run(bool skip) {
  char *volatile held = malloc(48); /* this runner frame is the only holder */
  runner_setup();
  tm_reachability *r = runner_teardown(skip);
  tm_reach reach = block_of(r, held)->reach;
  tm_reachability_free(r);
  free(held);
  return reach;
}

/* A suite's own function that keeps a context on its stack and runs the runner: named like
 * Check's runner (srunner_*), the function that calls setup, test and teardown is skipped, and
 * the context's frame, which called it, is scanned. */
static void **volatile context_slots;

static __attribute__((noinline)) tm_reach srunner_probe_run(void) {
  runner_setup();
  context_slots[0] = malloc(24); /* the test stores a block in the suite's context */
  tm_reachability *r = runner_teardown(true);
  tm_reach reach = block_of(r, context_slots[0])->reach;
  tm_reachability_free(r);
  return reach;
}

static __attribute__((noinline)) tm_reach context_keeper_run(void) {
  void *volatile context[2] = {NULL, NULL};
  context_slots = (void **)context;
  tm_reach reach = srunner_probe_run();
  context_slots = NULL;
  free(context[0]);
  return reach;
}

START_TEST(test_runner_frames_skipped) {
  ck_assert_int_eq(tm_start(8), 0);
  tm_clear_traces();
  ck_assert_int_eq(runner_run(false), TM_REACH_REACHABLE);
  ck_assert_int_eq(runner_run(true), TM_REACH_LOST);
  ck_assert_int_eq(context_keeper_run(), TM_REACH_REACHABLE);
  tm_stop();
}
END_TEST

START_TEST(test_stacks_are_roots) {
  ck_assert_int_eq(tm_start(8), 0);
  tm_clear_traces();
  tm_stack_mark_take(&mark);
  char *volatile mine = malloc(33); /* this frame is live during the scan */
  ck_assert_int_eq(pipe(pipe_fds), 0);
  pthread_t t;
  ck_assert_int_eq(pthread_create(&t, NULL, blocked_holder, NULL), 0);
  while (thread_block == NULL)
    usleep(1000);
  void *theirs = thread_block;
  thread_block = NULL; /* now only the thread's stack holds it */
  usleep(20000);       /* let it block in read() */
  tm_reachability *r = scan();
  ck_assert_int_eq(block_of(r, mine)->reach, TM_REACH_REACHABLE);
  ck_assert_int_eq(block_of(r, theirs)->reach, TM_REACH_REACHABLE);
  tm_reachability_free(r);
  ck_assert_int_eq(write(pipe_fds[1], "x", 1), 1);
  pthread_join(t, NULL);
  free(mine);
  tm_stop();
}
END_TEST

/* Starts blocked_holder() on the stack [stack, stack + size) and returns the block it holds, once
 * only its frame does; blocked_holder_stop() lets it end. */
static void *blocked_holder_start(pthread_t *t, void *stack, size_t size) {
  ck_assert_int_eq(pipe(pipe_fds), 0);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  ck_assert_int_eq(pthread_attr_setstack(&attr, stack, size), 0);
  ck_assert_int_eq(pthread_create(t, &attr, blocked_holder, NULL), 0);
  pthread_attr_destroy(&attr);
  while (thread_block == NULL)
    usleep(1000);
  void *theirs = thread_block;
  thread_block = NULL;
  return theirs;
}

static void blocked_holder_stop(pthread_t t) {
  ck_assert_int_eq(write(pipe_fds[1], "x", 1), 1);
  pthread_join(t, NULL);
  close(pipe_fds[0]);
  close(pipe_fds[1]);
}

/* A thread whose stack the program allocated with malloc() (pthread_attr_setstack), blocked:
 * its stack is scanned from its stack pointer to the end of that block, not to the end of the
 * heap mapping that holds it, where freed chunks still hold the addresses of lost blocks. */
static uintptr_t behind_freed;

static __attribute__((noinline)) void leave_in_freed_chunk(void) {
  char *target = malloc(200);
  void **scratch = malloc(96 * 1024); /* below the mmap threshold: the heap, above the stack */
  for (int i = 0; i < 64; i++)
    scratch[256 + i] = target;
  behind_freed = HIDE(target);
  free(scratch);
}

START_TEST(test_heap_stack_ends_with_its_block) {
  ck_assert_int_eq(tm_start(8), 0);
  tm_clear_traces();
  tm_stack_mark_take(&mark);
  size_t size = 64 * 1024;
  void *stack = malloc(size);
  pthread_t t;
  void *theirs = blocked_holder_start(&t, stack, size);
  leave_in_freed_chunk();
  usleep(20000); /* let it block in read() */
  tm_reachability *r = scan();
  ck_assert_int_eq(block_of(r, theirs)->reach, TM_REACH_REACHABLE); /* its live frame holds it */
  ck_assert_int_eq(block_of(r, SHOW(behind_freed))->reach, TM_REACH_LOST);
  tm_reachability_free(r);
  blocked_holder_stop(t);
  free(SHOW(behind_freed));
  free(stack);
  tm_stop();
}
END_TEST

/* A thread on a stack the program mapped itself, right below a mapping of malloc()'s (a large
 * block): the kernel shows the two as one line of /proc/self/maps, and the stack must end where
 * the program's mapping ends. The large block is lost; the block it points to is lost with it,
 * not kept reachable by a scan that ran on into the large block as if it were stack. */
START_TEST(test_stack_ends_with_its_mapping) {
  ck_assert_int_eq(tm_start(8), 0);
  tm_clear_traces();
  tm_stack_mark_take(&mark);
  size_t size = 64 * 1024, big = 512 * 1024;
  void **outer = malloc(big); /* above the mmap threshold: a mapping of its own */
  char *stack = NULL;
#ifdef MAP_FIXED_NOREPLACE
  uintptr_t below = ((uintptr_t)outer & ~(uintptr_t)4095) - size;
  stack = mmap((void *)below, size, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  if (stack != (char *)below) {
    if (stack != MAP_FAILED)
      munmap(stack, size);
    stack = NULL;
  }
#endif
  if (stack == NULL) { /* the address below was taken: nothing to show here */
    free(outer);
    tm_stop();
    return;
  }
  outer[1000] = malloc(40);
  behind_freed = HIDE(outer[1000]);
  uintptr_t outer_hidden = HIDE(outer);
  outer = NULL;
  pthread_t t;
  void *theirs = blocked_holder_start(&t, stack, size);
  usleep(20000); /* let it block in read() */
  tm_reachability *r = scan();
  ck_assert_int_eq(block_of(r, theirs)->reach, TM_REACH_REACHABLE);
  ck_assert_int_eq(block_of(r, SHOW(outer_hidden))->reach, TM_REACH_LOST);
  ck_assert_int_eq(block_of(r, SHOW(behind_freed))->reach, TM_REACH_INDIRECT);
  tm_reachability_free(r);
  blocked_holder_stop(t);
  free(SHOW(behind_freed));
  free(SHOW(outer_hidden));
  munmap(stack, size);
  tm_stop();
}
END_TEST

/* Anonymous memory the program maps itself (a pool, an arena) is a root while it is mapped, and
 * only then: moved by mremap() it still is; unmapped, or replaced by a file mapping, it is not.
 * Memory reserved and never touched costs nothing. */
static uintptr_t in_pool;

/* The pool's block is larger than glibc's largest mmap threshold (32 MiB), so that it gets a
 * mapping of its own, at an address no earlier block of the process had: the frames above the
 * test (Check's, and the test's own unwritten slots) may still hold the addresses of blocks freed
 * before it started, and a heap chunk reused at one of them would look reachable through that
 * stale copy. Its pages are never touched: the scan reads zero pages. */
#define POOL_BLOCK ((size_t)33 << 20)

__attribute__((noinline)) static void **pool_fill(void **pool) {
  void *volatile p = malloc(POOL_BLOCK);
  in_pool = HIDE(p);
  pool[3] = p;
  p = NULL;
  return pool;
}

__attribute__((noinline)) static void pool_store(void *page) {
  ((void *volatile *)page)[3] = SHOW(in_pool);
}

__attribute__((noinline)) static void pool_free(void) { free(SHOW(in_pool)); }

__attribute__((noinline)) static tm_reach pool_reach(void) {
  tm_reachability *r = scan();
  tm_reach reach = block_of(r, SHOW(in_pool))->reach;
  tm_reachability_free(r);
  return reach;
}

START_TEST(test_program_maps_are_roots) {
  const size_t page = (size_t)sysconf(_SC_PAGESIZE);
  /* Every slot of this frame written before the first scan: an unwritten one would hold whatever
   * an earlier call left there, perhaps the address of a freed block that the pool's reuses. */
  char *volatile reserve = NULL, *volatile moved = NULL, *volatile file = NULL,
                 *volatile again = NULL;
  FILE *f = NULL;
  ck_assert_int_eq(tm_start(8), 0);
  tm_clear_traces();
  tm_stack_mark_take(&mark);
  /* 64 GiB reserved, one page written: the scan reads the page, not the reservation. */
  reserve = mmap(NULL, (size_t)64 << 30, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  ck_assert_ptr_ne(reserve, MAP_FAILED);
  void **pool = pool_fill((void **)(reserve + ((size_t)32 << 30)));
  ck_assert_int_eq(pool_reach(), TM_REACH_REACHABLE);
  /* Moved elsewhere by mremap(): still the program's. */
  moved = mremap(pool, page, 2 * page, MREMAP_MAYMOVE | MREMAP_FIXED, reserve + page);
  ck_assert_ptr_eq(moved, reserve + page);
  ck_assert_int_eq(pool_reach(), TM_REACH_REACHABLE);
  /* Replaced by a file mapping at the same place: its bytes are the file's. */
  f = tmpfile();
  ck_assert_ptr_nonnull(f);
  ck_assert_int_eq(ftruncate(fileno(f), (off_t)(2 * page)), 0);
  file = mmap(moved, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, fileno(f), 0);
  ck_assert_ptr_eq(file, moved);
  pool_store(file); /* the file's copy holds it: not a root */
  ck_assert_int_eq(pool_reach(), TM_REACH_LOST);
  fclose(f);
  /* Anonymous again, then unmapped. */
  again = mmap(moved, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  ck_assert_ptr_eq(again, moved);
  pool_store(again);
  ck_assert_int_eq(pool_reach(), TM_REACH_REACHABLE);
  ck_assert_int_eq(munmap(reserve, (size_t)64 << 30), 0);
  ck_assert_int_eq(pool_reach(), TM_REACH_LOST);
  /* Page after page, as a bump allocator maps them (the kernel puts each next to the last), then
   * every other one unmapped: the page that holds the pointer is a root until it goes. */
  enum { PAGES = 4000 };
  static char *pages[PAGES];
  for (int i = 0; i < PAGES; i++) {
    pages[i] = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(pages[i], MAP_FAILED);
  }
  pool_store(pages[PAGES / 2 + 1]);
  for (int i = 0; i < PAGES; i += 2)
    ck_assert_int_eq(munmap(pages[i], page), 0);
  ck_assert_int_eq(pool_reach(), TM_REACH_REACHABLE);
  for (int i = 1; i < PAGES; i += 2)
    ck_assert_int_eq(munmap(pages[i], page), 0);
  ck_assert_int_eq(pool_reach(), TM_REACH_LOST);
  pool_free();
  tm_stop();
}
END_TEST

/* The peak watch keeps the traces of the moment traced memory first passed its limit. */
START_TEST(test_peak_watch) {
  GError *error = NULL;
  ck_assert_int_eq(tm_start(4), 0);
  tm_clear_traces();
  tm_peak_watch(4096);
  char *volatile small = malloc(1000);
  ck_assert_ptr_null(tm_peak_watch_snapshot(&error));
  ck_assert_int_eq(error->code, TM_ERROR_INVALID);
  g_clear_error(&error);
  char *volatile big = malloc(8000); /* passes the limit */
  free(big);
  tm_snapshot *at = tm_peak_watch_snapshot(&error);
  ck_assert_msg(at != NULL, "%s", error ? error->message : "?");
  size_t total = 0;
  for (size_t i = 0; i < tm_snapshot_length(at); i++)
    total += tm_snapshot_get(at, i)->size;
  ck_assert_uint_eq(total, 9000); /* both blocks, as they were then */
  tm_snapshot_free(at);
  tm_peak_watch(0);
  ck_assert_ptr_null(tm_peak_watch_snapshot(NULL));
  free(small);
  tm_stop();
}
END_TEST

START_TEST(test_errors) {
  GError *error = NULL;
  tm_stop();
  ck_assert_ptr_null(tm_reachability_scan(NULL, &error)); /* not tracing */
  ck_assert_int_eq(error->code, TM_ERROR_NOT_TRACING);
  g_clear_error(&error);
  ck_assert(tm_heap_registry_is_on());
  ck_assert_ptr_null(tm_get_malloc_owner());
  ck_assert_uint_eq(tm_reachability_length(NULL), 0);
  ck_assert_ptr_null(tm_reachability_get(NULL, 0));
  size_t size = 1, blocks = 1;
  tm_reachability_totals(NULL, TM_REACH_LOST, &size, &blocks);
  ck_assert_uint_eq(size + blocks, 0);
  tm_reachability_free(NULL);
  tm_stack_mark_take(NULL);
  /* With the registry switched off the scan cannot know every block: it says so. */
  ck_assert_int_eq(tm_start(4), 0);
  tm_heap_registry_disable();
  ck_assert(!tm_heap_registry_is_on());
  ck_assert_ptr_null(tm_reachability_scan(NULL, &error));
  ck_assert_int_eq(error->code, TM_ERROR_UNSUPPORTED);
  g_clear_error(&error);
  tm_stop();
}
END_TEST

int main(void) {
  Suite *s = suite_create("reachability");
  TCase *tc = tcase_create("scan");
  tcase_add_test(tc, test_classes_and_roots);
  tcase_add_test(tc, test_stacks_are_roots);
  tcase_add_test(tc, test_heap_stack_ends_with_its_block);
  tcase_add_test(tc, test_stack_ends_with_its_mapping);
  tcase_add_test(tc, test_runner_frames_skipped);
  tcase_add_test(tc, test_program_maps_are_roots);
  tcase_add_test(tc, test_peak_watch);
  tcase_add_test(tc, test_errors); /* last: CK_FORK=no shares the process, and this one disables */
  suite_add_tcase(s, tc);
  return run_suite(s);
}
