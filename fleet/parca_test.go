package fleet_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/scorch-dev/scorch/internal/testutil"
)

// parcaBinary returns a Parca server built by scripts/build-parca.sh (from
// the Go module proxy, in tools/parca's own module; cached after the first
// build), or SCORCH_PARCA when set. It skips, with the reason, only when
// the server cannot be built.
func parcaBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("SCORCH_PARCA"); p != "" {
		return p
	}
	cmd := exec.Command("../scripts/build-parca.sh")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
		t.Skipf("the Parca server cannot be built here (scripts/build-parca.sh: %v): %s", err, strings.Join(lines[max(0, len(lines)-5):], "\n"))
	}
	return strings.TrimSpace(string(out))
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startParca runs Parca on loopback with in-memory storage and a
// filesystem bucket, and no upstream debuginfod (no network).
func startParca(t *testing.T) string {
	bin := parcaBinary(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "parca.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("object_storage:\n  bucket:\n    type: FILESYSTEM\n    config:\n      directory: %s\n", filepath.Join(dir, "data"))), 0o644)
	addr := freePort(t)
	cmd := exec.Command(bin, "--http-address="+addr, "--debuginfod-upstream-servers=", "--config-path="+cfg,
		"--storage-active-memory=134217728", "--log-level=warn")
	logf, _ := os.Create(filepath.Join(dir, "parca.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("parca log:\n%s", b)
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + addr + "/api/profiles/types"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return addr
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("parca did not answer on %s within 60 s", addr)
	return ""
}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		var b strings.Builder
		bufio.NewReader(resp.Body).WriteTo(&b)
		t.Fatalf("GET %s: %s %s", u, resp.Status, b.String())
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
}

// topFunctions asks Parca for the merged top table of a query over the
// last minutes: function name to flat value.
func topFunctions(t *testing.T, addr, query string, from, to time.Time) map[string]int64 {
	v := url.Values{}
	v.Set("mode", "MODE_MERGE")
	v.Set("reportType", "REPORT_TYPE_TOP")
	v.Set("merge.start", from.UTC().Format(time.RFC3339))
	v.Set("merge.end", to.UTC().Format(time.RFC3339))
	v.Set("merge.query", query)
	var res struct {
		Top struct {
			List []struct {
				Meta struct {
					Function struct{ Name string }
				}
				Flat       int64 `json:",string"`
				Cumulative int64 `json:",string"`
			}
		}
	}
	getJSON(t, "http://"+addr+"/api/profiles/query?"+v.Encode(), &res)
	out := map[string]int64{}
	for _, e := range res.Top.List {
		out[e.Meta.Function.Name] += e.Cumulative
	}
	return out
}

// pushedProfiles reads scorch_agent_pushed_profiles_total{profile=name} from the agent's /metrics.
func pushedProfiles(metricsURL, name string) float64 {
	resp, err := http.Get(metricsURL)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	prefix := `scorch_agent_pushed_profiles_total{profile="` + name + `"} `
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			var f float64
			fmt.Sscan(v, &f)
			return f
		}
	}
	return 0
}

// TestAgentToRealParca: the scorch agent command runs against a real
// Parca server for a few windows while a known workload runs; Parca's
// query API then finds the workload's functions under its service_name,
// with CPU and off-CPU profile types.
func TestAgentToRealParca(t *testing.T) {
	testutil.RequireRoot(t)
	addr := startParca(t)
	name := startWorkload(t)
	scorch := filepath.Join(t.TempDir(), "scorch")
	if out, err := exec.Command("go", "build", "-o", scorch, "../cmd/scorch").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	from := time.Now().Add(-time.Minute)
	agent := exec.Command(scorch, "agent", "--remote", "grpc://"+addr, "--remote-kind", "parca",
		"--types", "cpu,offcpu", "--every", "2s", "--hz", "49", "--listen", "127.0.0.1:0", "--label", "env=e2e")
	var stderr strings.Builder
	agent.Stderr = &stderr
	stdout, _ := agent.StdoutPipe()
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	defer agent.Process.Kill()
	// Until Parca has taken at least two windows of each type (the agent's
	// own counters), at most two minutes on a loaded machine.
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	metricsURL := strings.TrimSpace(line[strings.Index(line, "http://"):])
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		cpuN, offN := pushedProfiles(metricsURL, "process_cpu"), pushedProfiles(metricsURL, "off_cpu")
		if cpuN >= 2 && offN >= 2 {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	stopped := time.Now()
	agent.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- agent.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("agent: %v\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		agent.Process.Kill()
		t.Fatalf("agent still running 30 s after SIGTERM (flush deadline 10 s)\n%s", stderr.String())
	}
	t.Logf("agent stopped %v after SIGTERM", time.Since(stopped).Round(time.Millisecond))
	if strings.Contains(stderr.String(), "rejected") {
		t.Errorf("parca rejected profiles:\n%s", stderr.String())
	}
	defer func() {
		if t.Failed() {
			t.Logf("agent log:\n%s", stderr.String())
		}
	}()
	to := time.Now().Add(time.Minute)

	var types struct {
		Types []struct{ Name, SampleType, SampleUnit, PeriodType, PeriodUnit string }
	}
	getJSON(t, "http://"+addr+"/api/profiles/types", &types)
	var names []string
	for _, ty := range types.Types {
		names = append(names, ty.Name+":"+ty.SampleType+":"+ty.SampleUnit+":"+ty.PeriodType+":"+ty.PeriodUnit)
	}
	for _, want := range []string{"process_cpu:samples:count:cpu:nanoseconds", "process_cpu:cpu:nanoseconds:cpu:nanoseconds", "off_cpu:off_cpu:nanoseconds:off_cpu:nanoseconds"} {
		if !slices.Contains(names, want) {
			t.Errorf("profile type %s missing from Parca's %v", want, names)
		}
	}
	var services struct{ LabelValues []string }
	getJSON(t, "http://"+addr+"/api/profiles/labels/service_name/values", &services)
	if !slices.Contains(services.LabelValues, name) {
		t.Fatalf("service_name %s missing from Parca's %v", name, services.LabelValues)
	}
	var envs struct{ LabelValues []string }
	getJSON(t, "http://"+addr+"/api/profiles/labels/env/values", &envs)
	if !slices.Contains(envs.LabelValues, "e2e") {
		t.Errorf("label env=e2e missing: %v", envs.LabelValues)
	}

	sel := fmt.Sprintf(`{service_name=%q}`, name)
	cpu := topFunctions(t, addr, "process_cpu:samples:count:cpu:nanoseconds:delta"+sel, from, to)
	if cpu["fleet_spin"] == 0 || cpu["main"] == 0 {
		t.Errorf("CPU of %s in Parca has no fleet_spin or main: %v", name, cpu)
	}
	off := topFunctions(t, addr, "off_cpu:off_cpu:nanoseconds:off_cpu:nanoseconds:delta"+sel, from, to)
	if off["fleet_nap"] == 0 || off["[blocked]"] == 0 {
		t.Errorf("off-CPU of %s in Parca has no fleet_nap or [blocked]: %v", name, off)
	}
	// Nothing of another service leaks into the workload's series.
	if _, ok := cpu["parca"]; ok {
		t.Errorf("the workload's CPU series holds another process's frames: %v", cpu)
	}
	t.Logf("Parca: %s CPU fleet_spin %d of main %d; off-CPU fleet_nap %d ns", name, cpu["fleet_spin"], cpu["main"], off["fleet_nap"])
}
