package unwind

import (
	"bufio"
	"bytes"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// readelfRow is one row of `readelf --debug-dump=frames-interp`, binutils'
// own CFI interpreter: an oracle independent of delve's.
type readelfRow struct {
	loc  uint64
	cfa  string            // "sp+16", "sp-16", "x29+32", "exp"
	cols map[string]string // "x29": "c-16", "ra": "c-8" or "u"
	ra   string            // the CIE's return-address column ("30")
}

type readelfBlock struct {
	fde        bool
	off, cie   string
	ra         string // CIE: its return-address column
	begin, end uint64
	rows       []readelfRow
}

// parseReadelfFrames parses readelf -wF output into its FDEs. An FDE that
// prints no rows has its CIE's.
func parseReadelfFrames(out []byte) ([]readelfBlock, error) {
	var blocks []*readelfBlock
	var header []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) >= 4 && f[3] == "CIE":
			b := &readelfBlock{off: f[0]}
			for _, w := range f {
				if v, ok := strings.CutPrefix(w, "ra="); ok {
					b.ra = v
				}
			}
			blocks, header = append(blocks, b), nil
		case len(f) >= 6 && f[3] == "FDE":
			lo, hi, ok := strings.Cut(strings.TrimPrefix(f[5], "pc="), "..")
			b, err1 := strconv.ParseUint(lo, 16, 64)
			e, err2 := strconv.ParseUint(hi, 16, 64)
			if !ok || err1 != nil || err2 != nil {
				return nil, fmt.Errorf("bad FDE line %q", sc.Text())
			}
			blocks, header = append(blocks, &readelfBlock{fde: true, cie: strings.TrimPrefix(f[4], "cie="), begin: b, end: e}), nil
		case len(f) >= 2 && f[0] == "LOC" && f[1] == "CFA":
			header = f
		case len(f) >= 2 && len(f[0]) == 16 && header != nil && len(blocks) > 0:
			loc, err := strconv.ParseUint(f[0], 16, 64)
			if err != nil {
				return nil, fmt.Errorf("bad row %q", sc.Text())
			}
			r := readelfRow{loc: loc, cfa: f[1], cols: map[string]string{}}
			for i := 2; i < len(f) && i < len(header); i++ {
				r.cols[header[i]] = f[i]
			}
			b := blocks[len(blocks)-1]
			b.rows = append(b.rows, r)
		}
	}
	cies := map[string]*readelfBlock{}
	var fdes []readelfBlock
	for _, b := range blocks {
		if !b.fde {
			cies[b.off] = b
			continue
		}
		cie := cies[b.cie]
		if cie == nil {
			return nil, fmt.Errorf("FDE at %#x: no CIE %s", b.begin, b.cie)
		}
		if len(b.rows) == 0 {
			for _, r := range cie.rows {
				r.loc = b.begin
				b.rows = append(b.rows, r)
			}
		}
		for i := range b.rows {
			b.rows[i].ra = cie.ra
		}
		fdes = append(fdes, *b)
	}
	return fdes, sc.Err()
}

// readelfAgrees compares a compact rule with a readelf row (arm64 names).
func readelfAgrees(got Rule, r readelfRow) bool {
	if r.ra != "30" {
		// glibc's hand-written rawmemchr names x15: no walker can know it.
		return got.CFA == CFAUnsupported
	}
	var kind CFARule
	var num string
	if n, ok := strings.CutPrefix(r.cfa, "sp"); ok {
		kind, num = CFASP, n
	} else if n, ok := strings.CutPrefix(r.cfa, "x29"); ok {
		kind, num = CFAFP, n
	} else {
		return got.CFA == CFAUnsupported
	}
	off, err := strconv.ParseInt(num, 10, 32) // "+16", "-16"
	if err != nil || got.CFA != kind || got.CFAOffset != int32(off) {
		return false
	}
	cfaOff := func(s string) (int32, bool) {
		n, err := strconv.ParseInt(strings.TrimPrefix(s, "c"), 10, 32)
		return int32(n), strings.HasPrefix(s, "c") && err == nil
	}
	switch ra := r.cols["ra"]; {
	case ra == "" || ra == "u": // readelf prints "u" for both unset and undefined
		if got.RA != RAInLink && got.RA != RAUndefined {
			return false
		}
	default:
		n, ok := cfaOff(ra)
		if !ok || got.RA != RAAtCFA || got.RAOffset != n {
			return false
		}
	}
	switch fp := r.cols["x29"]; {
	case fp == "" || fp == "u" || fp == "s":
		return got.FP == FPUnchanged
	default:
		n, ok := cfaOff(fp)
		return ok && got.FP == FPAtCFA && got.FPOffset == n
	}
}

// TestCompactArm64 builds arm64 programs with and without frame pointers
// (one static, so that glibc's arm64 CFI is in it) and checks the compact
// table at every pc against readelf's interpretation of the CFI, and the
// rules of known functions against the arm64 ABI.
func TestCompactArm64(t *testing.T) {
	gcc, err := exec.LookPath("aarch64-linux-gnu-gcc")
	if err != nil {
		t.Skip("aarch64-linux-gnu-gcc not installed (Debian package gcc-aarch64-linux-gnu): the arm64 tables are not tested")
	}
	readelf, err := exec.LookPath("readelf")
	if err != nil {
		t.Skip("readelf not installed (binutils): no oracle for the arm64 CFI")
	}
	for _, tt := range []struct {
		name  string
		flags []string
	}{
		{"nofp", []string{"-O2", "-fomit-frame-pointer"}},
		{"fp", []string{"-O2", "-fno-omit-frame-pointer"}},
		{"static", []string{"-O2", "-fomit-frame-pointer", "-static"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			bin := buildC(t, gcc, compactC, tt.name, tt.flags...)
			ct := buildCompactFile(t, bin)
			if ct.Arch.Name != "arm64" {
				t.Fatalf("arch %q, want arm64", ct.Arch.Name)
			}
			out, err := exec.Command(readelf, "--debug-dump=frames-interp", bin).Output()
			if err != nil {
				t.Fatal(err)
			}
			fdes, err := parseReadelfFrames(out)
			if err != nil {
				t.Fatal(err)
			}
			if len(fdes) < 5 {
				t.Fatalf("readelf shows %d FDEs", len(fdes))
			}
			bad, checked := 0, 0
			for _, fde := range fdes {
				for i, r := range fde.rows {
					end := fde.end
					if i+1 < len(fde.rows) {
						end = fde.rows[i+1].loc
					}
					for pc := r.loc; pc < end; pc += 4 {
						checked++
						if got := ct.Lookup(pc); !readelfAgrees(got, r) {
							bad++
							if bad <= 8 {
								t.Errorf("pc %#x: compact %v, readelf CFA %s ra %s x29 %s", pc, got, r.cfa, r.cols["ra"], r.cols["x29"])
							}
						}
					}
				}
			}
			if bad > 0 {
				t.Errorf("%d of %d pcs disagree with readelf", bad, checked)
			}
			t.Logf("%d pcs checked; %d entries, %d rules, %d bytes, %d unsupported", checked, len(ct.Entries), len(ct.Rules), ct.Bytes(), ct.Unsupported)

			// The ABI: at a function's first instruction the return address
			// is in x30 and CFA = sp; the leaf never saves it; a non-leaf
			// saves x29 and x30 at the bottom of its frame record (CFA-16,
			// CFA-8, since GCC stores the pair below its locals at the
			// frame's top); alloca needs CFA = x29 + N.
			for _, fn := range []string{"leaf", "big", "rec", "dyn", "main"} {
				addr := symbolAddr(t, bin, fn)
				if r := ct.Lookup(addr); r.CFA != CFASP || r.CFAOffset != 0 || r.RA != RAInLink {
					t.Errorf("%s at entry: %v, want cfa=sp+0 ra=link", fn, r)
				}
			}
			leaf := symbolAddr(t, bin, "leaf")
			for pc := leaf; pc < leaf+8; pc += 4 {
				if r := ct.Lookup(pc); r.RA != RAInLink {
					t.Errorf("leaf+%d: %v, want the return address in x30", pc-leaf, r)
				}
			}
			var sawBig, sawFP bool
			for _, fn := range []struct {
				name string
				seen *bool
				ok   func(Rule) bool
			}{
				{"big", &sawBig, func(r Rule) bool { return r.CFA == CFASP && r.CFAOffset > 4096 && r.RA == RAAtCFA }},
				{"dyn", &sawFP, func(r Rule) bool { return r.CFA == CFAFP && r.RA == RAAtCFA && r.FP == FPAtCFA }},
			} {
				addr := symbolAddr(t, bin, fn.name)
				for pc := addr; pc < addr+256; pc += 4 {
					if fn.ok(ct.Lookup(pc)) {
						*fn.seen = true
					}
				}
			}
			if !sawBig {
				t.Error("big's 4 KiB frame (cfa=sp+>4096, return address saved) is not in the table")
			}
			if !sawFP {
				t.Error("dyn's alloca frame (cfa=x29+N, x29 and x30 saved) is not in the table")
			}
		})
	}
}

// fixedFinder is one table at bias 0.
type fixedFinder struct{ t *CompactTable }

func (f fixedFinder) CompactFor(uint64) (*CompactTable, uint64, bool) { return f.t, 0, true }

// TestWalkCompactArm64 walks a stack laid out by the arm64 rules of a real
// arm64 binary: the leaf's return address comes from x30, the callers'
// from their saved x30 on the stack, and a zero return address ends it.
func TestWalkCompactArm64(t *testing.T) {
	gcc, err := exec.LookPath("aarch64-linux-gnu-gcc")
	if err != nil {
		t.Skip("aarch64-linux-gnu-gcc not installed (Debian package gcc-aarch64-linux-gnu)")
	}
	bin := buildC(t, gcc, compactC, "walk", "-O2", "-fomit-frame-pointer")
	ct := buildCompactFile(t, bin)
	// A return address into fn: one past an instruction whose rule has the
	// return address saved at the CFA, so that the lookup at ra-1 finds it.
	retInto := func(fn string) (uint64, Rule) {
		addr := symbolAddr(t, bin, fn)
		for pc := addr; pc < addr+512; pc += 4 {
			if r := ct.Lookup(pc); r.CFA == CFASP && r.RA == RAAtCFA && r.CFAOffset > 0 {
				return pc + 4, r
			}
		}
		t.Fatalf("%s has no body with its return address saved", fn)
		return 0, Rule{}
	}
	leaf := symbolAddr(t, bin, "leaf")
	if r := ct.Lookup(leaf); r.RA != RAInLink || r.CFA != CFASP {
		t.Fatalf("leaf: %v", r)
	}
	const sp0 = 0x7ff0_0000_0000
	stack := make([]byte, 16<<10)
	put := func(addr, v uint64) {
		off := addr - sp0
		for i := range 8 {
			stack[off+uint64(i)] = byte(v >> (8 * i))
		}
	}
	want := []uint64{leaf}
	raBig, rBig := retInto("big")
	raRec, rRec := retInto("rec")
	want = append(want, raBig, raRec)
	// leaf: cfa = sp, return address in x30 (raBig). big's frame: cfa =
	// sp + off, its saved x30 (raRec) at cfa + raOff. rec's frame above it
	// returns to 0: the end.
	cfaBig := uint64(sp0) + uint64(ct.Lookup(leaf).CFAOffset) + uint64(rBig.CFAOffset)
	put(cfaBig+uint64(int64(rBig.RAOffset)), raRec)
	cfaRec := cfaBig + uint64(rRec.CFAOffset)
	put(cfaRec+uint64(int64(rRec.RAOffset)), 0)
	got, reason := WalkCompact(fixedFinder{ct}, Regs{IP: leaf, SP: sp0}, raBig, stack)
	if !slices.Equal(got, want) || reason != "" {
		t.Fatalf("walk %x (%q), want %x to the end", got, reason, want)
	}
	// Without x30 past the first frame the walk says why it stopped.
	if _, reason := WalkCompact(fixedFinder{ct}, Regs{IP: raBig, SP: sp0}, 0, nil); reason == "" {
		t.Error("a walk with an empty stack copy ended without a reason")
	}
}
