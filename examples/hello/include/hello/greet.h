#ifndef HELLO_GREET_H
#define HELLO_GREET_H
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Writes a greeting for `name` into `out`; returns the length written. */
size_t greet(char *out, size_t size, const char *name);
int format_count(char *out, size_t size, int count);

#ifdef __cplusplus
}
#endif
#endif
