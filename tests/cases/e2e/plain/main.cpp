#include <string>
#include "config.h"
std::string greeting() { return std::string(GREETING) + std::to_string(twice(LEVEL)); }
int main() { return greeting().empty(); }
