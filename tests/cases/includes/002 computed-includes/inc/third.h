/* inc/third.h */
