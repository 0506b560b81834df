#include <stdio.h>
#include "lib/lib.h"
#include "lib/private.h"
#include "util/util.h"
int lib_value(void) { return util_twice(LIB_BASE) + 2; }
