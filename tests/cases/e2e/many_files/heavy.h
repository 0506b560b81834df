/* Enough code per translation unit that a compile takes a noticeable moment at -O2. */
#define F(n) int n(int x) { for (int i = 0; i < x; i++) x ^= (x << 3) + i * (int)sizeof(#n); return x; }
#define F4(n) F(n##0) F(n##1) F(n##2) F(n##3)
#define F16(n) F4(n##0) F4(n##1) F4(n##2) F4(n##3)
#define F64(n) F16(n##0) F16(n##1) F16(n##2) F16(n##3)
#define F256(n) F64(n##0) F64(n##1) F64(n##2) F64(n##3)
