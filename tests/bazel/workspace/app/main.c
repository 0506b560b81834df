#include <stdio.h>
#include <lib/lib.h>
int main(void) { printf("%d\n", lib_value()); return lib_value() == 42 ? 0 : 1; }
