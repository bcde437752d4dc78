package symbolizer

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The C fixture prints the run-time address of its functions, then waits
// for stdin to close, so a test can snapshot it while it runs.
const cFixture = `#include <stdio.h>
#include <unistd.h>
__attribute__((noinline)) int alpha_leaf(int x) { return x * 3 + 1; }
__attribute__((noinline)) int beta_middle(int x) { return alpha_leaf(x) + 2; }
static __attribute__((noinline)) int gamma_static(int x) { return beta_middle(x) * 2; }
int main(void) {
	printf("alpha_leaf %p\nbeta_middle %p\ngamma_static %p\n", (void *)alpha_leaf, (void *)beta_middle, (void *)gamma_static);
	printf("ready\n");
	fflush(stdout);
	char c;
	while (read(0, &c, 1) > 0) {}
	return gamma_static(1) == 0;
}
`

const cppFixture = `#include <cstdio>
#include <unistd.h>
namespace shapes {
template <typename T> __attribute__((noinline)) T scale(T x) { return x * 2; }
template <typename T> struct Box {
	static __attribute__((noinline)) T twice(T x) { return x + x; }
};
}
int main() {
	std::printf("shapes::scale<int> %p\n", (void *)&shapes::scale<int>);
	std::printf("shapes::Box<double>::twice %p\n", (void *)&shapes::Box<double>::twice);
	std::printf("ready\n");
	std::fflush(stdout);
	char c;
	while (read(0, &c, 1) > 0) {}
	return shapes::scale<int>(1) + (int)shapes::Box<double>::twice(1.0) == 0;
}
`

const dlopenFixture = `#include <dlfcn.h>
#include <stdio.h>
#include <unistd.h>
int main(int argc, char **argv) {
	void *h = dlopen(argv[1], RTLD_NOW);
	if (!h) { fprintf(stderr, "%s\n", dlerror()); return 1; }
	void *f = dlsym(h, "plugin_work");
	printf("plugin_work %p\nready\n", f);
	fflush(stdout);
	char c;
	while (read(0, &c, 1) > 0) {}
	return 0;
}
`

// lateDlopenFixture loads the library only when told to (a byte on stdin),
// after the test took its snapshot.
const lateDlopenFixture = `#include <dlfcn.h>
#include <stdio.h>
#include <unistd.h>
int main(int argc, char **argv) {
	printf("ready\n");
	fflush(stdout);
	char c;
	if (read(0, &c, 1) != 1) return 1;
	void *h = dlopen(argv[1], RTLD_NOW);
	if (!h) { fprintf(stderr, "%s\n", dlerror()); return 1; }
	printf("plugin_work %p\n", dlsym(h, "plugin_work"));
	fflush(stdout);
	while (read(0, &c, 1) > 0) {}
	return 0;
}
`

const pluginFixture = `__attribute__((noinline)) int plugin_work(int x) { return x * 7 + 3; }
`

const goFixture = `package main

import (
	"fmt"
	"io"
	"os"
	"reflect"
	"runtime"
)

//go:noinline
func alphaLeaf(x int) int { return x*3 + 1 }

//go:noinline
func betaMiddle(x int) int { return alphaLeaf(x) + 2 }

// inlinedHelper is small enough to be inlined into outerCaller.
func inlinedHelper() uintptr {
	pc, _, _, _ := runtime.Caller(0)
	return pc
}

//go:noinline
func outerCaller() uintptr { return inlinedHelper() }

func main() {
	fmt.Printf("main.alphaLeaf %#x\n", reflect.ValueOf(alphaLeaf).Pointer())
	fmt.Printf("main.betaMiddle %#x\n", reflect.ValueOf(betaMiddle).Pointer())
	fmt.Printf("inline %#x\n", outerCaller())
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	os.Exit(betaMiddle(1) & 0)
}
`

func needTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed (apt-get install it; scripts/debian-packages.txt lists it): %v", name, err)
	}
	return p
}

func run(t testing.TB, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func writeFile(t testing.TB, path, content string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// fixture is a running fixture process with the addresses it printed.
type fixture struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	addrs map[string]uint64
	order []string
	lines chan string // output after "ready"
}

// start runs the binary and reads "name address" lines up to "ready".
func start(t testing.TB, bin string, args ...string) *fixture {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	fx := &fixture{cmd: cmd, stdin: stdin, addrs: map[string]uint64{}, lines: make(chan string, 16)}
	t.Cleanup(func() { fx.stop() })
	done := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			if line == "ready" {
				done <- nil
				for sc.Scan() {
					fx.lines <- sc.Text()
				}
				close(fx.lines)
				return
			}
			name, addr, ok := strings.Cut(line, " ")
			if !ok {
				continue
			}
			v, err := strconv.ParseUint(strings.TrimPrefix(addr, "0x"), 16, 64)
			if err != nil {
				done <- err
				return
			}
			fx.addrs[name] = v
			fx.order = append(fx.order, name)
		}
		done <- io.ErrUnexpectedEOF
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("fixture %s: %v", bin, err)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("fixture %s did not start", bin)
	}
	return fx
}

func (fx *fixture) pid() int { return fx.cmd.Process.Pid }

// stop closes stdin and waits for the process to exit.
func (fx *fixture) stop() {
	if fx.stdin != nil {
		fx.stdin.Close()
		fx.stdin = nil
		_ = fx.cmd.Wait()
	}
}

func buildC(t testing.TB, dir, name, src string, args ...string) string {
	t.Helper()
	compiler := "gcc"
	ext := ".c"
	if strings.Contains(src, "namespace") {
		compiler, ext = "g++", ".cpp"
	}
	needTool(t, compiler)
	srcPath := writeFile(t, filepath.Join(dir, name+ext), src)
	bin := filepath.Join(dir, name)
	run(t, compiler, append([]string{"-O1", "-fno-omit-frame-pointer", "-Wl,--build-id", "-o", bin, srcPath}, args...)...)
	return bin
}
