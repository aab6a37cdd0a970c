/* make_corpus.c — writes the fuzzer's seed corpus into the directory given as argument: valid
 * dumps (hand-built with every frame kind, empty, and a live snapshot of this program) and
 * copies of one cut inside each section. Run by hand when the format changes:
 *   ninja -C build tests/fuzz/fuzz_make_corpus
 *   build/tests/fuzz/fuzz_make_corpus tests/fuzz/corpus
 */
#include <stdio.h>
#include <stdlib.h>

#include "model.h"

static void dump_or_die(tm_snapshot *snap, const char *dir, const char *name) {
  GError *err = NULL;
  char *path = g_build_filename(dir, name, NULL);
  if (!tm_snapshot_dump(snap, path, &err)) {
    fprintf(stderr, "%s\n", err->message);
    exit(1);
  }
  g_free(path);
}

/* Writes the first len bytes of the file src as dst. */
static void cut(const char *dir, const char *src, const char *dst, size_t len) {
  char *ps = g_build_filename(dir, src, NULL), *pd = g_build_filename(dir, dst, NULL);
  gchar *data;
  gsize n;
  if (!g_file_get_contents(ps, &data, &n, NULL) || len > n ||
      !g_file_set_contents(pd, data, (gssize)len, NULL))
    exit(1);
  g_free(data);
  g_free(ps);
  g_free(pd);
}

static tm_snapshot *hand_snapshot(void) {
  const tm_frame f1[] = {
      {.filename = "b.c", .lineno = 4, .function = "main", .module = "/bin/prog"},
      {.filename = "a.c", .lineno = 2, .function = "helper", .module = "/bin/prog",
       .flags = TM_FRAME_INLINED},
  };
  const tm_frame f2[] = {
      {.filename = "b.c", .lineno = 4, .function = "main", .module = "/bin/prog"},
      {.filename = "libglib-2.0.so.0", .function = "g_malloc",
       .module = "/usr/lib/libglib-2.0.so.0", .flags = TM_FRAME_NO_DEBUG_INFO},
  };
  const tm_frame f3[] = {{.filename = "<unknown>", .flags = TM_FRAME_UNKNOWN}};
  tm_traceback *tbs[] = {tm__traceback_new_frames(f1, 2, 2, false),
                         tm__traceback_new_frames(f2, 2, 30, true),
                         tm__traceback_new_frames(f3, 1, 1, false)};
  tm_snapshot *s = tm__snapshot_new(2);
  tm__snapshot_add(s, 0, 10, tbs[0]);
  tm__snapshot_add(s, 0, 10, tbs[0]);
  tm__snapshot_add(s, 1, 2, tbs[1]);
  tm__snapshot_add(s, 2, 66, tbs[2]);
  tm__snapshot_add(s, 3, 5000, tbs[1]);
  for (size_t i = 0; i < G_N_ELEMENTS(tbs); i++)
    tm_traceback_free(tbs[i]);
  return s;
}

/* What a hostile dump names: files that are not the program's (read only under a source root),
 * '..' paths, huge or special files, and control characters that would drive a terminal. */
static tm_snapshot *hostile_names_snapshot(void) {
  const tm_frame f[] = {
      {.filename = "/etc/shadow", .lineno = 1, .function = "secret"},
      {.filename = "../../../../etc/passwd", .lineno = 1, .function = "dotdot"},
      {.filename = "/dev/zero", .lineno = 1, .function = "endless"},
      {.filename = "/proc/self/mem", .lineno = 1, .function = "memory"},
      {.filename = "evil\x1b[2J\x1b]0;title\x07\nFile \"forged.c\", line 1", .lineno = 7,
       .function = "f\r\x9b\xc2\x9b\xff\xfe", .module = "\x1b[31mred"},
  };
  tm_traceback *tb = tm__traceback_new_frames(f, G_N_ELEMENTS(f), 9, true);
  tm_snapshot *s = tm__snapshot_new(5);
  tm__snapshot_add(s, 0, 64, tb);
  tm__snapshot_add(s, 7, 1, tb);
  tm_traceback_free(tb);
  return s;
}

/* Many distinct strings: a dump whose loading interns a lot. */
static tm_snapshot *many_strings_snapshot(void) {
  tm_snapshot *s = tm__snapshot_new(1);
  for (int i = 0; i < 500; i++) {
    char file[64], fn[64];
    snprintf(file, sizeof file, "/src/dir%d/file%d.c", i % 37, i);
    snprintf(fn, sizeof fn, "function_%d", i);
    tm_frame f = {.filename = file, .lineno = (unsigned)i + 1, .function = fn};
    tm_traceback *tb = tm__traceback_new_frames(&f, 1, 1, false);
    tm__snapshot_add(s, 0, (size_t)i + 1, tb);
    tm_traceback_free(tb);
  }
  return s;
}

static void *blocks[8];

static __attribute__((noinline)) void allocate(void) {
  for (int i = 0; i < 8; i++)
    blocks[i] = malloc(16 << i);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  const char *dir = argv[1];
  tm_snapshot *s = hand_snapshot();
  dump_or_die(s, dir, "hand.dump");
  tm_snapshot_free(s);
  s = tm__snapshot_new(1);
  dump_or_die(s, dir, "empty.dump");
  tm_snapshot_free(s);
  s = hostile_names_snapshot();
  dump_or_die(s, dir, "hostile-names.dump");
  tm_snapshot_free(s);
  s = many_strings_snapshot();
  dump_or_die(s, dir, "many-strings.dump");
  tm_snapshot_free(s);
  tm_start(4);
  allocate();
  s = tm_take_snapshot(NULL);
  tm_stop();
  dump_or_die(s, dir, "live.dump");
  tm_snapshot_free(s);
  for (int i = 0; i < 8; i++)
    free(blocks[i]); /* also keeps the compiler from dropping the allocations */
  /* hand.dump: header 0..39, strings from 40, tracebacks, traces in the last 5 * 16 bytes. */
  cut(dir, "hand.dump", "cut-header.dump", 20);
  cut(dir, "hand.dump", "cut-strings.dump", 50);
  cut(dir, "hand.dump", "cut-traceback.dump", 150);
  cut(dir, "empty.dump", "cut-empty.dump", 39);
  return 0;
}
