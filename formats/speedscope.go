package formats

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/scorch-dev/scorch/capture"
)

// speedscope's file format (https://www.speedscope.app/file-format-schema.json).
type ssFile struct {
	Schema             string      `json:"$schema"`
	Shared             ssShared    `json:"shared"`
	Profiles           []ssProfile `json:"profiles"`
	Name               string      `json:"name"`
	ActiveProfileIndex int         `json:"activeProfileIndex"`
	Exporter           string      `json:"exporter"`
}

type ssShared struct {
	Frames []ssFrame `json:"frames"`
}

type ssFrame struct {
	Name string `json:"name"`
	File string `json:"file,omitempty"`
}

type ssProfile struct {
	Type       string     `json:"type"`
	Name       string     `json:"name"`
	Unit       string     `json:"unit"`
	StartValue int64      `json:"startValue"`
	EndValue   int64      `json:"endValue"`
	Samples    [][]uint32 `json:"samples"`
	Weights    []int64    `json:"weights"`
}

// SpeedscopeSchema is the $schema of speedscope files.
const SpeedscopeSchema = "https://www.speedscope.app/file-format-schema.json"

// WriteSpeedscope writes the selected events as a speedscope "sampled"
// profile: one sample per event in time order (so speedscope's time-order
// view follows the capture), weighted by the event's value. Captures
// without timestamps get one sample per stack.
func WriteSpeedscope(w io.Writer, c *capture.Capture, q capture.Query) error {
	f := ssFile{Schema: SpeedscopeSchema, Exporter: "scorch", Name: fmt.Sprintf("scorch %s capture", c.Meta.Type)}
	if c.Meta.Host != "" {
		f.Name += " on " + c.Meta.Host
	}
	// Only the frames in use are written, renumbered, one per function
	// (name and file): speedscope's left-heavy and sandwich views merge by
	// frame, so the addresses of one function must share one frame.
	type frameKey struct{ name, file string }
	byKey := make(map[frameKey]uint32)
	frameIdx := make(map[uint32]uint32)
	stackCache := make(map[uint32][]uint32)
	stack := func(st uint32) []uint32 {
		if s, ok := stackCache[st]; ok {
			return s
		}
		ids := c.Stacks[st]
		out := make([]uint32, len(ids))
		for i, id := range ids {
			n, ok := frameIdx[id]
			if !ok {
				fr := &c.Frames[id]
				k := frameKey{strings.ToValidUTF8(fr.FoldedName(), "\uFFFD"), fr.File}
				if k.file == "" {
					k.file = fr.Module
				}
				k.file = strings.ToValidUTF8(k.file, "\uFFFD")
				if n, ok = byKey[k]; !ok {
					n = uint32(len(f.Shared.Frames))
					f.Shared.Frames = append(f.Shared.Frames, ssFrame{Name: k.name, File: k.file})
					byKey[k] = n
				}
				frameIdx[id] = n
			}
			out[i] = n
		}
		stackCache[st] = out
		return out
	}
	unit := "none"
	scale := int64(1)
	switch c.Meta.Unit {
	case "ns":
		unit = "nanoseconds"
	case "bytes":
		unit = "bytes"
	case "samples":
		// A CPU sample stands for one sampling period: weights in time
		// make speedscope's time axis real.
		if hz := c.Meta.Params.Hz; hz > 0 {
			unit, scale = "nanoseconds", int64(time.Second)/int64(hz)
		}
	}
	p := ssProfile{Type: "sampled", Name: f.Name, Unit: unit, Samples: [][]uint32{}, Weights: []int64{}}
	if c.Meta.Timestamps {
		m := c.Matcher(q)
		for i := range c.Events {
			e := &c.Events[i]
			if int(e.Stack) >= len(c.Stacks) || !m.Match(e) || e.Value <= 0 {
				continue
			}
			p.Samples = append(p.Samples, stack(e.Stack))
			// Off-CPU intervals count for the part inside the range.
			p.Weights = append(p.Weights, m.Value(e)*scale)
		}
		var total int64
		for _, v := range p.Weights {
			total += v
		}
		p.EndValue = total
	} else {
		for _, sv := range c.Aggregate(q) {
			if sv.Value <= 0 {
				continue
			}
			p.Samples = append(p.Samples, stack(sv.Stack))
			p.Weights = append(p.Weights, sv.Value*scale)
			p.EndValue += sv.Value * scale
		}
	}
	f.Profiles = []ssProfile{p}
	bw := bufio.NewWriterSize(w, 64<<10)
	if err := json.NewEncoder(bw).Encode(&f); err != nil {
		return fmt.Errorf("write speedscope: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write speedscope: %w", err)
	}
	return nil
}
