#include "edited.h"
#include "gen.h"
int both(void) { return GENERATED_VALUE + EDITED_VALUE; }
