#include "../sibling.h"
#define L 0
