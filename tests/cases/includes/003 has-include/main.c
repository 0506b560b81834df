#if __has_include("inc/yes.h")
#include "inc/yes.h"
#endif
#if __has_include(<nope.h>)
#include <nope.h>
#endif
#define PROBE <inc/macro.h>
#if __has_include(PROBE)
#endif
int main(void) { return 0; }
