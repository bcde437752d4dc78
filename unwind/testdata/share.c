// main -> alpha -> beta -> spin twice as much work as main -> alpha ->
// gamma_ -> spin (counted in iterations, so that other load on the machine
// does not skew it). With gcc -O1 -fno-omit-frame-pointer spin, a leaf, has
// no frame pointer: frame pointers alone lose beta and gamma_. Each call
// is short (tens of microseconds) against the sampling period (about 2 ms
// at 499 Hz): calls of milliseconds beat with the sampling clock and skew
// the shares of one 2 s capture by ±30%.
#include <stdlib.h>
#include <time.h>

volatile unsigned long sink;

__attribute__((noinline)) void spin(unsigned long n) {
	for (unsigned long i = 0; i < n; i++)
		sink += i * i;
}

__attribute__((noinline)) void beta(void) {
	spin(40000);
	sink++;
}

__attribute__((noinline)) void gamma_(void) {
	spin(20000);
	sink++;
}

__attribute__((noinline)) void alpha(int which) {
	if (which)
		beta();
	else
		gamma_();
	sink++;
}

int main(int argc, char **argv) {
	time_t end = time(NULL) + (argc > 1 ? atoi(argv[1]) : 60);
	while (time(NULL) < end) {
		alpha(1);
		alpha(0);
	}
	return 0;
}
