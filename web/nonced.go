package web

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"encoding/binary"
	"hash/crc32"
	"io"
)

// noncedGzip is a cached SVG kept gzipped without its nonce, so that each
// answer gets a nonce of its own at the cost of a copy, not of a rendering
// nor of compressing again. The rendering is cut where its nonce was; each
// part is deflated on its own and ends byte-aligned (a sync flush, the last
// one a final block), so an answer is the gzip header, the parts with the
// answer's nonce as a stored block between each two, and a trailer whose
// CRC is combined from the parts' CRCs.
type noncedGzip struct {
	parts [][]byte // deflated
	crcs  []uint32 // CRC-32 (IEEE) of each part's plain text
	lens  []int64  // length of each part's plain text
}

// noncedWriter makes a noncedGzip of a rendering as it is written: the
// rendering is cut at every occurrence of nonce (a random string it used,
// so no attacker-chosen text can contain it) and deflated part by part,
// so only the deflated parts are held, never the plain text (a flame graph
// of 4,000 stacks is 10-15 MB of SVG and 1 MB deflated).
type noncedWriter struct {
	nonce   []byte
	n       noncedGzip
	buf     bytes.Buffer // the current part, deflated
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
	w.n.parts = append(w.n.parts, bytes.Clone(w.buf.Bytes()))
	w.n.crcs = append(w.n.crcs, w.crc)
	w.n.lens = append(w.n.lens, w.len)
	w.buf.Reset()
	w.fw.Reset(&w.buf)
	w.crc, w.len = 0, 0
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
	w.fw, w.scratch = nil, nil
	return &n, nil
}

// size is what the cache charges.
func (n *noncedGzip) size() int64 {
	var s int64
	for _, p := range n.parts {
		s += int64(len(p))
	}
	return s
}

// with is the gzip stream of the rendering under nonce.
func (n *noncedGzip) with(nonce string) []byte {
	var out bytes.Buffer
	out.Grow(int(n.size()) + 18 + len(n.parts)*(5+len(nonce)))
	out.Write([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}) // gzip, deflate, no name or time
	var crc uint32
	var total int64
	for i, p := range n.parts {
		out.Write(p)
		crc = crc32Combine(crc, n.crcs[i], n.lens[i])
		total += n.lens[i]
		if i < len(n.parts)-1 {
			// A stored block: BFINAL 0, BTYPE 00, padded to the byte
			// boundary the sync flush left; LEN and its complement.
			var hdr [5]byte
			binary.LittleEndian.PutUint16(hdr[1:], uint16(len(nonce)))
			binary.LittleEndian.PutUint16(hdr[3:], ^uint16(len(nonce)))
			out.Write(hdr[:])
			out.WriteString(nonce)
			crc = crc32.Update(crc, crc32.IEEETable, []byte(nonce))
			total += int64(len(nonce))
		}
	}
	var tr [8]byte
	binary.LittleEndian.PutUint32(tr[:], crc)
	binary.LittleEndian.PutUint32(tr[4:], uint32(total))
	out.Write(tr[:])
	return out.Bytes()
}

var zeros [64 << 10]byte

// crc32Combine is the CRC-32 of A then B from crcA, crcB and B's length.
// CRC-32 is affine: Update(c, B) = Update(0, B) ^ shift(c), where shift(c)
// is c run through len(B) zero bytes with the register's inversions undone.
// Running zeros costs about as much as a copy of B (the CRC instructions
// are faster than the gzip it replaces by far).
func crc32Combine(crcA, crcB uint32, lenB int64) uint32 {
	if crcA == 0 {
		return crcB
	}
	c := ^crcA
	for lenB > 0 {
		k := min(lenB, int64(len(zeros)))
		c = crc32.Update(c, crc32.IEEETable, zeros[:k])
		lenB -= k
	}
	return crcB ^ ^c
}

// plainTo writes the rendering under nonce uncompressed.
func (n *noncedGzip) plainTo(w io.Writer, nonce string) error {
	zr, err := gzip.NewReader(bytes.NewReader(n.with(nonce)))
	if err != nil {
		return err
	}
	_, err = io.Copy(w, zr)
	return err
}
