package formats

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/google/pprof/profile"
	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/internal/bounded"
)

// gzipRepeat gzips n copies of unit.
func gzipRepeat(t testing.TB, unit []byte, n int) []byte {
	t.Helper()
	var z bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&z, gzip.BestCompression)
	big := bytes.Repeat(unit, max(1, (1<<20)/len(unit)))
	for written := 0; written < n*len(unit); written += len(big) {
		zw.Write(big)
	}
	zw.Close()
	return z.Bytes()
}

// captureClaiming is a capture file whose gzip body claims a header of hdr
// bytes and count events, then ends.
func captureClaiming(hdr []byte, claimHdr, count uint64) []byte {
	var out bytes.Buffer
	out.WriteString(capture.Magic)
	out.WriteByte(capture.FormatVersion)
	zw := gzip.NewWriter(&out)
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], claimHdr)
	zw.Write(n[:])
	zw.Write(hdr)
	if count > 0 {
		binary.LittleEndian.PutUint64(n[:], count)
		zw.Write(n[:])
	}
	zw.Close()
	return out.Bytes()
}

// pprofBomb is an uncompressed profile of n samples of one location each:
// about 6 bytes a sample on disk, hundreds decoded.
func pprofBomb(n int) []byte {
	p := &profile.Profile{SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"}}}
	fn := &profile.Function{ID: 1, Name: "f"}
	loc := &profile.Location{ID: 1, Line: []profile.Line{{Function: fn}}}
	p.Function, p.Location = []*profile.Function{fn}, []*profile.Location{loc}
	for range n {
		p.Sample = append(p.Sample, &profile.Sample{Location: []*profile.Location{loc}, Value: []int64{1}})
	}
	var buf bytes.Buffer
	p.WriteUncompressed(&buf)
	return buf.Bytes()
}

// TestImportBombs: every compressed or claimed size is refused at the limit
// with an error naming it, quickly and without allocating the claim.
func TestImportBombs(t *testing.T) {
	const limit = 4 << 20
	validHdr := []byte(`{"meta":{"type":"cpu"},"frames":[],"stacks":[]}`)
	gzFolded := gzipRepeat(t, []byte("app;main;work;deeper 1\n"), 64<<20/23)
	gzPerf := gzipRepeat(t, []byte("app 1/1 [000] 1.000000: 1 cpu-clock:\n\tffff a (/x)\n\n"), 64<<20/50)
	tests := []struct {
		name string
		data []byte
		want string // in the error
	}{
		{"gzip of 64 MiB of zeros", gzipRepeat(t, []byte{0}, 64<<20), "unknown input format"},
		{"gzipped folded, 64 MiB", gzFolded, "decompressed input is larger than the limit of 4 MiB"},
		{"gzipped perf script, 64 MiB", gzPerf, "more than the limit of 16384 samples"},
		{"capture claiming a 1 GiB header", captureClaiming(validHdr, 1<<30, 0), "capture file header claims 1073741824 bytes"},
		{"capture claiming 2^40 events", captureClaiming(validHdr, uint64(len(validHdr)), 1<<40), "capture file claims 1099511627776 events"},
		{"pprof of 300000 tiny samples", pprofBomb(300000), "decoding the profile"},
		{"gzipped pprof of 300000 tiny samples", gzipBytes(pprofBomb(300000)), "decoding the profile"},
		{"raw input over the limit", bytes.Repeat([]byte("a;b 1\n"), limit/6+1), "input is larger than the limit of 4 MiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			start := time.Now()
			_, _, err := Import(bytes.NewReader(tt.data), ImportOptions{MaxBytes: limit})
			el := time.Since(start)
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want one containing %q", err, tt.want)
			}
			if !strings.Contains(tt.want, "unknown") && !errors.Is(err, bounded.ErrTooLarge) {
				t.Errorf("err %v does not match bounded.ErrTooLarge (the server answers 413 on it)", err)
			}
			// Allocation is bounded by a few times the limit, not by the claim.
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16*limit+uint64(len(tt.data))*2 {
				t.Errorf("allocated %d MiB for a %d KiB input with a 4 MiB limit", alloc>>20, len(tt.data)>>10)
			}
			t.Logf("%s: %v in %v", tt.name, err, el)
		})
	}
}

func gzipBytes(b []byte) []byte {
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(b)
	zw.Close()
	return z.Bytes()
}

// Under the limit the same formats import.
func TestImportWithinLimit(t *testing.T) {
	gz := gzipRepeat(t, []byte("app;main;work 1\n"), 1<<16)
	c, rep, err := Import(bytes.NewReader(gz), ImportOptions{MaxBytes: 4 << 20})
	if err != nil || rep.Format != "folded" {
		t.Fatalf("gzipped folded under the limit: %v", err)
	}
	if got := total(c, capture.Query{}); got < 1<<16 {
		t.Errorf("total %d, want at least %d", got, 1<<16)
	}
	if _, _, err := Import(bytes.NewReader(pprofBomb(1000)), ImportOptions{MaxBytes: 4 << 20}); err != nil {
		t.Errorf("a pprof of 1000 samples: %v", err)
	}
}

// Item 9 of issue 21: inputs detection missed.
func TestDetectLongLineAndASCIIPprof(t *testing.T) {
	long := strings.Repeat("frame_with_a_long_name;", 100<<10/23) + "leaf 7\nmain;x 3\n"
	if got := Detect([]byte(long)); got != "folded" {
		t.Errorf("folded file with a %d KiB first line: Detect = %q, want folded", len(long)>>10, got)
	}
	c, rep, err := Import(strings.NewReader(long), ImportOptions{})
	if err != nil || rep.Format != "folded" || total(c, capture.Query{}) != 10 {
		t.Errorf("import of the long-line folded file: %v %+v", err, rep)
	}
	c, rep, err = Import(bytes.NewReader(gzipBytes([]byte(long))), ImportOptions{})
	if err != nil || rep.Format != "folded" || total(c, capture.Query{}) != 10 {
		t.Errorf("import of the gzipped long-line folded file: %v %+v", err, rep)
	}

	// A small profile whose bytes are all ASCII and none of them NUL.
	p := &profile.Profile{SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"}}}
	fn := &profile.Function{ID: 1, Name: "main"}
	loc := &profile.Location{ID: 1, Line: []profile.Line{{Function: fn, Line: 3}}}
	p.Function, p.Location = []*profile.Function{fn}, []*profile.Location{loc}
	p.Sample = []*profile.Sample{{Location: []*profile.Location{loc}, Value: []int64{5}}}
	var buf bytes.Buffer
	if err := p.WriteUncompressed(&buf); err != nil {
		t.Fatal(err)
	}
	for _, b := range buf.Bytes() {
		if b >= 0x80 {
			t.Fatalf("fixture is not ASCII-only: % x", buf.Bytes())
		}
	}
	if got := Detect(buf.Bytes()); got != "pprof" {
		t.Errorf("ASCII-only uncompressed pprof (% x): Detect = %q, want pprof", buf.Bytes(), got)
	}
	c, rep, err = Import(bytes.NewReader(buf.Bytes()), ImportOptions{})
	if err != nil || rep.Format != "pprof" || total(c, capture.Query{}) != 5 {
		t.Errorf("import of the ASCII pprof: %v %+v", err, rep)
	}
}

var _ = io.EOF

// FuzzImportRoundTrip: whatever imports writes back as a capture file
// that reads to the same events, and as folded stacks that import to the
// same total.
func FuzzImportRoundTrip(f *testing.F) {
	f.Add([]byte("a;b;c 10\na;--;b_[w];app 3\n"))
	f.Add([]byte("app 1/2 [003] 5.000001: 77 cycles:u:\n\t1 a->b->c+0x1 (/tmp/perf-1.map)\n"))
	f.Add(pprofBomb(3))
	f.Add(gzipBytes([]byte("x;y 2\n")))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, _, err := Import(bytes.NewReader(data), ImportOptions{MaxBytes: 1 << 20})
		if err != nil {
			return
		}
		var file bytes.Buffer
		if err := capture.Write(&file, c); err != nil {
			t.Fatalf("write capture: %v", err)
		}
		back, rep, err := Import(&file, ImportOptions{MaxBytes: 64 << 20})
		if err != nil || rep.Format != "capture" {
			t.Fatalf("re-import of the capture file: %v", err)
		}
		if len(back.Events) != len(c.Events) || total(back, capture.Query{IncludeIdle: true}) != total(c, capture.Query{IncludeIdle: true}) {
			t.Fatalf("capture round trip: %d events total %d, want %d total %d", len(back.Events), total(back, capture.Query{IncludeIdle: true}), len(c.Events), total(c, capture.Query{IncludeIdle: true}))
		}
		var folded bytes.Buffer
		if err := WriteFolded(&folded, c, capture.Query{IncludeIdle: true}); err != nil {
			t.Fatal(err)
		}
		if folded.Len() == 0 {
			return
		}
		again, _, err := Import(&folded, ImportOptions{MaxBytes: 64 << 20, Type: c.Meta.Type})
		if err != nil {
			t.Fatalf("re-import of its folded stacks: %v\n%.300s", err, folded.String())
		}
		if a, b := total(again, capture.Query{IncludeIdle: true}), total(c, capture.Query{IncludeIdle: true}); a != b {
			t.Fatalf("folded round trip: total %d, want %d", a, b)
		}
	})
}

// A streamed import (a reader that says nothing of its length and yields
// a byte at a time, raw and gzipped) gives the same capture as the import
// of the same bytes in memory, for every file in testdata and each text
// format written out.
func TestStreamedImportMatchesInMemory(t *testing.T) {
	files, err := filepath.Glob("testdata/*.*")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata files: %v", err)
	}
	inputs := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		inputs[filepath.Base(f)] = b
	}
	// Folded and pprof inputs, from a perf script import.
	c, _, err := ImportBytes(inputs["perf-system-wide.txt"], ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var folded, pb bytes.Buffer
	if err := WriteFolded(&folded, c, capture.Query{}); err != nil {
		t.Fatal(err)
	}
	if err := WritePprof(&pb, c, capture.Query{}); err != nil {
		t.Fatal(err)
	}
	inputs["folded"], inputs["pprof"] = folded.Bytes(), pb.Bytes()
	encode := func(c *capture.Capture) []byte {
		var b bytes.Buffer
		if err := capture.Write(&b, c); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	compared := 0
	for name, data := range inputs {
		for _, gz := range []bool{false, true} {
			in := data
			if gz {
				in = gzipBytes(data)
			}
			want, wrep, werr := ImportBytes(in, ImportOptions{})
			got, grep, gerr := Import(iotest.OneByteReader(bytes.NewReader(in)), ImportOptions{})
			if (werr == nil) != (gerr == nil) {
				t.Errorf("%s (gzip %v): in memory: %v, streamed: %v", name, gz, werr, gerr)
				continue
			}
			if werr != nil {
				continue
			}
			if wrep.Format != grep.Format || wrep.Lines != grep.Lines || wrep.BadLines != grep.BadLines {
				t.Errorf("%s (gzip %v): report %+v streamed, %+v in memory", name, gz, *grep, *wrep)
			}
			if !bytes.Equal(encode(got), encode(want)) {
				t.Errorf("%s (gzip %v): the streamed import's capture differs from the in-memory one", name, gz)
			}
			compared++
		}
	}
	if compared < 2*len(inputs)-2 {
		t.Errorf("only %d of %d imports compared: the others failed both ways", compared, 2*len(inputs))
	}
}
