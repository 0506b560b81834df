#define Q 1
