package symbolizer

import (
	"debug/elf"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// PLT stubs are named func@plt at the addresses objdump gives them.
func TestPLTSymbols(t *testing.T) {
	needTool(t, "gcc")
	objdump := needTool(t, "objdump")
	for _, flags := range [][]string{{"-O1"}, {"-O1", "-fcf-protection=full", "-Wl,-z,ibtplt"}} {
		t.Run(strings.Join(flags, " "), func(t *testing.T) {
			dir := t.TempDir()
			bin := buildC(t, dir, "plt", `
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
int main(int argc, char **argv) {
	char buf[64];
	memset(buf, argc, sizeof buf);
	printf("%d\n", buf[3]);
	return atoi(argv[0]);
}
`, flags...)
			f, err := elf.Open(bin)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			got := map[string]uint64{}
			for _, s := range pltSymbols(f, nil) {
				got[string(s.name)] = s.addr
			}
			out, err := exec.Command(objdump, "-d", "-j", ".plt", "-j", ".plt.sec", bin).CombinedOutput()
			if err != nil && !strings.Contains(string(out), "plt") {
				t.Fatalf("objdump: %v\n%s", err, out)
			}
			want := map[string]uint64{}
			for _, m := range regexp.MustCompile(`(?m)^([0-9a-f]+) <([A-Za-z_][A-Za-z0-9_]*)@plt>:`).FindAllStringSubmatch(string(out), -1) {
				addr, _ := strconv.ParseUint(m[1], 16, 64)
				want[m[2]+"@plt"] = addr
			}
			if len(want) < 2 {
				t.Fatalf("objdump found only %v in %s", want, filepath.Base(bin))
			}
			for name, addr := range want {
				if got[name] != addr {
					t.Errorf("%s: got %#x, objdump says %#x (all: %v)", name, got[name], addr, fmt.Sprint(got))
				}
			}
		})
	}
}

// Versioned aliases in libc's debug symbols are named without the version.
func TestVersionedNames(t *testing.T) {
	f, err := elf.Open("/usr/lib/x86_64-linux-gnu/libc.so.6")
	if err != nil {
		t.Skip("no x86-64 glibc here")
	}
	defer f.Close()
	s := New(Options{})
	defer s.Close()
	df, c, _ := s.findDebugFile(f, buildID(f), debugLocator{})
	if df == nil {
		t.Skip("libc6-dbg is not installed (make test installs it)")
	}
	defer c.Close()
	syms, err := elfSymbols(df, elf.SHT_SYMTAB, nil)
	if err != nil {
		t.Fatal(err)
	}
	var sawNanosleep bool
	for _, sym := range syms {
		if strings.Contains(string(sym.name), "@") {
			t.Fatalf("versioned name kept: %s", sym.name)
		}
		sawNanosleep = sawNanosleep || string(sym.name) == "clock_nanosleep"
	}
	if !sawNanosleep {
		t.Error("clock_nanosleep is not among libc's debug symbols")
	}
}
