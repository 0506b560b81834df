int BOOST_PP_CAT(item_, BOOST_PP_ITERATION()) = 0;
#include <boost/preprocessor/cat.hpp>
