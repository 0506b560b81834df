/* first_impl.h */
