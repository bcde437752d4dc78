// The library dlloop maps and unmaps: lib_work -> lib_middle -> lib_inner,
// built -O2 -fPIC -shared, without frame pointers.
volatile unsigned long lib_sink;

__attribute__((noinline, noclone)) void lib_inner(unsigned long n) {
	for (unsigned long i = 0; i < n; i++)
		lib_sink += i ^ (i >> 3);
}

__attribute__((noinline, noclone)) void lib_middle(unsigned long n) {
	volatile char buf[2048];
	buf[n & 2047] = 1;
	lib_inner(n + buf[0]);
	lib_sink++;
}

void lib_work(unsigned long n) {
	lib_middle(n);
	lib_sink++;
}
