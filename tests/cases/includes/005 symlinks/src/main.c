#include "linked/l.h"
#include "linked/../sub/l.h"
int main(void) { return L; }
