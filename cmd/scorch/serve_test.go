package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/scorch-dev/scorch/internal/testutil"
)

const serveWorkload = `
#include <stdint.h>
volatile uint64_t sink;
__attribute__((noinline)) void scorch_serve_hot(void) {
	for (int i = 0; i < 4000000; i++) sink += (uint64_t)i * 7;
}
int main(void) { for (;;) scorch_serve_hot(); }
`

func TestServeUsage(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--listen", "0.0.0.0:0"}, "--token-file"},
		{[]string{"--listen", "nonsense"}, "HOST:PORT"},
		{[]string{"--max-concurrent", "0"}, "allowed 1..64"},
		{[]string{"--max-hz", "20000"}, "--max-hz 20000 is out of range"},
		{[]string{"--max-upload", "lots"}, "not a size"},
		{[]string{"--max-upload", "17179869185GiB"}, "not a size"}, // 2^64+1GiB: wrapped to 1GiB
		{[]string{"--log", "xml"}, "allowed values are text, json"},
		{[]string{"--render-cache", "1KiB"}, "at least 1MiB"},
		{[]string{"--ring-size", "1K"}, "allowed 64KiB..1GiB"},
		{[]string{"--keep", "-1"}, "must not be negative"},
		{[]string{"extra"}, "unexpected argument"},
	}
	for _, tt := range tests {
		var stderr bytes.Buffer
		code := runServe(context.Background(), append(tt.args, "--data", t.TempDir()), io.Discard, &stderr)
		if code != exitUsage || !strings.Contains(stderr.String(), tt.want) {
			t.Errorf("serve %q: exit %d, stderr %q (want %q)", tt.args, code, stderr.String(), tt.want)
		}
	}
}

// TestServeRecordsCPU is the root integration test: the real server on a
// free port records a workload through the BPF profiler; the SVG, pprof and
// folded answers name its hot function.
func TestServeRecordsCPU(t *testing.T) {
	testutil.RequireRoot(t)
	bin := testutil.BuildC(t, "gcc", serveWorkload, "-O1", "-fno-omit-frame-pointer", "-g")
	work := testutil.Start(t, bin)

	base := startServe(t)
	get := func(path string) []byte {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
		}
		return b
	}

	body := `{"type":"cpu","duration":"3s","hz":199,"pid":` + strconv.Itoa(work.Process.Pid) + `}`
	resp, err := http.Post(base+"/api/captures?wait=true", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST capture: %d %s", resp.StatusCode, b)
	}
	var rec struct {
		ID      string
		Status  string
		Samples uint64
	}
	json.Unmarshal(b, &rec)
	if rec.Status != "done" || rec.Samples < 100 {
		t.Fatalf("capture: %s", b)
	}
	if svg := get("/api/captures/" + rec.ID + "/flamegraph.svg"); !bytes.Contains(svg, []byte("scorch_serve_hot")) {
		t.Error("the SVG does not name scorch_serve_hot")
	}
	folded := get("/api/captures/" + rec.ID + "/folded")
	var hot, total int64
	for _, line := range strings.Split(strings.TrimSpace(string(folded)), "\n") {
		i := strings.LastIndexByte(line, ' ')
		v, _ := strconv.ParseInt(line[i+1:], 10, 64)
		total += v
		if strings.Contains(line[:i], "scorch_serve_hot") {
			hot += v
		}
	}
	if total == 0 || hot*2 < total {
		t.Errorf("scorch_serve_hot has %d of %d samples, want most", hot, total)
	}
	prof, err := profile.ParseData(get("/api/captures/" + rec.ID + "/profile.pb.gz"))
	if err != nil {
		t.Fatalf("pprof: %v", err)
	}
	found := false
	for _, f := range prof.Function {
		found = found || f.Name == "scorch_serve_hot"
	}
	if !found || len(prof.Sample) == 0 {
		t.Errorf("pprof: %d samples, scorch_serve_hot present %v", len(prof.Sample), found)
	}
	// The blocking route of go tool pprof.
	if _, err := profile.ParseData(get("/debug/pprof/profile?seconds=1&pid=" + strconv.Itoa(work.Process.Pid))); err != nil {
		t.Errorf("/debug/pprof/profile: %v", err)
	}
}

func TestServeToken(t *testing.T) {
	dir := t.TempDir()
	short := dir + "/short"
	os.WriteFile(short, []byte("abc\n"), 0o600)
	var stderr bytes.Buffer
	if code := runServe(context.Background(), []string{"--listen", "0.0.0.0:0", "--token-file", short, "--data", dir}, io.Discard, &stderr); code != exitUsage || !strings.Contains(stderr.String(), "at least 16") {
		t.Fatalf("short token: exit %d, %s", code, stderr.String())
	}
	const token = "0123456789abcdef0123456789abcdef"
	good := dir + "/token"
	os.WriteFile(good, []byte(token+"\n"), 0o600)
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- runServe(ctx, []string{"--listen", "127.0.0.1:0", "--token-file", good, "--data", dir + "/data"}, pw, io.Discard)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	go io.Copy(io.Discard, pr)
	m := regexp.MustCompile(`http://[0-9.:]+`).FindString(line)
	if err != nil || m == "" {
		t.Fatalf("serve did not say where it listens: %q %v", line, err)
	}
	status := func(path, auth string) int {
		req, _ := http.NewRequest("GET", m+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := status("/healthz", ""); s != 200 {
		t.Errorf("healthz: %d", s)
	}
	if s := status("/api/captures", ""); s != 401 {
		t.Errorf("no token: %d", s)
	}
	if s := status("/api/captures", token); s != 200 {
		t.Errorf("token: %d", s)
	}
	cancel()
	if code := <-done; code != exitOK {
		t.Errorf("serve exited %d after its context ended", code)
	}
}

// startServe runs `scorch serve` on a free loopback port with a fresh
// data folder until the test ends, and returns its base URL once it
// answers /healthz. The cleanup stops it and checks that it exited 0.
func startServe(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var stderr bytes.Buffer
	go func() {
		done <- runServe(ctx, []string{"--listen", addr, "--data", t.TempDir()}, io.Discard, &stderr)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != exitOK {
				t.Errorf("serve exited %d: %s", code, stderr.String())
			}
		case <-time.After(90 * time.Second):
			t.Error("serve did not stop after its context was cancelled")
		}
	})
	base := "http://" + addr
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			return base
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not come up: %s", stderr.String())
		}
	}
}
