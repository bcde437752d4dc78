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
		// Legacy mangling keeps an identifier's leading underscores; only
		// "_$" is an escape.
		{"_ZN3std10sys_common9backtrace28__rust_begin_short_backtrace17h1234567890abcdefE", "std::sys_common::backtrace::__rust_begin_short_backtrace", "_ZN3std10sys_common9backtrace28__rust_begin_short_backtrace17h1234567890abcdefE"},
		{"_ZN3std2rt10lang_start28_$u7b$$u7b$closure$u7d$$u7d$17h1234567890abcdefE", "std::rt::lang_start::{{closure}}", "_ZN3std2rt10lang_start28_$u7b$$u7b$closure$u7d$$u7d$17h1234567890abcdefE"},
		{"_ZN60_$LT$alloc..string..String$u20$as$u20$core..fmt..Display$GT$3fmt17h0123456789abcdefE", "<alloc::string::String as core::fmt::Display>::fmt", "_ZN60_$LT$alloc..string..String$u20$as$u20$core..fmt..Display$GT$3fmt17h0123456789abcdefE"},
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

// FuzzRustLegacy: any symbol name demangles without a panic, and a
// demangled name has no control characters.
func FuzzRustLegacy(f *testing.F) {
	f.Add("_ZN3std10sys_common9backtrace28__rust_begin_short_backtrace17h1234567890abcdefE")
	f.Add("_ZN60_$LT$alloc..string..String$u20$as$u20$core..fmt..Display$GT$3fmt17h0123456789abcdefE")
	f.Add("_ZN3foo$u0$17h0123456789abcdefE")
	f.Fuzz(func(t *testing.T, raw string) {
		d, ok := rustLegacy(raw)
		if !ok {
			return
		}
		for _, c := range d {
			if c < 0x20 || c == 0x7f {
				t.Fatalf("rustLegacy(%q) = %q has a control character", raw, d)
			}
		}
	})
}
