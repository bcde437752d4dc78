// Command bombs writes the hostile inputs of scripts/bench-limits.sh into a
// directory: small files that claim or inflate to far more than they are,
// one per importable format, and a large honest folded file.
//
//	go run ./scripts/bench/bombs DIR
package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/google/pprof/profile"
	"github.com/scorch-dev/scorch/capture"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: bombs DIR")
		os.Exit(2)
	}
	dir := os.Args[1]
	must(os.MkdirAll(dir, 0o755))
	// 1 GiB of zeros: the 1 MB gzip that took 17 s and 2.6 GiB to refuse.
	gz(filepath.Join(dir, "zeros.gz"), func(w io.Writer) { repeat(w, []byte{0}, 1<<30) })
	// 900 MB of one folded line: accepted whole before.
	gz(filepath.Join(dir, "folded.gz"), func(w io.Writer) { repeat(w, []byte("app;main;work;deeper 1\n"), 900<<20) })
	// 900 MB of perf script samples.
	gz(filepath.Join(dir, "perf.gz"), func(w io.Writer) {
		repeat(w, []byte("app 1/1 [000] 1.000000: 1 cpu-clock:\n\tffffffff81000000 work (/app)\n\n"), 900<<20)
	})
	// pprof of 8M one-location samples: 60 MB raw, hundreds of bytes each decoded.
	gz(filepath.Join(dir, "pprof.pb.gz"), func(w io.Writer) { w.Write(pprofBomb(8 << 20)) })
	// Capture files claiming a 1 GiB header, and 2^40 events.
	hdr := []byte(`{"meta":{"type":"cpu"},"frames":[],"stacks":[]}`)
	write(filepath.Join(dir, "capture-header.scorch"), captureClaiming(hdr, 1<<30, 0))
	write(filepath.Join(dir, "capture-events.scorch"), captureClaiming(hdr, uint64(len(hdr)), 1<<40))
	// An honest 64 MiB folded file: many stacks sharing prefixes.
	f, err := os.Create(filepath.Join(dir, "big.folded"))
	must(err)
	bw := bufio.NewWriterSize(f, 1<<20)
	r := rand.New(rand.NewPCG(1, 2))
	for n := 0; n < 64<<20; {
		line := fmt.Sprintf("app%d;main", r.IntN(4))
		for i := range 8 + r.IntN(25) {
			line += fmt.Sprintf(";fn_%d_%d", i, r.IntN(2+i))
		}
		line += fmt.Sprintf(" %d\n", 1+r.IntN(1000))
		k, _ := bw.WriteString(line)
		n += k
	}
	must(bw.Flush())
	must(f.Close())
}

func repeat(w io.Writer, unit []byte, total int) {
	big := bytes.Repeat(unit, max(1, (1<<20)/len(unit)))
	for n := 0; n < total; n += len(big) {
		w.Write(big)
	}
}

func gz(path string, fill func(io.Writer)) {
	f, err := os.Create(path)
	must(err)
	zw, _ := gzip.NewWriterLevel(f, gzip.BestCompression)
	fill(zw)
	must(zw.Close())
	must(f.Close())
}

func write(path string, b []byte) { must(os.WriteFile(path, b, 0o644)) }

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

func pprofBomb(n int) []byte {
	p := &profile.Profile{SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"}}}
	fn := &profile.Function{ID: 1, Name: "f"}
	loc := &profile.Location{ID: 1, Line: []profile.Line{{Function: fn}}}
	p.Function, p.Location = []*profile.Function{fn}, []*profile.Location{loc}
	p.Sample = make([]*profile.Sample, n)
	s := &profile.Sample{Location: []*profile.Location{loc}, Value: []int64{1}}
	for i := range p.Sample {
		p.Sample[i] = s
	}
	var buf bytes.Buffer
	must(p.WriteUncompressed(&buf))
	return buf.Bytes()
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bombs:", err)
		os.Exit(1)
	}
}
