//go:build (386 || amd64) && linux

package bpf

import (
	"reflect"
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
