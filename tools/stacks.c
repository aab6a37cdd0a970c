/* stacks.c — the call tree of a dump: every traceback, oldest frame first, merged on common
 * callers. A node is a frame (function, file, line, module) reached through the same path; its
 * bytes are those of every trace through it. Traces are first summed per traceback (a dump of a
 * million traces has far fewer tracebacks), then each traceback walks the tree once. */
#include <stddef.h>
#include <string.h>

#include "tool.h"

static guint str_hash0(const char *s) { return s != NULL ? g_str_hash(s) : 0; }

/* Hash of a node's key (parent, function, file, line, module, flags), strings by content. */
static guint node_hash(gconstpointer p) {
  const tool_node *n = p;
  guint h = g_direct_hash(n->parent);
  h = h * 31 + str_hash0(n->function);
  h = h * 31 + str_hash0(n->filename);
  h = h * 31 + str_hash0(n->module);
  return h * 31 + n->lineno + n->flags;
}

/* By content: two loaded dumps (--diff) hold their own copies of the same names. */
static gboolean node_equal(gconstpointer pa, gconstpointer pb) {
  const tool_node *a = pa, *b = pb;
  return a->parent == b->parent && a->lineno == b->lineno && a->flags == b->flags &&
         g_strcmp0(a->function, b->function) == 0 && g_strcmp0(a->filename, b->filename) == 0 &&
         g_strcmp0(a->module, b->module) == 0;
}

/* Returns the child of parent for frame f (creating it). */
static tool_node *child_get(tool_tree *tree, tool_node *parent, const tm_frame *f, unsigned flags) {
  tool_node probe = {.parent = parent, .flags = flags};
  if (f != NULL) {
    probe.function = f->function;
    probe.filename = f->filename;
    probe.module = f->module;
    probe.lineno = f->lineno;
  }
  tool_node *n = g_hash_table_lookup(tree->index, &probe);
  if (n != NULL)
    return n;
  n = g_new0(tool_node, 1);
  *n = probe;
  n->depth = parent->depth + 1;
  if (n->depth > tree->max_depth)
    tree->max_depth = n->depth;
  /* Appended last: children keep the order in which they first appear. */
  if (parent->last_child != NULL)
    parent->last_child->next_sibling = n;
  else
    parent->first_child = n;
  parent->last_child = n;
  g_hash_table_add(tree->index, n);
  tree->nnodes++;
  return n;
}

typedef struct tb_sum {
  size_t bytes, blocks;
} tb_sum;

/* Adds every trace of snap to the tree, as new bytes or as old bytes. */
static void snapshot_add(tool_tree *tree, tm_snapshot *snap, bool old, tool_progress *progress) {
  GHashTable *sums = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
  size_t ntraces = tm_snapshot_length(snap);
  for (size_t i = 0; i < ntraces; i++) {
    const tm_trace *t = tm_snapshot_get(snap, i);
    tb_sum *s = g_hash_table_lookup(sums, t->traceback);
    if (s == NULL) {
      s = g_new0(tb_sum, 1);
      g_hash_table_insert(sums, (gpointer)t->traceback, s);
    }
    s->bytes += t->size;
    s->blocks++;
    if ((i & 0xffff) == 0)
      tool_progress_set(progress, 0.5 * (double)i / (double)ntraces);
  }
  GHashTableIter it;
  gpointer key, value;
  size_t done = 0, total = g_hash_table_size(sums);
  g_hash_table_iter_init(&it, sums);
  while (g_hash_table_iter_next(&it, &key, &value)) {
    const tm_traceback *tb = key;
    const tb_sum *s = value;
    tool_node *node = tree->root;
    size_t n = tm_traceback_length(tb);
    bool truncated = tm_traceback_is_truncated(tb);
    /* Step -2 is the root, -1 the stand-in of lost callers (truncated only), then the frames. */
    for (ptrdiff_t i = -2; i < (ptrdiff_t)n; i++) {
      if (i == -1 && !truncated)
        continue;
      if (i == -1)
        node = child_get(tree, node, NULL, TOOL_NODE_TRUNCATED);
      if (i >= 0) {
        const tm_frame *f = tm_traceback_get(tb, (size_t)i);
        node = child_get(tree, node, f, f->flags);
      }
      if (old)
        node->old_bytes += s->bytes, node->old_blocks += s->blocks;
      else
        node->bytes += s->bytes, node->blocks += s->blocks;
    }
    if (old)
      node->old_self_bytes += s->bytes;
    else
      node->self_bytes += s->bytes, node->self_blocks += s->blocks;
    if ((++done & 0x3ff) == 0)
      tool_progress_set(progress, 0.5 + 0.5 * (double)done / (double)total);
  }
  g_hash_table_unref(sums);
}

/* See tool.h. */
tool_tree *tool_tree_build(tm_snapshot *snap, tm_snapshot *old, tool_progress *progress) {
  tool_tree *tree = g_new0(tool_tree, 1);
  tree->index = g_hash_table_new_full(node_hash, node_equal, g_free, NULL);
  tree->root = g_new0(tool_node, 1);
  snapshot_add(tree, snap, false, progress);
  if (old != NULL)
    snapshot_add(tree, old, true, progress);
  return tree;
}

/* See tool.h. */
void tool_tree_free(tool_tree *tree) {
  if (tree == NULL)
    return;
  g_hash_table_unref(tree->index); /* frees every node but the root */
  g_free(tree->root);
  g_free(tree);
}

/* Bytes descending, then old bytes, then function, file and line: a stable drawing order. */
static int children_compare(gconstpointer pa, gconstpointer pb) {
  const tool_node *a = *(tool_node *const *)pa, *b = *(tool_node *const *)pb;
  if (a->bytes != b->bytes)
    return a->bytes > b->bytes ? -1 : 1;
  if (a->old_bytes != b->old_bytes)
    return a->old_bytes > b->old_bytes ? -1 : 1;
  int c = g_strcmp0(a->function, b->function);
  if (c == 0)
    c = g_strcmp0(a->filename, b->filename);
  if (c == 0)
    c = a->lineno < b->lineno ? -1 : a->lineno > b->lineno;
  return c;
}

/* See tool.h. */
GPtrArray *tool_node_children_sorted(const tool_node *node) {
  GPtrArray *children = g_ptr_array_new();
  for (tool_node *c = node->first_child; c != NULL; c = c->next_sibling)
    g_ptr_array_add(children, c);
  g_ptr_array_sort(children, children_compare);
  return children;
}

/* See tool.h. */
char *tool_node_label(const tool_node *node, bool short_name) {
  if (node->parent == NULL)
    return g_strdup("all");
  if (node->flags & TOOL_NODE_TRUNCATED)
    return g_strdup("[truncated]");
  if (node->flags & TM_FRAME_UNKNOWN)
    return g_strdup(node->function != NULL ? node->function : "<unknown>");
  const char *function = node->function != NULL ? node->function : "??";
  const char *file = node->filename;
  const char *slash = short_name ? strrchr(file, '/') : NULL;
  if (slash != NULL && slash[1] != '\0')
    file = slash + 1;
  if ((node->flags & TM_FRAME_NO_DEBUG_INFO) || node->lineno == 0)
    return g_strdup_printf("%s (%s)", function, file);
  return g_strdup_printf("%s (%s:%u)", function, file, node->lineno);
}
