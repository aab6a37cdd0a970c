/* flamegraph.c — `tracemalloc flamegraph`: a self-contained SVG icicle graph of live bytes.
 *
 * Icicle: the root ("all") on top and callees below their callers, each frame as wide as the live
 * bytes allocated through it. Colours are pastel hues chosen by the frame's module (the program,
 * each library), so code of one library reads as one colour; with --diff the width is the new
 * dump's bytes and the colour the change since the old one: red grew, blue shrank, white
 * unchanged, deeper for a larger change.
 *
 * Safety: every string from a dump (function, file and module names) reaches the SVG only as XML
 * text or attribute values, made valid UTF-8 without control characters and escaped; the
 * inline script reads them from the DOM (data-l: the label, data-s: the same with the file's base
 * name, which the frame shows) and never holds one as a literal.
 * Nothing is loaded from elsewhere: no network, no external file.
 *
 * The script: a click on a frame zooms on it (its callers become full-width bars above, its
 * callees fill the width below); a click on the root or "Reset zoom" undoes it. The search box
 * highlights the frames whose label contains the text (case-insensitive) and shows the share of
 * the bytes they hold, ancestors counted once. The page's fragment replays both, which is how the
 * tests drive it: file.svg#zoom=f3&search=parse clicks frame f3 and types "parse".
 *
 * Frames narrower than 0.1 px are not drawn (nor their callees): their bytes stay in their
 * callers' widths.
 */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "tool.h"

#define SVG_WIDTH 1200.0
#define SVG_MARGIN 10.0
#define FRAME_HEIGHT 18.0
#define TOP 70.0
#define MIN_WIDTH 0.1

/* A dump's string made safe for XML: valid UTF-8, control characters replaced by '?', escaped.
 * g_free(). */
static char *xml_text(const char *s) {
  char *valid = g_utf8_make_valid(s != NULL ? s : "", -1);
  for (char *p = valid; *p != '\0'; p++)
    if ((unsigned char)*p < 0x20 || *p == 0x7f)
      *p = '?';
  char *escaped = g_markup_escape_text(valid, -1);
  g_free(valid);
  return escaped;
}

/* FNV-1a of the module's base name: the hue of its frames. */
static unsigned module_hue(const tool_node *n) {
  const char *m = n->module != NULL ? n->module : n->filename;
  const char *base = m != NULL ? strrchr(m, '/') : NULL;
  base = base != NULL ? base + 1 : (m != NULL ? m : "");
  guint32 h = 2166136261u;
  for (const char *p = base; *p != '\0'; p++)
    h = (h ^ (guint8)*p) * 16777619u;
  return h % 360;
}

typedef struct svg_state {
  FILE *out;
  bool diff;
  double scale;        /* pixels per byte */
  double max_change;   /* largest |bytes - old_bytes| over nodes, for --diff */
  size_t total;        /* root bytes */
  unsigned next_id;
  size_t drawn, pruned;
  tool_progress *progress;
  size_t nnodes;
} svg_state;

/* Writes the fill of n into buf: its module's hue, or with --diff its change (red, blue, white). */
static void fill_colour(const svg_state *st, const tool_node *n, char *buf, size_t len) {
  if (st->diff) {
    double change = (double)n->bytes - (double)n->old_bytes;
    double r = st->max_change > 0 ? fabs(change) / st->max_change : 0;
    int light = (int)lround(97 - 40 * sqrt(r));
    if (change > 0)
      g_snprintf(buf, len, "hsl(0,85%%,%d%%)", light);
    else if (change < 0)
      g_snprintf(buf, len, "hsl(220,85%%,%d%%)", light);
    else
      g_snprintf(buf, len, "hsl(0,0%%,96%%)");
  } else if (n->parent == NULL || (n->flags & (TOOL_NODE_TRUNCATED | TM_FRAME_UNKNOWN))) {
    g_snprintf(buf, len, "hsl(0,0%%,82%%)");
  } else {
    g_snprintf(buf, len, "hsl(%u,60%%,%d%%)", module_hue(n),
               (n->flags & TM_FRAME_NO_DEBUG_INFO) ? 84 : 74);
  }
}

/* Stores in *max the largest |bytes - old_bytes| of n and its callees. */
static void max_change_find(const tool_node *n, double *max) {
  double c = fabs((double)n->bytes - (double)n->old_bytes);
  if (c > *max)
    *max = c;
  for (const tool_node *c2 = n->first_child; c2 != NULL; c2 = c2->next_sibling)
    max_change_find(c2, max);
}

/* Writes node n at x (pixels) and its callees. parent_id 0 for the root. */
static void node_write(svg_state *st, const tool_node *n, double x, unsigned parent_id) {
  double w = (double)n->bytes * st->scale;
  unsigned id = st->next_id++;
  double y = TOP + n->depth * FRAME_HEIGHT;
  char *label = tool_node_label(n, false), *short_label = tool_node_label(n, true);
  char *label_xml = xml_text(label), *short_xml = xml_text(short_label);
  char *size = tm_format_size((int64_t)n->bytes, false);
  char fill[48];
  fill_colour(st, n, fill, sizeof fill);
  double share = st->total > 0 ? 100.0 * (double)n->bytes / (double)st->total : 0;
  fprintf(st->out,
          "<g class=\"f\" id=\"f%u\" data-p=\"f%u\" data-d=\"%u\" data-b=\"%zu\" data-l=\"%s\" "
          "data-s=\"%s\"><title>%s&#10;%s (%zu B), %zu block%s, %.2f%%",
          id, parent_id, n->depth, n->bytes, label_xml, short_xml, label_xml, size, n->bytes, n->blocks,
          n->blocks == 1 ? "" : "s", share);
  if (st->diff) {
    char *change = tm_format_size((int64_t)n->bytes - (int64_t)n->old_bytes, true);
    char *old = tm_format_size((int64_t)n->old_bytes, false);
    fprintf(st->out, "&#10;%s since the old dump (was %s in %zu block%s)", change, old,
            n->old_blocks, n->old_blocks == 1 ? "" : "s");
    g_free(change);
    g_free(old);
  }
  /* The label drawn is cut to the width by the script at load; a first cut here keeps the file
   * readable without it. */
  size_t fit = w > 6 ? (size_t)((w - 6) / 7.2) : 0;
  char *shown;
  if (fit < 3)
    shown = g_strdup("");
  else if (g_utf8_strlen(short_label, -1) <= (glong)fit)
    shown = g_strdup(short_label);
  else {
    char *cut = g_utf8_substring(short_label, 0, (glong)fit - 2);
    shown = g_strconcat(cut, "..", NULL);
    g_free(cut);
  }
  char *shown_xml = xml_text(shown);
  fprintf(st->out,
          "</title><rect x=\"%.3f\" y=\"%.1f\" width=\"%.3f\" height=\"%.1f\" fill=\"%s\" "
          "data-x=\"%.3f\" data-w=\"%.3f\" rx=\"2\"/><text x=\"%.3f\" y=\"%.1f\">%s</text></g>\n",
          x, y, w, FRAME_HEIGHT - 1, fill, x, w, x + 3, y + FRAME_HEIGHT - 5.5, shown_xml);
  g_free(shown_xml);
  g_free(shown);
  g_free(size);
  g_free(label_xml);
  g_free(short_xml);
  g_free(label);
  g_free(short_label);
  st->drawn++;
  if ((st->drawn & 0x3ff) == 0 && st->nnodes > 0)
    tool_progress_set(st->progress, (double)st->drawn / (double)st->nnodes);

  GPtrArray *children = tool_node_children_sorted(n);
  double cx = x;
  for (guint i = 0; i < children->len; i++) {
    const tool_node *c = children->pdata[i];
    double cw = (double)c->bytes * st->scale;
    if (cw < MIN_WIDTH) {
      st->pruned++;
      continue; /* sorted by bytes: the rest are narrower, but count them all */
    }
    node_write(st, c, cx, id);
    cx += cw;
  }
  g_ptr_array_unref(children);
}

static const char svg_style[] =
    "<style>\n"
    "text{font-family:monospace;font-size:12px;fill:#000}\n"
    "g.f{cursor:pointer}\n"
    "g.f:hover rect{stroke:#000;stroke-width:0.8}\n"
    "g.f text{pointer-events:none}\n"
    "#title{font-size:17px;font-weight:bold}\n"
    "#reset{fill:#1a5fb4;cursor:pointer;display:none}\n"
    "#details,#matched{font-size:12px}\n"
    "g.anc rect{opacity:0.55}\n"
    "</style>\n";

/* The script. Plain ES5, no library, nothing fetched. */
static const char svg_script[] =
    "<script><![CDATA[\n"
    "(function () {\n"
    "  'use strict';\n"
    "  var svg = document.documentElement;\n"
    "  var W = +svg.getAttribute('data-width'), M = +svg.getAttribute('data-margin');\n"
    "  var total = +svg.getAttribute('data-total');\n"
    "  var frames = Array.prototype.slice.call(document.querySelectorAll('g.f'));\n"
    "  var byId = {};\n"
    "  frames.forEach(function (g) { byId[g.id] = g; });\n"
    "  var details = document.getElementById('details');\n"
    "  var matched = document.getElementById('matched');\n"
    "  var reset = document.getElementById('reset');\n"
    "  var search = document.getElementById('search');\n"
    "  function rect(g) { return g.getElementsByTagName('rect')[0]; }\n"
    "  function fit(g) {\n"
    "    var r = rect(g), t = g.getElementsByTagName('text')[0];\n"
    "    var w = +r.getAttribute('width'), l = g.getAttribute('data-s');\n"
    "    var n = Math.floor((w - 6) / 7.2);\n"
    "    t.setAttribute('x', (+r.getAttribute('x') + 3).toFixed(3));\n"
    "    t.textContent = n < 3 ? '' : (l.length <= n ? l : l.substring(0, n - 2) + '..');\n"
    "  }\n"
    "  function place(g, x, w) {\n"
    "    var r = rect(g);\n"
    "    r.setAttribute('x', x.toFixed(3));\n"
    "    r.setAttribute('width', w.toFixed(3));\n"
    "    g.style.display = '';\n"
    "    fit(g);\n"
    "  }\n"
    "  function unzoom() {\n"
    "    frames.forEach(function (g) {\n"
    "      var r = rect(g);\n"
    "      g.classList.remove('anc');\n"
    "      place(g, +r.getAttribute('data-x'), +r.getAttribute('data-w'));\n"
    "    });\n"
    "    svg.removeAttribute('data-zoomed');\n"
    "    reset.style.display = 'none';\n"
    "  }\n"
    "  function zoom(z) {\n"
    "    if (z.getAttribute('data-p') === 'f0') { unzoom(); return; }\n"
    "    var zr = rect(z), zx = +zr.getAttribute('data-x'), zw = +zr.getAttribute('data-w');\n"
    "    var zd = +z.getAttribute('data-d'), eps = 1e-6, scale = W / zw;\n"
    "    frames.forEach(function (g) {\n"
    "      var r = rect(g), x = +r.getAttribute('data-x'), w = +r.getAttribute('data-w');\n"
    "      var d = +g.getAttribute('data-d');\n"
    "      var inside = x >= zx - eps && x + w <= zx + zw + eps;\n"
    "      var covers = x <= zx + eps && x + w >= zx + zw - eps;\n"
    "      g.classList.remove('anc');\n"
    "      if (d < zd && covers) { g.classList.add('anc'); place(g, M, W); }\n"
    "      else if (d >= zd && inside) place(g, M + (x - zx) * scale, w * scale);\n"
    "      else g.style.display = 'none';\n"
    "    });\n"
    "    svg.setAttribute('data-zoomed', z.id);\n"
    "    reset.style.display = 'inline';\n"
    "  }\n"
    "  function find(term) {\n"
    "    term = term.toLowerCase();\n"
    "    var bytes = 0, count = 0;\n"
    "    frames.forEach(function (g) {\n"
    "      var r = rect(g), hit = term !== '' &&\n"
    "          g.getAttribute('data-l').toLowerCase().indexOf(term) >= 0;\n"
    "      if (!r.hasAttribute('data-fill')) r.setAttribute('data-fill', r.getAttribute('fill'));\n"
    "      r.setAttribute('fill', hit ? 'rgb(230,0,230)' : r.getAttribute('data-fill'));\n"
    "      if (hit) g.classList.add('match'); else g.classList.remove('match');\n"
    "    });\n"
    "    frames.forEach(function (g) {\n"
    "      if (!g.classList.contains('match')) return;\n"
    "      count++;\n"
    "      for (var p = byId[g.getAttribute('data-p')]; p; p = byId[p.getAttribute('data-p')])\n"
    "        if (p.classList.contains('match')) return;\n"
    "      bytes += +g.getAttribute('data-b');\n"
    "    });\n"
    "    matched.textContent = term === '' ? '' : 'Matched: ' + count + ' frame' +\n"
    "        (count === 1 ? '' : 's') + ', ' + (total > 0 ? (100 * bytes / total).toFixed(1) : '0.0') + '% of the bytes';\n"
    "    svg.setAttribute('data-matched-bytes', String(bytes));\n"
    "  }\n"
    "  frames.forEach(function (g) {\n"
    "    g.addEventListener('click', function () { zoom(g); });\n"
    "    g.addEventListener('mouseover', function () {\n"
    "      details.textContent = g.getElementsByTagName('title')[0].textContent.replace(/\\n/g, '  |  ');\n"
    "    });\n"
    "    g.addEventListener('mouseout', function () { details.textContent = ' '; });\n"
    "    fit(g);\n"
    "  });\n"
    "  reset.addEventListener('click', unzoom);\n"
    "  search.addEventListener('input', function () { find(search.value); });\n"
    "  document.addEventListener('keydown', function (e) {\n"
    "    if ((e.ctrlKey || e.metaKey) && e.key === 'f') { e.preventDefault(); search.focus(); }\n"
    "    if (e.key === 'Escape') { search.value = ''; find(''); unzoom(); }\n"
    "  });\n"
    "  /* file.svg#zoom=f3&search=text replays a click and a search (the tests use it). */\n"
    "  location.hash.replace(/^#/, '').split('&').forEach(function (kv) {\n"
    "    var i = kv.indexOf('='), k = kv.substring(0, i), v = decodeURIComponent(kv.substring(i + 1));\n"
    "    if (k === 'zoom' && byId[v])\n"
    "      byId[v].dispatchEvent(new MouseEvent('click', {bubbles: true}));\n"
    "    if (k === 'search') { search.value = v; search.dispatchEvent(new Event('input')); }\n"
    "  });\n"
    "})();\n"
    "]]></script>\n";

bool tool_svg_write(const tool_tree *tree, bool diff, const char *file_label, FILE *out,
                    tool_progress *progress) {
  svg_state st = {.out = out, .diff = diff, .total = tree->root->bytes, .next_id = 1,
                  .progress = progress, .nnodes = tree->nnodes + 1};
  st.scale = st.total > 0 ? SVG_WIDTH / (double)st.total : 0;
  if (diff)
    max_change_find(tree->root, &st.max_change);
  double height = TOP + (tree->max_depth + 1) * FRAME_HEIGHT + 40;
  char *total = tm_format_size((int64_t)tree->root->bytes, false);
  char *file_xml = xml_text(file_label);
  char title[256];
  if (diff)
    g_snprintf(title, sizeof title,
               "Live bytes by traceback, change since the old dump (icicle graph: callers above "
               "callees)");
  else
    g_snprintf(title, sizeof title,
               "Live bytes by traceback (icicle graph: callers above callees)");
  fprintf(out,
          "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n"
          "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%.0f\" "
          "height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" data-width=\"%.0f\" data-margin=\"%.0f\" "
          "data-total=\"%zu\">\n",
          SVG_WIDTH + 2 * SVG_MARGIN, height, SVG_WIDTH + 2 * SVG_MARGIN, height, SVG_WIDTH,
          SVG_MARGIN, tree->root->bytes);
  fputs(svg_style, out);
  fprintf(out, "<rect x=\"0\" y=\"0\" width=\"100%%\" height=\"100%%\" fill=\"#fbfbf8\"/>\n");
  fprintf(out, "<text id=\"title\" x=\"%.0f\" y=\"24\" text-anchor=\"middle\">%s</text>\n",
          (SVG_WIDTH + 2 * SVG_MARGIN) / 2, title);
  if (diff) {
    char *old = tm_format_size((int64_t)tree->root->old_bytes, false);
    char *change =
        tm_format_size((int64_t)tree->root->bytes - (int64_t)tree->root->old_bytes, true);
    fprintf(out,
            "<text id=\"subtitle\" x=\"%.0f\" y=\"44\" text-anchor=\"middle\">%s: %s in %zu "
            "blocks, %s since the old dump (%s in %zu blocks). Red grew, blue shrank.</text>\n",
            (SVG_WIDTH + 2 * SVG_MARGIN) / 2, file_xml, total, tree->root->blocks, change, old,
            tree->root->old_blocks);
    g_free(old);
    g_free(change);
  } else {
    fprintf(out,
            "<text id=\"subtitle\" x=\"%.0f\" y=\"44\" text-anchor=\"middle\">%s: %s live in %zu "
            "blocks. Width: bytes; colour: module. Click to zoom.</text>\n",
            (SVG_WIDTH + 2 * SVG_MARGIN) / 2, file_xml, total, tree->root->blocks);
  }
  fprintf(out, "<text id=\"reset\" x=\"%.0f\" y=\"24\">Reset zoom</text>\n", SVG_MARGIN);
  fprintf(out,
          "<foreignObject x=\"%.0f\" y=\"4\" width=\"190\" height=\"28\">"
          "<input xmlns=\"http://www.w3.org/1999/xhtml\" id=\"search\" type=\"search\" "
          "placeholder=\"Search (Ctrl-F)\" style=\"width:180px;font:12px monospace\"/>"
          "</foreignObject>\n",
          SVG_WIDTH + 2 * SVG_MARGIN - 200);
  fprintf(out, "<text id=\"details\" x=\"%.0f\" y=\"%.0f\"> </text>\n", SVG_MARGIN, height - 14);
  fprintf(out, "<text id=\"matched\" x=\"%.0f\" y=\"%.0f\" text-anchor=\"end\"></text>\n",
          SVG_WIDTH + SVG_MARGIN, height - 14);
  fprintf(out, "<g id=\"frames\">\n");
  node_write(&st, tree->root, SVG_MARGIN, 0);
  fprintf(out, "</g>\n");
  fputs(svg_script, out);
  fprintf(out, "</svg>\n");
  g_free(total);
  g_free(file_xml);
  return !ferror(out) && fflush(out) == 0;
}

/* See tool.h. */
int tool_flamegraph_main(int argc, char **argv) {
  char *output = NULL, *old_path = NULL;
  char **include = NULL, **exclude = NULL;
  gboolean folded = false;
  GOptionEntry entries[] = {
      {"output", 'o', 0, G_OPTION_ARG_FILENAME, &output,
       "Write the SVG to OUT (default: FILE with .svg in place of its extension; - for stdout)",
       "OUT"},
      {"diff", 'd', 0, G_OPTION_ARG_FILENAME, &old_path,
       "Colour the change since the dump OLD: red grew, blue shrank", "OLD"},
      {"folded", 'F', 0, G_OPTION_ARG_NONE, &folded,
       "Print folded stacks (flamegraph.pl, speedscope) instead of the SVG; with --diff, the "
       "old and new bytes (difffolded)",
       NULL},
      {"include", 'i', 0, G_OPTION_ARG_STRING_ARRAY, &include,
       "Keep only traces with a frame in a file matching PATTERN (repeatable)", "PATTERN"},
      {"exclude", 'x', 0, G_OPTION_ARG_STRING_ARRAY, &exclude,
       "Drop traces with a frame in a file matching PATTERN (repeatable)", "PATTERN"},
      {NULL, 0, 0, 0, NULL, NULL, NULL},
  };
  int rc = TOOL_EXIT_USAGE;
  tm_snapshot *snaps[2] = {NULL, NULL}, *filtered[2] = {NULL, NULL};
  tool_tree *tree = NULL;
  char *out_path = NULL;
  GOptionContext *ctx = g_option_context_new("FILE");
  g_option_context_set_summary(ctx, "Draws the live bytes of a dump by traceback as a "
                                    "self-contained SVG icicle graph\n(zoom, search and tooltips "
                                    "in plain inline JavaScript), or prints folded stacks.");
  g_option_context_add_main_entries(ctx, entries, NULL);
  if (!tool_parse(ctx, &argc, &argv))
    goto out;
  if (argc != 2) {
    rc = tool_fail("%s: expected one dump file, got %d (see %s --help)", g_get_prgname(),
                   argc - 1, g_get_prgname());
    goto out;
  }
  tool_view view = {.include = include, .exclude = exclude};
  const char *paths[2] = {argv[1], old_path};
  for (int i = 0; i < 2 && paths[i] != NULL; i++) {
    if ((snaps[i] = tool_snapshot_load(paths[i])) == NULL ||
        (filtered[i] = tool_view_filter(&view, snaps[i])) == NULL)
      goto out;
  }
  tool_progress *progress = tool_progress_start(folded ? "folding stacks" : "drawing");
  tree = tool_tree_build(filtered[0], filtered[1], progress);
  FILE *out = stdout;
  if (folded) {
    if (output != NULL && strcmp(output, "-") != 0)
      out_path = g_strdup(output);
  } else if (output == NULL) {
    const char *dot = strrchr(argv[1], '.'), *slash = strrchr(argv[1], '/');
    size_t stem = dot != NULL && (slash == NULL || dot > slash) ? (size_t)(dot - argv[1])
                                                                : strlen(argv[1]);
    out_path = g_strdup_printf("%.*s.svg", (int)stem, argv[1]);
  } else if (strcmp(output, "-") != 0) {
    out_path = g_strdup(output);
  }
  if (out_path != NULL && (out = fopen(out_path, "w")) == NULL) {
    tool_progress_done(progress);
    rc = tool_fail("%s: cannot write %s: %s", g_get_prgname(), out_path, g_strerror(errno));
    goto out;
  }
  char *base = g_path_get_basename(argv[1]);
  bool ok = folded ? tool_folded_write(tree, old_path != NULL, out)
                   : tool_svg_write(tree, old_path != NULL, base, out, progress);
  g_free(base);
  tool_progress_done(progress);
  if (out != stdout && fclose(out) != 0)
    ok = false;
  if (!ok) {
    rc = tool_fail("%s: cannot write %s", g_get_prgname(), out_path != NULL ? out_path : "stdout");
    goto out;
  }
  if (out_path != NULL && !folded)
    fprintf(stderr, "tracemalloc: wrote %s\n", out_path);
  rc = TOOL_EXIT_OK;
out:
  tool_tree_free(tree);
  for (int i = 0; i < 2; i++) {
    tm_snapshot_free(filtered[i]);
    tm_snapshot_free(snaps[i]);
  }
  g_free(out_path);
  g_free(output);
  g_free(old_path);
  g_strfreev(include);
  g_strfreev(exclude);
  return rc;
}
