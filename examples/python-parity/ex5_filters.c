/* ex5_filters.c — Example 5 of the tutorial: DomainFilter and Filter.
 *
 *   tm.start(10)
 *   listTwo = [i*i for i in range(15000)]
 *   listOne = [i for i in range(15000)]
 *   listThree = [i*i*i for i in range(15000)]
 *   listFour = [i*2 for i in range(15000)]
 *   listFive = np.random.randint(1, 150, (1500, ))
 *   ss = tm.take_snapshot()                         # The Original Snapshot
 *   ss.filter_traces([tm.DomainFilter(True, 0)])    # One: the malloc domain only
 *   ss.filter_traces([tm.DomainFilter(False, 0)])   # Two: everything else (numpy's own domain)
 *   ss.filter_traces([tm.Filter(True, "tracFive.py")])   # Three: empty, see below
 *   ss.filter_traces([tm.Filter(False, "tracFive.py")])  # Four: everything
 *
 * numpy tracks its array data in a domain of its own (PyTraceMalloc_Track); here a small arena
 * allocator does the same with tm_track(), so DomainFilter has something to separate. As in
 * Python, a pattern without its directory matches no file: file names are full paths, and
 * fnmatch must match the whole name.
 */
#include <sys/mman.h>

#include "parity.h"

/* The domain our "numpy" uses for its arrays (numpy's is 389047). */
#define ARRAY_DOMAIN 389047u

/* An array from an mmap()ed arena, tracked in ARRAY_DOMAIN, plus its small descriptor from
 * malloc, as numpy allocates an array object and its data. */
typedef struct array {
  size_t len;
  int *data;
} array;

/* noinline: GCC would otherwise see the malloc() and free() of the descriptor in main() and drop
 * both, as it may. */
static __attribute__((noinline)) array *random_array(size_t len, int lo, int hi) {
  array *a = malloc(sizeof(*a));
  a->len = len;
  a->data = mmap(NULL, len * sizeof(int), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                 -1, 0);
  tm_track(ARRAY_DOMAIN, (uintptr_t)a->data, len * sizeof(int));
  for (size_t i = 0; i < len; i++)
    a->data[i] = g_random_int_range(lo, hi);
  return a;
}

static __attribute__((noinline)) void array_free(array *a) {
  tm_untrack(ARRAY_DOMAIN, (uintptr_t)a->data);
  munmap(a->data, a->len * sizeof(int));
  free(a);
}

static void print_filtered(tm_snapshot *ss, const char *title, tm_filter *filter) {
  GError *err = NULL;
  tm_snapshot *snap_shot = tm_snapshot_filter_traces(ss, &filter, 1, &err);
  die_on_error(err);
  printf("\n========= Filtered Snapshot - %s =============\n", title);
  print_statistics(snap_shot, TM_KEY_LINENO);
  tm_snapshot_free(snap_shot);
  tm_filter_free(filter);
}

int main(void) {
  tm_start(10);

  box **list_two = LIST(15000, n * n);
  box **list_one = LIST(15000, n);
  box **list_three = LIST(15000, n * n * n);
  box **list_four = LIST(15000, n * 2);
  array *list_five = random_array(1500, 1, 150);

  GError *err = NULL;
  tm_snapshot *ss = tm_take_snapshot(&err);
  die_on_error(err);

  printf("========== The Original Snapshot ===========\n");
  print_statistics(ss, TM_KEY_LINENO);

  print_filtered(ss, "One", tm_domain_filter_new(true, 0));
  print_filtered(ss, "Two", tm_domain_filter_new(false, 0));
  tm_filter *filter_ss = tm_filter_new(true, "ex5_filters.c", 0, false, -1, &err);
  die_on_error(err);
  print_filtered(ss, "Three", filter_ss);
  filter_ss = tm_filter_new(false, "ex5_filters.c", 0, false, -1, &err);
  die_on_error(err);
  print_filtered(ss, "Four", filter_ss);

  tm_snapshot_free(ss);
  array_free(list_five);
  list_free(list_one, 15000);
  list_free(list_two, 15000);
  list_free(list_three, 15000);
  list_free(list_four, 15000);
  return 0;
}
