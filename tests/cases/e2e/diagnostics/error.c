#include "lib.h"

int broken(void) {
    return twice(missing_name) + 1
}
