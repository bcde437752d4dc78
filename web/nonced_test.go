package web

import (
	"bytes"
	"compress/gzip"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
)

// A rendering cut at its nonce and put back under another reads back, with
// gzip's CRC and length checked, as the rendering with the other nonce:
// nonces at either end, next to each other, and parts past the 64 KiB the
// CRC shift runs at once.
func TestNoncedGzip(t *testing.T) {
	const stand, fresh = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "0123456789abcdef0123456789abcdef"
	big := make([]byte, 300<<10)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range big {
		big[i] = "<svg>rect text/ 0123"[r.IntN(20)]
	}
	for _, body := range []string{
		"",
		"no nonce at all",
		stand,
		stand + stand,
		stand[:10] + stand + stand[5:] + "a" + stand[1:],
		"<script nonce=\"" + stand + "\">x</script><style nonce=\"" + stand + "\"></style>",
		stand + string(big) + stand + "tail" + stand + string(big[:70<<10]),
		// What follows a nonce repeats what came before it, as an SVG's
		// rectangles do: a match must not reach back across the cut.
		strings.Repeat(`<rect x="1" y="2"/>`, 50) + stand + strings.Repeat(`<rect x="1" y="2"/>`, 50) + stand + `<rect x="1"`,
	} {
		// Written in pieces of random sizes, so that nonces straddle
		// writes.
		nw := newNoncedWriter(stand)
		for rest := []byte(body); len(rest) > 0; {
			k := min(len(rest), 1+r.IntN(len(stand)*3))
			if r.IntN(8) == 0 {
				k = min(len(rest), 1+r.IntN(100<<10))
			}
			if n, err := nw.Write(rest[:k]); n != k || err != nil {
				t.Fatalf("Write: %d, %v", n, err)
			}
			rest = rest[k:]
		}
		n, err := nw.Close()
		if err != nil {
			t.Fatal(err)
		}
		if want := strings.Count(body, stand) + 1; len(n.ends) != want {
			t.Errorf("%d bytes: %d parts, want %d", len(body), len(n.ends), want)
		}
		want := strings.ReplaceAll(body, stand, fresh)
		var stream bytes.Buffer
		if err := n.writeTo(&stream, fresh); err != nil {
			t.Fatal(err)
		}
		if int64(stream.Len()) != n.length(len(fresh)) {
			t.Errorf("%d bytes: a stream of %d bytes, its Content-Length %d", len(body), stream.Len(), n.length(len(fresh)))
		}
		zr, err := gzip.NewReader(&stream)
		if err != nil {
			t.Fatalf("%d bytes: %v", len(body), err)
		}
		got, err := io.ReadAll(zr)
		if err != nil || string(got) != want {
			t.Errorf("%d bytes: read back %d bytes (%v), want %d", len(body), len(got), err, len(want))
		}
		var plain bytes.Buffer
		if err := n.plainTo(&plain, fresh); err != nil || plain.String() != want {
			t.Errorf("%d bytes plain: %d bytes (%v)", len(body), plain.Len(), err)
		}
		if len(body) > 100<<10 && n.size() > int64(len(body))*7/10 {
			t.Errorf("%d bytes kept as %d: not compressed", len(body), n.size())
		}
	}
}

// The CRC of two pieces combined from theirs is the CRC of the whole, for
// lengths of zero, around the powers of two and over the matrices' range.
func TestCRC32Combine(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	data := make([]byte, 300<<10)
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	for _, cut := range []int{0, 1, 7, 8, 255, 256, 4096, 65535, 65536, 65537, 100 << 10, len(data) - 1, len(data)} {
		a, b := data[:cut], data[cut:]
		got := crc32Combine(crc32.ChecksumIEEE(a), crc32.ChecksumIEEE(b), int64(len(b)))
		if want := crc32.ChecksumIEEE(data); got != want {
			t.Errorf("cut at %d: %08x, want %08x", cut, got, want)
		}
	}
}

// A chunkBuf gives back what was written, in chunks that were never
// copied to grow, the last one trimmed when mostly spare.
func TestChunkBuf(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, size := range []int{0, 1, chunkSize - 1, chunkSize, chunkSize + 1, 5*chunkSize + 123} {
		want := make([]byte, size)
		for i := range want {
			want[i] = byte(r.Uint32())
		}
		var b chunkBuf
		for rest := want; len(rest) > 0; {
			k := min(len(rest), 1+r.IntN(3*chunkSize/2))
			b.Write(rest[:k])
			rest = rest[k:]
		}
		chunks := b.done()
		if b.Len() != int64(size) || chunksLen(chunks) != int64(size) {
			t.Errorf("%d bytes: Len %d, chunks %d", size, b.Len(), chunksLen(chunks))
		}
		var slack int
		for _, c := range chunks {
			slack += cap(c) - len(c)
		}
		if slack > chunkSize/8 {
			t.Errorf("%d bytes: %d bytes spare in %d chunks", size, slack, len(chunks))
		}
		var out bytes.Buffer
		writeChunks(&out, chunks)
		read, _ := io.ReadAll(chunksReader(chunks))
		if !bytes.Equal(out.Bytes(), want) || !bytes.Equal(read, want) {
			t.Errorf("%d bytes: written back %d, read back %d", size, out.Len(), len(read))
		}
	}
}
