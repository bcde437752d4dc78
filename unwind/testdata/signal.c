// A SIGPROF handler, on_tick -> in_handler, interrupts main -> work: the
// stack runs through the kernel's signal frame and glibc's __restore_rt,
// whose CFI describes the interrupted context.
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

volatile unsigned long sink;

__attribute__((noinline)) void in_handler(void) {
	for (unsigned long i = 0; i < 3000000; i++)
		sink += i;
}

__attribute__((noinline)) void on_tick(int sig) {
	in_handler();
	sink++;
}

__attribute__((noinline)) void work(void) {
	for (unsigned long i = 0; i < 1000000; i++)
		sink += i * i;
}

int main(int argc, char **argv) {
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_tick;
	sigaction(SIGPROF, &sa, NULL);
	struct itimerval it = {{0, 10000}, {0, 10000}};
	setitimer(ITIMER_PROF, &it, NULL);
	time_t end = time(NULL) + (argc > 1 ? atoi(argv[1]) : 60);
	while (time(NULL) < end)
		work();
	return 0;
}
