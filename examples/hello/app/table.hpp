#pragma once
#include <string>
#include <vector>

std::string render(const std::vector<std::string> &rows);
