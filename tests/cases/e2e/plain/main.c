#include <stdio.h>
#include "config.h"
#ifndef LEVEL
#error LEVEL must come from -D
#endif
int main(void) {
#pragma message "plain mode keeps pragma messages"
  puts(GREETING);
  return twice(LEVEL) - 2 * LEVEL;
}
