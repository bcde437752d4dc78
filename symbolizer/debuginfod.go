package symbolizer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// debuginfod is a minimal client of the debuginfod protocol
// (GET URL/buildid/HEX/debuginfo) with an on-disk cache and in-memory
// negative caching.
type debuginfod struct {
	urls   []string
	dir    string
	log    *slog.Logger
	client *http.Client

	mu     sync.Mutex
	misses map[string]time.Time // build IDs no server had
	down   map[string]time.Time // servers that did not answer at all
}

const (
	debuginfodTimeout  = 30 * time.Second
	debuginfodRetry    = 10 * time.Minute
	debuginfodMaxBytes = 4 << 30
)

func newDebuginfod(urls []string, dir string, log *slog.Logger) *debuginfod {
	if len(urls) == 0 {
		return nil
	}
	return &debuginfod{
		urls: urls,
		dir:  dir,
		log:  log,
		client: &http.Client{Timeout: debuginfodTimeout, Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			ResponseHeaderTimeout: 10 * time.Second,
		}},
		misses: make(map[string]time.Time),
		down:   make(map[string]time.Time),
	}
}

func validBuildID(id string) bool {
	if len(id) < 2 || len(id) > 128 {
		return false
	}
	for _, c := range id {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// fetch returns the path of the cached debuginfo file for id, downloading it
// on the first request.
func (d *debuginfod) fetch(id string) (string, error) {
	if !validBuildID(id) {
		return "", fmt.Errorf("debuginfod: invalid build id %q", id)
	}
	dst := filepath.Join(d.dir, id, "debuginfo")
	if _, err := os.Stat(dst); err == nil {
		return dst, nil
	}
	d.mu.Lock()
	if t, ok := d.misses[id]; ok && time.Since(t) < debuginfodRetry {
		d.mu.Unlock()
		return "", errors.New("debuginfod: not found (cached)")
	}
	d.mu.Unlock()

	var errs []error
	for _, u := range d.urls {
		// A server that did not answer is skipped for a while, so that
		// symbolizing does not wait on it for every file.
		d.mu.Lock()
		t, isDown := d.down[u]
		d.mu.Unlock()
		if isDown && time.Since(t) < debuginfodRetry {
			errs = append(errs, fmt.Errorf("%s: not answering", u))
			continue
		}
		err := d.download(strings.TrimRight(u, "/")+"/buildid/"+id+"/debuginfo", dst)
		if err == nil {
			return dst, nil
		}
		var se statusError
		if !errors.As(err, &se) {
			d.mu.Lock()
			d.down[u] = time.Now()
			d.mu.Unlock()
		}
		errs = append(errs, err)
	}
	d.mu.Lock()
	d.misses[id] = time.Now()
	d.mu.Unlock()
	return "", fmt.Errorf("debuginfod %s: %w", id, errors.Join(errs...))
}

func (d *debuginfod) download(url, dst string) error {
	ctx, cancel := context.WithTimeout(context.Background(), debuginfodTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("request %s: %w", url, err)
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return fmt.Errorf("get %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("get %s: %w", url, statusError(resp.Status))
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("debuginfod cache: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".debuginfo-*")
	if err != nil {
		return fmt.Errorf("debuginfod cache: %w", err)
	}
	defer os.Remove(tmp.Name())
	n, err := io.Copy(tmp, io.LimitReader(resp.Body, debuginfodMaxBytes+1))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("download %s: %w", url, err)
	}
	if n > debuginfodMaxBytes {
		return fmt.Errorf("download %s: larger than %d bytes", url, int64(debuginfodMaxBytes))
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return fmt.Errorf("debuginfod cache: %w", err)
	}
	d.log.Debug("debuginfod fetched", "url", url, "bytes", n)
	return nil
}

// statusError is an HTTP answer other than 200: the server works, it just
// does not have the file.
type statusError string

func (e statusError) Error() string { return "status " + string(e) }
