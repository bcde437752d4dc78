package web

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"encoding/binary"
	"hash/crc32"
	"io"
	"sync"
)

// noncedGzip is a cached SVG kept gzipped without its nonce, so that each
// answer gets a nonce of its own at the cost of a pass over the parts, not
// of a rendering nor of compressing again. The rendering is cut where its
// nonce was; each part is deflated on its own and ends byte-aligned (a
// sync flush, the last one a final block), so an answer is the gzip header,
// the parts with the answer's nonce as a stored block between each two, and
// a trailer whose CRC is combined from the parts' CRCs. Answers are written
// from the parts as they are: a copy per answer was a third of a loaded
// server's heap (50 clients, each holding a megabyte).
type noncedGzip struct {
	data [][]byte // the deflated parts, one after another, in chunks
	ends []int64  // where each part ends in data
	crcs []uint32 // CRC-32 (IEEE) of each part's plain text
	lens []int64  // length of each part's plain text
}

// noncedWriter makes a noncedGzip of a rendering as it is written: the
// rendering is cut at every occurrence of nonce (a random string it used,
// so no attacker-chosen text can contain it) and deflated part by part,
// so only the deflated parts are held, never the plain text (a flame graph
// of 4,000 stacks is 10-15 MB of SVG and 1 MB deflated).
type noncedWriter struct {
	nonce   []byte
	n       noncedGzip
	buf     chunkBuf // the parts so far, deflated
	fw      *flate.Writer
	crc     uint32 // of the current part's plain text
	len     int64
	pend    []byte // the last bytes written, which may begin a nonce
	scratch []byte
	err     error
}

func newNoncedWriter(nonce string) *noncedWriter {
	w := &noncedWriter{nonce: []byte(nonce)}
	w.fw, _ = flate.NewWriter(&w.buf, flate.BestSpeed)
	return w
}
func (w *noncedWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	data := p
	if len(w.pend) > 0 {
		w.scratch = append(append(w.scratch[:0], w.pend...), p...)
		data = w.scratch
	}
	for {
		i := bytes.Index(data, w.nonce)
		if i < 0 {
			break
		}
		w.plain(data[:i])
		w.cut(false)
		data = data[i+len(w.nonce):]
	}
	// A nonce may begin in the last len(nonce)-1 bytes and end in the
	// next write.
	keep := min(len(data), len(w.nonce)-1)
	w.plain(data[:len(data)-keep])
	w.pend = append(w.pend[:0], data[len(data)-keep:]...)
	if w.err != nil {
		return 0, w.err
	}
	return len(p), nil
}

func (w *noncedWriter) plain(b []byte) {
	if w.err != nil || len(b) == 0 {
		return
	}
	_, w.err = w.fw.Write(b)
	w.crc = crc32.Update(w.crc, crc32.IEEETable, b)
	w.len += int64(len(b))
}

// cut ends the current part byte-aligned: a sync flush, or the final block.
func (w *noncedWriter) cut(final bool) {
	if w.err != nil {
		return
	}
	if final {
		w.err = w.fw.Close()
	} else {
		w.err = w.fw.Flush()
	}
	w.n.ends = append(w.n.ends, w.buf.Len())
	w.n.crcs = append(w.n.crcs, w.crc)
	w.n.lens = append(w.n.lens, w.len)
	w.crc, w.len = 0, 0
	// A fresh window: a match may not reach back past the cut, where the
	// answer's nonce goes.
	w.fw.Reset(&w.buf)
}

// Close ends the last part and returns the rendering.
func (w *noncedWriter) Close() (*noncedGzip, error) {
	w.plain(w.pend)
	w.pend = nil
	w.cut(true)
	if w.err != nil {
		return nil, w.err
	}
	// A copy: the cache must not keep the writer (its compressor's
	// state is a megabyte).
	n := w.n
	n.data = w.buf.done()
	w.fw, w.scratch = nil, nil
	return &n, nil
}

// size is what the cache charges.
func (n *noncedGzip) size() int64 { return chunksLen(n.data) }

// length is the length of the gzip stream under a nonce of nonceLen bytes.
func (n *noncedGzip) length(nonceLen int) int64 {
	return 10 + n.size() + int64(len(n.ends)-1)*int64(5+nonceLen) + 8
}

// pieces is the gzip stream of the rendering under nonce, in pieces that
// are the parts' own bytes but for the header, the nonces and the trailer.
func (n *noncedGzip) pieces(nonce string) [][]byte {
	out := make([][]byte, 0, len(n.data)+3*len(n.ends)+2)
	out = append(out, []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}) // gzip, deflate, no name or time
	var crc uint32
	var total int64
	chunk, at := 0, int64(0) // the chunk being read and the offset in it
	var start int64
	for i, end := range n.ends {
		for start < end {
			c := n.data[chunk][at:]
			k := min(int64(len(c)), end-start)
			out = append(out, c[:k])
			start += k
			if at += k; at == int64(len(n.data[chunk])) {
				chunk, at = chunk+1, 0
			}
		}
		crc = crc32Combine(crc, n.crcs[i], n.lens[i])
		total += n.lens[i]
		if i < len(n.ends)-1 {
			// A stored block: BFINAL 0, BTYPE 00, padded to the byte
			// boundary the sync flush left; LEN and its complement.
			hdr := make([]byte, 5, 5+len(nonce))
			binary.LittleEndian.PutUint16(hdr[1:], uint16(len(nonce)))
			binary.LittleEndian.PutUint16(hdr[3:], ^uint16(len(nonce)))
			out = append(out, append(hdr, nonce...))
			crc = crc32.Update(crc, crc32.IEEETable, []byte(nonce))
			total += int64(len(nonce))
		}
	}
	tr := make([]byte, 8)
	binary.LittleEndian.PutUint32(tr, crc)
	binary.LittleEndian.PutUint32(tr[4:], uint32(total))
	return append(out, tr)
}

// writeTo writes the gzip stream of the rendering under nonce.
func (n *noncedGzip) writeTo(w io.Writer, nonce string) error {
	return writeChunks(w, n.pieces(nonce))
}

// plainTo writes the rendering under nonce uncompressed.
func (n *noncedGzip) plainTo(w io.Writer, nonce string) error {
	zr, err := gzip.NewReader(chunksReader(n.pieces(nonce)))
	if err != nil {
		return err
	}
	_, err = io.Copy(w, zr)
	return err
}

// crc32Combine is the CRC-32 of A then B from crcA, crcB and B's length.
// CRC-32 is affine: the CRC of A then B is crcB xor crcA run through
// len(B) zero bytes of the bare register (no inversions). That run is
// linear over GF(2), a 32x32 bit matrix per power of two of bytes, so it
// costs a few dozen matrix-vector products however long B is (running the
// zeros through crc32.Update cost a pass as long as the plain SVG, 10-15 MB,
// on every answer).
func crc32Combine(crcA, crcB uint32, lenB int64) uint32 {
	ops := zeroOps()
	c := crcA
	for k := 0; lenB > 0; k, lenB = k+1, lenB>>1 {
		if lenB&1 != 0 {
			c = gf2Apply(&ops[k], c)
		}
	}
	return c ^ crcB
}

// gf2Matrix is a linear map on 32-bit vectors over GF(2): column i is the
// image of bit i.
type gf2Matrix [32]uint32

func gf2Apply(m *gf2Matrix, v uint32) uint32 {
	var s uint32
	for i := 0; v != 0; i, v = i+1, v>>1 {
		if v&1 != 0 {
			s ^= m[i]
		}
	}
	return s
}

// zeroOps[k] runs the bare CRC-32 register through 2^k zero bytes.
var zeroOps = sync.OnceValue(func() *[63]gf2Matrix {
	var ops [63]gf2Matrix
	// One zero bit: the register shifts right, and the polynomial
	// (reflected) comes in when the bit shifted out was set.
	var m gf2Matrix
	m[0] = crc32.IEEE
	for i := 1; i < 32; i++ {
		m[i] = 1 << (i - 1)
	}
	square := func(m *gf2Matrix) gf2Matrix {
		var sq gf2Matrix
		for i := range sq {
			sq[i] = gf2Apply(m, m[i])
		}
		return sq
	}
	m = square(&m) // 2 bits
	m = square(&m) // 4
	ops[0] = square(&m)
	for k := 1; k < len(ops); k++ {
		ops[k] = square(&ops[k-1])
	}
	return &ops
})
