#include_next <wrap.h>
#define W 1
