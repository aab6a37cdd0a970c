/* greet.c — greetings. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "greet.h"

char *greet(const char *name) {
  size_t size = strlen("Hello, !") + strlen(name) + 1;
  char *text = malloc(size);

  snprintf(text, size, "Hello, %s!", name);
  return text;
}
