/* greet.h — greetings, the code under test. */
#ifndef GREET_H
#define GREET_H

char *greet(const char *name); /* "Hello, NAME!"; the caller frees it */

#endif /* GREET_H */
