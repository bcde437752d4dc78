package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestOverviewCommand(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"overview", "--interval", "200ms"}, &out, &errb); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	s := out.String()
	for _, want := range []string{"RESOURCE  STATUS", "\ncpu ", "\nmemory ", "units\n"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	out.Reset()
	if code := run(context.Background(), []string{"overview", "--json", "--interval", "200ms"}, &out, &errb); code != exitOK {
		t.Fatalf("--json: exit %d: %s", code, errb.String())
	}
	var o struct{ Resources []struct{ Resource string } }
	if err := json.Unmarshal(out.Bytes(), &o); err != nil || len(o.Resources) < 2 {
		t.Fatalf("--json: %v: %s", err, out.String())
	}
	// --watch prints until interrupted, then exits 0.
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	out.Reset()
	if code := run(ctx, []string{"overview", "--watch", "--interval", "200ms"}, &out, &errb); code != exitOK {
		t.Fatalf("--watch: exit %d", code)
	}
	if n := strings.Count(out.String(), "RESOURCE  STATUS"); n < 2 {
		t.Errorf("--watch printed %d tables in 1.5 s at 200ms", n)
	}
	for _, bad := range [][]string{{"overview", "--interval", "1ms"}, {"overview", "extra"}} {
		errb.Reset()
		if code := run(context.Background(), bad, &out, &errb); code != exitUsage || errb.Len() == 0 {
			t.Errorf("%v: exit %d, stderr %q", bad, code, errb.String())
		}
	}
}
