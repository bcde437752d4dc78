// Package testutil has helpers shared by scorch's tests: root checks and
// building small workloads with the system compilers.
package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// RequireRoot skips the test unless it runs as root, which loading BPF
// programs needs, on a kernel it can make system calls to: under
// qemu-user (make test runs the arm64 build of the unit tests so) the bpf
// system call and ptrace are not emulated.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to load BPF programs: run the tests with sudo (make test does)")
	}
	if Emulated() {
		t.Skip("the bpf system call is not implemented here (qemu-user, which make test runs the arm64 unit tests under, or a kernel without CONFIG_BPF_SYSCALL): BPF, ptrace and mount tests need a real " + runtime.GOARCH + " kernel")
	}
}

// Emulated reports whether the test runs under a user-mode emulator
// (qemu-user), found by the bpf system call it does not implement: a real
// kernel answers a bad command with EINVAL or EPERM, never ENOSYS.
func Emulated() bool {
	_, _, errno := unix.Syscall(unix.SYS_BPF, ^uintptr(0), 0, 0)
	return errno == unix.ENOSYS
}

// RequireTool skips the test when a program is not installed.
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s is not installed (make test installs it: scripts/debian-packages.txt)", name)
	}
	return path
}

// BuildC compiles one C source with the given compiler ("gcc" or "clang")
// and flags into a temporary directory and returns the executable's path.
func BuildC(t testing.TB, compiler, src string, flags ...string) string {
	t.Helper()
	RequireTool(t, compiler)
	dir := t.TempDir()
	cfile := filepath.Join(dir, "workload.c")
	if err := os.WriteFile(cfile, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "workload")
	args := append(append([]string{}, flags...), "-o", bin, cfile)
	if out, err := exec.Command(compiler, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", compiler, strings.Join(args, " "), err, out)
	}
	return bin
}

// BuildGo builds a single-file Go program (package main) and returns the
// executable's path. Extra flags go to `go build`.
func BuildGo(t testing.TB, src string, flags ...string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module workload\n\ngo 1.21\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "workload")
	args := append(append([]string{"build"}, flags...), "-o", bin, ".")
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// Start runs a program in the background and kills it when the test ends.
func Start(t testing.TB, bin string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Stdout = os.Stderr
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd
}
