#if !BOOST_PP_IS_ITERATING
#  ifndef SPEC_HPP
#  define SPEC_HPP
template <int N> int f();
#  define BOOST_PP_ITERATION_PARAMS_1 (3, (0, 4, "inc/spec.hpp"))
#  include BOOST_PP_ITERATE()
#  define BOOST_PP_FILENAME_1 "inc/spec_item.hpp"
#  define BOOST_PP_ITERATION_LIMITS (0, 2)
#  include BOOST_PP_ITERATE()
#  endif
#else
template <> int f<BOOST_PP_ITERATION()>() { return BOOST_PP_ITERATION(); }
#endif
