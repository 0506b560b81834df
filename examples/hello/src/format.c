#include "hello/greet.h"
#include <stdio.h>

int format_count(char *out, size_t size, int count) {
    return snprintf(out, size, "%d compile%s", count, count == 1 ? "" : "s");
}
