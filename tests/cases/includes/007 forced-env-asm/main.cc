#include <cp.h>
#include <cip.h>
int main(void) { return FORCED + MAC + CP + CIP - 4; }
