#define MAC 1
