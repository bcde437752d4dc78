package capture

import (
	"hash/maphash"
	"slices"
	"unsafe"
)

// Builder assembles a Capture, interning frames and stacks.
type Builder struct {
	c *Capture
	// frames maps a frame's hash to the first frame with it, as stacks
	// do; the rare frame whose hash an earlier different one has is kept
	// in moreFrames. Keyed by the frames themselves (112 bytes each) the
	// map held a second copy of every frame beside c.Frames: at 999 Hz on
	// a whole host, 13 MB of a capture's builder in serve's heap.
	frames     map[uint64]uint32
	moreFrames map[Frame]uint32
	// stacks maps a stack's hash to the first stack with it; the rare
	// stack whose hash an earlier different one has is kept in more. A
	// map keyed by the frames themselves held a second copy of every
	// stack (a 64 MiB folded import: 40 MB of keys).
	stacks map[uint64]uint32
	more   map[string]uint32
	maps   map[Mapping]bool
	// slab is where new stacks' frames are copied: one allocation for
	// many stacks instead of one each.
	slab []uint32
}

// stackSeed seeds the stacks' hash; stackHash is a variable so that a
// test can make every stack collide.
var (
	stackSeed = maphash.MakeSeed()
	stackHash = func(frames []uint32) uint64 {
		return maphash.Bytes(stackSeed, unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(frames))), len(frames)*4))
	}
	frameHash = func(f Frame) uint64 { return maphash.Comparable(stackSeed, f) }
)

// slabFrames is the frames a slab holds: big enough that a slab's header
// is nothing beside it, small enough that a small capture's last slab
// wastes little.
const slabFrames = 16 << 10

// NewBuilder starts a capture with the given metadata.
func NewBuilder(meta Meta) *Builder {
	if meta.Version == 0 {
		meta.Version = FormatVersion
	}
	if meta.Unit == "" {
		meta.Unit = meta.Type.Unit(meta.Event)
	}
	return &Builder{
		c:      &Capture{Meta: meta},
		frames: make(map[uint64]uint32),
		stacks: make(map[uint64]uint32),
	}
}

// Meta gives access to the metadata being built.
func (b *Builder) Meta() *Meta { return &b.c.Meta }

// Frame interns a frame and returns its index.
func (b *Builder) Frame(f Frame) uint32 {
	h := frameHash(f)
	id, ok := b.frames[h]
	if !ok {
		id = uint32(len(b.c.Frames))
		b.c.Frames = append(b.c.Frames, f)
		b.frames[h] = id
		return id
	}
	if b.c.Frames[id] == f {
		return id
	}
	if id, ok := b.moreFrames[f]; ok {
		return id
	}
	if b.moreFrames == nil {
		b.moreFrames = make(map[Frame]uint32)
	}
	id = uint32(len(b.c.Frames))
	b.c.Frames = append(b.c.Frames, f)
	b.moreFrames[f] = id
	return id
}

// Stack interns a stack of frame indexes (root first) and returns its index.
// The slice is copied.
func (b *Builder) Stack(frames []uint32) uint32 {
	h := stackHash(frames)
	id, ok := b.stacks[h]
	if !ok {
		id = b.add(frames)
		b.stacks[h] = id
		return id
	}
	if slices.Equal(b.c.Stacks[id], frames) {
		return id
	}
	key := unsafe.String((*byte)(unsafe.Pointer(unsafe.SliceData(frames))), len(frames)*4)
	if id, ok := b.more[key]; ok {
		return id
	}
	if b.more == nil {
		b.more = make(map[string]uint32)
	}
	id = b.add(frames)
	b.more[string([]byte(key))] = id // the key's bytes are the caller's: copy them
	return id
}

// add appends a copy of frames to the capture's stacks.
func (b *Builder) add(frames []uint32) uint32 {
	id := uint32(len(b.c.Stacks))
	if len(frames) == 0 {
		b.c.Stacks = append(b.c.Stacks, nil)
		return id
	}
	if len(frames) > cap(b.slab)-len(b.slab) {
		b.slab = make([]uint32, 0, max(slabFrames, len(frames)))
	}
	n := len(b.slab)
	b.slab = append(b.slab, frames...)
	b.c.Stacks = append(b.c.Stacks, b.slab[n:len(b.slab):len(b.slab)])
	return id
}

// GrowEvents makes room for n more events.
func (b *Builder) GrowEvents(n int) { b.c.Events = slices.Grow(b.c.Events, n) }

// Mapping records a process's mapping once.
func (b *Builder) Mapping(m Mapping) {
	if m.Limit <= m.Start || b.maps[m] {
		return
	}
	if b.maps == nil {
		b.maps = make(map[Mapping]bool)
	}
	b.maps[m] = true
	b.c.Mappings = append(b.c.Mappings, m)
}

// Add appends an event.
func (b *Builder) Add(e Event) {
	b.c.Events = append(b.c.Events, e)
}

// Capture returns the capture built so far; Samples is set to the event
// count when it was left at zero.
func (b *Builder) Capture() *Capture {
	if b.c.Meta.Stats.Samples == 0 {
		b.c.Meta.Stats.Samples = uint64(len(b.c.Events))
	}
	return b.c
}
