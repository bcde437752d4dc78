// main -> fill_buffer -> memset of a 64 KiB buffer: memset is a libc leaf
// without a frame pointer.
#include <stdlib.h>
#include <string.h>
#include <time.h>

static char buffer[64 << 10];

__attribute__((noinline)) void fill_buffer(int c) {
	memset(buffer, c, sizeof buffer);
	__asm__ volatile("" ::: "memory");
}

int main(int argc, char **argv) {
	time_t end = time(NULL) + (argc > 1 ? atoi(argv[1]) : 60);
	for (int i = 0; time(NULL) < end; i++)
		for (int j = 0; j < 1000; j++)
			fill_buffer(i + j);
	return 0;
}
