// main -> sort_records -> qsort of a few hundred ints: glibc's merge sort
// recurses in msort_with_tmp, which uses rbp as a general register.
#include <stdlib.h>
#include <time.h>

#define N 400
static int records[N];

static int compare(const void *a, const void *b) {
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

__attribute__((noinline)) void sort_records(unsigned seed) {
	for (int i = 0; i < N; i++) {
		seed = seed * 1103515245 + 12345;
		records[i] = (int)(seed >> 8);
	}
	qsort(records, N, sizeof records[0], compare);
}

int main(int argc, char **argv) {
	time_t end = time(NULL) + (argc > 1 ? atoi(argv[1]) : 60);
	for (unsigned i = 0; time(NULL) < end; i++)
		sort_records(i);
	return 0;
}
