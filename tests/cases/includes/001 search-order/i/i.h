#define I 1
