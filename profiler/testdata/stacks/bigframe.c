// main -> outer -> middle -> inner at -O2 without frame pointers, on the
// main thread and on a second thread (worker): its user stacks reach
// _start on one and start_thread/clone3 on the other only through CFI, past
// middle's 4 KiB local buffer, larger than a 1 KiB stack copy. Prints the
// rounds done when its time is up (a work rate for benchmarks).
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

volatile unsigned long sink;
static time_t end;

__attribute__((noinline, noclone)) void inner(unsigned long n) {
	for (unsigned long i = 0; i < n; i++)
		sink += i * i;
}

__attribute__((noinline, noclone)) void middle(unsigned long n) {
	volatile char buf[4096];
	memset((char *)buf, (int)n, sizeof buf);
	for (int k = 0; k < 4; k++)
		inner(n + buf[k * 1000]);
	sink += buf[n & 4095];
}

__attribute__((noinline, noclone)) void outer(unsigned long n) {
	middle(n);
	sink++;
}

static unsigned long rounds(void) {
	unsigned long r = 0;
	while (time(NULL) < end) {
		outer(50000);
		r++;
	}
	return r;
}

static void *worker(void *out) {
	*(unsigned long *)out = rounds();
	return NULL;
}

int main(int argc, char **argv) {
	end = time(NULL) + (argc > 1 ? atoi(argv[1]) : 60);
	pthread_t t;
	unsigned long w = 0;
	pthread_create(&t, NULL, worker, &w);
	unsigned long m = rounds();
	pthread_join(t, NULL);
	printf("%lu\n", m + w);
	return 0;
}
