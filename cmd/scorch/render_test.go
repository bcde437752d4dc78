package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/xml"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/pprof/profile"
)

const perfFixture = "../../formats/testdata/perf-cpu-clock.txt"

func runCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestRenderFormats(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		format string
		check  func(t *testing.T, data []byte)
	}{
		{"svg", func(t *testing.T, data []byte) {
			if err := xml.Unmarshal(data, new(struct{})); err != nil || !bytes.Contains(data, []byte("leaf_a")) {
				t.Errorf("svg: %v", err)
			}
		}},
		{"folded", func(t *testing.T, data []byte) {
			if !strings.Contains(string(data), "spinner;__libc_start_call_main;main;work_a;leaf_a ") {
				t.Errorf("folded output:\n%.300s", data)
			}
		}},
		{"pprof", func(t *testing.T, data []byte) {
			if _, err := profile.ParseData(data); err != nil {
				t.Errorf("pprof: %v", err)
			}
		}},
		{"speedscope", func(t *testing.T, data []byte) {
			if !bytes.Contains(data, []byte(`"$schema":"https://www.speedscope.app/file-format-schema.json"`)) {
				t.Errorf("speedscope: no schema")
			}
		}},
		{"capture", func(t *testing.T, data []byte) {
			// A capture renders again, with its timestamps: a range works.
			file := filepath.Join(dir, "again.capture")
			os.WriteFile(file, data, 0o644)
			code, out, stderr := runCmd(t, "render", "--format", "folded", "--from", "0.05", "--to", "0.1", file)
			if code != 0 || !strings.Contains(out, "leaf_a") {
				t.Errorf("render of a capture file: %d %s", code, stderr)
			}
			// Several ranges: --from and --to in pairs, the samples of both.
			_, early, _ := runCmd(t, "render", "--format", "folded", "--from", "0", "--to", "0.05", file)
			code, both, stderr := runCmd(t, "render", "--format", "folded", "--from", "0", "--to", "0.05", "--from", "0.05", "--to", "0.1", file)
			if got, want := foldedTotal(both), foldedTotal(early)+foldedTotal(out); code != 0 || got != want || foldedTotal(early) == 0 {
				t.Errorf("render of two ranges: %d, %d samples, want %d+%d: %s", code, got, foldedTotal(early), foldedTotal(out), stderr)
			}
			if code, _, stderr := runCmd(t, "render", "--format", "folded", "--from", "0", "--from", "0.05", "--to", "0.1", file); code != 2 || !strings.Contains(stderr, "from is given 2 times and to 1 times") {
				t.Errorf("unpaired ranges: %d %s", code, stderr)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			file := filepath.Join(dir, "out."+tt.format)
			code, _, stderr := runCmd(t, "render", "--format", tt.format, "-o", file, perfFixture)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, data)
		})
	}
}

func TestRenderExitCodes(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.txt")
	os.WriteFile(garbage, []byte("hello world\nnothing here\n"), 0o644)
	partial := filepath.Join(dir, "partial.folded")
	os.WriteFile(partial, []byte("a;b 1\nbroken line\na;c 2\n"), 0o644)
	tests := []struct {
		args     []string
		code     int
		stderr   string
		inStdout string
	}{
		{[]string{"render", "--format", "png", perfFixture}, 2, "allowed values are svg, folded", ""},
		{[]string{"render", "--format", "svg"}, 2, "no input", ""},
		{[]string{"render", "--layout", "sideways", perfFixture}, 2, "allowed values are flame, icicle", ""},
		{[]string{"render", "--from", "500", perfFixture}, 2, "valid interval", ""},
		{[]string{"render", filepath.Join(dir, "missing")}, 1, "no such file", ""},
		{[]string{"render", garbage}, 1, "unknown input format", ""},
		{[]string{"render", "--format", "folded", partial}, 0, "1 of 3 lines of folded could not be parsed and were skipped; the first is line 2", "a;c 2"},
		{[]string{"render", "--format", "folded", partial, perfFixture}, 1, "different things", ""},
		{[]string{"render", "--format", "folded", "--type", "offcpu", partial, "--reverse", "true", "--title", "x"}, 0, "", "a;b 1"},
		{[]string{"render", "--type", "nope", partial}, 2, "unknown capture type", ""},
		{[]string{"diff", perfFixture}, 2, "need two inputs", ""},
		{[]string{"diff", "--widths", "both", perfFixture, perfFixture}, 2, "allowed values are base, compare", ""},
	}
	for _, tt := range tests {
		code, out, stderr := runCmd(t, tt.args...)
		if code != tt.code || !strings.Contains(stderr, tt.stderr) || !strings.Contains(out, tt.inStdout) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d, stderr with %q, stdout with %q", tt.args, code, stderr, tt.code, tt.stderr, tt.inStdout)
		}
	}
}

func TestRenderMergesAndStdin(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.folded")
	os.WriteFile(a, []byte("app;main;x 3\n"), 0o644)
	stdinReader = strings.NewReader("app;main;x 4\napp;main;y 1\n")
	defer func() { stdinReader = os.Stdin }()
	code, out, stderr := runCmd(t, "render", "--format", "folded", a, "-")
	if code != 0 || !strings.Contains(out, "app;main;x 7\n") || !strings.Contains(out, "app;main;y 1\n") {
		t.Errorf("merge of a file and stdin: exit %d, %q, %s", code, out, stderr)
	}
}

func TestDiffCommand(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "base.folded")
	cmp := filepath.Join(dir, "cmp.folded")
	os.WriteFile(base, []byte("app;main;grow 10\napp;main;gone 90\n"), 0o644)
	os.WriteFile(cmp, []byte("app;main;grow 100\n"), 0o644)
	out := filepath.Join(dir, "diff.svg")
	code, _, stderr := runCmd(t, "diff", base, cmp, "-o", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	data, _ := os.ReadFile(out)
	if !bytes.Contains(data, []byte("Differential Flame Graph")) || bytes.Contains(data, []byte("<title>gone\n")) || !bytes.Contains(data, []byte("1 frame exists only in the base")) {
		t.Errorf("diff svg: widths should come from compare and mention frames only in base")
	}
	code, svg, _ := runCmd(t, "diff", "--widths", "base", base, cmp)
	if code != 0 || !strings.Contains(svg, "<title>gone\n") {
		t.Errorf("--widths base should draw the frame only in base")
	}
}

// A gzip bomb given to render is refused without inflating it (the 1 MB
// gzip of zeros once took 2.8 GB).
func TestRenderBomb(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, unit []byte, total int) string {
		var z bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&z, gzip.BestCompression)
		big := bytes.Repeat(unit, (1<<20)/len(unit))
		for n := 0; n < total; n += len(big) {
			zw.Write(big)
		}
		zw.Close()
		path := filepath.Join(dir, name)
		os.WriteFile(path, z.Bytes(), 0o644)
		return path
	}
	zeros := write("zeros.gz", []byte{0}, 1<<30)
	code, _, stderr := runCmd(t, "render", "--format", "folded", zeros)
	if code != 1 || !strings.Contains(stderr, "unknown input format") {
		t.Errorf("gzip of 1 GiB of zeros: exit %d, stderr %q", code, stderr)
	}
}

// foldedTotal adds up the values of folded lines.
func foldedTotal(folded string) int {
	total := 0
	for _, line := range strings.Split(strings.TrimSpace(folded), "\n") {
		if i := strings.LastIndexByte(line, ' '); i > 0 {
			n, _ := strconv.Atoi(line[i+1:])
			total += n
		}
	}
	return total
}
