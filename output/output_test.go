package output

import (
	"bytes"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/formats"
)

func sorted(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

func sample() *capture.Capture {
	b := capture.NewBuilder(capture.Meta{Type: capture.CPU, Duration: 2 * time.Second, Timestamps: true, Params: capture.Params{Type: capture.CPU, Hz: 99}})
	app := b.Frame(capture.Frame{Name: "app", Kind: capture.KindProcess})
	main := b.Frame(capture.Frame{Name: "main"})
	hot := b.Stack([]uint32{app, main, b.Frame(capture.Frame{Name: "hot"})})
	cold := b.Stack([]uint32{app, main, b.Frame(capture.Frame{Name: "cold"})})
	for i := range 30 {
		st := hot
		if i%3 == 0 {
			st = cold
		}
		b.Add(capture.Event{Time: int64(i) * int64(time.Second) / 20, Value: 1, Stack: st, PID: 7, TID: 7})
	}
	return b.Capture()
}

// Every format writes what its name and content type promise; the ones
// scorch reads back keep the samples of each function.
func TestFormats(t *testing.T) {
	c := sample()
	tests := []struct {
		name, contentType string
		check             func(t *testing.T, out []byte)
	}{
		{"svg", "image/svg+xml", func(t *testing.T, out []byte) {
			if !bytes.Contains(out, []byte("<svg")) || !regexp.MustCompile(`data-v="20" [^>]*><title>hot\n`).Match(out) {
				t.Errorf("no flame graph with hot's 20 samples: %.300s", out)
			}
		}},
		{"folded", "text/plain; charset=utf-8", func(t *testing.T, out []byte) {
			if got := sorted(out); got != "app;main;cold 10\napp;main;hot 20" {
				t.Errorf("folded:\n%s", got)
			}
		}},
		{"pprof", "application/octet-stream", nil},
		{"speedscope", "application/json", func(t *testing.T, out []byte) {
			var v struct {
				Schema string `json:"$schema"`
			}
			if err := json.Unmarshal(out, &v); err != nil || !strings.Contains(v.Schema, "speedscope") {
				t.Errorf("not a speedscope file (%v): %.200s", err, out)
			}
		}},
		{"heatmap-json", "application/json", func(t *testing.T, out []byte) {
			var v struct {
				Rows   int       `json:"rows"`
				Values [][]int64 `json:"values"`
			}
			if err := json.Unmarshal(out, &v); err != nil || v.Rows != 50 || len(v.Values) != 2 {
				t.Errorf("heatmap: %v, %d rows, %d columns, want 50 rows (the default), 2 columns", err, v.Rows, len(v.Values))
			}
		}},
		{"capture", "application/octet-stream", nil},
	}
	if len(tests) != len(Formats) {
		t.Errorf("%d formats in the table, %d tested", len(Formats), len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Lookup(tt.name)
			if err != nil {
				t.Fatal(err)
			}
			if f.ContentType != tt.contentType {
				t.Errorf("content type %q, want %q", f.ContentType, tt.contentType)
			}
			var buf bytes.Buffer
			if err := f.Write(&buf, c, View{}); err != nil {
				t.Fatal(err)
			}
			if tt.check != nil {
				tt.check(t, buf.Bytes())
			}
			if tt.name == "pprof" || tt.name == "capture" {
				back, _, err := formats.Import(bytes.NewReader(buf.Bytes()), formats.ImportOptions{})
				if err != nil {
					t.Fatal(err)
				}
				var folded bytes.Buffer
				if err := formats.WriteFolded(&folded, back, capture.Query{}); err != nil {
					t.Fatal(err)
				}
				if got := sorted(folded.Bytes()); got != "app;main;cold 10\napp;main;hot 20" {
					t.Errorf("read back:\n%s", got)
				}
			}
		})
	}
	if _, err := Lookup("png"); err == nil || !strings.Contains(err.Error(), "allowed values are svg, folded, pprof, speedscope, heatmap-json, capture") {
		t.Errorf("unknown format: %v", err)
	}
}
