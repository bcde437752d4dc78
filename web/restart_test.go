package web_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/scorch-dev/scorch/web"
	"github.com/scorch-dev/scorch/web/store"
	"github.com/scorch-dev/scorch/web/webtest"
)

// helperEnv makes the test binary a server process (with the fake
// recorder) that the restart test can kill -9.
const helperEnv = "SCORCH_WEB_TEST_SERVE_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(helperEnv); dir != "" {
		serveHelper(dir)
		return
	}
	os.Exit(m.Run())
}

func serveHelper(dir string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	srv, err := web.New(web.Config{DataDir: dir, Listen: ln.Addr().String(), Recorder: &webtest.Recorder{Speed: 1}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("LISTEN %s\n", ln.Addr())
	_ = http.Serve(ln, srv.Handler())
}

type helper struct {
	cmd  *exec.Cmd
	base string
}

func startHelper(t *testing.T, dir string) *helper {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "LISTEN ")
	if err != nil || !ok {
		t.Fatalf("helper server did not start: %q %v", line, err)
	}
	return &helper{cmd: cmd, base: "http://" + addr}
}

func (h *helper) do(t *testing.T, method, path, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, h.base+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestRestartAfterKill kills the server with SIGKILL during a capture: after
// a restart every finished capture is listed with the same data and the
// interrupted one is failed, never damaged or half-written.
func TestRestartAfterKill(t *testing.T) {
	dir := t.TempDir()
	h := startHelper(t, dir)
	folded := make(map[string][]byte)
	for i := 0; i < 2; i++ {
		code, b := h.do(t, "POST", "/api/captures?wait=true", `{"type":"cpu","duration":"0.3s"}`)
		if code != 201 {
			t.Fatalf("capture: %d %s", code, b)
		}
		var rec store.Record
		json.Unmarshal(b, &rec)
		_, folded[rec.ID] = h.do(t, "GET", "/api/captures/"+rec.ID+"/folded", "")
	}
	code, b := h.do(t, "POST", "/api/imports", "imp;main;f 5\nimp;main;g 7\n")
	if code != 201 {
		t.Fatalf("import: %d %s", code, b)
	}
	var imp store.Record
	json.Unmarshal(b, &imp)
	_, folded[imp.ID] = h.do(t, "GET", "/api/captures/"+imp.ID+"/folded", "")

	code, b = h.do(t, "POST", "/api/captures", `{"type":"cpu","duration":"60s"}`)
	if code != 202 {
		t.Fatalf("long capture: %d %s", code, b)
	}
	var running store.Record
	json.Unmarshal(b, &running)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		_, b := h.do(t, "GET", "/api/captures/"+running.ID, "")
		var r store.Record
		json.Unmarshal(b, &r)
		if r.Samples > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the long capture made no progress")
		}
	}
	if err := h.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	h.cmd.Wait()

	h2 := startHelper(t, dir)
	_, b = h2.do(t, "GET", "/api/captures", "")
	var list []store.Record
	if err := json.Unmarshal(b, &list); err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, r := range list {
		switch {
		case r.ID == running.ID:
			if r.Status != store.StatusFailed || !strings.Contains(r.Error, "interrupted") {
				t.Errorf("interrupted capture: status %s, error %q", r.Status, r.Error)
			}
			if code, _ := h2.do(t, "GET", "/api/captures/"+r.ID+"/folded", ""); code == 200 {
				t.Error("the interrupted capture serves data")
			}
		case folded[r.ID] != nil:
			seen++
			if r.Status != store.StatusDone {
				t.Errorf("%s: status %s after restart (%s)", r.ID, r.Status, r.Error)
			}
			_, got := h2.do(t, "GET", "/api/captures/"+r.ID+"/folded", "")
			if !bytes.Equal(got, folded[r.ID]) || len(got) == 0 {
				t.Errorf("%s: folded changed across the restart:\n%s\nwant\n%s", r.ID, got, folded[r.ID])
			}
		default:
			t.Errorf("unexpected capture %+v", r)
		}
	}
	if seen != len(folded) {
		t.Fatalf("%d of %d finished captures listed after the restart", seen, len(folded))
	}
}
