/* A context-switch storm for the off-CPU benchmark: two threads pinned to
 * one CPU pass a byte back and forth through two pipes for a fixed time and
 * print round trips per second. With a second argument it waits for a line
 * on stdin first, so that a profiler can attach to its pid. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static int ping[2], pong[2];
static volatile int stop;

static void pin(void) {
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(0, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

static void *echo(void *arg) {
	char c;
	pin();
	while (read(ping[0], &c, 1) == 1 && write(pong[1], &c, 1) == 1)
		;
	return NULL;
}

int main(int argc, char **argv) {
	double seconds = argc > 1 ? atof(argv[1]) : 3;
	pthread_t t;
	struct timespec a, b;
	unsigned long n = 0;
	char c = 'x';
	if (pipe(ping) || pipe(pong))
		return 1;
	if (argc > 2) {
		char line[16];
		if (!fgets(line, sizeof(line), stdin))
			return 1;
	}
	pin();
	pthread_create(&t, NULL, echo, NULL);
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (;;) {
		if (write(ping[1], &c, 1) != 1 || read(pong[0], &c, 1) != 1)
			return 1;
		n++;
		if ((n & 1023) == 0) {
			clock_gettime(CLOCK_MONOTONIC, &b);
			double el = (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
			if (el >= seconds) {
				printf("%.0f\n", n / el);
				return 0;
			}
		}
	}
}
