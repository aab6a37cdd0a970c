/* queue.h — a FIFO of strings, the code under test. */
#ifndef QUEUE_H
#define QUEUE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct Queue Queue;

Queue *queue_new(void);
void queue_push(Queue *q, const char *text); /* copies text */
char *queue_pop(Queue *q);                   /* the caller frees it; NULL when empty */
size_t queue_length(const Queue *q);
void queue_free(Queue *q);

#endif /* QUEUE_H */
