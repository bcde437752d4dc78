package symbolizer

import (
	"strconv"
	"strings"
)

// rustLegacy demangles a Rust legacy symbol, "_ZN" then length-prefixed
// identifiers, the last one the hash "h" + 16 hex digits, then "E". The
// generic demangler drops the first '_' of every identifier, but legacy
// mangling escapes only "_$" (an identifier that would start with '$'):
// __rust_begin_short_backtrace keeps both underscores, as in c++filt.
func rustLegacy(raw string) (string, bool) {
	s, ok := strings.CutPrefix(raw, "_ZN")
	if !ok {
		if s, ok = strings.CutPrefix(raw, "__ZN"); !ok { // Mach-O's extra '_'
			return "", false
		}
	}
	var parts []string
	for {
		if strings.HasPrefix(s, "E") {
			s = s[1:]
			break
		}
		n := 0
		for n < len(s) && s[n] >= '0' && s[n] <= '9' {
			n++
		}
		if n == 0 {
			return "", false
		}
		l, err := strconv.Atoi(s[:n])
		if err != nil || l <= 0 || l > len(s)-n {
			return "", false
		}
		parts = append(parts, s[n:n+l])
		s = s[n+l:]
	}
	// A trailing ".llvm.123" or similar suffix is not part of the name.
	if s != "" && s[0] != '.' {
		return "", false
	}
	if len(parts) < 2 || !isRustHash(parts[len(parts)-1]) {
		return "", false
	}
	parts = parts[:len(parts)-1]
	var b strings.Builder
	for i, p := range parts {
		if i > 0 {
			b.WriteString("::")
		}
		if strings.HasPrefix(p, "_$") {
			p = p[1:]
		}
		if !unescapeRust(&b, p) {
			return "", false
		}
	}
	return b.String(), true
}

func isRustHash(s string) bool {
	if len(s) != 17 || s[0] != 'h' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

var rustEscapes = map[string]string{
	"SP": "@", "BP": "*", "RF": "&", "LT": "<", "GT": ">", "LP": "(", "RP": ")", "C": ",",
}

// unescapeRust writes an identifier with its $..$ escapes and ".." (the
// path separator inside a component) decoded.
func unescapeRust(b *strings.Builder, p string) bool {
	for len(p) > 0 {
		switch {
		case p[0] == '$':
			end := strings.IndexByte(p[1:], '$')
			if end < 0 {
				return false
			}
			esc := p[1 : 1+end]
			p = p[2+end:]
			if r, ok := rustEscapes[esc]; ok {
				b.WriteString(r)
				continue
			}
			hex, ok := strings.CutPrefix(esc, "u")
			if !ok {
				return false
			}
			c, err := strconv.ParseUint(hex, 16, 32)
			if err != nil || c < 0x20 || c == 0x7f || c > 0x10ffff {
				return false
			}
			b.WriteRune(rune(c))
		case strings.HasPrefix(p, ".."):
			b.WriteString("::")
			p = p[2:]
		case p[0] < 0x20 || p[0] == 0x7f:
			return false // not a mangled identifier
		default:
			b.WriteByte(p[0])
			p = p[1:]
		}
	}
	return true
}
