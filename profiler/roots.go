package profiler

import (
	"encoding/binary"
	"path/filepath"
	"strings"

	"github.com/scorch-dev/scorch/capture"
)

// entryCallers are the callers glibc's start routines always have, root
// first. Frame pointers end at these routines (glibc is built without
// them) while CFI goes on to the entry point, so one program would show
// main under two roots. The chain CFI finds is the root, however a stack
// was walked.
var entryCallers = map[string][]string{
	"__libc_start_call_main": {"_start", "__libc_start_main"},
	"__libc_start_main":      {"_start"},
	"start_thread":           {"clone3"},
}

func isLibc(module string) bool {
	return strings.HasPrefix(filepath.Base(module), "libc.so") || strings.HasPrefix(filepath.Base(module), "libc-")
}

// completeRoots gives every user stack that ends at a glibc start routine
// the callers that routine always has. The callers' frames are taken from a
// stack of the same capture that has them (their real addresses), else made
// from their names: the entry point in the program's file, the rest in libc.
func completeRoots(c *capture.Capture) {
	learned := make(map[uint32][]uint32) // routine's frame -> callers, root first
	missing := false
	for _, st := range c.Stacks {
		r := userRoot(c, st)
		if r < 0 {
			continue
		}
		chain := st[r:]
		for i, id := range chain {
			f := &c.Frames[id]
			callers, ok := entryCallers[f.Name]
			if !ok || f.Kind != capture.KindUser || !isLibc(f.Module) {
				continue
			}
			if i == 0 {
				missing = true
			} else if _, ok := learned[id]; !ok && i == len(callers) && framesNamed(c, chain[:i], callers) {
				learned[id] = append([]uint32(nil), chain[:i]...)
			}
		}
	}
	if !missing {
		return
	}
	index := make(map[capture.Frame]uint32, len(c.Frames))
	for i, f := range c.Frames {
		if _, ok := index[f]; !ok {
			index[f] = uint32(i)
		}
	}
	intern := func(f capture.Frame) uint32 {
		if id, ok := index[f]; ok {
			return id
		}
		id := uint32(len(c.Frames))
		c.Frames = append(c.Frames, f)
		index[f] = id
		return id
	}
	callersOf := func(chain []uint32) []uint32 {
		id := chain[0]
		if l, ok := learned[id]; ok {
			return l
		}
		// Another address in the same routine and library has them.
		f := c.Frames[id]
		for oid, l := range learned {
			o := &c.Frames[oid]
			if o.Name == f.Name && o.Module == f.Module && o.BuildID == f.BuildID {
				return l
			}
		}
		program, programID := "", ""
		for _, fid := range chain[1:] {
			if g := &c.Frames[fid]; g.Kind == capture.KindUser && g.Module != "" && !isLibc(g.Module) && !strings.HasPrefix(g.Module, "[") {
				program, programID = g.Module, g.BuildID
				break
			}
		}
		var out []uint32
		for _, name := range entryCallers[f.Name] {
			nf := capture.Frame{Name: name, Kind: capture.KindUser, Module: f.Module, BuildID: f.BuildID}
			if name == "_start" {
				nf.Module, nf.BuildID = program, programID
			}
			out = append(out, intern(nf))
		}
		learned[id] = out
		return out
	}
	ids := make(map[string]uint32, len(c.Stacks))
	remap := make([]uint32, len(c.Stacks))
	var stacks [][]uint32
	var key []byte
	for i, st := range c.Stacks {
		st = completeStack(c, st, callersOf)
		key = key[:0]
		for _, f := range st {
			key = binary.LittleEndian.AppendUint32(key, f)
		}
		id, ok := ids[string(key)]
		if !ok {
			id = uint32(len(stacks))
			stacks = append(stacks, st)
			ids[string(key)] = id
		}
		remap[i] = id
	}
	c.Stacks = stacks
	for i := range c.Events {
		if s := c.Events[i].Stack; int(s) < len(remap) {
			c.Events[i].Stack = remap[s]
		}
	}
}

func framesNamed(c *capture.Capture, ids []uint32, names []string) bool {
	for i, id := range ids {
		if c.Frames[id].Name != names[i] {
			return false
		}
	}
	return true
}

// userRoot returns where a stack's root-first user frames start: after the
// process name. The waker's part of an off-wake stack is leaf first and is
// not completed.
func userRoot(c *capture.Capture, st []uint32) int {
	if len(st) < 2 || c.Frames[st[0]].Kind != capture.KindProcess {
		return -1
	}
	return 1
}

// completeStack returns the stack with the callers of its outermost frame
// inserted when that frame is a glibc start routine.
func completeStack(c *capture.Capture, st []uint32, callersOf func(chain []uint32) []uint32) []uint32 {
	i := userRoot(c, st)
	if i < 0 {
		return st
	}
	f := &c.Frames[st[i]]
	if _, ok := entryCallers[f.Name]; !ok || f.Kind != capture.KindUser || !isLibc(f.Module) {
		return st
	}
	callers := callersOf(st[i:])
	out := make([]uint32, 0, len(st)+len(callers))
	out = append(out, st[:i]...)
	out = append(out, callers...)
	return append(out, st[i:]...)
}
