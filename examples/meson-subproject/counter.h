#ifndef COUNTER_H
#define COUNTER_H
typedef struct Counter Counter;
Counter *counter_new(const char *name);
void counter_add(Counter *c, int n);
int counter_value(const Counter *c);
char *counter_describe(const Counter *c); /* caller frees */
void counter_free(Counter *c);
#endif
