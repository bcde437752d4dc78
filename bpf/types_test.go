//go:build (386 || amd64 || arm64) && linux

package bpf

import (
	"os"
	"reflect"
	"runtime"
	"testing"

	"github.com/cilium/ebpf"
)

// Every object carries common.h's record layout and counters: user space
// decodes them all with the sampler's generated types.
func TestCommonTypesMatch(t *testing.T) {
	want := reflect.TypeFor[StackEvent]()
	for _, got := range []reflect.Type{reflect.TypeFor[OffcpuStackEvent](), reflect.TypeFor[MemStackEvent](), reflect.TypeFor[EventStackEvent]()} {
		if got.Size() != want.Size() || got.NumField() != want.NumField() {
			t.Fatalf("%s is %d bytes in %d fields, %s %d in %d", got, got.Size(), got.NumField(), want, want.Size(), want.NumField())
		}
		for i := range want.NumField() {
			w, g := want.Field(i), got.Field(i)
			if w.Name != g.Name || w.Offset != g.Offset || w.Type != g.Type {
				t.Errorf("%s field %d: %s %s at %d, want %s %s at %d", got, i, g.Name, g.Type, g.Offset, w.Name, w.Type, w.Offset)
			}
		}
	}
	loads := map[string]func() (*ebpf.CollectionSpec, error){"sampler": LoadSampler, "offcpu": LoadOffcpu, "mem": LoadMem, "event": LoadEvent}
	for name, load := range loads {
		spec, err := load()
		if err != nil {
			t.Fatal(err)
		}
		if n := spec.Maps["stats"].MaxEntries; n != uint32(SamplerStatSlotSTAT_MAX) {
			t.Errorf("%s: %d stats slots, want STAT_MAX = %d", name, n, SamplerStatSlotSTAT_MAX)
		}
		if v := spec.Variables["filter_list"]; v == nil || v.Size() != 4*uint32(SamplerLimitLIMIT_FILTER_LIST) {
			t.Errorf("%s: filter_list is not FILTER_LIST u32s: %v", name, v)
		}
	}
}

// The objects of both targets come from the same C: they must offer user
// space the same programs (of the same types), maps and variables, or Go
// code that builds for one GOARCH would fail at run time on the other. The
// arm64 objects are read here as files; loading them needs an arm64 kernel
// (TestLoadArm64 on such a host: the profiler's tests load the GOARCH's
// objects).
func TestArchObjectsAgree(t *testing.T) {
	for _, name := range []string{"sampler", "offcpu", "mem", "event"} {
		x86, err := ebpf.LoadCollectionSpec(name + "_x86_bpfel.o")
		if err != nil {
			t.Fatal(err)
		}
		arm, err := ebpf.LoadCollectionSpec(name + "_arm64_bpfel.o")
		if err != nil {
			t.Fatal(err)
		}
		for p, ps := range x86.Programs {
			as := arm.Programs[p]
			if as == nil {
				t.Errorf("%s: program %s is missing from the arm64 object", name, p)
				continue
			}
			if as.Type != ps.Type || as.AttachType != ps.AttachType || as.SectionName != ps.SectionName {
				t.Errorf("%s: program %s is %v/%v %q on arm64, %v/%v %q on x86", name, p, as.Type, as.AttachType, as.SectionName, ps.Type, ps.AttachType, ps.SectionName)
			}
		}
		if len(arm.Programs) != len(x86.Programs) {
			t.Errorf("%s: %d programs on arm64, %d on x86", name, len(arm.Programs), len(x86.Programs))
		}
		for m, ms := range x86.Maps {
			as := arm.Maps[m]
			if as == nil {
				t.Errorf("%s: map %s is missing from the arm64 object", name, m)
				continue
			}
			if as.Type != ms.Type || as.KeySize != ms.KeySize || as.ValueSize != ms.ValueSize || as.MaxEntries != ms.MaxEntries {
				t.Errorf("%s: map %s is %v %d/%d/%d on arm64, %v %d/%d/%d on x86", name, m, as.Type, as.KeySize, as.ValueSize, as.MaxEntries, ms.Type, ms.KeySize, ms.ValueSize, ms.MaxEntries)
			}
		}
		if len(arm.Maps) != len(x86.Maps) {
			t.Errorf("%s: %d maps on arm64, %d on x86", name, len(arm.Maps), len(x86.Maps))
		}
		for v, vs := range x86.Variables {
			if as := arm.Variables[v]; as == nil || as.Size() != vs.Size() {
				t.Errorf("%s: variable %s (%d bytes) differs on arm64: %v", name, v, vs.Size(), as)
			}
		}
		if len(arm.Variables) != len(x86.Variables) {
			t.Errorf("%s: %d variables on arm64, %d on x86", name, len(arm.Variables), len(x86.Variables))
		}
	}
}

// TestLoadArm64 loads the arm64 objects into the kernel where there is an
// arm64 kernel; on other hosts it says why not.
func TestLoadArm64(t *testing.T) {
	if runtime.GOARCH != "arm64" {
		t.Skipf("the arm64 BPF objects load only into an arm64 kernel; this host is %s (TestArchObjectsAgree checks they match the x86 ones)", runtime.GOARCH)
	}
	if os.Geteuid() != 0 {
		t.Skip("loading BPF programs needs root")
	}
	loads := map[string]func() (*ebpf.CollectionSpec, error){"sampler": LoadSampler, "offcpu": LoadOffcpu, "mem": LoadMem, "event": LoadEvent}
	for name, load := range loads {
		spec, err := load()
		if err != nil {
			t.Fatal(err)
		}
		coll, err := ebpf.NewCollection(spec)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		coll.Close()
	}
}
