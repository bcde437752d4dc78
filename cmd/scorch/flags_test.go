package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// A flag a command does not know exits 2 and the message lists the
// command's flags.
func TestUnknownFlag(t *testing.T) {
	tests := []struct {
		cmd  string
		want []string // flags the list must name
	}{
		{"record", []string{"--boost-nice, --comm, --cpuprofile, --duration, --dwarf-cache, --event, --format, --gc-percent, --hz, --idle, --kernel-cache, --max-block, --memory-limit, --memprofile, --min-block, -o, --pid, --ring-size, --state, --symbol-cache, --tid, --title, --type, --unwind, --unwind-cache, -v, --view"}},
		{"render", []string{"--format", "--event", "--type", "--layout", "--from", "--view", "-o"}},
		{"diff", []string{"--widths", "--event", "--type", "--palette", "--pid", "-o"}},
		{"serve", []string{"--listen", "--data", "--token-file", "--max-hz", "--keep", "--dwarf-cache"}},
		{"doctor", []string{"--json"}},
		{"overview", []string{"--watch", "--interval", "--json"}},
		{"agent", []string{"--remote", "--remote-kind", "--listen", "--ring-size"}},
	}
	for _, tt := range tests {
		t.Run(tt.cmd, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), []string{tt.cmd, "--frobnicate", "x"}, &stdout, &stderr)
			if code != exitUsage {
				t.Errorf("exit %d, want %d", code, exitUsage)
			}
			msg := stderr.String()
			if !strings.Contains(msg, "flag provided but not defined: -frobnicate") {
				t.Errorf("stderr does not name the unknown flag:\n%s", msg)
			}
			_, list, _ := strings.Cut(msg, "\nflags: ")
			list, _, _ = strings.Cut(list, "\n")
			for _, w := range tt.want {
				if !strings.Contains(list, w) {
					t.Errorf("allowed flags %q do not name %q", list, w)
				}
			}
			// -h is not an error.
			stderr.Reset()
			if code := run(context.Background(), []string{tt.cmd, "-h"}, &stdout, &stderr); code != exitOK || !strings.Contains(stderr.String(), "usage: scorch "+tt.cmd) {
				t.Errorf("-h: exit %d, stderr:\n%s", code, stderr.String())
			}
		})
	}
}

// The flags render and diff share are the names of the parsers they go
// to, each with its help.
func TestViewFlags(t *testing.T) {
	for _, name := range viewNames {
		if viewUsage[name] == "" {
			t.Errorf("--%s has no help", name)
		}
	}
	if len(viewUsage) != len(viewNames) {
		t.Errorf("%d helps for %d flags: %v", len(viewUsage), len(viewNames), viewNames)
	}
}
