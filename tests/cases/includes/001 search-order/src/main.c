#include "q.h"
#include <i.h>
#include <s.h>
#include <a.h>
#import "once.h"
#include <wrap.h>
int main(void) { return Q + I + S + A + W; }
