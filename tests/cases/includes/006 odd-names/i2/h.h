#define H 0
