package web

import (
	"bytes"
	"io"
)

// chunkSize is the size of a chunkBuf's pieces: large enough that a write
// seldom spans two, small enough that the slack of the last one is a
// small share of a cached answer (renderings deflate to 0.1-2 MB).
const chunkSize = 64 << 10

// chunkBuf is a bytes.Buffer for cached answers: it grows by whole chunks
// and never copies, where a bytes.Buffer doubles (and its answer held its
// spare half beyond what the cache charged). Under many clients the
// copies of growing buffers were a third of serve's heap.
type chunkBuf struct {
	chunks [][]byte
	n      int64
}

func (b *chunkBuf) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		last := len(b.chunks) - 1
		if last < 0 || len(b.chunks[last]) == cap(b.chunks[last]) {
			b.chunks = append(b.chunks, make([]byte, 0, chunkSize))
			last++
		}
		c := b.chunks[last]
		k := copy(c[len(c):cap(c)], p)
		b.chunks[last] = c[:len(c)+k]
		p = p[k:]
	}
	b.n += int64(n)
	return n, nil
}

// Len is the number of bytes written.
func (b *chunkBuf) Len() int64 { return b.n }

// done trims the last chunk to its length (a copy of at most a chunk)
// when more than an eighth of it is spare, and returns the chunks.
func (b *chunkBuf) done() [][]byte {
	if last := len(b.chunks) - 1; last >= 0 && cap(b.chunks[last])-len(b.chunks[last]) > chunkSize/8 {
		b.chunks[last] = bytes.Clone(b.chunks[last])
	}
	return b.chunks
}

// writeChunks writes the chunks in order.
func writeChunks(w io.Writer, chunks [][]byte) error {
	for _, c := range chunks {
		if _, err := w.Write(c); err != nil {
			return err
		}
	}
	return nil
}

// chunksReader reads the chunks in order.
func chunksReader(chunks [][]byte) io.Reader {
	rs := make([]io.Reader, len(chunks))
	for i, c := range chunks {
		rs[i] = bytes.NewReader(c)
	}
	return io.MultiReader(rs...)
}

// chunksLen is the chunks' total length.
func chunksLen(chunks [][]byte) int64 {
	var n int64
	for _, c := range chunks {
		n += int64(len(c))
	}
	return n
}
