package wire

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ConvertError reports an element that has no conversion to the requested type,
// such as the text "abc" requested as a DBR_DOUBLE.
type ConvertError struct {
	From  DBRType // the plain type of the source
	To    DBRType // the plain type requested
	Index int     // the element that failed
	Text  string  // the offending text, when From is DBRString
	Why   string  // what is wrong with it
}

func (e *ConvertError) Error() string {
	if e.Text != "" || e.From == DBRString {
		return fmt.Sprintf("cannot convert %q (element %d) to %s: %s", e.Text, e.Index, e.To, e.Why)
	}
	return fmt.Sprintf("cannot convert element %d from %s to %s: %s", e.Index, e.From, e.To, e.Why)
}

// parseFloatText parses text as a number the way an IOC reads a string into a
// numeric field: surrounding blanks are ignored, an empty string is 0, and
// integers may be written in hexadecimal (0x...).
func parseFloatText(s string) (float64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return f, nil
	}
	if i, err := strconv.ParseInt(s, 0, 64); err == nil {
		return float64(i), nil
	}
	if u, err := strconv.ParseUint(s, 0, 64); err == nil {
		return float64(u), nil
	}
	return 0, fmt.Errorf("not a number")
}

// parseIntText parses text for an integer field. Integers keep full precision;
// a decimal fraction is truncated toward zero as a C cast does.
func parseIntText(s string) (int64, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, nil
	}
	if i, err := strconv.ParseInt(t, 0, 64); err == nil {
		return i, nil
	}
	f, err := parseFloatText(t)
	if err != nil {
		return 0, err
	}
	return floatToInt(f), nil
}

// floatToInt truncates toward zero like a C cast, mapping NaN to 0 and
// saturating values outside the int64 range.
func floatToInt(f float64) int64 {
	switch {
	case f != f:
		return 0
	case f >= math.MaxInt64:
		return math.MaxInt64
	case f <= math.MinInt64:
		return math.MinInt64
	}
	return int64(f)
}

// saturate32 clamps an integer to the int32 range; used for float sources so that
// 3e9 read as a DBR_LONG gives the largest long rather than an arbitrary value.
func saturate32(i int64) int64 {
	if i > math.MaxInt32 {
		return math.MaxInt32
	}
	if i < math.MinInt32 {
		return math.MinInt32
	}
	return i
}

// enumIndex resolves text written to an enum: an exact state string first, then a
// decimal index below the number of states (or below 16 when no states are
// defined).
func enumIndex(s string, states []string) (uint16, error) {
	for i, st := range states {
		if st == s {
			return uint16(i), nil
		}
	}
	t := strings.TrimSpace(s)
	i, err := strconv.ParseUint(t, 10, 16)
	if err != nil {
		if len(states) == 0 {
			return 0, fmt.Errorf("not a state index")
		}
		return 0, fmt.Errorf("not one of the states %q", states)
	}
	limit := uint64(len(states))
	if limit == 0 {
		limit = MaxEnumStates
	}
	if i >= limit {
		return 0, fmt.Errorf("state index %d out of range 0..%d", i, limit-1)
	}
	return uint16(i), nil
}

// elemFloat returns element i as a float64.
func (v *Value) elemFloat(i int, states []string) (float64, error) {
	switch v.Type {
	case DBRString:
		f, err := parseFloatText(v.Strings[i])
		if err != nil {
			return 0, &ConvertError{From: DBRString, To: DBRDouble, Index: i, Text: v.Strings[i], Why: err.Error()}
		}
		return f, nil
	case DBRShort:
		return float64(v.Shorts[i]), nil
	case DBRFloat:
		return float64(v.Floats[i]), nil
	case DBREnum:
		return float64(v.Enums[i]), nil
	case DBRChar:
		return float64(v.Chars[i]), nil
	case DBRLong:
		return float64(v.Longs[i]), nil
	case DBRDouble:
		return v.Doubles[i], nil
	}
	return 0, nil
}

// elemInt returns element i as an integer: floats are truncated and saturated to
// the int32 range, text is parsed, enums give their index.
func (v *Value) elemInt(i int, to DBRType) (int64, error) {
	switch v.Type {
	case DBRString:
		n, err := parseIntText(v.Strings[i])
		if err != nil {
			return 0, &ConvertError{From: DBRString, To: to, Index: i, Text: v.Strings[i], Why: err.Error()}
		}
		// Text that names a number the field cannot hold is refused, as an IOC
		// refuses it, rather than wrapped.
		if lo, hi := intRange(to); n < lo || n > hi {
			return 0, &ConvertError{From: DBRString, To: to, Index: i, Text: v.Strings[i],
				Why: fmt.Sprintf("out of range %d..%d", lo, hi)}
		}
		return n, nil
	case DBRShort:
		return int64(v.Shorts[i]), nil
	case DBRFloat:
		return saturate32(floatToInt(float64(v.Floats[i]))), nil
	case DBREnum:
		return int64(v.Enums[i]), nil
	case DBRChar:
		return int64(v.Chars[i]), nil
	case DBRLong:
		return int64(v.Longs[i]), nil
	case DBRDouble:
		return saturate32(floatToInt(v.Doubles[i])), nil
	}
	return 0, nil
}

// elemEnum returns element i as an enum index; text may name a state.
func (v *Value) elemEnum(i int, states []string) (uint16, error) {
	if v.Type == DBRString {
		idx, err := enumIndex(v.Strings[i], states)
		if err != nil {
			return 0, &ConvertError{From: DBRString, To: DBREnum, Index: i, Text: v.Strings[i], Why: err.Error()}
		}
		return idx, nil
	}
	n, err := v.elemInt(i, DBREnum)
	return uint16(n), err
}

// appendText appends element i as text, formatted as an IOC formats it for a
// DBR_STRING request: floating-point values as appendFloatText describes,
// integers in decimal, enums as their state string.
func (v *Value) appendText(b []byte, i int, prec int16, states []string) []byte {
	switch v.Type {
	case DBRString:
		return append(b, v.Strings[i]...)
	case DBRShort:
		return strconv.AppendInt(b, int64(v.Shorts[i]), 10)
	case DBRFloat:
		return appendFloatText(b, float64(v.Floats[i]), prec, 32)
	case DBREnum:
		if idx := int(v.Enums[i]); idx < len(states) && states[idx] != "" {
			return append(b, states[idx]...)
		}
		return strconv.AppendUint(b, uint64(v.Enums[i]), 10)
	case DBRChar:
		return strconv.AppendUint(b, uint64(v.Chars[i]), 10)
	case DBRLong:
		return strconv.AppendInt(b, int64(v.Longs[i]), 10)
	case DBRDouble:
		return appendFloatText(b, v.Doubles[i], prec, 64)
	}
	return b
}

// fracMultiplier holds the powers of ten for the fixed-point fast path.
var fracMultiplier = [...]int32{1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000}

// appendFloatText appends f as EPICS Base's cvtDoubleToString (bits 64) or
// cvtFloatToString (bits 32) formats it, which is what an IOC sends for a
// DBR_STRING request of a DOUBLE or FLOAT field:
//   - |f| <= 1e7 and prec <= 8: fixed point with prec digits, rounding half
//     away from zero on the digits the fast path computes (negative zero
//     prints without a sign);
//   - prec > 8, or |f| > 1e16 (double) / |f| >= 1e8 (float): C's "%*.*e" with
//     the precision capped at 17 (double) / 12 (float) and a field width of
//     prec+7 (double) / prec+6 (float), so positive values get a leading blank;
//   - otherwise (large values and NaN): C's "%.*f" with at most 3 digits.
//
// NaN and infinities are spelt as glibc prints them: "nan", "-nan", "inf",
// "-inf". A negative precision is treated as 0.
func appendFloatText(b []byte, f float64, prec int16, bits int) []byte {
	p := max(int(prec), 0)
	if math.IsNaN(f) || p > 8 || f > 1e7 || f < -1e7 {
		expForm, maxPrec, extra := f > 1e16 || f < -1e16, 17, 7
		if bits == 32 {
			expForm, maxPrec, extra = f >= 1e8 || f <= -1e8, 12, 6
		}
		if p > 8 || expForm {
			p = min(p, maxPrec)
			return appendCFloat(b, f, 'e', p, p+extra)
		}
		return appendCFloat(b, f, 'f', min(p, 3), 0)
	}
	if f < 0 {
		b = append(b, '-')
		f = -f
	}
	fplace := fracMultiplier[p]
	var whole, fraction int32
	if bits == 32 {
		v := float32(f)
		whole = int32(v)
		ftemp := float32(v - float32(whole))
		fraction = int32(float32(float32(ftemp*float32(fplace)) * 10))
	} else {
		whole = int32(f)
		ftemp := f - float64(whole)
		fraction = int32(ftemp * float64(fplace) * 10)
	}
	fraction = (fraction + 5) / 10
	if fraction/fplace >= 1 {
		whole++
		fraction -= fplace
	}
	b = strconv.AppendInt(b, int64(whole), 10)
	if p > 0 {
		b = append(b, '.')
		for fplace /= 10; fplace > 0; fplace /= 10 {
			b = append(b, byte('0'+fraction/fplace))
			fraction %= fplace
		}
	}
	return b
}

// appendCFloat appends f formatted like C's printf with conversion verb ('e' or
// 'f'), precision prec and minimum field width width (right-aligned with blanks).
func appendCFloat(b []byte, f float64, verb byte, prec, width int) []byte {
	start := len(b)
	switch {
	case math.IsNaN(f):
		if math.Signbit(f) {
			b = append(b, '-')
		}
		b = append(b, "nan"...)
	case math.IsInf(f, 1):
		b = append(b, "inf"...)
	case math.IsInf(f, -1):
		b = append(b, "-inf"...)
	default:
		b = strconv.AppendFloat(b, f, verb, prec, 64)
	}
	if pad := width - (len(b) - start); pad > 0 {
		for range pad {
			b = append(b, ' ')
		}
		copy(b[start+pad:], b[start:len(b)-pad])
		for i := start; i < start+pad; i++ {
			b[i] = ' '
		}
	}
	return b
}

// Convert sets dst to the elements of src converted to the plain type to, as an
// IOC converts a value written with one type into a field of another. states are
// the enum state strings used for enum <-> text conversions, prec the precision
// for floating-point -> text. dst's slices are reused; dst may be src. On error
// dst is left unspecified and the error is a *ConvertError naming the element.
func Convert(dst *Value, to DBRType, src *Value, prec int16, states []string) error {
	if to > DBRDouble {
		return fmt.Errorf("convert: %s is not a plain value type", to)
	}
	if dst == src {
		// In place: resetting dst would empty src, so read from a copy of its
		// slice headers. The result goes to dst's slice of the other type.
		if to == src.Type {
			return nil
		}
		s := *src
		src = &s
	}
	n := src.Len()
	dst.reset(to)
	if src.Type == to {
		switch to {
		case DBRString:
			dst.Strings = append(dst.Strings, src.Strings...)
		case DBRShort:
			dst.Shorts = append(dst.Shorts, src.Shorts...)
		case DBRFloat:
			dst.Floats = append(dst.Floats, src.Floats...)
		case DBREnum:
			dst.Enums = append(dst.Enums, src.Enums...)
		case DBRChar:
			dst.Chars = append(dst.Chars, src.Chars...)
		case DBRLong:
			dst.Longs = append(dst.Longs, src.Longs...)
		case DBRDouble:
			dst.Doubles = append(dst.Doubles, src.Doubles...)
		}
		return nil
	}
	var scratch []byte
	for i := 0; i < n; i++ {
		switch to {
		case DBRString:
			scratch = src.appendText(scratch[:0], i, prec, states)
			dst.Strings = append(dst.Strings, string(scratch))
		case DBRFloat, DBRDouble:
			f, err := src.elemFloat(i, states)
			if err != nil {
				err.(*ConvertError).To = to
				return err
			}
			if to == DBRFloat {
				dst.Floats = append(dst.Floats, float32(f))
			} else {
				dst.Doubles = append(dst.Doubles, f)
			}
		case DBREnum:
			e, err := src.elemEnum(i, states)
			if err != nil {
				return err
			}
			dst.Enums = append(dst.Enums, e)
		default:
			k, err := src.elemInt(i, to)
			if err != nil {
				return err
			}
			switch to {
			case DBRShort:
				dst.Shorts = append(dst.Shorts, int16(k))
			case DBRChar:
				dst.Chars = append(dst.Chars, uint8(k))
			case DBRLong:
				dst.Longs = append(dst.Longs, int32(k))
			}
		}
	}
	return nil
}

// intRange is the range of values text may name for an integer type. CHAR
// accepts signed and unsigned bytes (-128..255), since CA's CHAR carries both.
func intRange(t DBRType) (lo, hi int64) {
	switch t {
	case DBRShort:
		return math.MinInt16, math.MaxInt16
	case DBRChar:
		return math.MinInt8, math.MaxUint8
	case DBREnum:
		return 0, math.MaxUint16
	}
	return math.MinInt32, math.MaxInt32
}
