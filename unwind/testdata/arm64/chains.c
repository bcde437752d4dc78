/* arm64 unwinding fixture (unwind/arm64_test.go): three call chains of the
 * same shape, each compiled with other flags (-DPART=...), linked static so
 * that glibc's arm64 CFI is in the binary:
 *   main -> fp_a -> fp_b -> fp_leaf      frame pointers (-fno-omit-frame-pointer)
 *   main -> nf_a -> nf_b -> nf_leaf      none (-fomit-frame-pointer)
 *   main -> pac_a -> pac_b -> pac_leaf   none, return addresses signed
 *                                        (-mbranch-protection=pac-ret)
 * The leaves save no frame record: their caller is only in x30. */
#define N __attribute__((noinline))

extern volatile unsigned long sink;

#if PART == 0
volatile unsigned long sink;
unsigned long fp_a(unsigned long), nf_a(unsigned long), pac_a(unsigned long);
int main(int argc, char **argv)
{
	(void)argv;
	unsigned long r = fp_a(argc);
	r += nf_a(r);
	r += pac_a(r);
	return (int)(r & 1);
}
#else
#if PART == 1
#define A fp_a
#define B fp_b
#define LEAF fp_leaf
#elif PART == 2
#define A nf_a
#define B nf_b
#define LEAF nf_leaf
#else
#define A pac_a
#define B pac_b
#define LEAF pac_leaf
#endif
N unsigned long LEAF(unsigned long x)
{
	for (int i = 0; i < 1000; i++)
		sink += x * i;
	return sink;
}
/* Locals and calls after the callee returns: a frame, no tail call. */
N unsigned long B(unsigned long x)
{
	volatile unsigned long pad[6] = {x, x + 1};
	unsigned long r = LEAF(pad[0] + pad[1]);
	return r + LEAF(r) + pad[2];
}
N unsigned long A(unsigned long x)
{
	volatile unsigned long pad[10] = {x};
	unsigned long r = B(pad[0]);
	return r + pad[3] + B(r);
}
#endif
