#include <boost/variant.hpp>
#include <string>
int main() { boost::variant<int, std::string> v = 3; return boost::get<int>(v) - 3; }
