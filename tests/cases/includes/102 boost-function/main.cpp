#include <boost/function.hpp>
#include <boost/bind/bind.hpp>
static int add(int a, int b) { return a + b; }
int main() { boost::function<int(int)> f = boost::bind(add, 1, boost::placeholders::_1); return f(1) - 2; }
