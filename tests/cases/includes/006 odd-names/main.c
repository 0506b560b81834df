#include <h.h>
#include "weird/a,b.h"
#include "weird/a b.h"
#include "weird/a\b.h"
#include "weird/é.h"
int main(void) { return H; }
