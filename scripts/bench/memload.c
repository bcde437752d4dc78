/* Workloads of scripts/bench-mem.sh. `memload malloc SECS` waits for a
 * line on stdin (so the collector can attach to its pid first), then
 * mallocs and frees 64-byte blocks for SECS seconds and prints the calls
 * per second. `memload grow SECS` does the same with grow_heap: map and
 * touch 256 MiB, page by page, and prints the pages touched per second. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

void *volatile sink;

__attribute__((noinline)) static long churn(void)
{
	for (int i = 0; i < 1000; i++) {
		sink = malloc(64);
		free(sink);
	}
	return 1000;
}

#define GROW (256UL << 20)

__attribute__((noinline)) static long grow_heap(void)
{
	char *p = mmap(NULL, GROW, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		exit(1);
	madvise(p, GROW, MADV_NOHUGEPAGE);
	for (unsigned long i = 0; i < GROW; i += 4096)
		((volatile char *)p)[i] = 1;
	munmap(p, GROW);
	return GROW / 4096;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: memload malloc|grow SECS\n");
		return 2;
	}
	long (*work)(void) = strcmp(argv[1], "grow") == 0 ? grow_heap : churn;
	double secs = atof(argv[2]);
	char line[16];
	if (!fgets(line, sizeof(line), stdin))
		return 1;
	long n = 0;
	double start = now(), end = start + secs;
	while (now() < end)
		n += work();
	printf("%.0f\n", n / (now() - start));
	return 0;
}
