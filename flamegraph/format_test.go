package flamegraph

import (
	"hash/fnv"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// appendFixed must write exactly what strconv does, ties and edges
// included: the SVG of a render must not change with the fast path.
func TestAppendFixedMatchesStrconv(t *testing.T) {
	vals := []float64{0, math.Copysign(0, -1), 0.05, 0.15, 0.25, 0.005, 0.015, 0.125, 1.005, 2.675, 1.45, 9.95, 99.995, 99.99999,
		100, 1e-9, 0.0499999, 0.0500001, 10.5, 1179.95, -0.04, -1.25, 1 << 39, 1<<40 + 0.25, 1e300,
		math.Inf(1), math.Inf(-1), math.NaN(), math.MaxFloat64, math.SmallestNonzeroFloat64}
	rng := rand.New(rand.NewPCG(7, 11))
	for range 200000 {
		switch rng.IntN(4) {
		case 0:
			vals = append(vals, rng.Float64()*1200)
		case 1:
			vals = append(vals, float64(rng.IntN(1e6))/1e3) // near ties
		case 2:
			vals = append(vals, 100*float64(rng.IntN(1e6))/float64(1+rng.IntN(1e6)))
		default:
			vals = append(vals, float64(rng.IntN(24000))/20+0.05) // x.x5 ties
		}
	}
	for _, v := range vals {
		for _, prec := range []int{1, 2, 3} {
			want := strconv.FormatFloat(v, 'f', prec, 64)
			if got := string(appendFixed([]byte("x"), v, prec)); got != "x"+want {
				t.Fatalf("appendFixed(%v, %d) = %q, want %q", v, prec, got[1:], want)
			}
		}
	}
}

func TestThousands(t *testing.T) {
	for _, tt := range []struct {
		v    int64
		want string
	}{
		{0, "0"}, {999, "999"}, {1000, "1,000"}, {-1000, "-1,000"}, {123456789, "123,456,789"},
		{math.MinInt64, "-9,223,372,036,854,775,808"}, {math.MaxInt64, "9,223,372,036,854,775,807"},
	} {
		if got := thousands(tt.v); got != tt.want {
			t.Errorf("thousands(%d) = %q, want %q", tt.v, got, tt.want)
		}
	}
}

// escape on its own: every character class it replaces, at the start, in
// the middle and at the end of a string, and what it keeps.
func TestEscapeCharacters(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"", ""},
		{"plain name::f", "plain name::f"},
		{"<a href='x'>&\"</a>", "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"},
		{"\x00a\x01b\x1f\x7f", "\uFFFDa\uFFFDb\uFFFD\uFFFD"},
		{"tab\tnew\nline", "tab\tnew\nline"},
		{"\xffbad\xc3", "\uFFFDbad\uFFFD"},
		{"c1\u0085\u009f", "c1\uFFFD\uFFFD"},
		{"nc\uFFFE\uFFFF", "nc\uFFFD\uFFFD"},
		{"ünïcode → 日本 😀", "ünïcode → 日本 😀"},
		{"]]>", "]]&gt;"},
	} {
		if got := string(escape([]byte("<"), tt.in)); got != "<"+tt.want {
			t.Errorf("escape(%q) = %q, want %q", tt.in, got[1:], tt.want)
		}
	}
}

// The colours must not change: nameHash is hash/fnv's FNV-1a 64.
func TestNameHashIsFNV(t *testing.T) {
	for _, s := range []string{"", "main", "runtime.mallocgc", "ünï\xff", strings.Repeat("x", 1000)} {
		h := fnv.New64a()
		h.Write([]byte(s))
		x := h.Sum64()
		w1, w2, w3 := float64(x&0xffff)/65536, float64(x>>16&0xffff)/65536, float64(x>>32&0xffff)/65536
		if v1, v2, v3 := nameHash(s); v1 != w1 || v2 != w2 || v3 != w3 {
			t.Errorf("nameHash(%q) = %v %v %v, want %v %v %v", s, v1, v2, v3, w1, w2, w3)
		}
	}
}
