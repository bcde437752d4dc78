package unwind

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

var record = flag.Bool("record", false, "rewrite the fixtures in testdata/ from live workloads (root)")

// workload is a C program of the issue, the moment at which to stop it and
// what a user checks in its unwound stack.
type workload struct {
	name  string
	flags []string
	mode  Mode
	// libcDebug: the interesting function is named only by libc6-dbg.
	libcDebug bool
	// golang: testdata/<name>.go built with go build (no fixture: the
	// binary is large); otherwise testdata/<name>.c built with gcc.
	golang bool
	// interesting reports whether a sample whose leaf is this function is
	// one to check.
	interesting func(leaf string) bool
	// check asserts on the unwound names (root first) and result; fp are the
	// names of the frame-pointer chain alone.
	check func(t *testing.T, names []string, res Result, fp []string)
}

var workloads = []workload{
	{
		name:        "leaf",
		flags:       []string{"-O1", "-fno-omit-frame-pointer"},
		mode:        ModeAuto,
		interesting: func(leaf string) bool { return leaf == "spin" },
		check: func(t *testing.T, names []string, res Result, fp []string) {
			if !hasSuffixFrames(names, []string{"main", "alpha", "beta", "spin"}) {
				t.Errorf("stack %s does not end in main;alpha;beta;spin", join(names))
			}
			if res.Outcome != OutcomeCFI {
				t.Errorf("outcome %v (%s), want cfi", res.Outcome, res.Reason)
			}
			if containsInOrder(fp, []string{"beta"}) {
				t.Logf("frame pointers alone found beta too: %s", join(fp))
			}
		},
	},
	{
		name:        "memset",
		flags:       []string{"-O1", "-fno-omit-frame-pointer"},
		mode:        ModeAuto,
		libcDebug:   true,
		interesting: func(leaf string) bool { return strings.Contains(leaf, "memset") },
		check: func(t *testing.T, names []string, res Result, fp []string) {
			n := len(names)
			if n < 3 || !strings.Contains(names[n-1], "memset") || names[n-2] != "fill_buffer" || names[n-3] != "main" {
				t.Errorf("stack %s does not end in main;fill_buffer;*memset*", join(names))
			}
			if res.Outcome != OutcomeCFI {
				t.Errorf("outcome %v (%s), want cfi", res.Outcome, res.Reason)
			}
		},
	},
	{
		name:        "napper",
		flags:       []string{"-O1", "-fno-omit-frame-pointer"},
		mode:        ModeAuto,
		interesting: func(leaf string) bool { return strings.Contains(leaf, "nanosleep") },
		check: func(t *testing.T, names []string, res Result, fp []string) {
			n := len(names)
			if !containsInOrder(names, []string{"main", "napper", "nanosleep"}) || !strings.Contains(names[n-1], "nanosleep") {
				t.Errorf("stack %s lacks main;napper;...nanosleep", join(names))
			}
			if res.Outcome != OutcomeCFI {
				t.Errorf("outcome %v (%s), want cfi", res.Outcome, res.Reason)
			}
		},
	},
	{
		name:        "goleaf",
		golang:      true,
		mode:        ModeAuto,
		interesting: func(leaf string) bool { return leaf == "main.leaf" },
		check: func(t *testing.T, names []string, res Result, fp []string) {
			if !hasSuffixFrames(names, []string{"main.main", "main.alpha", "main.beta", "main.leaf"}) {
				t.Errorf("stack %s does not end in main.main;main.alpha;main.beta;main.leaf", join(names))
			}
			if res.Outcome != OutcomeCFI {
				t.Errorf("outcome %v (%s), want cfi", res.Outcome, res.Reason)
			}
		},
	},
	{
		name:        "signal",
		flags:       []string{"-O1", "-fno-omit-frame-pointer"},
		mode:        ModeDWARF,
		libcDebug:   true,
		interesting: func(leaf string) bool { return leaf == "in_handler" },
		check: func(t *testing.T, names []string, res Result, fp []string) {
			if !containsInOrder(names, []string{"main", "work", "__restore_rt", "on_tick", "in_handler"}) {
				t.Errorf("stack %s lacks main;work;__restore_rt;on_tick;in_handler", join(names))
			}
			if names[0] != "_start" || res.Outcome != OutcomeCFI {
				t.Errorf("stack %s: outcome %v (%s), want cfi down to _start", join(names), res.Outcome, res.Reason)
			}
		},
	},
	{
		name:        "qsort",
		flags:       []string{"-O1", "-fno-omit-frame-pointer"},
		mode:        ModeDWARF,
		libcDebug:   true,
		interesting: func(leaf string) bool { return strings.HasPrefix(leaf, "msort_with_tmp") },
		check: func(t *testing.T, names []string, res Result, fp []string) {
			if !containsInOrder(names, []string{"main", "sort_records", "qsort", "msort_with_tmp"}) {
				t.Errorf("stack %s lacks main;sort_records;...qsort...;msort_with_tmp", join(names))
			}
			if names[0] != "_start" || res.Outcome != OutcomeCFI {
				t.Errorf("stack %s: outcome %v (%s), want cfi down to _start", join(names), res.Outcome, res.Reason)
			}
		},
	},
	{
		name:        "nofp",
		flags:       []string{"-O2"},
		mode:        ModeDWARF,
		interesting: func(leaf string) bool { return leaf == "inner" },
		check: func(t *testing.T, names []string, res Result, fp []string) {
			if !hasSuffixFrames(names, []string{"main", "outer", "middle", "inner"}) {
				t.Errorf("stack %s does not end in main;outer;middle;inner", join(names))
			}
			if names[0] != "_start" || res.Outcome != OutcomeCFI {
				t.Errorf("stack %s: outcome %v (%s), want cfi down to _start", join(names), res.Outcome, res.Reason)
			}
		},
	},
}

// copyLen is the stack copy the BPF program makes in each mode.
func copyLen(m Mode) int {
	if m == ModeDWARF {
		return 16 << 10
	}
	return 1 << 10
}

// sample is what the BPF sampler delivers for one user stack.
type sample struct {
	Regs    Regs     `json:"regs"`
	Stack   []byte   `json:"stack"`
	FPChain []uint64 `json:"fp_chain"`
}

// fixture is a recorded sample with the maps needed to resolve it.
type fixture struct {
	Workload string    `json:"workload"`
	Mode     string    `json:"mode"`
	Binary   string    `json:"binary"` // path at recording time, replaced by testdata/<workload>.bin
	Maps     []mapping `json:"maps"`
	Sample   sample    `json:"sample"`
}

// takeSample stops the process with ptrace and reads what the BPF program
// would: registers, the top of the stack and the kernel's frame-pointer walk.
func takeSample(pid, n int) (sample, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := unix.PtraceAttach(pid); err != nil {
		return sample{}, fmt.Errorf("attaching: %w", err)
	}
	defer unix.PtraceDetach(pid)
	var ws unix.WaitStatus
	if _, err := unix.Wait4(pid, &ws, 0, nil); err != nil {
		return sample{}, fmt.Errorf("waiting: %w", err)
	}
	if !ws.Stopped() {
		return sample{}, fmt.Errorf("process not stopped: %v", ws)
	}
	var regs unix.PtraceRegs
	if err := unix.PtraceGetRegs(pid, &regs); err != nil {
		return sample{}, fmt.Errorf("reading registers: %w", err)
	}
	mem, err := os.Open(fmt.Sprintf("/proc/%d/mem", pid))
	if err != nil {
		return sample{}, err
	}
	defer mem.Close()
	s := sample{Regs: ptraceRegs(&regs)}
	// Like bpf_probe_read_user of a fixed size, shortened at the stack's end.
	buf := make([]byte, n)
	for n > 0 {
		if _, err := mem.ReadAt(buf[:n], int64(s.Regs.SP)); err == nil {
			break
		}
		n -= 8
	}
	s.Stack = buf[:n]
	// The kernel's user frame-pointer walk (perf_callchain_user).
	s.FPChain = []uint64{s.Regs.IP}
	fp := s.Regs.BP
	var frame [16]byte
	for len(s.FPChain) < MaxDepth {
		if _, err := mem.ReadAt(frame[:], int64(fp)); err != nil || fp >= 1<<47 {
			break
		}
		s.FPChain = append(s.FPChain, binary.LittleEndian.Uint64(frame[8:]))
		fp = binary.LittleEndian.Uint64(frame[:])
	}
	return s, nil
}

// liveWorkload builds and starts a workload; the process is killed at cleanup.
func liveWorkload(t *testing.T, w workload) (pid int, bin string) {
	t.Helper()
	if w.golang {
		bin = buildGo(t, filepath.Join("testdata", w.name+".go"))
	} else {
		gcc := requireGCC(t)
		bin = filepath.Join(t.TempDir(), w.name)
		args := append(append([]string{}, w.flags...), "-o", bin, filepath.Join("testdata", w.name+".c"))
		if out, err := exec.Command(gcc, args...).CombinedOutput(); err != nil {
			t.Fatalf("gcc %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	cmd := exec.Command(bin, "120")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd.Process.Pid, bin
}

// requireLibcDebug skips when libc6-dbg's symbols for this host's libc are
// missing: libc's internal functions have no other names.
func requireLibcDebug(t testing.TB) {
	t.Helper()
	info := loadELF("/lib/x86_64-linux-gnu/libc.so.6")
	if info == nil || info.buildID == "" {
		t.Skip("no /lib/x86_64-linux-gnu/libc.so.6 with a build ID")
	}
	dbg := filepath.Join("/usr/lib/debug/.build-id", info.buildID[:2], info.buildID[2:]+".debug")
	if _, err := os.Stat(dbg); err != nil {
		t.Skipf("libc6-dbg is not installed (%s): libc's internal functions cannot be named", dbg)
	}
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: stops the workloads with ptrace")
	}
}

// TestLiveWorkloads unwinds samples of the workloads taken with
// ptrace at moments when the interesting function is the leaf.
func TestLiveWorkloads(t *testing.T) {
	requireRoot(t)
	for _, w := range workloads {
		t.Run(w.name, func(t *testing.T) {
			if w.libcDebug {
				requireLibcDebug(t)
			}
			pid, bin := liveWorkload(t, w)
			time.Sleep(100 * time.Millisecond)
			u := New(Options{})
			const want = 5
			got, tries := 0, 0
			var last []string
			for ; got < want && tries < 2000; tries++ {
				time.Sleep(time.Duration(1+rand.IntN(5)) * time.Millisecond)
				s, err := takeSample(pid, copyLen(w.mode))
				if err != nil {
					if errors.Is(err, unix.ESRCH) {
						t.Fatalf("workload exited: %v", err)
					}
					continue
				}
				mb, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", pid))
				if err != nil {
					t.Fatal(err)
				}
				maps, err := parseMaps(strings.NewReader(string(mb)))
				if err != nil {
					t.Fatal(err)
				}
				r := &mapsResolver{maps: maps}
				leaf := r.names(s.FPChain[:1])[0]
				last = append(last, leaf)
				if !w.interesting(leaf) {
					continue
				}
				got++
				res := u.Unwind(r, w.mode, s.Regs, s.Stack, s.FPChain)
				names := r.names(res.PCs)
				t.Logf("%s: %s (%v %s); frame pointers: %s", w.mode, join(names), res.Outcome, res.Reason, join(r.names(s.FPChain)))
				w.check(t, names, res, r.names(s.FPChain))
				if *record && got == 1 && !w.golang {
					r.fillBuildIDs()
					writeFixture(t, fixture{Workload: w.name, Mode: w.mode.String(), Binary: bin, Maps: r.maps, Sample: s}, bin)
				}
			}
			if got < want {
				if len(last) > 20 {
					last = last[len(last)-20:]
				}
				t.Fatalf("only %d of %d samples in the interesting function after %d tries; last leaves: %v", got, want, tries, last)
			}
		})
	}
}

// buildGo builds a one-file Go program in a module of its own.
func buildGo(t *testing.T, src string) string {
	t.Helper()
	dir := t.TempDir()
	code, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), code, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module workload\n\ngo 1.21\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "workload")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func writeFixture(t *testing.T, f fixture, bin string) {
	t.Helper()
	b, err := json.MarshalIndent(f, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("testdata", f.Workload+".json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	exe, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("testdata", f.Workload+".bin"), exe, 0o755); err != nil {
		t.Fatal(err)
	}
}
