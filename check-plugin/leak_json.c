/* leak_json.c — one test window as one line of JSON (JSON Lines), with json-glib.
 *
 * Built as a module of its own, libtracemalloc-check-json.so, that leak_record.c loads only when
 * TM_LEAK_JSON is set: json-glib brings gobject and gio with it, and every library mapped into a
 * test program makes each of Check's forks and exits slower, whether the program writes JSON or
 * not. The module only formats: the record carries every string it needs.
 *
 * A line (wrapped here):
 *   {"program":"check_money","suite":null,"tcase":null,"test":"test_money_create_zero",
 *    "iteration":0,"verdict":"fail","leaked":true,"peak_exceeded":false,"over_baseline":false,
 *    "lost":{"bytes":16,"blocks":1},"indirect":{...},"reachable":{...},
 *    "filtered":{"bytes":0,"blocks":0,"by":[{"pattern":"...","bytes":0,"blocks":0}]},
 *    "peak":16,"allowed":0,"message":"leaked 16 B ...","file":"examples/money/money.c","line":16,
 *    "roots":[{"file":"...","line":16,"function":"money_create","bytes":16,"blocks":1,
 *              "traceback":[{"file":"...","line":16,"function":"money_create","module":"..."}]}]}
 */
#include <json-glib/json-glib.h>

#include "leak_internal.h"

static void add_string(JsonBuilder *b, const char *name, const char *value) {
  json_builder_set_member_name(b, name);
  if (value != NULL)
    json_builder_add_string_value(b, value);
  else
    json_builder_add_null_value(b);
}

static void add_int(JsonBuilder *b, const char *name, gint64 value) {
  json_builder_set_member_name(b, name);
  json_builder_add_int_value(b, value);
}

static void add_bool(JsonBuilder *b, const char *name, bool value) {
  json_builder_set_member_name(b, name);
  json_builder_add_boolean_value(b, value);
}

static void add_amount(JsonBuilder *b, const char *name, const tm__leak_amount *a) {
  json_builder_set_member_name(b, name);
  json_builder_begin_object(b);
  add_int(b, "bytes", (gint64)a->size);
  add_int(b, "blocks", (gint64)a->blocks);
  json_builder_end_object(b);
}

static void add_root(JsonBuilder *b, const tm__leak_record_root *root) {
  json_builder_begin_object(b);
  add_string(b, "file", root->file);
  add_int(b, "line", root->line);
  add_string(b, "function", root->function);
  add_int(b, "bytes", (gint64)root->size);
  add_int(b, "blocks", (gint64)root->blocks);
  json_builder_set_member_name(b, "traceback");
  json_builder_begin_array(b);
  for (guint i = 0; root->frames != NULL && i < root->frames->len; i++) {
    const tm__leak_record_frame *f = &g_array_index(root->frames, tm__leak_record_frame, i);
    json_builder_begin_object(b);
    add_string(b, "file", f->file);
    add_int(b, "line", f->line);
    add_string(b, "function", f->function);
    add_string(b, "module", f->module);
    json_builder_end_object(b);
  }
  json_builder_end_array(b);
  json_builder_end_object(b);
}

/* Returns the record as one line of JSON, no newline. g_free(). */
static char *record_format(const tm__leak_record *r) {
  JsonBuilder *b = json_builder_new();
  JsonGenerator *gen = json_generator_new();
  JsonNode *root;
  char *text;

  json_builder_begin_object(b);
  add_string(b, "program", r->program);
  add_string(b, "suite", r->suite);
  add_string(b, "tcase", r->tcase);
  add_string(b, "test", r->test);
  add_int(b, "iteration", r->iteration);
  add_string(b, "verdict", r->verdict);
  add_bool(b, "leaked", r->leaked);
  add_bool(b, "peak_exceeded", r->peak_exceeded);
  add_bool(b, "over_baseline", r->over_baseline);
  add_amount(b, "charged", &r->charged);
  add_amount(b, "lost", &r->lost);
  add_amount(b, "indirect", &r->indirect);
  add_amount(b, "reachable", &r->reachable);
  json_builder_set_member_name(b, "filtered");
  json_builder_begin_object(b);
  add_int(b, "bytes", (gint64)r->filtered.size);
  add_int(b, "blocks", (gint64)r->filtered.blocks);
  json_builder_set_member_name(b, "by");
  json_builder_begin_array(b);
  for (guint i = 0; r->filtered_by != NULL && i < r->filtered_by->len; i++) {
    const tm__leak_ignored *by = &g_array_index(r->filtered_by, tm__leak_ignored, i);
    json_builder_begin_object(b);
    add_string(b, "pattern", by->pattern);
    add_int(b, "bytes", (gint64)by->size);
    add_int(b, "blocks", (gint64)by->blocks);
    json_builder_end_object(b);
  }
  json_builder_end_array(b);
  json_builder_end_object(b);
  add_int(b, "peak", (gint64)r->peak);
  add_int(b, "allowed", (gint64)r->allowance);
  add_string(b, "message", r->message);
  add_string(b, "file", r->file);
  add_int(b, "line", r->line);
  json_builder_set_member_name(b, "roots");
  json_builder_begin_array(b);
  for (guint i = 0; r->roots != NULL && i < r->roots->len; i++)
    add_root(b, &g_array_index(r->roots, tm__leak_record_root, i));
  json_builder_end_array(b);
  json_builder_end_object(b);

  root = json_builder_get_root(b);
  json_generator_set_root(gen, root);
  json_generator_set_pretty(gen, false);
  text = json_generator_to_data(gen, NULL);
  json_node_unref(root);
  g_object_unref(gen);
  g_object_unref(b);
  return text;
}

/* The module's one export, found by leak_record.c with dlsym(). */
__attribute__((visibility("default"))) const tm__leak_json_api tm__leak_json_module = {
  .version = TM__LEAK_JSON_VERSION,
  .record_size = sizeof(tm__leak_record),
  .format = record_format,
};
