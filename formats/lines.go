package formats

import (
	"bufio"
	"bytes"
	"io"
)

// lines yields the lines of a text input, without their newline, from
// memory or streamed from a reader: a streamed import holds one line at a
// time, not the whole (possibly decompressed) input. A line is valid until
// the next call.
type lines struct {
	data []byte        // in-memory input
	br   *bufio.Reader // or streamed input
	buf  []byte        // a streamed line longer than br's buffer
	err  error         // what ended a streamed input early (a limit)
}

func memLines(data []byte) *lines { return &lines{data: data} }

func next(l *lines) ([]byte, bool) {
	if l.br == nil {
		if len(l.data) == 0 {
			return nil, false
		}
		var line []byte
		if i := bytes.IndexByte(l.data, '\n'); i >= 0 {
			line, l.data = l.data[:i], l.data[i+1:]
		} else {
			line, l.data = l.data, nil
		}
		return line, true
	}
	if l.err != nil {
		return nil, false
	}
	chunk, err := l.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		l.buf = append(l.buf[:0], chunk...)
		for err == bufio.ErrBufferFull {
			chunk, err = l.br.ReadSlice('\n')
			l.buf = append(l.buf, chunk...)
		}
		chunk = l.buf
	}
	if err != nil && err != io.EOF {
		l.err = err
		return nil, false
	}
	if len(chunk) == 0 && err == io.EOF {
		l.err = io.EOF
		return nil, false
	}
	if err == io.EOF {
		l.err = io.EOF
	}
	return bytes.TrimSuffix(chunk, []byte("\n")), true
}

// failed is the error that cut a streamed input short, or nil.
func (l *lines) failed() error {
	if l.err == io.EOF {
		return nil
	}
	return l.err
}
