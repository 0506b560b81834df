#include "table.hpp"
#include <numeric>

std::string render(const std::vector<std::string> &rows) {
    return std::accumulate(rows.begin(), rows.end(), std::string(),
                           [](const std::string &a, const std::string &b) { return a + b + "\n"; });
}
