/* inc/config.h */
