/* stack.c — a small growable stack of ints. */
#include <stdlib.h>

#include "stack.h"

struct Stack {
  int *items;
  size_t size, capacity;
};

Stack *stack_new(void) {
  Stack *s = calloc(1, sizeof *s);
  if (s != NULL)
    s->items = malloc(8 * sizeof *s->items);
  s->capacity = s != NULL && s->items != NULL ? 8 : 0;
  return s;
}

void stack_push(Stack *s, int value) {
  if (s->size == s->capacity) {
    s->capacity = s->capacity ? s->capacity * 2 : 8;
    s->items = realloc(s->items, s->capacity * sizeof *s->items);
  }
  s->items[s->size++] = value;
}

bool stack_pop(Stack *s, int *value) {
  if (s->size == 0)
    return false;
  *value = s->items[--s->size];
  return true;
}

size_t stack_size(const Stack *s) {
  return s->size;
}

void stack_free(Stack *s) {
  if (s != NULL)
    free(s->items);
  free(s);
}
