package wire

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
)

// Value constructors for the tables.
func vD(x ...float64) Value { return Value{Type: DBRDouble, Doubles: x} }
func vF(x ...float32) Value { return Value{Type: DBRFloat, Floats: x} }
func vS(x ...string) Value  { return Value{Type: DBRString, Strings: x} }
func vL(x ...int32) Value   { return Value{Type: DBRLong, Longs: x} }
func vH(x ...int16) Value   { return Value{Type: DBRShort, Shorts: x} }
func vE(x ...uint16) Value  { return Value{Type: DBREnum, Enums: x} }
func vC(x ...uint8) Value   { return Value{Type: DBRChar, Chars: x} }

var states3 = []string{"Zero", "One", "Two"}

// TestFloatText checks the text an IOC makes of a DOUBLE or FLOAT for a
// DBR_STRING request (EPICS Base cvtDoubleToString / cvtFloatToString,
// summarised in docs/ca-protocol.md 5.4): PREC digits in fixed point, "%e" when
// PREC > 8 or the magnitude passes 1e16 (1e8 for FLOAT), at most 3 digits
// between 1e7 and there.
func TestFloatText(t *testing.T) {
	negNaN := math.Copysign(math.NaN(), -1)
	tests := []struct {
		v    float64
		prec int16
		want string
	}{
		// Fixed point with PREC digits (the fast path, up to 1e7).
		{1.5, 3, "1.500"},
		{2, 0, "2"},
		{-1.5, 1, "-1.5"},
		{42, 6, "42.000000"},
		{1e-5, 3, "0.000"},
		{-0.001, 2, "-0.00"},
		{math.Copysign(0, -1), 2, "0.00"},
		{1e7, 6, "10000000.000000"},
		{-1e7, 1, "-10000000.0"},
		{0.5e-8, 8, "0.00000001"},
		{1.5, -1, "2"}, // a negative precision counts as 0
		// The fast path rounds half away from zero on the digits it computes,
		// unlike printf: 0.125 and 0.15 (0.1499...) round up, so does 2.5.
		{0.125, 2, "0.13"},
		{0.15, 1, "0.2"},
		{2.5, 0, "3"},
		{-2.5, 0, "-3"},
		{0.999, 2, "1.00"},
		{1.005, 2, "1.00"},
		// Above 1e7: "%.*f" with at most 3 digits.
		{12345678.9, 6, "12345678.900"},
		{12345678.9, 2, "12345678.90"},
		{-12345678.9, 0, "-12345679"},
		{1e16, 5, "10000000000000000.000"},
		// Above 1e16 or PREC > 8: "%*.*e" with width PREC+7 (so a leading blank
		// for positive values with a two-digit exponent) and at most 17 digits.
		{2e16, 3, " 2.000e+16"},
		{-2e16, 3, "-2.000e+16"},
		{1e100, 2, "1.00e+100"},
		{1.5, 9, " 1.500000000e+00"},
		{1.5, 20, " 1.50000000000000000e+00"},
		{-1.5, 9, "-1.500000000e+00"},
		// NaN and infinities as glibc prints them.
		{math.NaN(), 3, "nan"},
		{negNaN, 3, "-nan"},
		{math.NaN(), 9, "             nan"},
		{math.Inf(1), 3, "       inf"},
		{math.Inf(-1), 0, "   -inf"},
		{math.Inf(1), 20, strings.Repeat(" ", 21) + "inf"},
	}
	for _, tt := range tests {
		var dst Value
		src := vD(tt.v)
		if err := Convert(&dst, DBRString, &src, tt.prec, nil); err != nil || len(dst.Strings) != 1 || dst.Strings[0] != tt.want {
			t.Errorf("double %v prec %d: %q, %v; want %q", tt.v, tt.prec, dst.Strings, err, tt.want)
		}
	}
	ftests := []struct {
		v    float32
		prec int16
		want string
	}{
		{1.5, 2, "1.50"},
		{0.1, 3, "0.100"},
		{-0.125, 2, "-0.13"},
		{float32(math.Copysign(0, -1)), 3, "0.000"},
		{5e7, 5, "50000000.000"},
		// FLOAT switches to "%e" at 1e8, with width PREC+6 and at most 12 digits.
		{1e8, 2, "1.00e+08"},
		{-2.5e9, 1, "-2.5e+09"},
		{2.5e20, 1, "2.5e+20"},
		{1.5, 9, "1.500000000e+00"},
		{1.5, 13, "1.500000000000e+00"},
		{float32(math.Inf(1)), 2, "     inf"},
		{float32(math.NaN()), 2, "nan"},
	}
	for _, tt := range ftests {
		var dst Value
		src := vF(tt.v)
		if err := Convert(&dst, DBRString, &src, tt.prec, nil); err != nil || len(dst.Strings) != 1 || dst.Strings[0] != tt.want {
			t.Errorf("float %v prec %d: %q, %v; want %q", tt.v, tt.prec, dst.Strings, err, tt.want)
		}
	}
}

// TestConvert checks Convert between the value types.
func TestConvert(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name   string
		src    Value
		to     DBRType
		prec   int16
		states []string
		want   Value
		errAt  int // index of the failing element, or -1
	}{
		// Numbers to text.
		{"double to string", vD(1.5, -2), DBRString, 3, nil, vS("1.500", "-2.000"), -1},
		{"long to string", vL(-42, math.MaxInt32), DBRString, 3, nil, vS("-42", "2147483647"), -1},
		{"short to string", vH(-5), DBRString, 3, nil, vS("-5"), -1},
		{"char to string", vC('t', 0, 255), DBRString, 0, nil, vS("116", "0", "255"), -1},
		{"enum to string", vE(0, 1, 5), DBRString, 0, states3, vS("Zero", "One", "5"), -1},
		{"enum to string, empty state", vE(1), DBRString, 0, []string{"a", ""}, vS("1"), -1},
		{"enum to string, no states", vE(2), DBRString, 0, nil, vS("2"), -1},
		// Text to numbers: blanks, empty text, hexadecimal and octal integers.
		{"string to double", vS("2.5", " 3 ", "", "0x1F", "1e3", "-inf"), DBRDouble, 0, nil,
			vD(2.5, 3, 0, 31, 1000, math.Inf(-1)), -1},
		{"string to float", vS("0.1", "1e40"), DBRFloat, 0, nil, vF(0.1, float32(math.Inf(1))), -1},
		{"string to long", vS("42", "0x10", "017", "2.9", "-2.9", "", "1e3", " 7\t"), DBRLong, 0, nil,
			vL(42, 16, 15, 2, -2, 0, 1000, 7), -1},
		{"string to short", vS("-5", "32767", "-0x8000"), DBRShort, 0, nil, vH(-5, math.MaxInt16, math.MinInt16), -1},
		{"string to short out of range", vS("-5", "65535"), DBRShort, 0, nil, Value{}, 1},
		{"hex string to short out of range", vS("0x8000"), DBRShort, 0, nil, Value{}, 0},
		{"string to char", vS("255", "-1", "-128"), DBRChar, 0, nil, vC(255, 255, 128), -1},
		{"string to char out of range", vS("255", "256"), DBRChar, 0, nil, Value{}, 1},
		{"string to long out of range", vS("2147483648"), DBRLong, 0, nil, Value{}, 0},
		{"bad text to double", vS("1", "abc"), DBRDouble, 0, nil, Value{}, 1},
		{"overflowing text to double", vS("1e400"), DBRDouble, 0, nil, Value{}, 0},
		{"bad text to float", vS("x"), DBRFloat, 0, nil, Value{}, 0},
		{"bad text to long", vS("12abc"), DBRLong, 0, nil, Value{}, 0},
		{"bad text to char", vS("--1"), DBRChar, 0, nil, Value{}, 0},
		// Text to enum: a state string first, then a decimal index below the
		// number of states (16 without states).
		{"string to enum", vS("Two", "1", " 1", "Zero"), DBREnum, 0, states3, vE(2, 1, 1, 0), -1},
		{"state names win over indexes", vS("1", "0"), DBREnum, 0, []string{"1", "0"}, vE(0, 1), -1},
		{"index out of range", vS("3"), DBREnum, 0, states3, Value{}, 0},
		{"unknown state", vS("One", "Four"), DBREnum, 0, states3, Value{}, 1},
		{"empty text to enum", vS(""), DBREnum, 0, states3, Value{}, 0},
		{"hex index to enum", vS("0x1"), DBREnum, 0, states3, Value{}, 0},
		{"index without states", vS("15"), DBREnum, 0, nil, vE(15), -1},
		{"index 16 without states", vS("16"), DBREnum, 0, nil, Value{}, 0},
		// Enum to numbers: the index.
		{"enum to double", vE(2), DBRDouble, 0, states3, vD(2), -1},
		{"enum to short", vE(65535), DBRShort, 0, nil, vH(-1), -1},
		{"enum to long", vE(65535), DBRLong, 0, nil, vL(65535), -1},
		// Floating point to integers: truncation toward zero, NaN to 0, and
		// saturation to the 32-bit range (then C-style wrapping to narrower types).
		{"double to long", vD(2.9, -2.9, nan, 3e9, -3e9, math.Inf(1), math.Inf(-1)), DBRLong, 0, nil,
			vL(2, -2, 0, math.MaxInt32, math.MinInt32, math.MaxInt32, math.MinInt32), -1},
		{"float to long", vF(3e9, -0.5), DBRLong, 0, nil, vL(math.MaxInt32, 0), -1},
		{"double to short", vD(40000, 1.9, -1.9, nan, 3e9), DBRShort, 0, nil, vH(-25536, 1, -1, 0, -1), -1},
		{"double to char", vD(300, -1, 255.9, nan), DBRChar, 0, nil, vC(44, 255, 255, 0), -1},
		{"double to enum", vD(2.7, -1), DBREnum, 0, nil, vE(2, 65535), -1},
		// Between floating-point widths.
		{"double to float", vD(1e40, 0.1, -1e-50), DBRFloat, 0, nil, vF(float32(math.Inf(1)), 0.1, float32(math.Copysign(0, -1))), -1},
		{"float to double", vF(0.1), DBRDouble, 0, nil, vD(float64(float32(0.1))), -1},
		// Between integer widths: narrowing wraps, widening keeps the sign of
		// signed types (CHAR is unsigned).
		{"long to short", vL(70000, -70000), DBRShort, 0, nil, vH(4464, -4464), -1},
		{"long to char", vL(0x1FF, -1), DBRChar, 0, nil, vC(255, 255), -1},
		{"short to long", vH(-2), DBRLong, 0, nil, vL(-2), -1},
		{"short to char", vH(-1), DBRChar, 0, nil, vC(255), -1},
		{"short to enum", vH(-1), DBREnum, 0, nil, vE(65535), -1},
		{"char to short", vC(200), DBRShort, 0, nil, vH(200), -1},
		{"char to double", vC(255), DBRDouble, 0, nil, vD(255), -1},
		{"long to double", vL(math.MinInt32), DBRDouble, 0, nil, vD(math.MinInt32), -1},
		{"long to float", vL(16777217), DBRFloat, 0, nil, vF(16777216), -1},
		// The same type is a copy, and an empty source gives an empty value.
		{"double to double", vD(1, nan), DBRDouble, 0, nil, vD(1, nan), -1},
		{"string to string", vS("a", ""), DBRString, 0, nil, vS("a", ""), -1},
		{"empty", vD(), DBRLong, 0, nil, Value{Type: DBRLong}, -1},
	}
	for _, tt := range tests {
		// Start from a dirty destination to check that it is reset.
		dst := Value{Type: DBRChar, Chars: []uint8{9}, Strings: []string{"old"}, Doubles: []float64{9}}
		err := Convert(&dst, tt.to, &tt.src, tt.prec, tt.states)
		if tt.errAt >= 0 {
			var ce *ConvertError
			if !errors.As(err, &ce) {
				t.Errorf("%s: %v, want a *ConvertError", tt.name, err)
				continue
			}
			if ce.From != tt.src.Type || ce.To != tt.to || ce.Index != tt.errAt || ce.Text != tt.src.Strings[tt.errAt] ||
				!strings.Contains(ce.Error(), tt.to.String()) || !strings.Contains(ce.Error(), ce.Text) || ce.Why == "" {
				t.Errorf("%s: %+v (%q)", tt.name, ce, ce.Error())
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if !valuesEqual(&dst, &tt.want) {
			t.Errorf("%s: %+v, want %+v", tt.name, dst, tt.want)
		}
	}
	var dst Value
	src := vD(1)
	if err := Convert(&dst, DBRTimeDouble, &src, 0, nil); err == nil || errors.As(err, new(*ConvertError)) {
		t.Errorf("Convert to a non-plain type: %v", err)
	}
}

// TestConvertInPlace checks that a value can be converted into itself.
func TestConvertInPlace(t *testing.T) {
	v := vD(1.5, -2.9, 7)
	if err := Convert(&v, DBRLong, &v, 0, nil); err != nil || !valuesEqual(&v, &Value{Type: DBRLong, Longs: []int32{1, -2, 7}}) {
		t.Errorf("double to long in place: %+v, %v", v, err)
	}
	if err := Convert(&v, DBRString, &v, 0, nil); err != nil || !valuesEqual(&v, &Value{Type: DBRString, Strings: []string{"1", "-2", "7"}}) {
		t.Errorf("long to string in place: %+v, %v", v, err)
	}
	if err := Convert(&v, DBRString, &v, 0, nil); err != nil || v.Len() != 3 || v.Strings[2] != "7" {
		t.Errorf("string to string in place: %+v, %v", v, err)
	}
	if err := Convert(&v, DBRDouble, &v, 0, nil); err != nil || !valuesEqual(&v, &Value{Type: DBRDouble, Doubles: []float64{1, -2, 7}}) {
		t.Errorf("string to double in place: %+v, %v", v, err)
	}
}

// TestConvertAllocations checks that Convert reuses the destination.
func TestConvertAllocations(t *testing.T) {
	src := vL(1, 2, 3)
	var dst Value
	_ = Convert(&dst, DBRDouble, &src, 0, nil)
	if allocs := testing.AllocsPerRun(100, func() { _ = Convert(&dst, DBRDouble, &src, 0, nil) }); allocs != 0 {
		t.Errorf("%v allocations", allocs)
	}
}

// TestAppendDBRConverts checks AppendDBR with a requested type other than the
// source's, with counts above and below the source length.
func TestAppendDBRConverts(t *testing.T) {
	nanLimits := Limits{UpperDisp: 100, LowerDisp: -100, UpperAlarm: 90, UpperWarning: 50,
		LowerWarning: math.NaN(), LowerAlarm: math.NaN(), UpperCtrl: 100, LowerCtrl: -100}
	ao := func(v Value) *DBR {
		return &DBR{Value: v, Meta: Metadata{Units: "V", Precision: 3, Limits: nanLimits, EnumStrings: states3}}
	}
	str40 := func(s string) string { return hexString([]byte(s)) + strings.Repeat("00", 40-len(s)) }
	tests := []struct {
		name  string
		typ   DBRType
		count int
		src   *DBR
		hex   string
	}{
		{"doubles to longs, zero filled", DBRLong, 5, ao(vD(1, 2.9, -3)), "00000001 00000002 fffffffd 00000000 00000000"},
		{"doubles to longs, truncated", DBRLong, 2, ao(vD(1, 2, 3)), "00000001 00000002"},
		{"doubles to strings with PREC", DBRString, 2, ao(vD(1.25, 2)), str40("1.250") + str40("2.000")},
		{"doubles to three strings", DBRString, 3, &DBR{Value: vD(1.25), Meta: Metadata{Precision: 1}},
			str40("1.3") + str40("") + str40("")},
		{"long to time string", DBRTimeString, 1, &DBR{Value: vL(42), Status: StatUDF, Severity: SevInvalid},
			"0011 0003 00000000 00000000" + str40("42")},
		{"double with NaN limits to ctrl long", DBRCtrlLong, 1, ao(vD(1.5)),
			"0000 0000 5600000000000000 00000064 ffffff9c 0000005a 00000032 00000000 00000000 00000064 ffffff9c 00000001"},
		{"double with NaN limits to ctrl short", DBRCtrlShort, 1, ao(vD(-1.5)),
			"0000 0000 5600000000000000 0064 ff9c 005a 0032 0000 0000 0064 ff9c ffff"},
		{"double with NaN limits to gr char", DBRGrChar, 1, ao(vD(7)),
			"0000 0000 5600000000000000 64 9c 5a 32 00 00 00 07"},
		{"double with NaN limits to gr float", DBRGrFloat, 1, ao(vD(0.5)),
			"0000 0000 0003 0000 5600000000000000 42c80000 c2c80000 42b40000 42480000 7fc00000 7fc00000 3f000000"},
		{"long to gr float keeps the precision", DBRGrFloat, 1, &DBR{Value: vL(7), Meta: Metadata{Precision: 3}},
			"0000 0000 0003 0000 0000000000000000 00000000 00000000 00000000 00000000 00000000 00000000 40e00000"},
		{"state name to ctrl enum", DBRCtrlEnum, 1, ao(vS("Two")), "0000 0000 0003" + hEnumStrs + "0002"},
		{"enum to string", DBRString, 1, ao(vE(1)), str40("One")},
		{"enum to sts string", DBRStsString, 1, ao(vE(1)), "0000 0000" + str40("One")},
		{"enum to double", DBRDouble, 1, ao(vE(1)), "3ff0000000000000"},
		{"char array to strings", DBRString, 5, ao(vC('t', 'e', 'x', 't', 0)),
			str40("116") + str40("101") + str40("120") + str40("116") + str40("0")},
		{"string to time double", DBRTimeDouble, 1, ao(vS("2.5")), "0000 0000 00000000 00000000 00000000 4004000000000000"},
		{"empty string to long", DBRLong, 1, ao(vS("")), "00000000"},
		{"hex text to short", DBRShort, 2, ao(vS("0x1F", "-0x1")), "001f ffff"},
		{"text to char", DBRChar, 3, ao(vS("65", "66")), "41 42 00"},
		{"text count 0 is metadata only", DBRStsDouble, 0, ao(vS("abc")), "0000 0000 00000000"},
		{"double at the largest precision", DBRString, 1, &DBR{Value: vD(1e300), Meta: Metadata{Precision: 40}},
			str40("1.00000000000000005e+300")},
		{"long state name truncated at 39 chars", DBRString, 1,
			&DBR{Value: vE(0), Meta: Metadata{EnumStrings: []string{strings.Repeat("z", 50)}}},
			strings.Repeat("7a", 39) + "00"},
	}
	for _, tt := range tests {
		want := hx(tt.hex)
		got, err := AppendDBR([]byte("pre"), tt.typ, tt.count, tt.src)
		if err != nil || !bytes.Equal(got[:3], []byte("pre")) || !bytes.Equal(got[3:], want) {
			t.Errorf("%s: %v\n got %x\nwant %x", tt.name, err, got[3:], want)
		}
		if len(want) != tt.typ.Size(tt.count) {
			t.Errorf("%s: the golden has %d bytes, Size is %d", tt.name, len(want), tt.typ.Size(tt.count))
		}
	}
	// A conversion failure leaves the buffer as it was and names the element.
	for _, typ := range []DBRType{DBRDouble, DBRTimeFloat, DBRCtrlLong, DBRStsShort, DBRChar, DBRGrEnum} {
		buf := []byte("pre")
		got, err := AppendDBR(buf, typ, 2, ao(vS("1", "abc")))
		var ce *ConvertError
		if !errors.As(err, &ce) || ce.Index != 1 || ce.Text != "abc" || ce.To != typ.Base() || string(got) != "pre" {
			t.Errorf("%v from bad text: %q, %v", typ, got, err)
		}
		msg, err := AppendDBRMessage(buf, CmdReadNotify, typ, 2, 1, 1, ao(vS("1", "abc")))
		if err == nil || string(msg) != "pre" {
			t.Errorf("AppendDBRMessage %v from bad text: %q, %v", typ, msg, err)
		}
	}
}

// TestSTSStringMatchesIOC checks that encoding CAP:ao (1.5, PREC 3) as
// DBR_STS_STRING gives the captured IOC reply, apart from the garbage after
// the string's NUL.
func TestSTSStringMatchesIOC(t *testing.T) {
	m := captureMessage(t, "02", 58)
	want := bytes.Clone(m.Payload()[:DBRStsString.Size(1)])
	clear(want[4+len("1.500"):])
	got, err := AppendDBR(nil, DBRStsString, 1, &DBR{Value: vD(1.5), Meta: Metadata{Precision: 3}})
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("%v\n got %x\nwant %x", err, got, want)
	}
}

// TestShortStringWrite decodes the short scalar DBR_STRING payloads libca sends
// for caput (the text and its NUL, padded to 8) and converts them as a server
// writing a DOUBLE field does.
func TestShortStringWrite(t *testing.T) {
	tests := []struct {
		msg  *captureMsg
		want float64
		fail bool
	}{
		{captureMessage(t, "03", 14), 2.5, false}, // caput CAP:ao 2.5 (WRITE)
		{captureMessage(t, "03", 32), 3.5, false}, // caput -c CAP:ao 3.5 (WRITE_NOTIFY)
		{captureMessage(t, "11", 14), 0, true},    // caput CAP:ao abc
		{captureMessage(t, "11", 33), 0, true},    // caput -c CAP:ao abc
		{captureMessage(t, "03", 51), 1, false},   // caput -a CAP:wf 3 1 2 3: the first of three strings
		{captureMessage(t, "03", 69), 116, false}, // caput -S CAP:cwf text: DBR_CHAR 't'
	}
	for _, tt := range tests {
		m := tt.msg
		if m.Cmd != uint64(CmdWrite) && m.Cmd != uint64(CmdWriteNotify) {
			t.Fatalf("%s is a %s", m.Name(), m.CmdName)
		}
		var d DBR
		if err := DecodeDBR(&d, DBRType(m.DataType), int(m.Count), m.Payload()); err != nil {
			t.Errorf("%s: %v", m.Name(), err)
			continue
		}
		var v Value
		err := Convert(&v, DBRDouble, &d.Value, 0, nil)
		if tt.fail {
			var ce *ConvertError
			if !errors.As(err, &ce) || ce.Text != "abc" {
				t.Errorf("%s: %v, want a conversion error for \"abc\"", m.Name(), err)
			}
			continue
		}
		if err != nil || v.Doubles[0] != tt.want {
			t.Errorf("%s: %v, %v; want %v", m.Name(), v.Doubles, err, tt.want)
		}
	}
}
