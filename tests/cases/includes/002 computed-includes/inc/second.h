/* inc/second.h */
