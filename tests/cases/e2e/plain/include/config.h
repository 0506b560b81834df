/* A header under a -I folder: the preprocessor reads it here, the worker never sees it. */
#define GREETING "hello from " __FILE__
static inline int twice(int x) { return 2 * x; }
