/* svg_frames.h — reads the frames of a `tracemalloc flamegraph` SVG with GMarkup (which also
 * proves the file well-formed XML): each <g class="f"> with its rect. */
#ifndef TM_SVG_FRAMES_H
#define TM_SVG_FRAMES_H

#include <glib.h>
#include <stdlib.h>
#include <string.h>

typedef struct svg_frame {
  char *id, *parent, *label, *short_label, *klass, *style, *fill, *title, *text;
  unsigned depth;
  size_t bytes;
  double x, width;
} svg_frame;

typedef struct svg_doc {
  GPtrArray *frames;     /* of svg_frame*, in document order */
  GHashTable *by_id;     /* id => svg_frame* */
  char *zoomed;          /* the root's data-zoomed, or NULL */
  char *matched_bytes;   /* the root's data-matched-bytes, or NULL */
  char *matched_text;    /* text of #matched */
  size_t total;          /* the root's data-total */
  int scripts;           /* <script> elements */
} svg_doc;

typedef struct svg_parse {
  svg_doc *doc;
  svg_frame *cur;   /* inside a frame's <g> */
  int in;           /* 1 title, 2 text, 3 #matched */
} svg_parse;

static inline const char *svg_attr(const char **names, const char **values, const char *name) {
  for (int i = 0; names[i] != NULL; i++)
    if (strcmp(names[i], name) == 0)
      return values[i];
  return NULL;
}

static inline void svg_start(GMarkupParseContext *ctx, const char *element, const char **names,
                             const char **values, gpointer data, GError **error) {
  svg_parse *p = data;
  const char *klass = svg_attr(names, values, "class");
  if (strcmp(element, "svg") == 0) {
    const char *t = svg_attr(names, values, "data-total");
    p->doc->total = t != NULL ? strtoull(t, NULL, 10) : 0;
    p->doc->zoomed = g_strdup(svg_attr(names, values, "data-zoomed"));
    p->doc->matched_bytes = g_strdup(svg_attr(names, values, "data-matched-bytes"));
  } else if (strcmp(element, "script") == 0) {
    p->doc->scripts++;
  } else if (strcmp(element, "g") == 0 && klass != NULL && strncmp(klass, "f", 1) == 0 &&
             (klass[1] == '\0' || klass[1] == ' ')) {
    svg_frame *f = g_new0(svg_frame, 1);
    f->id = g_strdup(svg_attr(names, values, "id"));
    f->parent = g_strdup(svg_attr(names, values, "data-p"));
    f->label = g_strdup(svg_attr(names, values, "data-l"));
    f->short_label = g_strdup(svg_attr(names, values, "data-s"));
    f->klass = g_strdup(klass);
    f->style = g_strdup(svg_attr(names, values, "style"));
    const char *d = svg_attr(names, values, "data-d"), *b = svg_attr(names, values, "data-b");
    f->depth = d != NULL ? (unsigned)atoi(d) : 0;
    f->bytes = b != NULL ? strtoull(b, NULL, 10) : 0;
    f->title = g_strdup("");
    f->text = g_strdup("");
    g_ptr_array_add(p->doc->frames, f);
    if (f->id != NULL)
      g_hash_table_insert(p->doc->by_id, f->id, f);
    p->cur = f;
  } else if (p->cur != NULL && strcmp(element, "rect") == 0) {
    const char *x = svg_attr(names, values, "x"), *w = svg_attr(names, values, "width");
    p->cur->x = x != NULL ? g_ascii_strtod(x, NULL) : -1;
    p->cur->width = w != NULL ? g_ascii_strtod(w, NULL) : -1;
    p->cur->fill = g_strdup(svg_attr(names, values, "fill"));
  } else if (p->cur != NULL && strcmp(element, "title") == 0) {
    p->in = 1;
  } else if (p->cur != NULL && strcmp(element, "text") == 0) {
    p->in = 2;
  } else if (strcmp(element, "text") == 0 && g_strcmp0(svg_attr(names, values, "id"), "matched") == 0) {
    p->in = 3;
  }
}

static inline void svg_end(GMarkupParseContext *ctx, const char *element, gpointer data,
                           GError **error) {
  svg_parse *p = data;
  if (strcmp(element, "g") == 0)
    p->cur = NULL;
  if (strcmp(element, "title") == 0 || strcmp(element, "text") == 0)
    p->in = 0;
}

static inline void svg_text(GMarkupParseContext *ctx, const char *text, gsize len, gpointer data,
                            GError **error) {
  svg_parse *p = data;
  char **slot = p->in == 1 ? &p->cur->title : p->in == 2 ? &p->cur->text
                : p->in == 3 ? &p->doc->matched_text : NULL;
  if (slot == NULL)
    return;
  char *joined = g_strconcat(*slot != NULL ? *slot : "", "", NULL);
  char *more = g_strndup(text, len);
  g_free(*slot);
  *slot = g_strconcat(joined, more, NULL);
  g_free(joined);
  g_free(more);
}

static inline void svg_frame_free(gpointer data) {
  svg_frame *f = data;
  g_free(f->id);
  g_free(f->parent);
  g_free(f->label);
  g_free(f->short_label);
  g_free(f->klass);
  g_free(f->style);
  g_free(f->fill);
  g_free(f->title);
  g_free(f->text);
  g_free(f);
}

static inline void svg_doc_free(svg_doc *doc) {
  if (doc == NULL)
    return;
  g_hash_table_unref(doc->by_id);
  g_ptr_array_unref(doc->frames);
  g_free(doc->zoomed);
  g_free(doc->matched_bytes);
  g_free(doc->matched_text);
  g_free(doc);
}

/* Parses text; returns NULL and sets *error when it is not well-formed XML. */
static inline svg_doc *svg_doc_parse(const char *text, GError **error) {
  static const GMarkupParser parser = {svg_start, svg_end, svg_text, NULL, NULL};
  svg_doc *doc = g_new0(svg_doc, 1);
  doc->frames = g_ptr_array_new_with_free_func(svg_frame_free);
  doc->by_id = g_hash_table_new(g_str_hash, g_str_equal);
  svg_parse p = {doc, NULL, 0};
  /* GMarkup does not read the XML declaration: skip it. */
  if (g_str_has_prefix(text, "<?xml"))
    text = strstr(text, "?>") + 2;
  GMarkupParseContext *ctx = g_markup_parse_context_new(&parser, 0, &p, NULL);
  gboolean ok = g_markup_parse_context_parse(ctx, text, -1, error) &&
                g_markup_parse_context_end_parse(ctx, error);
  g_markup_parse_context_free(ctx);
  if (!ok) {
    svg_doc_free(doc);
    return NULL;
  }
  return doc;
}

/* The frame whose label is label (first in document order), or NULL. */
static inline svg_frame *svg_doc_find(const svg_doc *doc, const char *label) {
  for (guint i = 0; i < doc->frames->len; i++) {
    svg_frame *f = doc->frames->pdata[i];
    if (g_strcmp0(f->label, label) == 0)
      return f;
  }
  return NULL;
}

#endif /* TM_SVG_FRAMES_H */
