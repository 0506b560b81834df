#include "@ROOT@/abs/y.h"
int main(void) { return Y; }
