#define LIB_BASE 20
