package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

// TestAgentUsageErrors: bad flags exit 2 with a message naming the flag
// and the allowed values, before anything is loaded.
func TestAgentUsageErrors(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "token")
	os.WriteFile(secret, []byte("tok\n"), 0o600)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"agent"}, "--remote URL is required"},
		{[]string{"agent", "--remote", "http://127.0.0.1:4040"}, "--remote-kind is required: allowed values are pyroscope, parca, otlp"},
		{[]string{"agent", "--remote", "http://127.0.0.1:4040", "--remote-kind", "jaeger"}, `--remote-kind "jaeger" is not supported: allowed values are pyroscope, parca, otlp`},
		{[]string{"agent", "--remote", "ftp://x", "--remote-kind", "pyroscope"}, "pyroscope takes an http:// or https:// URL"},
		{[]string{"agent", "--remote", "http://x:4040", "--remote-kind", "pyroscope", "--types", "cpu,gpu"}, `unknown type "gpu": allowed values are cpu, offcpu, offwake, mem`},
		{[]string{"agent", "--remote", "http://x:4040", "--remote-kind", "pyroscope", "--every", "100ms"}, "--every 100ms is out of range: allowed 1s..10m"},
		{[]string{"agent", "--remote", "http://x:4040", "--remote-kind", "pyroscope", "--label", "service_name=x"}, "service_name is set by the agent"},
		{[]string{"agent", "--remote", "http://x:4040", "--remote-kind", "pyroscope", "--label", "bad-name=x"}, "the name must match"},
		{[]string{"agent", "--remote", "http://x:4040", "--remote-kind", "pyroscope", "--remote-header", "Authorization=Bearer x"}, "secrets come from files"},
		{[]string{"agent", "--remote", "http://x:4040", "--remote-kind", "pyroscope", "--remote-token-file", "/nonexistent"}, "--remote-token-file"},
		{[]string{"agent", "--remote", "http://x:4040", "--remote-kind", "pyroscope", "--remote-token-file", secret, "--remote-user", "u"}, "not both"},
		{[]string{"agent", "--remote", "http://x:4040", "--remote-kind", "pyroscope", "--remote-ca-file", secret}, "--remote-ca-file needs an https://"},
		{[]string{"agent", "--remote", "https://x", "--remote-kind", "pyroscope", "--remote-ca-file", secret}, "holds no PEM certificate"},
		{[]string{"agent", "--remote", "http://x:4040", "--remote-kind", "pyroscope", "--series-by", "host"}, `--series-by "host" is not supported: allowed values are service, pid, tid`},
		{[]string{"serve", "--remote", "http://x:4040"}, "--remote-kind is required"},
		{[]string{"agent", "--remote", "https://user:pw@x", "--remote-kind", "pyroscope"}, "credentials in the URL"},
	} {
		var out, errb bytes.Buffer
		code := run(context.Background(), tc.args, &out, &errb)
		if code != exitUsage || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("scorch %s: exit %d, stderr %q; want exit 2 and %q", strings.Join(tc.args, " "), code, errb.String(), tc.want)
		}
	}
}

// sink keeps the allocations of TestReleaseMemory from being optimized
// away.
var sink []byte

// A window's end collects when the garbage and free heap pass the spare
// amount, and leaves a heap that is within it alone.
func TestReleaseMemory(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(-1)) // no collection but ours
	runtime.GC()
	for range 64 {
		sink = make([]byte, 1<<20) // each the garbage of the next
	}
	sink = nil
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	releaseMemory(1 << 50)
	runtime.ReadMemStats(&after)
	if after.NumGC != before.NumGC {
		t.Errorf("collected with 64 MiB of garbage under a spare of 1 PiB")
	}
	releaseMemory(agentSpareMemory)
	runtime.ReadMemStats(&after)
	if after.NumGC == before.NumGC {
		t.Errorf("64 MiB of garbage over a spare of %d MiB: not collected", agentSpareMemory>>20)
	}
	if after.HeapReleased <= before.HeapReleased {
		t.Errorf("heap released %d -> %d bytes: the free pages were not returned", before.HeapReleased, after.HeapReleased)
	}
}
