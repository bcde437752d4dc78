package unwind_test

import (
	"context"
	"debug/elf"
	"encoding/hex"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/internal/testutil"
	"github.com/scorch-dev/scorch/profiler"
)

// record samples a workload of testdata/ through the real BPF pipeline and
// returns its folded stacks; unwind "" is the default mode.
func record(t *testing.T, name, unwind string, flags ...string) (map[string]int64, *capture.Capture) {
	t.Helper()
	testutil.RequireRoot(t)
	file := name + ".c"
	if name == "goleaf" {
		file = name + ".go"
	}
	src, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	var bin string
	if name == "goleaf" {
		bin = testutil.BuildGo(t, string(src), flags...)
	} else {
		bin = testutil.BuildC(t, "gcc", string(src), flags...)
	}
	cmd := testutil.Start(t, bin, "60")
	time.Sleep(100 * time.Millisecond)
	c, err := profiler.Record(context.Background(), capture.Params{
		Type: capture.CPU, PIDs: []int{cmd.Process.Pid}, Hz: 499,
		Duration: capture.Duration(2 * time.Second), Unwind: unwind,
	}, profiler.Options{})
	if err != nil {
		t.Fatal(err)
	}
	stacks := map[string]int64{}
	for _, sv := range c.Aggregate(capture.Query{}) {
		stacks[strings.Join(c.FoldedStack(sv.Stack), ";")] += sv.Value
	}
	st := c.Meta.Stats
	if unwind == "" {
		unwind = "(default)"
	}
	t.Logf("%s --unwind %s: %d samples (%d lost), cfi %d, fp %d, ended %d %v; top: %s", name, unwind, total(stacks), st.Lost,
		st.UnwindCFI, st.UnwindFP, st.UnwindEnded, st.Counters.Sorted(), strings.Join(top(stacks, 4), " | "))
	// The workload competes for the CPU with the rest of the machine:
	// only the proportions are checked, on enough samples.
	if total(stacks) < 100 {
		t.Fatalf("only %d samples in 2 s at 499 Hz (%d lost)", total(stacks), st.Lost)
	}
	return stacks, c
}

// share sums the samples of stacks that contain each part, in this order.
func share(stacks map[string]int64, parts ...string) (n int64) {
	for s, v := range stacks {
		rest := s
		ok := true
		for _, p := range parts {
			i := strings.Index(rest, p)
			if i < 0 {
				ok = false
				break
			}
			rest = rest[i+len(p):]
		}
		if ok {
			n += v
		}
	}
	return n
}

func total(stacks map[string]int64) (n int64) {
	for _, v := range stacks {
		n += v
	}
	return n
}

func top(stacks map[string]int64, n int) []string {
	keys := make([]string, 0, len(stacks))
	for k := range stacks {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return stacks[keys[i]] > stacks[keys[j]] })
	if len(keys) > n {
		keys = keys[:n]
	}
	return keys
}

// requireLibcDebug skips when libc6-dbg's symbols for this host's libc are
// missing: libc's internal functions have no other names.
func requireLibcDebug(t *testing.T) {
	t.Helper()
	f, err := elf.Open("/lib/x86_64-linux-gnu/libc.so.6")
	if err != nil {
		t.Skipf("no libc to check: %v", err)
	}
	defer f.Close()
	note := f.Section(".note.gnu.build-id")
	var id []byte
	if note != nil {
		id, _ = note.Data()
	}
	if len(id) <= 16 {
		t.Skip("libc has no build ID")
	}
	h := hex.EncodeToString(id[16:])
	dbg := filepath.Join("/usr/lib/debug/.build-id", h[:2], h[2:]+".debug")
	if _, err := os.Stat(dbg); err != nil {
		t.Skipf("libc6-dbg is not installed (%s): libc's internal functions cannot be named", dbg)
	}
}

func frac(part, all int64) float64 { return float64(part) / float64(max(all, 1)) }

// The leaf spin has no frame pointer; auto mode finds beta and gamma_, and
// beta, with twice the work, has twice the samples.
func TestPipelineLeafAuto(t *testing.T) {
	stacks, c := record(t, "share", "auto", "-O1", "-fno-omit-frame-pointer")
	all := total(stacks)
	beta := share(stacks, "main;alpha;beta;spin")
	gamma := share(stacks, "main;alpha;gamma_;spin")
	if f := frac(beta+gamma, all); f < 0.9 {
		t.Errorf("main;alpha;beta;spin or main;alpha;gamma_;spin in only %.0f%% of samples", f*100)
	}
	if gamma == 0 {
		t.Fatal("no main;alpha;gamma_;spin samples")
	}
	if r := float64(beta) / float64(gamma); r < 1.6 || r > 2.4 {
		t.Errorf("beta/gamma_ = %.2f (%d/%d), want 2.0 ± 0.4", r, beta, gamma)
	}
	if st := c.Meta.Stats; st.UnwindCFI < uint64(beta+gamma)/2 {
		t.Errorf("only %d stacks counted as completed by CFI", st.UnwindCFI)
	}
}

// memset is a libc leaf without a frame pointer: auto mode keeps its caller.
func TestPipelineMemsetAuto(t *testing.T) {
	requireLibcDebug(t)
	stacks, _ := record(t, "memset", "auto", "-O1", "-fno-omit-frame-pointer")
	if f := frac(share(stacks, "main;fill_buffer;", "memset"), total(stacks)); f < 0.7 {
		t.Errorf("main;fill_buffer;...memset... in only %.0f%% of samples", f*100)
	}
}

// glibc's merge sort recursion, unwound with CFI in the default mode.
func TestPipelineQsort(t *testing.T) {
	requireLibcDebug(t)
	stacks, _ := record(t, "qsort", "", "-O1", "-fno-omit-frame-pointer")
	if f := frac(share(stacks, "main;sort_records;", "qsort", ";msort_with_tmp"), total(stacks)); f < 0.5 {
		t.Errorf("main;sort_records;...qsort...;msort_with_tmp in only %.0f%% of samples", f*100)
	}
}

// A binary without any frame pointer (-O2), unwound with CFI only, in the
// default mode.
func TestPipelineNoFP(t *testing.T) {
	stacks, _ := record(t, "nofp", "", "-O2")
	if f := frac(share(stacks, "main;outer;middle;inner"), total(stacks)); f < 0.9 {
		t.Errorf("main;outer;middle;inner in only %.0f%% of samples", f*100)
	}
}

// A Go leaf has no frame; its CFI is in .debug_frame.
func TestPipelineGoLeafAuto(t *testing.T) {
	stacks, _ := record(t, "goleaf", "auto")
	if f := frac(share(stacks, "main.main;main.alpha;main.beta;main.leaf"), total(stacks)); f < 0.8 {
		t.Errorf("main.main;main.alpha;main.beta;main.leaf in only %.0f%% of samples", f*100)
	}
}

// A stripped Go binary (-ldflags=-s -w) has no .debug_frame: the leaf's
// caller, main.beta, comes from the pclntab's frame sizes.
func TestPipelineGoLeafStripped(t *testing.T) {
	stacks, _ := record(t, "goleaf", "auto", "-ldflags=-s -w")
	if f := frac(share(stacks, "main.main;main.alpha;main.beta;main.leaf"), total(stacks)); f < 0.8 {
		t.Errorf("main.main;main.alpha;main.beta;main.leaf in only %.0f%% of samples", f*100)
	}
}

// A signal handler's stack continues, through the signal frame, into the
// code it interrupted, in the default mode.
func TestPipelineSignal(t *testing.T) {
	stacks, _ := record(t, "signal", "", "-O1", "-fno-omit-frame-pointer")
	handler := share(stacks, ";on_tick;in_handler")
	through := share(stacks, "main;work;", ";on_tick;in_handler")
	if handler == 0 {
		t.Fatal("no samples in on_tick;in_handler")
	}
	if f := frac(through, handler); f < 0.8 {
		t.Errorf("only %.0f%% of the handler's samples continue into main;work", f*100)
	}
}
