/* strings.c — a reference-counted table of frame strings (see model.h). */
#include "model.h"

struct tm__strings {
  gint refcount;        /* atomic */
  GStringChunk *chunk;  /* the characters; insert_const keeps one copy of each string */
  GMutex lock;          /* tables are filled by one thread, but cost nothing to protect */
};

/* See model.h. */
tm__strings *tm__strings_new(void) {
  tm__guard_enter();
  tm__strings *s = g_new0(tm__strings, 1);
  s->refcount = 1;
  s->chunk = g_string_chunk_new(1024);
  g_mutex_init(&s->lock);
  tm__guard_leave();
  return s;
}

/* See model.h. */
const char *tm__strings_intern(tm__strings *s, const char *str) {
  const char *copy;
  if (str == NULL)
    return NULL;
  tm__guard_enter();
  g_mutex_lock(&s->lock);
  copy = g_string_chunk_insert_const(s->chunk, str);
  g_mutex_unlock(&s->lock);
  tm__guard_leave();
  return copy;
}

/* See model.h. */
tm__strings *tm__strings_ref(tm__strings *s) {
  if (s != NULL)
    g_atomic_int_inc(&s->refcount);
  return s;
}

/* See model.h. */
void tm__strings_unref(tm__strings *s) {
  if (s == NULL || !g_atomic_int_dec_and_test(&s->refcount))
    return;
  tm__guard_enter();
  g_string_chunk_free(s->chunk);
  g_mutex_clear(&s->lock);
  g_free(s);
  tm__guard_leave();
}
