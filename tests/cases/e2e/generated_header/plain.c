#include "edited.h"
int plain(void) { return EDITED_VALUE; }
