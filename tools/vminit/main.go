// Command vminit is the /init of the throwaway VM scripts/arm64-vm.sh boots
// (an arm64 kernel under qemu-system-aarch64): it mounts what scorch needs,
// runs `scorch doctor` and a short CPU capture of the whole VM, prints a
// line the script checks, and powers the VM off. It runs as PID 1 with
// nothing else in the initramfs but /scorch.
//
// On the host, `go run ./tools/vminit -pack OUT.cpio.gz INIT SCORCH` writes
// that initramfs (a gzipped newc cpio: /init and /scorch).
package main

import (
	"compress/gzip"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) == 5 && os.Args[1] == "-pack" {
		if err := pack(os.Args[2], map[string]string{"init": os.Args[3], "scorch": os.Args[4]}); err != nil {
			fmt.Fprintln(os.Stderr, "vminit:", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) == 2 && os.Args[1] == "-work" {
		work()
		return
	}
	for _, m := range []struct{ src, dir, typ string }{
		{"proc", "/proc", "proc"},
		{"sysfs", "/sys", "sysfs"},
		{"devtmpfs", "/dev", "devtmpfs"},
		{"tmpfs", "/tmp", "tmpfs"},
		{"debugfs", "/sys/kernel/debug", "debugfs"},
		{"tracefs", "/sys/kernel/tracing", "tracefs"},
		{"bpf", "/sys/fs/bpf", "bpf"},
	} {
		os.MkdirAll(m.dir, 0o755)
		if err := unix.Mount(m.src, m.dir, m.typ, 0, ""); err != nil {
			fmt.Printf("vminit: mounting %s: %v\n", m.dir, err)
		}
	}
	run := func(args ...string) (string, error) {
		cmd := exec.Command("/scorch", args...)
		out, err := cmd.CombinedOutput()
		fmt.Printf("vminit: $ scorch %s\n%s", strings.Join(args, " "), out)
		return string(out), err
	}
	// The workload the captures must name: this program again, spinning in
	// main.spin and sleeping in main.nap.
	wl := exec.Command("/init", "-work")
	if err := wl.Start(); err != nil {
		fmt.Printf("vminit: starting the workload: %v\n", err)
	}
	doctor, err := run("doctor")
	ok := err == nil
	for _, c := range []string{"cpu", "offcpu", "wakeup", "offwake", "mem", "event"} {
		if !strings.Contains(doctor, fmt.Sprintf("  %-8s yes", c)) {
			ok = false
			fmt.Printf("vminit: collector %s does not load\n", c)
		}
	}
	// A capture of the whole VM, in each unwinding mode: the programs
	// attach, sample and their records decode.
	for _, mode := range []string{"fp", "auto", "dwarf"} {
		out, err := run("record", "--type", "cpu", "--duration", "2s", "--hz", "99", "--unwind", mode, "--format", "folded", "-o", "/tmp/cpu.folded")
		if err != nil || !strings.Contains(out, "events in") {
			ok = false
		}
		if b, err := os.ReadFile("/tmp/cpu.folded"); err != nil || !strings.Contains(string(b), "main.main;main.work;main.spin") {
			fmt.Printf("vminit: --unwind %s: the workload's main.main;main.work;main.spin is not in the folded stacks (%v):\n%s\n", mode, err, top(b))
			ok = false
		}
	}
	out, err := run("record", "--type", "offcpu", "--duration", "2s", "--format", "folded", "-o", "/tmp/off.folded")
	if err != nil || !strings.Contains(out, "kernel stack cache is off") {
		fmt.Println("vminit: the off-CPU capture did not note the kernel stack cache")
		ok = false
	}
	if b, err := os.ReadFile("/tmp/off.folded"); err != nil || !strings.Contains(string(b), "main.work;main.nap") {
		fmt.Printf("vminit: the off-CPU capture lacks main.work;main.nap (%v):\n%s\n", err, top(b))
		ok = false
	}
	for _, f := range []string{"/tmp/cpu.folded", "/tmp/off.folded"} {
		b, _ := os.ReadFile(f)
		fmt.Printf("vminit: %s, workload lines:\n%s\n", f, grep(b, "main.work"))
	}
	fmt.Printf("vminit: result ok=%v\n", ok)
	time.Sleep(100 * time.Millisecond)
	unix.Sync()
	unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
}

// pack writes a gzipped newc cpio archive of the files (name in the archive
// to path here), executable, at the root.
func pack(out string, files map[string]string) error {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	zw := gzip.NewWriter(f)
	ino := 1
	entry := func(name string, mode uint32, data []byte) error {
		hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
			ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name)+1, 0)
		ino++
		b := append([]byte(hdr), name...)
		b = append(b, 0)
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
		b = append(b, data...)
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
		_, err := zw.Write(b)
		return err
	}
	for name, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if err := entry(name, 0o100755, data); err != nil {
			return err
		}
	}
	if err := entry("TRAILER!!!", 0, nil); err != nil {
		return err
	}
	return zw.Close()
}

// work spins and sleeps forever, in functions the captures must name.
//
//go:noinline
func work() {
	for n := 0; ; n++ {
		spin()
		nap()
		if n%1000 == 999 {
			fmt.Printf("vminit: workload at round %d (%d)\n", n+1, sink)
		}
	}
}

var sink uint64

//go:noinline
func spin() {
	end := time.Now().Add(20 * time.Millisecond)
	for time.Now().Before(end) {
		for i := range 10000 {
			sink += uint64(i)
		}
	}
}

//go:noinline
func nap() {
	ts := unix.NsecToTimespec(int64(10 * time.Millisecond))
	unix.Nanosleep(&ts, nil)
}

// top is the first lines of a folded file, for a failure message.
func top(b []byte) string {
	lines := strings.Split(string(b), "\n")
	return strings.Join(lines[:min(len(lines), 8)], "\n")
}

// grep returns the lines of b containing s.
func grep(b []byte, s string) string {
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out[:min(len(out), 6)], "\n")
}
