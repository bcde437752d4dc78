package capture

import (
	"encoding/binary"
	"unsafe"
)

// Builder assembles a Capture, interning frames and stacks.
type Builder struct {
	c      *Capture
	frames map[Frame]uint32
	stacks map[string]uint32
	maps   map[Mapping]bool
	key    []byte
}

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
		frames: make(map[Frame]uint32),
		stacks: make(map[string]uint32),
	}
}

// Meta gives access to the metadata being built.
func (b *Builder) Meta() *Meta { return &b.c.Meta }

// Frame interns a frame and returns its index.
func (b *Builder) Frame(f Frame) uint32 {
	if id, ok := b.frames[f]; ok {
		return id
	}
	id := uint32(len(b.c.Frames))
	b.c.Frames = append(b.c.Frames, f)
	b.frames[f] = id
	return id
}

// Stack interns a stack of frame indexes (root first) and returns its index.
// The slice is copied.
func (b *Builder) Stack(frames []uint32) uint32 {
	b.key = b.key[:0]
	for _, f := range frames {
		b.key = binary.LittleEndian.AppendUint32(b.key, f)
	}
	if id, ok := b.stacks[unsafe.String(unsafe.SliceData(b.key), len(b.key))]; ok {
		return id
	}
	id := uint32(len(b.c.Stacks))
	b.c.Stacks = append(b.c.Stacks, append([]uint32(nil), frames...))
	b.stacks[string(b.key)] = id
	return id
}

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
