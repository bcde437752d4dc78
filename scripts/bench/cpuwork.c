/* A fixed CPU-bound workload for the sampler benchmark: every thread does
 * the same number of iterations of a call-heavy loop; the wall time of the
 * whole run is what profiling slows down. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static volatile unsigned long sink;

__attribute__((noinline)) static unsigned long leaf(unsigned long x) { return x * 2654435761u ^ (x >> 13); }
__attribute__((noinline)) static unsigned long mid(unsigned long x) { return leaf(x) + leaf(x + 1); }

static void *work(void *arg) {
	unsigned long n = (unsigned long)arg, acc = 0;
	for (unsigned long i = 0; i < n; i++)
		acc += mid(i);
	sink += acc;
	return NULL;
}

int main(int argc, char **argv) {
	int threads = argc > 1 ? atoi(argv[1]) : 2;
	unsigned long iters = argc > 2 ? strtoul(argv[2], NULL, 10) : 400000000ul;
	pthread_t t[64];
	for (int i = 0; i < threads && i < 64; i++)
		pthread_create(&t[i], NULL, work, (void *)iters);
	for (int i = 0; i < threads && i < 64; i++)
		pthread_join(t[i], NULL);
	return 0;
}
