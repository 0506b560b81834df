#ifndef LIB_H
#define LIB_H
static inline int twice(int x) { return x * 2; }
static inline int unused_result(void) { int y; return y; }
#endif
