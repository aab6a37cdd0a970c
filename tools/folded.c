/* folded.c — `flamegraph --folded`: one line per stack, the form flamegraph.pl, inferno and
 * speedscope read:
 *
 *   main (prog.c:30);parse (prog.c:12);g_malloc (libglib-2.0.so.0) 4096
 *
 * Frames oldest first, separated by ';', then the live bytes allocated by that exact stack (the
 * node's self bytes). With --diff the line ends with the old and the new bytes, difffolded.pl's
 * form ("stack OLD NEW"), which flamegraph.pl draws as a differential graph. A ';' inside a label
 * (a strange file name) becomes '_' and a control character '?', so that the line keeps its
 * structure; bytes that are not UTF-8 become U+FFFD.
 */
#include <string.h>

#include "tool.h"

/* Appends the node's label to path, sanitized. */
static void label_append(GString *path, const tool_node *node) {
  char *raw = tool_node_label(node, false);
  char *label = g_utf8_make_valid(raw, -1);
  g_free(raw);
  for (char *p = label; *p != '\0'; p++)
    if (*p == ';')
      *p = '_';
    else if ((unsigned char)*p < 0x20 || *p == 0x7f)
      *p = '?';
  if (path->len > 0)
    g_string_append_c(path, ';');
  g_string_append(path, label);
  g_free(label);
}

/* Writes the lines of node and its callees; path holds the callers' labels. Returns false on a
 * write error. */
static bool node_write(const tool_node *node, GString *path, bool diff, FILE *out) {
  size_t len = path->len;
  if (node->parent != NULL)
    label_append(path, node);
  if (node->parent != NULL) {
    if (diff && (node->self_bytes > 0 || node->old_self_bytes > 0))
      fprintf(out, "%s %zu %zu\n", path->str, node->old_self_bytes, node->self_bytes);
    else if (!diff && node->self_bytes > 0)
      fprintf(out, "%s %zu\n", path->str, node->self_bytes);
  }
  GPtrArray *children = tool_node_children_sorted(node);
  bool ok = true;
  for (guint i = 0; i < children->len && ok; i++)
    ok = node_write(children->pdata[i], path, diff, out);
  g_ptr_array_unref(children);
  g_string_truncate(path, len);
  return ok && !ferror(out);
}

/* See tool.h. */
bool tool_folded_write(const tool_tree *tree, bool diff, FILE *out) {
  GString *path = g_string_new(NULL);
  bool ok = node_write(tree->root, path, diff, out);
  g_string_free(path, true);
  return ok && fflush(out) == 0;
}
