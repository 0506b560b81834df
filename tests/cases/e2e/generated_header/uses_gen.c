#include "gen.h"
int generated(void) { return GENERATED_VALUE; }
