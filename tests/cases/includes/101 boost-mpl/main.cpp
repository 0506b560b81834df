#include <boost/mpl/vector.hpp>
#include <boost/mpl/map.hpp>
#include <boost/mpl/transform.hpp>
#include <boost/mpl/fold.hpp>
#include <boost/mpl/apply.hpp>
#include <boost/mpl/size.hpp>
namespace mpl = boost::mpl;
typedef mpl::vector<int, char, long> v;
static_assert(mpl::size<v>::value == 3, "");
int main() { return 0; }
