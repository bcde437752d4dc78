package flamegraph

import (
	"math"
	"strconv"
)

// The number formatting of the frames' attributes and tooltips, appending
// to the frame's buffer: a whole-host graph has tens of thousands of
// frames, and fmt and string building were most of its render time.

// appendFixed appends v with prec (1 or 2) decimals, exactly as
// strconv.AppendFloat(b, v, 'f', prec, 64) does. The fast path scales to
// an integer: for |v*10^prec| < 2^40 the product is within 2^-13 of the
// exact one, so it rounds the same way unless it lies within 1e-3 of a
// half, where (and for negative, huge or non-finite values) strconv
// decides.
func appendFixed(b []byte, v float64, prec int) []byte {
	scale := 10.0
	div := int64(10)
	if prec == 2 {
		scale, div = 100, 100
	} else if prec != 1 {
		return strconv.AppendFloat(b, v, 'f', prec, 64)
	}
	s := v * scale
	if math.Signbit(v) || !(s < 1<<40) {
		return strconv.AppendFloat(b, v, 'f', prec, 64)
	}
	fl := math.Floor(s)
	if f := s - fl; f > 0.5-1e-3 && f < 0.5+1e-3 {
		return strconv.AppendFloat(b, v, 'f', prec, 64)
	}
	n := int64(math.Floor(s + 0.5))
	b = strconv.AppendInt(b, n/div, 10)
	b = append(b, '.')
	frac := n % div
	if prec == 2 {
		b = append(b, byte('0'+frac/10))
		frac %= 10
	}
	return append(b, byte('0'+frac))
}

// appendThousands appends v with comma separators.
func appendThousands(b []byte, v int64) []byte {
	var d [24]byte
	s := strconv.AppendInt(d[:0], v, 10)
	if s[0] == '-' {
		b = append(b, '-')
		s = s[1:]
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b = append(b, ',')
		}
		b = append(b, c)
	}
	return b
}

// thousands formats an integer with comma separators.
func thousands(v int64) string { return string(appendThousands(nil, v)) }

// formatValue gives a value with its unit, as the tooltips show it.
func formatValue(v int64, unit string) string { return string(appendValue(nil, v, unit)) }

// appendValue appends formatValue(v, unit).
func appendValue(b []byte, v int64, unit string) []byte {
	switch unit {
	case "ns":
		a := math.Abs(float64(v))
		switch {
		case a >= 1e9:
			return append(strconv.AppendFloat(b, float64(v)/1e9, 'f', 3, 64), " s"...)
		case a >= 1e6:
			return append(appendFixed(b, float64(v)/1e6, 2), " ms"...)
		case a >= 1e3:
			return append(appendFixed(b, float64(v)/1e3, 1), " µs"...)
		}
		return append(strconv.AppendInt(b, v, 10), " ns"...)
	case "bytes":
		a := math.Abs(float64(v))
		switch {
		case a >= 1<<30:
			return append(appendFixed(b, float64(v)/(1<<30), 2), " GiB"...)
		case a >= 1<<20:
			return append(appendFixed(b, float64(v)/(1<<20), 2), " MiB"...)
		case a >= 1<<10:
			return append(appendFixed(b, float64(v)/(1<<10), 1), " KiB"...)
		}
		return append(appendThousands(b, v), " bytes"...)
	case "samples":
		return append(appendThousands(b, v), " samples"...)
	case "", "count":
		return append(appendThousands(b, v), " events"...)
	}
	b = append(appendThousands(b, v), ' ')
	return append(b, unit...)
}
