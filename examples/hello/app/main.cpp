#include <iostream>
#include "hello/greet.h"
#include "table.hpp"

int main(int argc, char **argv) {
    char line[64];
    greet(line, sizeof line, argc > 1 ? argv[1] : "pumpcc");
    char count[32];
    format_count(count, sizeof count, 4);
    std::cout << render({line, count});
    return 0;
}
