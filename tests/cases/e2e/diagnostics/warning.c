#include "lib.h"

int main(void) {
    int unused = 3;
    return twice(unused_result());
}
