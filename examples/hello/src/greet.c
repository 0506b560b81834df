#include "hello/greet.h"
#include <stdio.h>
#include <string.h>

size_t greet(char *out, size_t size, const char *name) {
    int n = snprintf(out, size, "hello, %s", name);
    return n < 0 ? 0 : strlen(out);
}
