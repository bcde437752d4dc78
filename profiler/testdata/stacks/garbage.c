// Garbage stacks: the main thread spins with rsp and rbp pointing into a
// buffer of random words, some of them addresses of the program's code and
// of the buffer itself, refilled every few milliseconds. No frame of that
// stack is real: an unwinder must stop on it cleanly (and say why).
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static uint64_t fake[4096];

__attribute__((noinline)) void on_garbage(uint64_t *sp, uint64_t bp, unsigned long n) {
	__asm__ volatile(
		"mov %%rsp, %%r12\n\t"
		"mov %%rbp, %%r13\n\t"
		"mov %0, %%rsp\n\t"
		"mov %1, %%rbp\n\t"
		"xor %%eax, %%eax\n"
		"1:\n\t"
		"inc %%rax\n\t"
		"cmp %2, %%rax\n\t"
		"jb 1b\n\t"
		"mov %%r12, %%rsp\n\t"
		"mov %%r13, %%rbp\n\t"
		:
		: "r"(sp), "r"(bp), "r"(n)
		: "rax", "r12", "r13", "memory", "cc");
}

int main(int argc, char **argv) {
	time_t end = time(NULL) + (argc > 1 ? atoi(argv[1]) : 60);
	uint64_t seed = (uint64_t)time(NULL);
	unsigned long rounds = 0;
	while (time(NULL) < end) {
		for (int i = 0; i < 4096; i++) {
			seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
			uint64_t r = seed >> 11;
			switch (r % 4) {
			case 0: fake[i] = (uint64_t)(uintptr_t)&on_garbage + r % 512; break;
			case 1: fake[i] = (uint64_t)(uintptr_t)&fake[r % 4096]; break;
			case 2: fake[i] = (uint64_t)(uintptr_t)&main + r % 256; break;
			default: fake[i] = r;
			}
		}
		on_garbage(&fake[2048 + (seed >> 20) % 1024], fake[seed % 4096], 2000000);
		rounds++;
	}
	printf("%lu\n", rounds);
	return 0;
}
