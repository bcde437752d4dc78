package web

import (
	"bytes"
	"compress/gzip"
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
		if want := strings.Count(body, stand) + 1; len(n.parts) != want {
			t.Errorf("%d bytes: %d parts, want %d", len(body), len(n.parts), want)
		}
		want := strings.ReplaceAll(body, stand, fresh)
		zr, err := gzip.NewReader(bytes.NewReader(n.with(fresh)))
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
