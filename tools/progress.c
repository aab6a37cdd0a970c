/* progress.c — a progress line for slow reads and drawings, only on a terminal.
 *
 * A thread wakes every 250 ms; after the first second it rewrites "tracemalloc: <what>... 42%"
 * (or "... 3 s" when the work gives no fraction) on stderr with a carriage return, and
 * tool_progress_done() erases the line. When stderr is not a terminal nothing is started.
 * TRACEMALLOC_PROGRESS_AFTER_MS changes the first second (0 shows the line at once: the tests use
 * it to see the line on a pseudo-terminal without a slow dump).
 */
#include <unistd.h>

#include "tool.h"

struct tool_progress {
  GThread *thread;
  GMutex lock;
  GCond cond;
  bool done;
  bool shown;
  double fraction;
  char *what;
  gint64 start;
  gint64 after; /* microseconds before the line shows */
};

/* Writes the line. Under p->lock. */
static void progress_show(tool_progress *p, gint64 elapsed) {
  if (p->fraction >= 0)
    fprintf(stderr, "\rtracemalloc: %s... %3.0f%%  ", p->what, 100 * p->fraction);
  else
    fprintf(stderr, "\rtracemalloc: %s... %.0f s  ", p->what, (double)elapsed / G_TIME_SPAN_SECOND);
  fflush(stderr);
  p->shown = true;
}

/* The progress thread: shows the line once p->after has passed, erases it when done. */
static gpointer progress_main(gpointer data) {
  tool_progress *p = data;
  g_mutex_lock(&p->lock);
  if (p->after == 0)
    progress_show(p, 0);
  while (!p->done) {
    gint64 deadline = g_get_monotonic_time() + 250 * G_TIME_SPAN_MILLISECOND;
    g_cond_wait_until(&p->cond, &p->lock, deadline);
    gint64 elapsed = g_get_monotonic_time() - p->start;
    if (!p->done && elapsed >= p->after)
      progress_show(p, elapsed);
  }
  if (p->shown) {
    fprintf(stderr, "\r\033[K");
    fflush(stderr);
  }
  g_mutex_unlock(&p->lock);
  return NULL;
}

/* See tool.h. */
tool_progress *tool_progress_start(const char *what) {
  tool_progress *p = g_new0(tool_progress, 1);
  g_mutex_init(&p->lock);
  g_cond_init(&p->cond);
  p->fraction = -1;
  p->what = g_strdup(what);
  p->start = g_get_monotonic_time();
  const char *after = g_getenv("TRACEMALLOC_PROGRESS_AFTER_MS");
  p->after = after != NULL && after[0] != '\0' ? g_ascii_strtoll(after, NULL, 10) * 1000
                                              : G_TIME_SPAN_SECOND;
  if (isatty(STDERR_FILENO))
    p->thread = g_thread_new("progress", progress_main, p);
  return p;
}

/* See tool.h. */
void tool_progress_set(tool_progress *p, double fraction) {
  if (p == NULL || p->thread == NULL)
    return;
  g_mutex_lock(&p->lock);
  p->fraction = fraction;
  g_mutex_unlock(&p->lock);
}

/* See tool.h. */
void tool_progress_done(tool_progress *p) {
  if (p == NULL)
    return;
  if (p->thread != NULL) {
    g_mutex_lock(&p->lock);
    p->done = true;
    g_cond_signal(&p->cond);
    g_mutex_unlock(&p->lock);
    g_thread_join(p->thread);
  }
  g_mutex_clear(&p->lock);
  g_cond_clear(&p->cond);
  g_free(p->what);
  g_free(p);
}

/* See tool.h. */
tm_snapshot *tool_snapshot_load(const char *path) {
  GError *error = NULL;
  char *what = g_strdup_printf("reading %s", path);
  tool_progress *p = tool_progress_start(what);
  tm_snapshot *snap = tm_snapshot_load(path, &error);
  tool_progress_done(p);
  g_free(what);
  if (snap == NULL) {
    tool_fail("%s", error->message);
    g_error_free(error);
  }
  return snap;
}
