#define STR(x) #x
#define XSTR(x) STR(x)
#define CAT(a, b) a ## b
#define HEADER(n) XSTR(CAT(n, _impl.h))
#include HEADER(first)
#define NAME <inc/second.h>
#include NAME
#undef NAME
#define NAME "inc/third.h"
#include NAME
#include CONFIG
int main(void) { return 0; }
