// Maps and unmaps a library all the time: dlopen(argv[1]), lib_work (its
// frames at -O2 without frame pointers), dlclose, again. Samples taken in
// the library while its mapping comes and goes must end cleanly.
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv) {
	if (argc < 2) {
		fprintf(stderr, "usage: dlloop LIB [SECONDS]\n");
		return 2;
	}
	time_t end = time(NULL) + (argc > 2 ? atoi(argv[2]) : 60);
	unsigned long loops = 0;
	while (time(NULL) < end) {
		void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
		if (!h) {
			fprintf(stderr, "dlopen: %s\n", dlerror());
			return 1;
		}
		void (*work)(unsigned long) = (void (*)(unsigned long))dlsym(h, "lib_work");
		if (!work) {
			fprintf(stderr, "dlsym: %s\n", dlerror());
			return 1;
		}
		work(2000000);
		dlclose(h);
		loops++;
	}
	printf("%lu\n", loops);
	return 0;
}
