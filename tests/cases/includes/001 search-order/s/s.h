#define S 1
