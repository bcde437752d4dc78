package symbolizer

import "testing"

func TestSetName(t *testing.T) {
	tests := []struct {
		raw, name, system string
	}{
		{"alpha_leaf", "alpha_leaf", ""},
		{"_ZN6shapes5scaleIiEET_S1_", "shapes::scale<int>", "_ZN6shapes5scaleIiEET_S1_"},
		{"_ZN6shapes3BoxIdE5twiceEd", "shapes::Box<double>::twice", "_ZN6shapes3BoxIdE5twiceEd"},
		// Rust legacy mangling: the hash is not part of the name.
		{"_ZN4core3fmt9Formatter3pad17h0123456789abcdefE", "core::fmt::Formatter::pad", "_ZN4core3fmt9Formatter3pad17h0123456789abcdefE"},
		// Rust v0 mangling.
		{"_RNvCs1234_7mycrate3foo", "mycrate::foo", "_RNvCs1234_7mycrate3foo"},
		// Not a valid mangled name: kept as is.
		{"_Znotmangled", "_Znotmangled", ""},
	}
	for _, tt := range tests {
		var fr Frame
		fr.setName(tt.raw)
		if fr.Name != tt.name || fr.SystemName != tt.system {
			t.Errorf("setName(%q) = %q, %q; want %q, %q", tt.raw, fr.Name, fr.SystemName, tt.name, tt.system)
		}
	}
}
