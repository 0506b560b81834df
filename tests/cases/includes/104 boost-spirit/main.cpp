#include <boost/spirit/include/qi.hpp>
#include <boost/spirit/include/karma.hpp>
#include <boost/spirit/include/phoenix.hpp>
#include <string>
int main() {
  namespace qi = boost::spirit::qi;
  std::string s = "1,2";
  auto it = s.begin();
  return qi::parse(it, s.end(), qi::int_ % ',') ? 0 : 1;
}
