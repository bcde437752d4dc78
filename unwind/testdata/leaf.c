// main -> alpha -> beta -> spin, built with -O1 -fno-omit-frame-pointer:
// gcc gives spin (a leaf) no frame pointer, so frame pointers lose beta.
#include <stdlib.h>
#include <time.h>

volatile unsigned long sink;

__attribute__((noinline)) void spin(unsigned long n) {
	for (unsigned long i = 0; i < n; i++)
		sink += i;
}

__attribute__((noinline)) void beta(unsigned long n) {
	spin(n);
	sink++;
}

__attribute__((noinline)) void alpha(unsigned long n) {
	beta(n);
	sink++;
}

int main(int argc, char **argv) {
	time_t end = time(NULL) + (argc > 1 ? atoi(argv[1]) : 60);
	while (time(NULL) < end)
		alpha(1000000);
	return 0;
}
