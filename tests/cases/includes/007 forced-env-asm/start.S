#include "f/macros.h"
.globl x
x: .long MAC
