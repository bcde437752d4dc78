// main -> napper -> nanosleep: the thread blocks inside libc wrappers that
// have no frame pointer, so frame pointers alone lose napper.
#include <stdlib.h>
#include <time.h>

__attribute__((noinline)) void napper(void) {
	struct timespec ts = {0, 2 * 1000 * 1000};
	nanosleep(&ts, NULL);
	__asm__ volatile("" ::: "memory");
}

int main(int argc, char **argv) {
	time_t end = time(NULL) + (argc > 1 ? atoi(argv[1]) : 60);
	while (time(NULL) < end)
		napper();
	return 0;
}
