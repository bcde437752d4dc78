package capture

import (
	"strings"
	"testing"
)

// The health's fix for stacks that ended early names what helps for the
// reason they ended and the way they were walked.
func TestUnwindEndedFindingFix(t *testing.T) {
	for _, tc := range []struct {
		name, unwind, reason string
		pending              uint64
		want                 string
	}{
		{"copy in auto before tables", "auto", "end of stack copy", 3, "before their process's unwind tables were loaded"},
		{"copy in auto", "auto", "end of stack copy", 0, "record with unwind=dwarf"},
		{"copy in dwarf", "dwarf", "end of stack copy", 0, "deeper than the copy"},
		{"read fault", "auto", "stack read fault", 0, "not resident or not mapped"},
		{"no cfi", "auto", "no CFI for pc", 0, "install the debug info"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := sample(t)
			c.Meta.Params.Unwind = tc.unwind
			c.Meta.Stats.UnwindCFI = 10
			c.Meta.Stats.Counters.AddReason(UnwindEndedBy, tc.reason, 5)
			if tc.pending > 0 {
				c.Meta.Stats.Counters.Add(UnwindTablesPending, tc.pending)
			}
			var fixes []string
			for _, f := range c.Summarize(Query{}, nil).Findings {
				if strings.Contains(f.Message, "user stacks ended") {
					fixes = append(fixes, f.Fix)
				}
			}
			if len(fixes) != 1 || !strings.Contains(fixes[0], tc.want) {
				t.Errorf("fixes %q: want one containing %q", fixes, tc.want)
			}
		})
	}
}
