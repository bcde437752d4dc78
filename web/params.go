package web

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/flamegraph"
)

// paramNames are the names a surface (a route's query, the form, the JSON
// body) knows: any other is a 400 naming the listed ones, so that a typo
// does not silently start the wrong capture or show the wrong graph.
// Hidden names are accepted but not listed (token everywhere; the SVG
// viewer's own state).
type paramNames struct {
	listed, hidden []string
}

// names lists the names of a surface, from the parsers that own them.
func names(lists ...[]string) paramNames {
	var n paramNames
	for _, l := range lists {
		for _, name := range l {
			if !slices.Contains(n.listed, name) {
				n.listed = append(n.listed, name)
			}
		}
	}
	n.hidden = []string{"token"}
	return n
}

// hide adds names that are accepted without being listed.
func (n paramNames) hide(names ...string) paramNames {
	n.hidden = append(slices.Clone(n.hidden), names...)
	return n
}

// without drops names.
func (n paramNames) without(drop ...string) paramNames {
	n.listed = slices.DeleteFunc(slices.Clone(n.listed), func(s string) bool { return slices.Contains(drop, s) })
	return n
}

func (n paramNames) has(name string) bool {
	return slices.Contains(n.listed, name) || slices.Contains(n.hidden, name)
}

// check refuses the first unknown name (in sorted order, so the answer is
// stable).
func (n paramNames) check(v url.Values) error {
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !n.has(k) {
			return errorf(http.StatusBadRequest, "unknown parameter %s: allowed are %s", quote(k), strings.Join(n.listed, ", "))
		}
	}
	return nil
}

// transformNames are the transforms every view takes (capture.ParseTransforms).
var transformNames = []string{"t"}

// viewerNames are the SVG's own script state (zoom, case), set by the
// viewer in its URL: they do not change the rendering.
var viewerNames = []string{"x", "d", "i"}

// The names of each surface.
var (
	// renderNames: the stored captures' flamegraph.svg, folded,
	// profile.pb.gz and speedscope.json.
	renderNames = names(capture.QueryParams, transformNames, flamegraph.OptionParams).hide(viewerNames...)
	// heatmapNames: heatmap.json. from and to are accepted (the page passes
	// its permalink's query along) but ignored: the heatmap always covers
	// the whole capture.
	heatmapNames = names([]string{"rows", "norm"}, capture.QueryParams, transformNames).without("from", "to").hide("from", "to")
	// diffNames: diff.svg; the filters apply to both sides.
	diffNames = names([]string{"base", "compare", "base_from", "base_to", "compare_from", "compare_to"},
		capture.QueryParams, transformNames, flamegraph.DiffParams).without("from", "to").hide(viewerNames...)
	// postNames: the query of POST /api/captures.
	postNames = names([]string{"wait"})
	// jsonNames: the fields of the POST /api/captures JSON body.
	jsonNames = names(capture.FieldNames())
	// formNames: the UI's new-capture form; target says which of pid, tid
	// and comm the radio buttons chose.
	formNames = names(capture.FieldNames(), []string{"target"})
	// blockingNames: the capture of the blocking routes, seconds for
	// duration as Go's /debug/pprof/profile has it.
	blockingNames = names([]string{"seconds"}, capture.FieldNames()).without("duration")
	// svgNames: GET /api/flamegraph.svg, the capture and the rendering
	// (pid there is a target, not a filter).
	svgNames = names(blockingNames.listed, svgRenderNames).hide(viewerNames...)
	// pprofNames: GET /debug/pprof/profile, a cpu capture.
	pprofNames = names([]string{"seconds", "type", "hz", "pid", "tid", "comm", "event", "unwind"})
)

// svgRenderNames are the names of GET /api/flamegraph.svg that shape the
// rendering; view is the capture's too.
var svgRenderNames = append(slices.Clone(flamegraph.OptionParams), "idle", "view")

// decodeParams reads the POST /api/captures JSON body. pid and tid may be a
// number, a list or a comma-separated string; durations a string or a
// number of seconds; null is an unset field.
func decodeParams(body []byte) (capture.Params, error) {
	var p capture.Params
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return p, errorf(http.StatusBadRequest, "body is not a JSON object: %v", err)
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if _, ok := capture.LookupField(k); !ok || !jsonNames.has(k) {
			return p, errorf(http.StatusBadRequest, "unknown field %q: allowed fields are %s", k, strings.Join(jsonNames.listed, ", "))
		}
	}
	for _, k := range keys {
		f, _ := capture.LookupField(k)
		text, set, err := jsonText(f, raw[k])
		if err != nil {
			return p, err
		}
		if !set {
			continue
		}
		if err := p.Set(k, text); err != nil {
			return p, errorf(http.StatusBadRequest, "%v", err)
		}
	}
	return p, nil
}

// jsonText is the text form of a JSON field for Params.Set, checked
// against the field's kind; false for null.
func jsonText(f *capture.Field, v json.RawMessage) (string, bool, error) {
	v = bytes.TrimSpace(v)
	if string(v) == "null" {
		return "", false, nil
	}
	isNumber := len(v) > 0 && (v[0] == '-' || v[0] >= '0' && v[0] <= '9')
	var str string
	isString := json.Unmarshal(v, &str) == nil && len(v) > 0 && v[0] == '"'
	switch f.Kind {
	case capture.FieldInt:
		if isNumber {
			return string(v), true, nil
		}
		return "", false, errorf(http.StatusBadRequest, "field %s has the wrong type: expected a number", f.Name)
	case capture.FieldDuration:
		if isNumber || isString {
			if isString {
				return str, true, nil
			}
			return string(v), true, nil
		}
		return "", false, errorf(http.StatusBadRequest, "field %s has the wrong type: expected a string such as \"10s\" or a number of seconds", f.Name)
	case capture.FieldIDs:
		switch {
		case isNumber:
			return string(v), true, nil
		case isString:
			return str, true, nil
		}
		var list []json.RawMessage
		if json.Unmarshal(v, &list) == nil {
			parts := make([]string, len(list))
			for i, e := range list {
				if e = bytes.TrimSpace(e); len(e) == 0 || !(e[0] == '-' || e[0] >= '0' && e[0] <= '9') {
					return "", false, badIDs(f.Name)
				}
				parts[i] = string(e)
			}
			return strings.Join(parts, ","), true, nil
		}
		return "", false, badIDs(f.Name)
	default:
		if isString {
			return str, true, nil
		}
		return "", false, errorf(http.StatusBadRequest, "field %s has the wrong type: expected a string", f.Name)
	}
}

func badIDs(name string) error {
	return errorf(http.StatusBadRequest, "%s must be a positive number, a list of numbers or a comma-separated string of numbers", name)
}

// formTargets are the values of the form's target radio buttons.
var formTargets = []string{"host", "pid", "tid", "comm"}

// formParams reads the UI's new-capture form: empty fields are unset, and
// of pid, tid and comm only the one target names is read.
func formParams(v url.Values) (capture.Params, error) {
	var p capture.Params
	if err := formNames.check(v); err != nil {
		return p, err
	}
	target := v.Get("target")
	if target != "" && !slices.Contains(formTargets, target) {
		return p, errorf(http.StatusBadRequest, "target %s is not valid: allowed values are %s", quote(target), strings.Join(formTargets, ", "))
	}
	for _, f := range capture.Fields {
		s := v.Get(f.Name)
		switch f.Name {
		case "pid", "tid", "comm":
			if target != "" && target != f.Name {
				continue
			}
			s = strings.TrimSpace(s)
		}
		if s == "" {
			continue
		}
		if err := p.Set(f.Name, s); err != nil {
			return p, errorf(http.StatusBadRequest, "%v", err)
		}
	}
	return p, nil
}

// blockingParams reads the capture of a blocking GET route (its names
// given): seconds (default 30, capped by Config.MaxBlocking) and the
// capture fields the route knows; typ is the type when none is given.
func (s *Server) blockingParams(v url.Values, known paramNames, typ capture.Type) (capture.Params, error) {
	p := capture.Params{Type: typ}
	if err := known.check(v); err != nil {
		return p, err
	}
	secs := DefaultBlocking
	if str := v.Get("seconds"); str != "" {
		f, err := strconv.ParseFloat(str, 64)
		max := s.cfg.MaxBlocking.Seconds()
		min := capture.MinDuration.Seconds()
		if err != nil || !(f >= min) || f > max {
			return p, errorf(http.StatusBadRequest, "seconds %s is out of range: allowed %g up to %g", quote(str), min, max)
		}
		secs = time.Duration(f * float64(time.Second))
	}
	p.Duration = capture.Duration(secs)
	for _, f := range capture.Fields {
		str := v.Get(f.Name)
		if str == "" || !known.has(f.Name) {
			continue
		}
		if err := p.Set(f.Name, str); err != nil {
			return p, errorf(http.StatusBadRequest, "%v", err)
		}
	}
	return p, nil
}

// renderValues keeps the query parameters of GET /api/flamegraph.svg that
// shape the rendering, leaving out those of the capture itself.
func renderValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vals := range v {
		if slices.Contains(svgRenderNames, k) {
			out[k] = vals
		}
	}
	return out
}
