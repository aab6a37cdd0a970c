/* test_tool_flamegraph.c — `tracemalloc flamegraph` on dumps of known shape (hand_dumps.h): the
 * SVG is well-formed XML, every frame is as wide as its bytes and its callees fill it, labels and
 * tooltips, escaping of hostile names, colours by module and by change, folded stacks. */
#include <stdbool.h>
#include <math.h>
#include <stdio.h>

#include "hand_dumps.h"
#include "run_suite.h"
#include "svg_frames.h"
#include "tool_harness.h"

static const char *tool;

#define WIDTH 1200.0
#define TOTAL 13000.0

/* Runs the command with args after "flamegraph"; asserts status 0; returns stdout. */
static char *flamegraph(const char *const *args) {
  const char *argv[16] = {tool, "flamegraph"};
  int n = 2;
  for (; *args != NULL; args++)
    argv[n++] = *args;
  argv[n] = NULL;
  tool_run r = tool_spawn(NULL, argv);
  ck_assert_msg(r.status == 0, "status %d: %s", r.status, r.err);
  g_free(r.err);
  return r.out;
}

static svg_doc *svg_of(const char *dir, const char *old) {
  char *dump = g_build_filename(dir, "new.dump", NULL), *svg = g_build_filename(dir, "out.svg", NULL);
  char *old_dump = old != NULL ? g_build_filename(dir, old, NULL) : NULL;
  const char *args[] = {dump, "-o", svg, old != NULL ? "--diff" : NULL, old_dump, NULL};
  g_free(flamegraph(args));
  char *text = NULL;
  GError *error = NULL;
  ck_assert(g_file_get_contents(svg, &text, NULL, NULL));
  svg_doc *doc = svg_doc_parse(text, &error);
  ck_assert_msg(doc != NULL, "not XML: %s", error != NULL ? error->message : "");
  /* Only our script: the hostile names are escaped. */
  ck_assert_int_eq(doc->scripts, 1);
  ck_assert_ptr_null(strstr(text, "<script>alert"));
  ck_assert_ptr_null(strstr(text, "href=\"x\""));
  g_free(text);
  g_free(dump);
  g_free(svg);
  g_free(old_dump);
  return doc;
}

static const svg_frame *frame(const svg_doc *doc, const char *label) {
  const svg_frame *f = svg_doc_find(doc, label);
  ck_assert_msg(f != NULL, "no frame '%s'", label);
  return f;
}

START_TEST(test_svg_widths) {
  char *dir = tool_tmpdir();
  hand_dumps_write(dir);
  svg_doc *doc = svg_of(dir, NULL);
  ck_assert_uint_eq(doc->total, 13000);
  ck_assert_uint_eq(doc->frames->len, 12);
  const svg_frame *root = frame(doc, "all");
  ck_assert_double_eq_tol(root->width, WIDTH, 1e-3);
  ck_assert_double_eq_tol(root->x, 10, 1e-3);
  for (guint i = 0; i < doc->frames->len; i++) {
    const svg_frame *f = doc->frames->pdata[i];
    ck_assert_double_eq_tol(f->width, f->bytes * WIDTH / TOTAL, 2e-3);
    /* Callees side by side from the caller's left edge, filling it (no frame here has bytes of
     * its own but the leaves). */
    double sum = 0, next = f->x;
    guint children = 0;
    for (guint j = 0; j < doc->frames->len; j++) {
      const svg_frame *c = doc->frames->pdata[j];
      if (g_strcmp0(c->parent, f->id) != 0)
        continue;
      ck_assert_uint_eq(c->depth, f->depth + 1);
      ck_assert_double_eq_tol(c->x, next, 2e-3);
      next += c->width;
      sum += c->width;
      children++;
    }
    if (children > 0)
      ck_assert_msg(fabs(sum - f->width) < 5e-3, "%s: children %f, frame %f", f->label, sum,
                    f->width);
  }
  /* Labels, short labels, tooltips. */
  const svg_frame *leaf = frame(doc, "alloc_node (/src/parse.c:30)");
  ck_assert_str_eq(leaf->short_label, "alloc_node (parse.c:30)");
  ck_assert_str_eq(leaf->title, "alloc_node (/src/parse.c:30)\n4000 B (4000 B), 4 blocks, 30.77%");
  ck_assert_uint_eq(leaf->depth, 3);
  const svg_frame *glib = frame(doc, "g_malloc (libglib-2.0.so.0)");
  ck_assert_str_eq(glib->title, "g_malloc (libglib-2.0.so.0)\n6000 B (6000 B), 2 blocks, 46.15%");
  ck_assert_str_eq(frame(doc, "all")->title, "all\n12.7 KiB (13000 B), 9 blocks, 100.00%");
  frame(doc, "[truncated]");
  ck_assert_str_eq(frame(doc, "deep (/src/deep.c:1)")->parent, frame(doc, "[truncated]")->id);
  /* Hostile names round-trip through the XML escaping; bad bytes become visible stand-ins. */
  frame(doc, HAND_HOSTILE_FUNCTION " (/src/" HAND_HOSTILE_FILE ":5)");
  frame(doc, "bad?name\xef\xbf\xbd (/src/prog.c:40)");
  /* Colours: one hue per module. */
  const svg_frame *parse = frame(doc, "parse (/src/parse.c:20)");
  ck_assert_str_eq(leaf->fill, parse->fill);
  ck_assert_str_ne(glib->fill, parse->fill);
  ck_assert_str_eq(root->fill, "hsl(0,0%,82%)");
  /* What a frame shows fits it: the full label, or a cut one ending with "..". */
  ck_assert_str_eq(leaf->text, "alloc_node (parse.c:30)");
  ck_assert_str_eq(frame(doc, "deep (/src/deep.c:1)")->text, "dee..");
  svg_doc_free(doc);
  tool_rmdir(dir);
  g_free(dir);
}
END_TEST

START_TEST(test_svg_diff) {
  char *dir = tool_tmpdir();
  hand_dumps_write(dir);
  svg_doc *doc = svg_of(dir, "old.dump");
  const svg_frame *grew = frame(doc, "alloc_node (/src/parse.c:30)");
  const svg_frame *shrank = frame(doc, "g_malloc (libglib-2.0.so.0)");
  const svg_frame *same = frame(doc, HAND_HOSTILE_FUNCTION " (/src/" HAND_HOSTILE_FILE ":5)");
  ck_assert_msg(g_str_has_prefix(grew->fill, "hsl(0,85%,"), "%s", grew->fill);
  ck_assert_msg(g_str_has_prefix(shrank->fill, "hsl(220,85%,"), "%s", shrank->fill);
  ck_assert_str_eq(same->fill, "hsl(0,0%,96%)");
  ck_assert_str_eq(grew->title, "alloc_node (/src/parse.c:30)\n4000 B (4000 B), 4 blocks, 30.77%\n"
                                "+2000 B since the old dump (was 2000 B in 2 blocks)");
  /* Widths are the new dump's bytes. */
  ck_assert_double_eq_tol(grew->width, 4000 * WIDTH / TOTAL, 2e-3);
  svg_doc_free(doc);
  tool_rmdir(dir);
  g_free(dir);
}
END_TEST

START_TEST(test_folded) {
  char *dir = tool_tmpdir();
  hand_dumps_write(dir);
  char *dump = g_build_filename(dir, "new.dump", NULL), *old = g_build_filename(dir, "old.dump", NULL);
  const char *args[] = {dump, "--folded", NULL};
  char *out = flamegraph(args);
  ck_assert_str_eq(out,
                   "main (/src/prog.c:10);parse (/src/parse.c:21);g_malloc (libglib-2.0.so.0) 6000\n"
                   "main (/src/prog.c:10);parse (/src/parse.c:20);alloc_node (/src/parse.c:30) 4000\n"
                   "main (/src/prog.c:11);" HAND_HOSTILE_FUNCTION " (/src/" HAND_HOSTILE_FILE
                   ":5) 2000\n"
                   "[truncated];deep (/src/deep.c:1) 500\n"
                   "main (/src/prog.c:12);bad?name\xef\xbf\xbd (/src/prog.c:40) 500\n");
  g_free(out);
  const char *diff_args[] = {dump, "--folded", "--diff", old, "--include", "*parse.c", NULL};
  out = flamegraph(diff_args);
  ck_assert_str_eq(out,
                   "main (/src/prog.c:10);parse (/src/parse.c:21);g_malloc (libglib-2.0.so.0) 9000 6000\n"
                   "main (/src/prog.c:10);parse (/src/parse.c:20);alloc_node (/src/parse.c:30) 2000 4000\n");
  g_free(out);
  g_free(dump);
  g_free(old);
  tool_rmdir(dir);
  g_free(dir);
}
END_TEST

int main(void) {
  tool = getenv("TRACEMALLOC_TOOL");
  if (tool == NULL) {
    fprintf(stderr, "TRACEMALLOC_TOOL must be set (meson test does)\n");
    return 99;
  }
  Suite *s = suite_create("tool_flamegraph");
  TCase *tc = tcase_create("flamegraph");
  tcase_add_test(tc, test_svg_widths);
  tcase_add_test(tc, test_svg_diff);
  tcase_add_test(tc, test_folded);
  suite_add_tcase(s, tc);
  return run_suite(s);
}
