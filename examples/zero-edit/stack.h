/* stack.h — a small growable stack of ints, the code under test. */
#ifndef STACK_H
#define STACK_H

#include <stdbool.h>
#include <stddef.h>

typedef struct Stack Stack;

Stack *stack_new(void);
void stack_push(Stack *s, int value);
bool stack_pop(Stack *s, int *value);
size_t stack_size(const Stack *s);
void stack_free(Stack *s);

#endif /* STACK_H */
