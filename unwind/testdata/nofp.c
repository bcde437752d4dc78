// main -> outer -> middle -> inner built with -O2, so without any frame
// pointer: only CFI can unwind it.
#include <stdlib.h>
#include <time.h>

volatile unsigned long sink;

__attribute__((noinline)) void inner(unsigned long n) {
	for (unsigned long i = 0; i < n; i++)
		sink += i;
}

__attribute__((noinline)) void middle(unsigned long n) {
	inner(n);
	sink++;
}

__attribute__((noinline)) void outer(unsigned long n) {
	middle(n);
	sink++;
}

int main(int argc, char **argv) {
	time_t end = time(NULL) + (argc > 1 ? atoi(argv[1]) : 60);
	while (time(NULL) < end)
		outer(1000000);
	return 0;
}
