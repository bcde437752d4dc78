// Package browser runs headless Chromium scripts for tests: Debian's
// chromium driven by playwright-core (installed by `make test` through
// npm in this directory).
package browser

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// Chromium is the browser the tests use.
const Chromium = "/usr/bin/chromium"

// Dir is this package's directory, where node_modules and launch.js live.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(file)
}

// Available says why browser tests cannot run here, or nil.
func Available() error {
	if _, err := os.Stat(Chromium); err != nil {
		return fmt.Errorf("%s is missing: install Debian's chromium package (make deps)", Chromium)
	}
	if _, err := exec.LookPath("node"); err != nil {
		return fmt.Errorf("node is not installed")
	}
	if _, err := os.Stat(filepath.Join(Dir(), "node_modules", "playwright-core")); err != nil {
		return fmt.Errorf("playwright-core is missing: run npm install in internal/browser (make deps)")
	}
	return nil
}

// Require skips the test when the browser tools are missing.
func Require(t testing.TB) {
	t.Helper()
	if err := Available(); err != nil {
		t.Skipf("browser test skipped: %v", err)
	}
}

// Artifacts is the test's empty folder for screenshots,
// artifacts/TEST-NAME in this package's directory (an absolute path).
func Artifacts(t testing.TB) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join(Dir(), "artifacts", t.Name()))
	if err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Run runs a node script that can require("scorch-browser") for the
// launcher, and returns its standard output.
func Run(ctx context.Context, script string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "node", append([]string{script}, args...)...)
	cmd.Env = append(os.Environ(),
		"NODE_PATH="+filepath.Join(Dir(), "node_modules")+string(os.PathListSeparator)+Dir(),
		"SCORCH_CHROMIUM="+Chromium)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("node %s: %w\n%s", filepath.Base(script), err, stderr.String())
	}
	return stdout.Bytes(), nil
}
