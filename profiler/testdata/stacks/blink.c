// Lives a few milliseconds (argv[1], default 20): main -> burn -> spin at
// -O2 without frame pointers, then exits, often before a profiler has read
// its mappings.
#include <stdlib.h>
#include <time.h>

volatile unsigned long sink;

__attribute__((noinline, noclone)) void spin(unsigned long n) {
	for (unsigned long i = 0; i < n; i++)
		sink += i * 7;
}

__attribute__((noinline, noclone)) void burn(double ms) {
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	do {
		spin(20000);
		clock_gettime(CLOCK_MONOTONIC, &b);
	} while ((b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6 < ms);
	sink++;
}

int main(int argc, char **argv) {
	burn(argc > 1 ? atof(argv[1]) : 20);
	return 0;
}
