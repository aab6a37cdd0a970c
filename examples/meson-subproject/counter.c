#include "counter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct Counter {
  char *name;
  int value;
};

Counter *counter_new(const char *name) {
  Counter *c = malloc(sizeof *c);
  c->name = strdup(name);
  c->value = 0;
  return c;
}

void counter_add(Counter *c, int n) { c->value += n; }

int counter_value(const Counter *c) { return c->value; }

char *counter_describe(const Counter *c) {
  char *text = malloc(64);
  snprintf(text, 64, "%s=%d", c->name, c->value);
  return text;
}

void counter_free(Counter *c) {
  free(c->name);
  free(c);
}
