package bounded

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestReader(t *testing.T) {
	tests := []struct {
		in      string
		limit   int64
		wantErr bool
	}{
		{"", 0, false},
		{"abc", 3, false},
		{"abcd", 3, true},
		{"abc", 10, false},
		{"x", 0, true},
	}
	for _, tt := range tests {
		got, err := io.ReadAll(NewReader(strings.NewReader(tt.in), tt.limit, "input"))
		if tt.wantErr {
			if !errors.Is(err, ErrTooLarge) {
				t.Errorf("%q limit %d: err %v, want a limit error", tt.in, tt.limit, err)
			}
			continue
		}
		if err != nil || string(got) != tt.in {
			t.Errorf("%q limit %d: got %q, %v", tt.in, tt.limit, got, err)
		}
	}
}

func TestGunzipBomb(t *testing.T) {
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zeros := make([]byte, 1<<20)
	for range 64 {
		zw.Write(zeros)
	}
	zw.Close()
	r, err := Gunzip(&z, 1<<20, "upload")
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, r)
	var le *LimitError
	if !errors.As(err, &le) || le.Limit != 1<<20 {
		t.Fatalf("read %d bytes, err %v: want a limit error at 1 MiB", n, err)
	}
	if n != 1<<20 {
		t.Errorf("read %d bytes before the error, want exactly the limit", n)
	}
	if !strings.Contains(err.Error(), "decompressed upload is larger than the limit of 1 MiB") {
		t.Errorf("error %q does not name the input and limit", err)
	}
}

func TestCount(t *testing.T) {
	if err := Count(10, 10, "capture file", "events"); err != nil {
		t.Error(err)
	}
	err := Count(1<<40, 10, "capture file", "events")
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "1099511627776 events") {
		t.Errorf("err %v", err)
	}
}
