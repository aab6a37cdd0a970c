/* queue.c — a FIFO of strings, as a singly linked list. */
#include <stdlib.h>
#include <string.h>

#include "queue.h"

typedef struct Node {
  char *text;
  struct Node *next;
} Node;

struct Queue {
  Node *head, *tail;
  size_t length;
};

Queue *queue_new(void) {
  return calloc(1, sizeof(Queue));
}

void queue_push(Queue *q, const char *text) {
  Node *node = malloc(sizeof *node);
  node->text = strdup(text);
  node->next = NULL;
  if (q->tail != NULL)
    q->tail->next = node;
  else
    q->head = node;
  q->tail = node;
  q->length++;
}

char *queue_pop(Queue *q) {
  Node *node = q->head;
  char *text;

  if (node == NULL)
    return NULL;
  text = node->text;
  q->head = node->next;
  if (q->head == NULL)
    q->tail = NULL;
  q->length--;
  free(node);
  return text;
}

size_t queue_length(const Queue *q) {
  return q->length;
}

void queue_free(Queue *q) {
  char *text;

  while ((text = queue_pop(q)) != NULL)
    free(text);
  free(q);
}
