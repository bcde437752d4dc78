package profiler

import "github.com/scorch-dev/scorch/capture"

// eventChunk is how many events an eventLog allocates at a time.
const eventChunk = 4096

// eventLog holds a capture's events as they come, in fixed-size chunks:
// growing it never copies what it holds (a slice doubling would keep the
// old and the new array, up to three times the events, at once), and the
// capture's one exact-size slice is filled from it chunk by chunk, each
// released once copied.
type eventLog struct {
	chunks [][]capture.Event
	n      int
}

func (l *eventLog) add(ev capture.Event) {
	if l.n%eventChunk == 0 {
		l.chunks = append(l.chunks, make([]capture.Event, 0, eventChunk))
	}
	last := &l.chunks[len(l.chunks)-1]
	*last = append(*last, ev)
	l.n++
}

func (l *eventLog) len() int { return l.n }

// at returns event i, valid until the log is taken.
func (l *eventLog) at(i int) *capture.Event { return &l.chunks[i/eventChunk][i%eventChunk] }

// take moves the events into one slice, applying f to each, and empties
// the log.
func (l *eventLog) take(f func(*capture.Event)) []capture.Event {
	out := make([]capture.Event, 0, l.n)
	for i, c := range l.chunks {
		for j := range c {
			f(&c[j])
		}
		out = append(out, c...)
		l.chunks[i] = nil
	}
	l.chunks, l.n = nil, 0
	return out
}
