package unwind

import (
	"bytes"
	"debug/elf"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The arm64 fixture: testdata/arm64/chains.bin, built from chains.c by
// TestRecordArm64 (-record) with Debian's cross compiler, and the stacks of
// its three call chains snapshot under qemu-user's gdb stub: registers, 4
// KiB of stack from sp and the frame-record chain the kernel's arm64
// perf_callchain_user would walk (pointer authentication stripped). They
// unwind on any host: the unwinders read the file's machine, not the host's.
const arm64Dir = "testdata/arm64"

// arm64Sample is one snapshot of the fixture.
type arm64Sample struct {
	Name  string `json:"name"`  // which breakpoint
	Break string `json:"break"` // gdb location
	sample
}

// arm64Snaps are the snapshots: where to stop, and the frames a user must
// see, root first. Breaking in the leaves' loop puts the pc past their (empty)
// prologue: the return address is in x30 only. caller stops in nf_b right
// after nf_leaf returned to it: its return address is saved on the stack.
var arm64Snaps = []struct {
	name, brk, finish string
	frames            []string
	// auto is what --unwind auto gives when it differs: the frame-record
	// chain it splices on lacks glibc's __libc_start_call_main, built
	// without frame pointers.
	auto []string
}{
	{"fp", "*(fp_leaf+0x14)", "", []string{"main", "fp_a", "fp_b", "fp_leaf"},
		[]string{"_start", "__libc_start_main", "main", "fp_a", "fp_b", "fp_leaf"}},
	{"nofp", "*(nf_leaf+0x14)", "", []string{"main", "nf_a", "nf_b", "nf_leaf"}, nil},
	{"pac", "*(pac_leaf+0x18)", "", []string{"main", "pac_a", "pac_b", "pac_leaf"}, nil},
	{"caller", "*(nf_leaf+0x14)", "delete\nfinish", []string{"main", "nf_a", "nf_b"}, nil},
}

// arm64Root is the frames glibc's static start-up code puts under main.
var arm64Root = []string{"_start", "__libc_start_main", "__libc_start_call_main"}

// staticResolver resolves a non-PIE static binary: its PT_LOAD segments
// at their own addresses.
func staticResolver(t testing.TB, bin string) *mapsResolver {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := &mapsResolver{}
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD {
			r.maps = append(r.maps, mapping{Start: p.Vaddr &^ 0xfff, End: p.Vaddr + p.Memsz, Offset: p.Off &^ 0xfff, Path: bin})
		}
	}
	return r
}

func loadArm64Fixture(t testing.TB) []arm64Sample {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(arm64Dir, "chains.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ss []arm64Sample
	if err := json.Unmarshal(b, &ss); err != nil {
		t.Fatalf("chains.json: %v", err)
	}
	if len(ss) != len(arm64Snaps) {
		t.Fatalf("chains.json has %d samples, want %d: re-record with -record", len(ss), len(arm64Snaps))
	}
	return ss
}

// TestArm64Fixtures unwinds each snapshot with the CFI unwinder (dwarf and
// auto modes) and with the compact tables the BPF unwinder will use: every
// frame is named, in order, from the leaf to _start.
func TestArm64Fixtures(t *testing.T) {
	bin := filepath.Join(arm64Dir, "chains.bin")
	ss := loadArm64Fixture(t)
	r := staticResolver(t, bin)
	ct := buildCompactFile(t, bin)
	if ct.Arch.Name != "arm64" {
		t.Fatalf("compact table arch %s", ct.Arch.Name)
	}
	for i, snap := range arm64Snaps {
		s := ss[i]
		if s.Name != snap.name {
			t.Fatalf("sample %d is %q, want %q: re-record", i, s.Name, snap.name)
		}
		want := append(slices.Clone(arm64Root), snap.frames...)
		t.Run(snap.name, func(t *testing.T) {
			if got := r.names(s.FPChain[:1]); got[0] != snap.frames[len(snap.frames)-1] {
				t.Fatalf("the snapshot's pc is in %s, want %s", got[0], snap.frames[len(snap.frames)-1])
			}
			u := New(Options{})
			res := u.Unwind(r, ModeDWARF, s.Regs, s.Stack, nil)
			if got := r.names(res.PCs); !slices.Equal(got, want) || res.Outcome != OutcomeCFI {
				t.Errorf("dwarf: %s (%v %s), want %s", join(got), res.Outcome, res.Reason, join(want))
			}
			// auto: CFI for the frames frame pointers miss, then the chain.
			wantAuto := want
			if snap.auto != nil {
				wantAuto = snap.auto
			}
			res = u.Unwind(r, ModeAuto, s.Regs, s.Stack, s.FPChain)
			if got := r.names(res.PCs); !slices.Equal(got, wantAuto) {
				t.Errorf("auto: %s (%v %s), want %s; chain %s", join(got), res.Outcome, res.Reason, join(wantAuto), join(r.names(s.FPChain)))
			}
			pcs, reason := WalkCompact(fixedFinder{ct}, s.Regs, s.Regs.LR, s.Stack)
			if got := r.names(pcs); !slices.Equal(got, want) || reason != "" {
				t.Errorf("compact: %s (%q), want %s", join(got), reason, join(want))
			}
		})
	}

	// What the arm64 rules are for: without x30 the leaf's caller is lost
	// (the walk says why), and without stripping the signatures the pac
	// chain's return addresses are in no module.
	fp := ss[0]
	noLR := fp.Regs
	noLR.LR = 0
	if res := New(Options{}).Unwind(r, ModeDWARF, Regs{IP: noLR.IP, SP: noLR.SP, BP: noLR.BP}, fp.Stack, nil); res.Outcome != OutcomeEnded {
		t.Errorf("fp without x30: %s (%v), want an early end", join(r.names(res.PCs)), res.Outcome)
	}
	pac := ss[2]
	signed := 0
	for off := 0; off+8 <= len(pac.Stack); off += 8 {
		v := leUint64(pac.Stack[off:])
		if v>>48 != 0 && v&(1<<48-1) >= 0x400000 && v&(1<<48-1) < 0x500000 {
			signed++
		}
	}
	if signed == 0 {
		t.Error("the pac snapshot's stack holds no signed return address: was it recorded with pointer authentication?")
	}
	if pac.Regs.LR>>48 == 0 {
		t.Errorf("pac_leaf (pac-ret+leaf) has x30 %#x, want it signed", pac.Regs.LR)
	}
}

func leUint64(b []byte) uint64 {
	var v uint64
	for i := 7; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v
}

// TestRecordArm64 rebuilds testdata/arm64/chains.bin and snapshots it under
// qemu-aarch64-static's gdb stub with gdb-multiarch (-record only).
func TestRecordArm64(t *testing.T) {
	if !*record {
		t.Skip("records the arm64 fixture with -record")
	}
	tools := map[string]string{}
	for _, name := range []string{"aarch64-linux-gnu-gcc", "qemu-aarch64-static", "gdb-multiarch"} {
		p, err := exec.LookPath(name)
		if err != nil {
			t.Fatalf("%s is needed to record (scripts/debian-packages.txt)", name)
		}
		tools[name] = p
	}
	dir := t.TempDir()
	gcc := tools["aarch64-linux-gnu-gcc"]
	src, _ := filepath.Abs(filepath.Join(arm64Dir, "chains.c"))
	parts := [][]string{
		{"-fomit-frame-pointer"},
		{"-fno-omit-frame-pointer"},
		{"-fomit-frame-pointer"},
		{"-fomit-frame-pointer", "-mbranch-protection=pac-ret+leaf"},
	}
	var objs []string
	for i, flags := range parts {
		o := filepath.Join(dir, fmt.Sprintf("p%d.o", i))
		args := append([]string{"-O2", "-DPART=" + strconv.Itoa(i), "-c", src, "-o", o}, flags...)
		if out, err := exec.Command(gcc, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", gcc, args, err, out)
		}
		objs = append(objs, o)
	}
	bin := filepath.Join(dir, "chains.bin")
	if out, err := exec.Command(gcc, append([]string{"-static", "-o", bin}, objs...)...).CombinedOutput(); err != nil {
		t.Fatalf("linking: %v\n%s", err, out)
	}
	var ss []arm64Sample
	for _, snap := range arm64Snaps {
		s, err := snapshotArm64(tools, dir, bin, snap.brk, snap.finish)
		if err != nil {
			t.Fatalf("%s: %v", snap.name, err)
		}
		s.Name, s.Break = snap.name, snap.brk
		ss = append(ss, s)
	}
	out, err := json.MarshalIndent(ss, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(arm64Dir, "chains.bin"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(arm64Dir, "chains.json"), append(out, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

// snapshotArm64 runs bin under qemu-user with a gdb stub, stops at brk
// (then runs to the caller with finish) and reads what the BPF program
// would: pc, sp, x29, x30, the stack from sp and the frame-record chain.
func snapshotArm64(tools map[string]string, dir, bin, brk, finish string) (arm64Sample, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return arm64Sample{}, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	qemu := exec.Command(tools["qemu-aarch64-static"], "-g", strconv.Itoa(port), bin)
	if err := qemu.Start(); err != nil {
		return arm64Sample{}, err
	}
	defer func() {
		qemu.Process.Kill()
		qemu.Wait()
	}()
	time.Sleep(300 * time.Millisecond) // the stub listens
	stack := filepath.Join(dir, "stack")
	os.Remove(stack)
	script := fmt.Sprintf(`set pagination off
set confirm off
target remote 127.0.0.1:%d
break %s
continue
%s
printf "REGS %%lx %%lx %%lx %%lx\n", $pc, $sp, $x29, $x30
set $f = $x29
set $n = 0
while $f != 0 && $n < 64
  printf "FP %%lx\n", (*(unsigned long*)($f+8)) & 0xffffffffffff
  set $f = *(unsigned long*)$f
  set $n = $n + 1
end
dump binary memory %s $sp $sp+4096
kill
`, port, brk, finish, stack)
	gdbFile := filepath.Join(dir, "snap.gdb")
	if err := os.WriteFile(gdbFile, []byte(script), 0o644); err != nil {
		return arm64Sample{}, err
	}
	out, err := exec.Command(tools["gdb-multiarch"], "-batch", "-nx", "-ex", "file "+bin, "-x", gdbFile).CombinedOutput()
	if err != nil {
		return arm64Sample{}, fmt.Errorf("gdb: %v\n%s", err, out)
	}
	var s arm64Sample
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 5 && f[0] == "REGS":
			var v [4]uint64
			for i := range v {
				if v[i], err = strconv.ParseUint(f[i+1], 16, 64); err != nil {
					return s, fmt.Errorf("bad line %q", line)
				}
			}
			s.Regs = Regs{IP: v[0], SP: v[1], BP: v[2], LR: v[3]}
		case len(f) == 2 && f[0] == "FP":
			v, err := strconv.ParseUint(f[1], 16, 64)
			if err != nil {
				return s, fmt.Errorf("bad line %q", line)
			}
			s.FPChain = append(s.FPChain, v)
		}
	}
	if s.Regs.IP == 0 {
		return s, fmt.Errorf("no registers in gdb's output:\n%s", out)
	}
	s.FPChain = append([]uint64{s.Regs.IP}, s.FPChain...)
	if s.Stack, err = os.ReadFile(stack); err != nil {
		return s, fmt.Errorf("no stack dump: %v\n%s", err, out)
	}
	if len(s.Stack) == 0 || bytes.Equal(s.Stack, make([]byte, len(s.Stack))) {
		return s, fmt.Errorf("empty stack dump")
	}
	return s, nil
}

// FuzzNegateRAState: any CFI program is rewritten without a panic, to one
// of the same length that differs only where a 0x2d became a nop, and a
// program without 0x2d is returned as is.
func FuzzNegateRAState(f *testing.F) {
	f.Add([]byte{0x2d, 0x0c, 0x1f, 0x00})                   // negate_ra_state, def_cfa sp+0
	f.Add([]byte{0x44, 0x2d, 0x0e, 0x10, 0x9e, 0x02, 0x2d}) // advance, negate, def_cfa_offset 16, offset x30, negate
	f.Add([]byte{0x0f, 0x02, 0x2d, 0x2d, 0x2d})             // the operand of an expression is not an opcode
	f.Fuzz(func(t *testing.T, prog []byte) {
		in := bytes.Clone(prog)
		out := withoutNegateRAState(prog)
		if !bytes.Equal(prog, in) {
			t.Fatal("the input was modified")
		}
		if len(out) != len(prog) {
			t.Fatalf("length %d, want %d", len(out), len(prog))
		}
		for i := range out {
			if out[i] != prog[i] && !(prog[i] == 0x2d && out[i] == 0) {
				t.Fatalf("byte %d: %#x became %#x", i, prog[i], out[i])
			}
		}
	})
}

// The opcode walk replaces negate_ra_state opcodes, not operand bytes
// equal to 0x2d.
func TestNegateRAState(t *testing.T) {
	for _, tt := range []struct{ in, want []byte }{
		{[]byte{0x2d, 0x0c, 0x1f, 0x00}, []byte{0x00, 0x0c, 0x1f, 0x00}},
		{[]byte{0x0e, 0x2d, 0x2d}, []byte{0x0e, 0x2d, 0x00}},                         // def_cfa_offset 45, then negate
		{[]byte{0x0f, 0x02, 0x2d, 0x2d, 0x2d}, []byte{0x0f, 0x02, 0x2d, 0x2d, 0x00}}, // a 2-byte expression
		{[]byte{0x9e, 0x2d, 0x2d}, []byte{0x9e, 0x2d, 0x00}},                         // offset x30, 45*dataAlign
		{[]byte{0x01, 0x2d}, []byte{0x01, 0x2d}},                                     // set_loc: stops, left to delve
	} {
		if got := withoutNegateRAState(tt.in); !bytes.Equal(got, tt.want) {
			t.Errorf("%x: got %x, want %x", tt.in, got, tt.want)
		}
	}
}
