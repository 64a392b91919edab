package catools

import (
	"math"
	"strconv"
)

// IntBase selects how integers are printed: decimal (the default), or
// hexadecimal, octal or binary as caget's -0x, -0o and -0b (for integer
// values) and -lx, -lo and -lb (for floating-point values rounded to an
// integer) print them.
type IntBase uint8

// The integer bases.
const (
	Decimal IntBase = iota
	Hex
	Octal
	Binary
)

// String returns the option letter of the base ("x", "o", "b"), or "d" for
// decimal.
func (b IntBase) String() string {
	switch b {
	case Hex:
		return "x"
	case Octal:
		return "o"
	case Binary:
		return "b"
	}
	return "d"
}

// appendCFloat appends x as C's printf formats it with the conversion verb
// ('e', 'f' or 'g') and precision prec, including glibc's spelling of NaN
// ("nan", "-nan") and infinities ("inf", "-inf"). Go's strconv agrees with C
// on all three conversions once the precision is explicit: both round the exact
// binary value to nearest, ties to even, both print at least two exponent
// digits, and 'g' drops trailing zeros as C's %g does.
func appendCFloat(b []byte, x float64, verb byte, prec int) []byte {
	switch {
	case math.IsNaN(x):
		if math.Signbit(x) {
			b = append(b, '-')
		}
		return append(b, "nan"...)
	case math.IsInf(x, 1):
		return append(b, "inf"...)
	case math.IsInf(x, -1):
		return append(b, "-inf"...)
	}
	if verb == 'g' && prec == 0 {
		prec = 1 // C treats %.0g as %.1g
	}
	return strconv.AppendFloat(b, x, verb, prec, 64)
}

// roundToLong rounds x half away from zero to a 32-bit integer, as caget's
// -lx, -lo and -lb options do before printing. Values outside the int32
// range saturate and NaN gives 0.
func roundToLong(x float64) int32 {
	switch {
	case x != x:
		return 0
	case x > 0:
		x += 0.5
	default:
		x -= 0.5
	}
	if x >= math.MaxInt32 {
		return math.MaxInt32
	}
	if x <= math.MinInt32 {
		return math.MinInt32
	}
	return int32(x)
}

// appendLong appends v in the base: decimal with a sign, or the 32-bit
// two's-complement pattern as "0x%X", "0o%o" or plain binary digits without
// leading zeros (a lone "0" for zero), which is how the EPICS tools print them.
func appendLong(b []byte, v int32, base IntBase) []byte {
	u := uint64(uint32(v))
	switch base {
	case Hex:
		b = append(b, "0x"...)
		start := len(b)
		b = strconv.AppendUint(b, u, 16)
		for i := start; i < len(b); i++ {
			if 'a' <= b[i] && b[i] <= 'f' {
				b[i] -= 'a' - 'A'
			}
		}
		return b
	case Octal:
		return strconv.AppendUint(append(b, "0o"...), u, 8)
	case Binary:
		return strconv.AppendUint(b, u, 2)
	}
	return strconv.AppendInt(b, int64(v), 10)
}
