#define CP 1
