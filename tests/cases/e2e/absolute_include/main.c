#include "where.h"

const char *which(void) { return header_file(); }
