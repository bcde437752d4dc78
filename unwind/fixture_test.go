package unwind

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// loadFixture reads a sample recorded by TestLiveWorkloads -record. Its
// binary is the committed testdata/<workload>.bin and its libraries the
// extracts of testdata/lib (TestRecordLibs), never this host's files, so
// that it unwinds the same on any host.
func loadFixture(t testing.TB, name string) (fixture, *mapsResolver) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var f fixture
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("%s.json: %v", name, err)
	}
	r := &mapsResolver{maps: f.Maps, rename: map[string]string{f.Binary: filepath.Join("testdata", name+".bin")}}
	for _, m := range f.Maps {
		if m.Path != f.Binary {
			r.rename[m.Path] = libFile(m.BuildID)
		}
	}
	return f, r
}

// libcResolves reports whether the fixture's libc resolves: whether its
// extract is in testdata/lib.
func libcResolves(r *mapsResolver) bool {
	for _, m := range r.maps {
		if filepath.Base(m.Path) == "libc.so.6" {
			info := loadELF(r.rename[m.Path])
			return info != nil && info.buildID == m.BuildID
		}
	}
	return false
}

// TestFixtures unwinds the recorded samples of every workload and checks
// them as the live test does.
func TestFixtures(t *testing.T) {
	for _, w := range workloads {
		if w.golang {
			continue
		}
		t.Run(w.name, func(t *testing.T) {
			f, r := loadFixture(t, w.name)
			if !libcResolves(r) {
				t.Fatal("the extract of the fixture's libc is missing from testdata/lib: go test -run 'TestLiveWorkloads|TestRecordLibs' -args -record writes it")
			}
			mode, err := ParseMode(f.Mode)
			if err != nil {
				t.Fatal(err)
			}
			s := f.Sample
			if leaf := r.names(s.FPChain[:1])[0]; !w.interesting(leaf) {
				t.Fatalf("fixture leaf %s is not the interesting function", leaf)
			}
			res := New(Options{}).Unwind(r, mode, s.Regs, s.Stack, s.FPChain)
			names := r.names(res.PCs)
			t.Logf("%s: %s (%v %s)", mode, join(names), res.Outcome, res.Reason)
			w.check(t, names, res, r.names(s.FPChain))
		})
	}
}

// TestSplice varies the leaf fixture (spin, a leaf without frame pointer,
// called by beta) to check how CFI frames and the chain are joined.
func TestSplice(t *testing.T) {
	f, r := loadFixture(t, "leaf")
	s := f.Sample
	chain := s.FPChain
	if len(chain) < 4 {
		t.Fatalf("fixture chain too short: %x", chain)
	}
	// The CFI walk alone, through the whole copy: the reference.
	full := New(Options{}).Unwind(r, ModeDWARF, s.Regs, s.Stack, nil)
	fullNames := r.names(full.PCs)
	if !hasSuffixFrames(fullNames, []string{"main", "alpha", "beta", "spin"}) {
		t.Fatalf("CFI alone gives %s", join(fullNames))
	}
	beta := full.PCs[1]
	// Without a chain the walk goes on through libc to _start when libc's
	// CFI is at hand, and ends at libc otherwise.
	noChainOutcome := OutcomeEnded
	if libcResolves(r) {
		noChainOutcome = OutcomeCFI
	}
	garbage := []uint64{chain[0], 0xdeadbeef, 0x7fff00001234, 42}

	tests := []struct {
		name    string
		mode    Mode
		regs    Regs
		stack   []byte
		chain   []uint64
		want    []uint64 // exact PCs; nil: check wantEnd only
		wantEnd []string // names the stack must end with
		outcome Outcome
		reason  string
	}{
		{name: "fp mode returns the chain", mode: ModeFP, regs: s.Regs, stack: s.Stack, chain: chain,
			want: chain, outcome: OutcomeFP},
		{name: "auto inserts the leaf's caller", mode: ModeAuto, regs: s.Regs, stack: s.Stack, chain: chain,
			want: append([]uint64{chain[0], beta}, chain[1:]...), outcome: OutcomeCFI},
		{name: "auto with a copy of only the return address", mode: ModeAuto, regs: s.Regs, stack: s.Stack[:8], chain: chain,
			want: append([]uint64{chain[0], beta}, chain[1:]...), outcome: OutcomeCFI},
		{name: "auto with a garbage rbp and chain keeps the CFI frames", mode: ModeAuto, regs: Regs{IP: s.Regs.IP, SP: s.Regs.SP, BP: 0x10},
			stack: s.Stack, chain: garbage, wantEnd: []string{"beta", "spin"}, outcome: OutcomeEnded, reason: ReasonNoMatch},
		{name: "auto keeps walking with CFI when the chain does not match", mode: ModeAuto, regs: s.Regs,
			stack: s.Stack, chain: []uint64{chain[0], 0xdeadbeef}, wantEnd: []string{"main", "alpha", "beta", "spin"}, outcome: noChainOutcome},
		{name: "auto without a chain unwinds with CFI alone", mode: ModeAuto, regs: s.Regs, stack: s.Stack, chain: chain[:1],
			wantEnd: []string{"main", "alpha", "beta", "spin"}, outcome: noChainOutcome},
		{name: "auto with an empty copy", mode: ModeAuto, regs: s.Regs, stack: nil, chain: chain,
			want: chain[:1], outcome: OutcomeEnded, reason: ReasonNoMatch},
		// beta's frame record is in the copy, alpha's is not.
		{name: "dwarf with the copy cut after alpha splices the chain", mode: ModeDWARF, regs: s.Regs, stack: s.Stack[:s.Regs.BP+16-s.Regs.SP], chain: chain,
			want: append([]uint64{chain[0], beta}, chain[1:]...), outcome: OutcomeCFI},
		{name: "pc outside any module falls back to the chain", mode: ModeAuto, regs: Regs{IP: 0x1000, SP: s.Regs.SP, BP: s.Regs.BP}, stack: s.Stack,
			chain: append([]uint64{0x1000}, chain[1:]...), want: append([]uint64{0x1000}, chain[1:]...), outcome: OutcomeFP},
	}
	u := New(Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := u.Unwind(r, tt.mode, tt.regs, tt.stack, tt.chain)
			names := r.names(res.PCs)
			if tt.want != nil && !slices.Equal(res.PCs, tt.want) {
				t.Errorf("got %s (%x), want %s", join(names), res.PCs, join(r.names(tt.want)))
			}
			if tt.wantEnd != nil && !hasSuffixFrames(names, tt.wantEnd) {
				t.Errorf("got %s, want it to end in %s", join(names), join(tt.wantEnd))
			}
			if res.Outcome != tt.outcome || tt.reason != "" && res.Reason != tt.reason {
				t.Errorf("outcome %v %q, want %v %q", res.Outcome, res.Reason, tt.outcome, tt.reason)
			}
			if len(res.PCs) == 0 || res.PCs[0] != tt.regs.IP {
				t.Errorf("PCs[0] = %x, want the IP %x", res.PCs, tt.regs.IP)
			}
			if res.Outcome == OutcomeEnded && res.Reason == "" {
				t.Error("ended without a reason")
			}
		})
	}
}

func TestParseMode(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Mode
		ok   bool
	}{{"fp", ModeFP, true}, {"auto", ModeAuto, true}, {"dwarf", ModeDWARF, true}, {"", 0, false}, {"DWARF", 0, false}, {"lbr", 0, false}} {
		got, err := ParseMode(tt.in)
		if (err == nil) != tt.ok || tt.ok && got != tt.want {
			t.Errorf("ParseMode(%q) = %v, %v", tt.in, got, err)
		}
		if err != nil && !containsAll(err.Error(), "fp", "auto", "dwarf", tt.in) {
			t.Errorf("error %q does not name the value and the allowed ones", err)
		}
		if tt.ok && got.String() != tt.in {
			t.Errorf("Mode(%d).String() = %q, want %q", got, got.String(), tt.in)
		}
	}
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// TestConcurrent unwinds every fixture from several goroutines through one
// Unwinder whose cache holds two tables, so that tables are evicted
// and reloaded while others use them; results must not change.
func TestConcurrent(t *testing.T) {
	type job struct {
		mode  Mode
		s     sample
		r     *mapsResolver
		want  []uint64
		wantO Outcome
	}
	var jobs []job
	ref := New(Options{})
	for _, w := range workloads {
		if w.golang {
			continue
		}
		f, r := loadFixture(t, w.name)
		r.find(0) // fill the resolver's per-mapping cache before sharing it
		res := ref.Unwind(r, w.mode, f.Sample.Regs, f.Sample.Stack, f.Sample.FPChain)
		jobs = append(jobs, job{w.mode, f.Sample, r, res.PCs, res.Outcome})
	}
	u := New(Options{CacheBytes: 1})
	done := make(chan error)
	for g := 0; g < 4; g++ {
		go func() {
			for i := 0; i < 40; i++ {
				j := jobs[(i+g)%len(jobs)]
				res := u.Unwind(j.r, j.mode, j.s.Regs, j.s.Stack, j.s.FPChain)
				if !slices.Equal(res.PCs, j.want) || res.Outcome != j.wantO {
					done <- fmt.Errorf("unwinding %v gave %x %v, want %x %v", j.mode, res.PCs, res.Outcome, j.want, j.wantO)
					return
				}
			}
			done <- nil
		}()
	}
	for g := 0; g < 4; g++ {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
