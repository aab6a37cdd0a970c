/* ex2_traceback.c — Example 2 of the tutorial: Traceback.format() and the module's helpers
 * (get_traceback_limit, get_object_traceback, get_traced_memory, get_tracemalloc_memory,
 * is_tracing).
 *
 *   tm.start(25)
 *   listOne = [n for n in range(15000)]
 *   listTwo = [n*n for n in range(15000)]
 *   listThree = [n*n*n for n in range(15000)]
 *   listFour = np.random.randint(1, 150, (1500,))
 *   ss = tm.take_snapshot()
 *   for stats in ss.statistics("lineno"):
 *       print(stats)
 *       print(stats.traceback.format())
 *   ...
 *
 * numpy's randint becomes a GLib array of 1500 random ints: a library allocating on our behalf.
 */
#include "parity.h"

int main(void) {
  tm_start(25);

  box **list_one = LIST(15000, n);
  box **list_two = LIST(15000, n * n);
  box **list_three = LIST(15000, n * n * n);
  GArray *list_four = g_array_sized_new(FALSE, FALSE, sizeof(gint32), 1500);
  for (int i = 0; i < 1500; i++)
    g_array_append_val(list_four, (gint32){g_random_int_range(1, 150)});

  GError *err = NULL;
  tm_snapshot *ss = tm_take_snapshot(&err);
  die_on_error(err);

  printf("========== THE SNAPSHOT =============\n");
  tm_statistics *stats = tm_snapshot_statistics(ss, TM_KEY_LINENO, false, &err);
  die_on_error(err);
  for (size_t i = 0; i < tm_statistics_length(stats); i++) {
    const tm_statistic *stat = tm_statistics_get(stats, i);
    char *line = tm_statistic_format(stat);
    printf("%s\n", line);
    g_free(line);
    print_lines_list(tm_traceback_format(stat->traceback, 0, false));
  }
  tm_statistics_free(stats);

  printf("\n=========== USEFUL METHODS ===========\n");
  printf("\nTraceback Limit :  %d  Frames\n", tm_get_traceback_limit());

  /* Python prints str(traceback), its oldest frame, which for module-level code is the line that
   * allocated. A C stack starts in libc, and the block was allocated inside GLib: print the most
   * recent frame with a source line, the line of this file that asked GLib for it. */
  tm_traceback *tb = tm_get_object_traceback(list_four->data);
  const tm_frame *site = NULL;
  for (size_t i = tm_traceback_length(tb); i > 0 && site == NULL; i--) {
    const tm_frame *f = tm_traceback_get(tb, i - 1);
    if (!(f->flags & (TM_FRAME_NO_DEBUG_INFO | TM_FRAME_UNKNOWN)))
      site = f;
  }
  if (site != NULL)
    printf("\nAllocation Location for List l4 :  %s:%u\n", site->filename, site->lineno);
  else
    printf("\nAllocation Location for List l4 :  None\n");
  tm_traceback_free(tb);

  size_t current, peak;
  tm_get_traced_memory(&current, &peak);
  printf("\nTraced Memory (Current, Peak):  (%zu, %zu)\n", current, peak);

  printf("\nMemory Usage by tracemalloc Module :  %zu  bytes\n", tm_get_tracemalloc_memory());

  printf("\nTracing Status :  %s\n", tm_is_tracing() ? "True" : "False");

  tm_snapshot_free(ss);
  g_array_free(list_four, TRUE);
  list_free(list_one, 15000);
  list_free(list_two, 15000);
  list_free(list_three, 15000);
  return 0;
}
