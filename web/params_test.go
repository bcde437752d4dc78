package web

import (
	"net/url"
	"slices"
	"testing"
)

// formParams reads the target the form's radio button names, and only it.
func TestFormParamsTarget(t *testing.T) {
	p, err := formParams(url.Values{"type": {"cpu"}, "target": {"pid"}, "pid": {"12, 34"}, "tid": {"x"}, "comm": {"app"}})
	if err != nil || !slices.Equal(p.PIDs, []int{12, 34}) || p.TIDs != nil || p.Comm != "" {
		t.Errorf("target pid: %+v, %v", p, err)
	}
	p, err = formParams(url.Values{"type": {"cpu"}, "pid": {"1"}, "tid": {"2"}, "comm": {" app "}})
	if err != nil || !slices.Equal(p.PIDs, []int{1}) || !slices.Equal(p.TIDs, []int{2}) || p.Comm != "app" {
		t.Errorf("no target: %+v, %v", p, err)
	}
	p, err = formParams(url.Values{"type": {"cpu"}, "target": {"host"}, "pid": {"abc"}})
	if err != nil || p.PIDs != nil {
		t.Errorf("target host: %+v, %v", p, err)
	}
	if _, err := formParams(url.Values{"type": {"cpu"}, "target": {"pid"}, "pid": {"abc"}}); err == nil {
		t.Error("pid abc was accepted")
	}
}
