#ifndef LIB_H
#define LIB_H
int lib_value(void);
#endif
