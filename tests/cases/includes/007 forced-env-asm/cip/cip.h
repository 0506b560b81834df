#define CIP 1
