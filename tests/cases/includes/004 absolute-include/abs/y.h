#define Y 0
