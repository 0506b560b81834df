#include <boost/preprocessor/iteration/iterate.hpp>
#include <boost/preprocessor/repetition/enum_params.hpp>
#include "inc/spec.hpp"
int main() { return f<0>() + f<3>(); }
