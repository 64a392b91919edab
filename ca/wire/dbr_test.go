package wire

import (
	"bytes"
	"errors"
	"math"
	"math/bits"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// dbrLayout is the table of docs/ca-protocol.md section 5.2: dbr_size with one
// element and the value offset of every DBR type.
var dbrLayout = []struct {
	name   string
	size   int
	offset int
}{
	{"DBR_STRING", 40, 0}, {"DBR_SHORT", 2, 0}, {"DBR_FLOAT", 4, 0}, {"DBR_ENUM", 2, 0},
	{"DBR_CHAR", 1, 0}, {"DBR_LONG", 4, 0}, {"DBR_DOUBLE", 8, 0},
	{"DBR_STS_STRING", 44, 4}, {"DBR_STS_SHORT", 6, 4}, {"DBR_STS_FLOAT", 8, 4}, {"DBR_STS_ENUM", 6, 4},
	{"DBR_STS_CHAR", 6, 5}, {"DBR_STS_LONG", 8, 4}, {"DBR_STS_DOUBLE", 16, 8},
	{"DBR_TIME_STRING", 52, 12}, {"DBR_TIME_SHORT", 16, 14}, {"DBR_TIME_FLOAT", 16, 12}, {"DBR_TIME_ENUM", 16, 14},
	{"DBR_TIME_CHAR", 16, 15}, {"DBR_TIME_LONG", 16, 12}, {"DBR_TIME_DOUBLE", 24, 16},
	{"DBR_GR_STRING", 44, 4}, {"DBR_GR_SHORT", 26, 24}, {"DBR_GR_FLOAT", 44, 40}, {"DBR_GR_ENUM", 424, 422},
	{"DBR_GR_CHAR", 20, 19}, {"DBR_GR_LONG", 40, 36}, {"DBR_GR_DOUBLE", 72, 64},
	{"DBR_CTRL_STRING", 44, 4}, {"DBR_CTRL_SHORT", 30, 28}, {"DBR_CTRL_FLOAT", 52, 48}, {"DBR_CTRL_ENUM", 424, 422},
	{"DBR_CTRL_CHAR", 22, 21}, {"DBR_CTRL_LONG", 48, 44}, {"DBR_CTRL_DOUBLE", 88, 80},
	{"DBR_PUT_ACKT", 2, 0}, {"DBR_PUT_ACKS", 2, 0}, {"DBR_STSACK_STRING", 48, 8}, {"DBR_CLASS_NAME", 40, 0},
}

// TestDBRTypeTable checks names, sizes, offsets and the family arithmetic of
// every DBR type against the protocol document.
func TestDBRTypeTable(t *testing.T) {
	if len(dbrLayout) != int(MaxDBRType)+1 {
		t.Fatalf("MaxDBRType = %d", MaxDBRType)
	}
	valueSize := map[DBRType]int{DBRString: 40, DBRShort: 2, DBRFloat: 4, DBREnum: 2, DBRChar: 1, DBRLong: 4, DBRDouble: 8}
	for i, l := range dbrLayout {
		typ := DBRType(i)
		if typ.String() != l.name || !typ.Valid() {
			t.Errorf("DBRType(%d) = %q, want %q", i, typ.String(), l.name)
		}
		vs := valueSize[typ.Base()]
		if typ.ValueSize() != vs {
			t.Errorf("%v: ValueSize %d, want %d", typ, typ.ValueSize(), vs)
		}
		if typ.Size(1) != l.size || typ.ValueOffset() != l.offset {
			t.Errorf("%v: Size(1) %d, ValueOffset %d; want %d, %d", typ, typ.Size(1), typ.ValueOffset(), l.size, l.offset)
		}
		// dbr_size_n: metadata only for n = 0, one more element each step.
		if typ.Size(0) != l.size-vs || typ.Size(-1) != l.size-vs || typ.Size(10) != l.size+9*vs {
			t.Errorf("%v: Size(0) %d, Size(10) %d", typ, typ.Size(0), typ.Size(10))
		}
		if l.offset+vs != l.size {
			t.Errorf("%v: the table's offset %d + element %d != size %d", typ, l.offset, vs, l.size)
		}
		// The family arithmetic of section 5.2.
		if i <= int(DBRCtrlDouble) {
			b := DBRType(i % 7)
			fam := []Family{FamilyPlain, FamilySts, FamilyTime, FamilyGr, FamilyCtrl}[i/7]
			if typ.Base() != b || typ.Family() != fam {
				t.Errorf("%v: Base %v Family %d, want %v %d", typ, typ.Base(), typ.Family(), b, fam)
			}
			if typ.Sts() != b+7 || typ.Time() != b+14 || typ.Gr() != b+21 || typ.Ctrl() != b+28 {
				t.Errorf("%v: family helpers %v %v %v %v", typ, typ.Sts(), typ.Time(), typ.Gr(), typ.Ctrl())
			}
		}
		if typ.Readable() != (typ != DBRPutAckT && typ != DBRPutAckS) {
			t.Errorf("%v: Readable() = %v", typ, typ.Readable())
		}
		// By name with and without the prefix, any case, and by number.
		for _, s := range []string{l.name, strings.TrimPrefix(l.name, "DBR_"), strings.ToLower(l.name), itoa(i)} {
			if got, err := ParseDBRType(s); err != nil || got != typ {
				t.Errorf("ParseDBRType(%q) = %v, %v", s, got, err)
			}
		}
	}
	for _, typ := range []DBRType{DBRPutAckT, DBRPutAckS} {
		if typ.Base() != DBREnum || typ.Family() != FamilyPutAck {
			t.Errorf("%v: Base %v Family %d", typ, typ.Base(), typ.Family())
		}
	}
	if DBRStsAckString.Family() != FamilyStsAck || DBRClassName.Family() != FamilyClassName {
		t.Errorf("STSACK_STRING / CLASS_NAME families")
	}
	bad := DBRType(39)
	if bad.Valid() || bad.Readable() || bad.String() != "DBR(39)" || bad.Size(1) != 0 || bad.Base() != DBRString ||
		bad.ValueOffset() != 0 || bad.Family() != FamilyPlain {
		t.Errorf("DBRType(39) is not treated as invalid")
	}
	for _, s := range []string{"INT", "dbr_int"} {
		if got, err := ParseDBRType(s); err != nil || got != DBRShort {
			t.Errorf("ParseDBRType(%q) = %v, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "39", "1000", "-1", "DBR_", "TIME_", "x", "DBR_TIME_DOUBLES", "2O"} {
		if got, err := ParseDBRType(s); err == nil {
			t.Errorf("ParseDBRType(%q) = %v, want an error", s, got)
		}
	}
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return string(rune('0'+i/10)) + string(rune('0'+i%10))
}

// Reference sources for the layout goldens, one per value type, with distinct
// alarm, time stamp and metadata.
var (
	refStamp  = Timestamp{Sec: 0x4562edb7, Nsec: 0x3714844a}
	refLimits = Limits{UpperDisp: 100, LowerDisp: -100, UpperAlarm: 90, UpperWarning: 50,
		LowerWarning: -50, LowerAlarm: -90, UpperCtrl: 120, LowerCtrl: -120}
	refMeta = Metadata{Units: "V", Precision: 3, Limits: refLimits,
		EnumStrings: []string{"Zero", "One", "Two"}, ClassName: "ai"}
)

func refDBR(v Value) *DBR {
	return &DBR{Value: v, Status: StatHigh, Severity: SevMinor, Stamp: refStamp, AckT: 1, AckS: 2, Meta: refMeta}
}

var refValues = map[DBRType]Value{
	DBRString: {Type: DBRString, Strings: []string{"hi"}},
	DBRShort:  {Type: DBRShort, Shorts: []int16{-2}},
	DBRFloat:  {Type: DBRFloat, Floats: []float32{1.5}},
	DBREnum:   {Type: DBREnum, Enums: []uint16{2}},
	DBRChar:   {Type: DBRChar, Chars: []uint8{0x41}},
	DBRLong:   {Type: DBRLong, Longs: []int32{0x12345678}},
	DBRDouble: {Type: DBRDouble, Doubles: []float64{1.5}},
}

// Hex pieces of the layout goldens.
const (
	hAlarm   = "0004 0001 "         // status HIGH, severity MINOR
	hStamp   = "4562edb7 3714844a " // the time stamp
	hUnits   = "5600000000000000 "  // "V" in 8 bytes
	hShorts6 = "0064 ff9c 005a 0032 ffce ffa6 "
	hChars6  = "64 9c 5a 32 ce a6 "
	hLongs6  = "00000064 ffffff9c 0000005a 00000032 ffffffce ffffffa6 "
	hFloats6 = "42c80000 c2c80000 42b40000 42480000 c2480000 c2b40000 "
	hDbls6   = "4059000000000000 c059000000000000 4056800000000000 4049000000000000 c049000000000000 c056800000000000 "
	hPrec    = "0003 0000 "
)

// hHi40 is "hi" in a 40-byte string field.
var hHi40 = "6869" + strings.Repeat("00", 38)

// hEnumStrs is the 16 x 26-byte state string table with Zero, One, Two.
var hEnumStrs = func() string {
	var b []byte
	for i := range MaxEnumStates {
		s := make([]byte, MaxEnumStringSize)
		if i < 3 {
			copy(s, []string{"Zero", "One", "Two"}[i])
		}
		b = append(b, s...)
	}
	return strings.ReplaceAll(string(hexString(b)), " ", "")
}()

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

// dbrGolden holds the hand-assembled payload of every DBR type with one
// element, encoded from refDBR of the type's value class.
var dbrGolden = []struct {
	typ DBRType
	hex string
}{
	{DBRString, hHi40},
	{DBRShort, "fffe"},
	{DBRFloat, "3fc00000"},
	{DBREnum, "0002"},
	{DBRChar, "41"},
	{DBRLong, "12345678"},
	{DBRDouble, "3ff8000000000000"},
	{DBRStsString, hAlarm + hHi40},
	{DBRStsShort, hAlarm + "fffe"},
	{DBRStsFloat, hAlarm + "3fc00000"},
	{DBRStsEnum, hAlarm + "0002"},
	{DBRStsChar, hAlarm + "00 41"},
	{DBRStsLong, hAlarm + "12345678"},
	{DBRStsDouble, hAlarm + "00000000 3ff8000000000000"},
	{DBRTimeString, hAlarm + hStamp + hHi40},
	{DBRTimeShort, hAlarm + hStamp + "0000 fffe"},
	{DBRTimeFloat, hAlarm + hStamp + "3fc00000"},
	{DBRTimeEnum, hAlarm + hStamp + "0000 0002"},
	{DBRTimeChar, hAlarm + hStamp + "000000 41"},
	{DBRTimeLong, hAlarm + hStamp + "12345678"},
	{DBRTimeDouble, hAlarm + hStamp + "00000000 3ff8000000000000"},
	{DBRGrString, hAlarm + hHi40},
	{DBRGrShort, hAlarm + hUnits + hShorts6 + "fffe"},
	{DBRGrFloat, hAlarm + hPrec + hUnits + hFloats6 + "3fc00000"},
	{DBRGrEnum, hAlarm + "0003" + hEnumStrs + "0002"},
	{DBRGrChar, hAlarm + hUnits + hChars6 + "00 41"},
	{DBRGrLong, hAlarm + hUnits + hLongs6 + "12345678"},
	{DBRGrDouble, hAlarm + hPrec + hUnits + hDbls6 + "3ff8000000000000"},
	{DBRCtrlString, hAlarm + hHi40},
	{DBRCtrlShort, hAlarm + hUnits + hShorts6 + "0078 ff88 " + "fffe"},
	{DBRCtrlFloat, hAlarm + hPrec + hUnits + hFloats6 + "42f00000 c2f00000 " + "3fc00000"},
	{DBRCtrlEnum, hAlarm + "0003" + hEnumStrs + "0002"},
	{DBRCtrlChar, hAlarm + hUnits + hChars6 + "78 88 " + "00 41"},
	{DBRCtrlLong, hAlarm + hUnits + hLongs6 + "00000078 ffffff88 " + "12345678"},
	{DBRCtrlDouble, hAlarm + hPrec + hUnits + hDbls6 + "405e000000000000 c05e000000000000 " + "3ff8000000000000"},
	{DBRPutAckT, "0002"},
	{DBRPutAckS, "0002"},
	{DBRStsAckString, hAlarm + "0001 0002 " + hHi40},
	{DBRClassName, "6169" + strings.Repeat("00", 38)},
}

// TestDBRGoldenLayouts encodes one element of every DBR type and compares it
// with the layout assembled by hand, then decodes it back.
func TestDBRGoldenLayouts(t *testing.T) {
	if len(dbrGolden) != int(MaxDBRType)+1 {
		t.Fatalf("%d goldens", len(dbrGolden))
	}
	for i, g := range dbrGolden {
		if g.typ != DBRType(i) {
			t.Fatalf("golden %d is for %v", i, g.typ)
		}
		want := hx(g.hex)
		if len(want) != g.typ.Size(1) {
			t.Errorf("%v: golden has %d bytes, Size(1) = %d", g.typ, len(want), g.typ.Size(1))
		}
		src := refDBR(refValues[g.typ.Base()])
		got, err := AppendDBR(nil, g.typ, 1, src)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%v: AppendDBR = %v\n got %x\nwant %x", g.typ, err, got, want)
			continue
		}
		var d DBR
		if err := DecodeDBR(&d, g.typ, 1, want); err != nil {
			t.Errorf("%v: DecodeDBR: %v", g.typ, err)
			continue
		}
		checkDecodedRef(t, g.typ, &d, src)
		// Encoding the decoded DBR gives the same bytes.
		if again, err := AppendDBR(nil, g.typ, 1, &d); err != nil || !bytes.Equal(again, want) {
			t.Errorf("%v: re-encoding the decoded DBR = %x, %v", g.typ, again, err)
		}
	}
}

// checkDecodedRef compares the fields of a decoded DBR that its family carries
// with the source it was encoded from.
func checkDecodedRef(t *testing.T, typ DBRType, d *DBR, src *DBR) {
	t.Helper()
	if d.Type != typ {
		t.Errorf("%v: decoded Type %v", typ, d.Type)
	}
	wantValue := src.Value
	if typ == DBRClassName {
		wantValue = Value{Type: DBRString, Strings: []string{src.Meta.ClassName}}
		if d.Meta.ClassName != src.Meta.ClassName {
			t.Errorf("%v: ClassName %q", typ, d.Meta.ClassName)
		}
	}
	if typ.Family() == FamilyPutAck {
		wantValue = Value{Type: DBREnum, Enums: []uint16{2}}
	}
	if !valuesEqual(&d.Value, &wantValue) {
		t.Errorf("%v: value %+v, want %+v", typ, d.Value, wantValue)
	}
	fam := typ.Family()
	hasAlarm := fam == FamilySts || fam == FamilyTime || fam == FamilyGr || fam == FamilyCtrl || fam == FamilyStsAck
	if hasAlarm != (d.Status == src.Status && d.Severity == src.Severity) {
		t.Errorf("%v: alarm %v/%v", typ, d.Status, d.Severity)
	}
	if (fam == FamilyTime) != (d.Stamp == src.Stamp) {
		t.Errorf("%v: stamp %+v", typ, d.Stamp)
	}
	if (fam == FamilyStsAck) != (d.AckT == 1 && d.AckS == 2) {
		t.Errorf("%v: AckT %d AckS %d", typ, d.AckT, d.AckS)
	}
	base := typ.Base()
	grctrl := fam == FamilyGr || fam == FamilyCtrl
	wantUnits := grctrl && base != DBRString && base != DBREnum
	if wantUnits != (d.Meta.Units == "V") {
		t.Errorf("%v: units %q", typ, d.Meta.Units)
	}
	wantPrec := grctrl && (base == DBRFloat || base == DBRDouble)
	if wantPrec != (d.Meta.Precision == 3) {
		t.Errorf("%v: precision %d", typ, d.Meta.Precision)
	}
	wantStates := grctrl && base == DBREnum
	if wantStates != reflect.DeepEqual(d.Meta.EnumStrings, []string{"Zero", "One", "Two"}) {
		t.Errorf("%v: enum strings %q", typ, d.Meta.EnumStrings)
	}
	l := d.Meta.Limits
	if wantUnits {
		want := refLimits
		if fam == FamilyGr {
			want.UpperCtrl, want.LowerCtrl = 0, 0
		}
		if base == DBRChar { // CHAR limits are uint8: negative limits wrap
			w := func(f float64) float64 { return float64(uint8(int64(f))) }
			want = Limits{w(want.UpperDisp), w(want.LowerDisp), w(want.UpperAlarm), w(want.UpperWarning),
				w(want.LowerWarning), w(want.LowerAlarm), w(want.UpperCtrl), w(want.LowerCtrl)}
		}
		if l != want {
			t.Errorf("%v: limits %+v, want %+v", typ, l, want)
		}
	} else if l != (Limits{}) {
		t.Errorf("%v: limits %+v decoded from a type without limits", typ, l)
	}
}

// valuesEqual compares the meaningful slice of two values, NaNs by bits.
func valuesEqual(a, b *Value) bool {
	if a.Type != b.Type || a.Len() != b.Len() {
		return false
	}
	for i := range a.Len() {
		switch a.Type {
		case DBRString:
			if a.Strings[i] != b.Strings[i] {
				return false
			}
		case DBRShort:
			if a.Shorts[i] != b.Shorts[i] {
				return false
			}
		case DBRFloat:
			if math.Float32bits(a.Floats[i]) != math.Float32bits(b.Floats[i]) {
				return false
			}
		case DBREnum:
			if a.Enums[i] != b.Enums[i] {
				return false
			}
		case DBRChar:
			if a.Chars[i] != b.Chars[i] {
				return false
			}
		case DBRLong:
			if a.Longs[i] != b.Longs[i] {
				return false
			}
		case DBRDouble:
			if math.Float64bits(a.Doubles[i]) != math.Float64bits(b.Doubles[i]) {
				return false
			}
		}
	}
	return true
}

// TestDBRArraysAndCounts encodes arrays of every value type in every family
// with more, fewer and exactly as many elements as the source has.
func TestDBRArraysAndCounts(t *testing.T) {
	srcs := map[DBRType]Value{
		DBRString: {Type: DBRString, Strings: []string{"a", "bb", "ccc"}},
		DBRShort:  {Type: DBRShort, Shorts: []int16{1, -2, 3}},
		DBRFloat:  {Type: DBRFloat, Floats: []float32{0.5, -1, 2}},
		DBREnum:   {Type: DBREnum, Enums: []uint16{0, 1, 2}},
		DBRChar:   {Type: DBRChar, Chars: []uint8{'a', 0, 255}},
		DBRLong:   {Type: DBRLong, Longs: []int32{-1, 0, math.MaxInt32}},
		DBRDouble: {Type: DBRDouble, Doubles: []float64{math.Inf(-1), 0, 1e300}},
	}
	for typ := DBRString; typ <= DBRCtrlDouble; typ++ {
		src := refDBR(srcs[typ.Base()])
		for _, count := range []int{0, 1, 2, 3, 5} {
			enc, err := AppendDBR(nil, typ, count, src)
			if err != nil || len(enc) != typ.Size(count) {
				t.Errorf("%v count %d: %d bytes, %v", typ, count, len(enc), err)
				continue
			}
			var d DBR
			if err := DecodeDBR(&d, typ, count, enc); err != nil {
				t.Errorf("%v count %d: %v", typ, count, err)
				continue
			}
			want := src.Value.Clone()
			want.Truncate(count)
			for want.Len() < count { // zero fill
				appendZeroElement(&want)
			}
			if !valuesEqual(&d.Value, &want) {
				t.Errorf("%v count %d: decoded %+v, want %+v", typ, count, d.Value, want)
			}
			// The metadata in front of the values does not depend on the count.
			one, _ := AppendDBR(nil, typ, 1, src)
			if off := typ.ValueOffset(); !bytes.Equal(enc[:off], one[:off]) {
				t.Errorf("%v count %d: metadata differs from count 1", typ, count)
			}
		}
	}
}

func appendZeroElement(v *Value) {
	switch v.Type {
	case DBRString:
		v.Strings = append(v.Strings, "")
	case DBRShort:
		v.Shorts = append(v.Shorts, 0)
	case DBRFloat:
		v.Floats = append(v.Floats, 0)
	case DBREnum:
		v.Enums = append(v.Enums, 0)
	case DBRChar:
		v.Chars = append(v.Chars, 0)
	case DBRLong:
		v.Longs = append(v.Longs, 0)
	case DBRDouble:
		v.Doubles = append(v.Doubles, 0)
	}
}

// satSize is dbr_size_n computed without overflow, saturating at MaxInt.
func satSize(typ DBRType, n int) int {
	if n <= 0 {
		return typ.Size(0)
	}
	hi, lo := bits.Mul64(uint64(n-1), uint64(typ.ValueSize()))
	lo, carry := bits.Add64(lo, uint64(typ.Size(1)), 0)
	if hi != 0 || carry != 0 || lo > math.MaxInt {
		return math.MaxInt
	}
	return int(lo)
}

// TestDecodeDBRErrors checks the rejection of bad types, negative counts and
// payloads shorter than dbr_size_n, including counts so large that computing
// the size could overflow; PayloadError.Need saturates at MaxInt.
func TestDecodeDBRErrors(t *testing.T) {
	const maxHeaderCount = int(^uint32(0) >> (32 - strconv.IntSize/2)) // 2^32-1, or 2^16-1 with 32-bit ints
	tests := []struct {
		name    string
		typ     DBRType
		count   int
		payload []byte
		short   bool // a *PayloadError is expected
	}{
		{"type 39", 39, 1, make([]byte, 64), false},
		{"negative count", DBRDouble, -1, make([]byte, 64), false},
		{"double short by one", DBRDouble, 2, make([]byte, 15), true},
		{"time double metadata only", DBRTimeDouble, 1, make([]byte, 16), true},
		{"ctrl enum short", DBRCtrlEnum, 0, make([]byte, 421), true},
		{"empty scalar string", DBRString, 1, nil, true},
		{"two short strings", DBRString, 2, []byte("2.5\x00\x00\x00\x00\x00"), true},
		{"short sts string", DBRStsString, 1, make([]byte, 8), true},
		{"short class name", DBRClassName, 1, make([]byte, 8), true},
		{"huge count", DBRDouble, math.MaxInt / 64, make([]byte, 8), true},
		{"largest header count", DBRCtrlString, maxHeaderCount, make([]byte, 8), true},
		{"count near MaxInt", DBRString, math.MaxInt, make([]byte, 8), true},
		{"count near MaxInt/8", DBRCtrlDouble, math.MaxInt/8 + 1, make([]byte, 8), true},
	}
	if satSize(DBRDouble, 2) != 16 || satSize(DBRCtrlEnum, 0) != 422 || satSize(DBRString, math.MaxInt) != math.MaxInt {
		t.Fatal("satSize")
	}
	for _, tt := range tests {
		var d DBR
		err := DecodeDBR(&d, tt.typ, tt.count, tt.payload)
		var pe *PayloadError
		switch {
		case err == nil:
			t.Errorf("%s: no error", tt.name)
		case !tt.short:
			if errors.As(err, &pe) {
				t.Errorf("%s: %v", tt.name, err)
			}
		case !errors.As(err, &pe) || pe.Need != satSize(tt.typ, tt.count) || pe.Have != len(tt.payload) || pe.Type != tt.typ || pe.Count != tt.count:
			t.Errorf("%s: %v (%+v), want Need %d", tt.name, err, pe, satSize(tt.typ, tt.count))
		}
		// Rejecting a payload costs the error value and nothing else, however
		// large the count.
		allocs := testing.AllocsPerRun(10, func() { _ = DecodeDBR(&d, tt.typ, tt.count, tt.payload) })
		if tt.short && allocs > 1 {
			t.Errorf("%s: %v allocations for a rejected payload", tt.name, allocs)
		}
	}
	if !errors.Is(DecodeDBR(new(DBR), 100, 1, make([]byte, 8)), ErrBadType) {
		t.Errorf("type 100 is not ErrBadType")
	}
	if _, err := AppendDBR(nil, 39, 1, refDBR(refValues[DBRDouble])); !errors.Is(err, ErrBadType) {
		t.Errorf("AppendDBR type 39: %v", err)
	}
	if b, err := AppendDBR([]byte("x"), DBRDouble, -1, refDBR(refValues[DBRDouble])); err == nil || string(b) != "x" {
		t.Errorf("AppendDBR count -1: %q, %v", b, err)
	}
	if _, err := AppendDBRMessage(nil, CmdReadNotify, 39, 1, 1, 1, refDBR(refValues[DBRDouble])); !errors.Is(err, ErrBadType) {
		t.Errorf("AppendDBRMessage type 39: %v", err)
	}
	pe := &PayloadError{Type: DBRDouble, Count: 2, Have: 8, Need: 16}
	if !strings.Contains(pe.Error(), "DBR_DOUBLE") || !strings.Contains(pe.Error(), "16") {
		t.Errorf("PayloadError text %q", pe.Error())
	}
}

// TestDecodeDBRStrings checks strings that fill the field, strings with
// garbage after the NUL and libca's short scalar string.
func TestDecodeDBRStrings(t *testing.T) {
	full := bytes.Repeat([]byte("x"), MaxStringSize)
	garbage := append([]byte("ok\x00"), bytes.Repeat([]byte{0xff}, MaxStringSize-3)...)
	tests := []struct {
		name    string
		typ     DBRType
		count   int
		payload []byte
		want    []string
	}{
		{"short scalar", DBRString, 1, []byte("2.5\x00\x00\x00\x00\x00"), []string{"2.5"}},
		{"short scalar without NUL", DBRString, 1, []byte("abc"), []string{"abc"}},
		{"short scalar, one byte", DBRString, 1, []byte{0}, []string{""}},
		{"no NUL in 40 bytes", DBRString, 1, full, []string{string(full)}},
		{"garbage after NUL", DBRString, 1, garbage, []string{"ok"}},
		{"array", DBRString, 2, append(append([]byte{}, garbage...), full...), []string{"ok", string(full)}},
		{"time string", DBRTimeString, 1, append(make([]byte, 12), garbage...), []string{"ok"}},
		{"stsack string", DBRStsAckString, 1, append(hx("0001 0002 0003 0004"), garbage...), []string{"ok"}},
	}
	for _, tt := range tests {
		var d DBR
		if err := DecodeDBR(&d, tt.typ, tt.count, tt.payload); err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if !reflect.DeepEqual(d.Value.Strings, tt.want) {
			t.Errorf("%s: %q, want %q", tt.name, d.Value.Strings, tt.want)
		}
	}
	var d DBR
	if err := DecodeDBR(&d, DBRStsAckString, 1, append(hx("0001 0002 0003 0004"), garbage...)); err != nil ||
		d.Status != 1 || d.Severity != 2 || d.AckT != 3 || d.AckS != 4 {
		t.Errorf("STSACK_STRING header %+v, %v", d, err)
	}
	// Enum strings and units stop at their NUL; no_str above 16 is capped, and
	// entries at or above no_str are not returned.
	p := make([]byte, DBRGrEnum.Size(1))
	be.PutUint16(p[4:], 40)
	for i := range MaxEnumStates {
		copy(p[6+i*MaxEnumStringSize:], strings.Repeat(string(rune('a'+i)), MaxEnumStringSize))
	}
	copy(p[6:], "s0\x00junk")
	if err := DecodeDBR(&d, DBRGrEnum, 1, p); err != nil || len(d.Meta.EnumStrings) != MaxEnumStates ||
		d.Meta.EnumStrings[0] != "s0" || d.Meta.EnumStrings[15] != strings.Repeat("p", MaxEnumStringSize) {
		t.Errorf("GR_ENUM with no_str 40: %q, %v", d.Meta.EnumStrings, err)
	}
	be.PutUint16(p[4:], 1)
	if err := DecodeDBR(&d, DBRGrEnum, 1, p); err != nil || !reflect.DeepEqual(d.Meta.EnumStrings, []string{"s0"}) {
		t.Errorf("GR_ENUM with no_str 1: %q, %v", d.Meta.EnumStrings, err)
	}
	// The encoder caps the table at 16 entries and each entry at 25 characters.
	src := &DBR{Value: Value{Type: DBREnum, Enums: []uint16{0}}}
	for i := range 20 {
		src.Meta.EnumStrings = append(src.Meta.EnumStrings, strings.Repeat(string(rune('A'+i)), 30))
	}
	enc, err := AppendDBR(nil, DBRCtrlEnum, 1, src)
	if err != nil || be.Uint16(enc[4:]) != MaxEnumStates {
		t.Fatalf("CTRL_ENUM with 20 states: %x, %v", enc[:6], err)
	}
	if err := DecodeDBR(&d, DBRCtrlEnum, 1, enc); err != nil || len(d.Meta.EnumStrings) != 16 ||
		d.Meta.EnumStrings[15] != strings.Repeat("P", MaxEnumStringSize-1) {
		t.Errorf("CTRL_ENUM with 20 states decodes as %q, %v", d.Meta.EnumStrings, err)
	}
	// Long units and strings are truncated to leave room for the NUL.
	src = &DBR{Value: Value{Type: DBRString, Strings: []string{strings.Repeat("s", 50)}},
		Meta: Metadata{Units: "millivolt"}}
	enc, _ = AppendDBR(nil, DBRString, 1, src)
	if len(enc) != 40 || enc[39] != 0 || string(enc[:39]) != strings.Repeat("s", 39) {
		t.Errorf("a 50-byte string encodes as %q", enc)
	}
	src.Value = Value{Type: DBRDouble, Doubles: []float64{1}}
	enc, _ = AppendDBR(nil, DBRGrDouble, 1, src)
	if string(enc[8:16]) != "millivo\x00" {
		t.Errorf("units encode as %q", enc[8:16])
	}
	// Units that fill all 8 bytes without a NUL are read in full.
	for _, typ := range []DBRType{DBRGrShort, DBRGrFloat, DBRCtrlChar, DBRCtrlLong, DBRCtrlDouble} {
		p := make([]byte, typ.Size(1))
		at := 4
		if typ.Base() == DBRFloat || typ.Base() == DBRDouble {
			at = 8
		}
		copy(p[at:], "abcdefgh")
		if err := DecodeDBR(&d, typ, 1, p); err != nil || d.Meta.Units != "abcdefgh" {
			t.Errorf("%v: units %q, %v", typ, d.Meta.Units, err)
		}
	}
}

// TestDecodeDBRReuse checks that decoding into the same DBR reuses its slices
// and strings: repeated decoding of the same payloads allocates nothing.
func TestDecodeDBRReuse(t *testing.T) {
	payloads := []struct {
		typ   DBRType
		count int
		p     []byte
	}{
		{DBRTimeDouble, 1, hx(hAlarm + hStamp + "00000000 3ff8000000000000")},
		{DBRCtrlEnum, 1, hx(dbrGolden[DBRCtrlEnum].hex)},
		{DBRCtrlDouble, 1, hx(dbrGolden[DBRCtrlDouble].hex)},
		{DBRTimeString, 1, hx(dbrGolden[DBRTimeString].hex)},
		{DBRString, 2, hx(hHi40 + hHi40)},
		{DBRChar, 5, []byte("text\x00")},
	}
	for _, p := range payloads {
		var d DBR
		if err := DecodeDBR(&d, p.typ, p.count, p.p); err != nil {
			t.Fatal(err)
		}
		allocs := testing.AllocsPerRun(100, func() {
			if err := DecodeDBR(&d, p.typ, p.count, p.p); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%v: %v allocations per repeated decode", p.typ, allocs)
		}
	}
	// A decode of another type replaces the value; a shorter array shrinks it.
	var d DBR
	_ = DecodeDBR(&d, DBRDouble, 3, make([]byte, 24))
	_ = DecodeDBR(&d, DBRLong, 1, hx("00000007"))
	if d.Type != DBRLong || d.Value.Type != DBRLong || d.Value.Len() != 1 || d.Value.Longs[0] != 7 || len(d.Value.Doubles) != 0 {
		t.Errorf("after decoding a LONG: %+v", d)
	}
	// Decoding into a DBR that held a richer type leaves nothing of it behind:
	// the result equals a decode into a fresh DBR, for every pair of types.
	for prev := DBRString; prev <= MaxDBRType; prev++ {
		for typ := DBRString; typ <= MaxDBRType; typ++ {
			var fresh, reused DBR
			p := hx(dbrGolden[typ].hex)
			if err := DecodeDBR(&reused, prev, 1, hx(dbrGolden[prev].hex)); err != nil {
				t.Fatal(err)
			}
			if err := DecodeDBR(&reused, typ, 1, p); err != nil {
				t.Fatal(err)
			}
			_ = DecodeDBR(&fresh, typ, 1, p)
			if !dbrEqual(&reused, &fresh) {
				t.Errorf("%v after %v:\n%+v\nwant\n%+v", typ, prev, reused, fresh)
			}
		}
	}
}

// dbrEqual compares two DBRs field by field, treating nil and empty slices
// alike and NaNs by bits.
func dbrEqual(a, b *DBR) bool {
	if a.Type != b.Type || !valuesEqual(&a.Value, &b.Value) || a.Status != b.Status || a.Severity != b.Severity ||
		a.Stamp != b.Stamp || a.AckT != b.AckT || a.AckS != b.AckS {
		return false
	}
	ma, mb := a.Meta, b.Meta
	if len(ma.EnumStrings) != len(mb.EnumStrings) || ma.Units != mb.Units || ma.Precision != mb.Precision ||
		ma.ClassName != mb.ClassName {
		return false
	}
	for i := range ma.EnumStrings {
		if ma.EnumStrings[i] != mb.EnumStrings[i] {
			return false
		}
	}
	la, lb := ma.Limits, mb.Limits
	for i, x := range []float64{la.UpperDisp, la.LowerDisp, la.UpperAlarm, la.UpperWarning, la.LowerWarning, la.LowerAlarm, la.UpperCtrl, la.LowerCtrl} {
		y := []float64{lb.UpperDisp, lb.LowerDisp, lb.UpperAlarm, lb.UpperWarning, lb.LowerWarning, lb.LowerAlarm, lb.UpperCtrl, lb.LowerCtrl}[i]
		if math.Float64bits(x) != math.Float64bits(y) {
			return false
		}
	}
	return true
}

// TestAppendDBRAllocations checks that encoding into a buffer with room
// allocates nothing.
func TestAppendDBRAllocations(t *testing.T) {
	buf := make([]byte, 0, 4096)
	for typ := DBRString; typ <= MaxDBRType; typ++ {
		src := refDBR(refValues[typ.Base()])
		allocs := testing.AllocsPerRun(100, func() {
			var err error
			if _, err = AppendDBRMessage(buf[:0], CmdEventAdd, typ, 3, 1, 1, src); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%v: %v allocations", typ, allocs)
		}
	}
}

// TestAppendZeroDBRMessage checks the zeroed reply a server sends on failure.
func TestAppendZeroDBRMessage(t *testing.T) {
	got := AppendZeroDBRMessage(nil, CmdReadNotify, DBRTimeDouble, 1, uint32(ECANoRdAccess), 7)
	want := hx("000f 0018 0014 0001 00000170 00000007" + strings.Repeat("00", 24))
	if !bytes.Equal(got, want) {
		t.Errorf("got %x\nwant %x", got, want)
	}
	got = AppendZeroDBRMessage(nil, CmdEventAdd, DBRShort, 3, uint32(ECAGetFail), 7)
	if want := hx("0001 0008 0001 0003 00000098 00000007 0000000000000000"); !bytes.Equal(got, want) {
		t.Errorf("got %x\nwant %x", got, want)
	}
	got = AppendZeroDBRMessage(nil, CmdReadNotify, DBRDouble, 0x2000, uint32(ECAGetFail), 7)
	if h, n, _ := ParseHeader(got); n != ExtHeaderSize || h.PayloadSize != 0x10000 || len(got) != n+0x10000 || !allZero(got[n:]) {
		t.Errorf("8192 doubles: %+v, %d bytes", h, len(got))
	}
}

// TestTimestamp checks the EPICS epoch conversions.
func TestTimestamp(t *testing.T) {
	ts := Timestamp{Sec: 1164111287, Nsec: 924091466}
	if got := ts.Time().Format(time.RFC3339Nano); got != "2026-11-21T12:14:47.924091466Z" {
		t.Errorf("Time() = %s", got)
	}
	if TimestampOf(ts.Time()) != ts || TimestampOf(ts.Time().In(time.FixedZone("x", 3600))) != ts {
		t.Errorf("TimestampOf does not invert Time")
	}
	if got := (Timestamp{}).Time(); !got.Equal(time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC)) || !(Timestamp{}).IsZero() {
		t.Errorf("zero stamp is %v", got)
	}
	if got := TimestampOf(time.Date(1989, 12, 31, 23, 59, 59, 0, time.UTC)); got != (Timestamp{}) {
		t.Errorf("a time before the epoch gives %+v", got)
	}
	if (Timestamp{Nsec: 1}).IsZero() {
		t.Errorf("a stamp of 1 ns is zero")
	}
	if got := (Timestamp{Sec: 1, Nsec: 2e9}).Time(); got.Nanosecond() != 0 {
		t.Errorf("an out-of-range nsec gives %v", got)
	}
}

// TestValueHelpers checks Len, Clone and Truncate for every value type.
func TestValueHelpers(t *testing.T) {
	for typ, v := range refValues {
		c := v.Clone()
		if c.Len() != 1 || !valuesEqual(&c, &v) {
			t.Errorf("%v: Clone %+v", typ, c)
		}
		appendZeroElement(&c)
		if c.Len() != 2 || v.Len() != 1 {
			t.Errorf("%v: Clone shares its slice", typ)
		}
		c.Truncate(5)
		c.Truncate(-1)
		if c.Len() != 2 {
			t.Errorf("%v: Truncate beyond the length changed it", typ)
		}
		c.Truncate(0)
		if c.Len() != 0 || c.Type != typ {
			t.Errorf("%v: Truncate(0) left %d", typ, c.Len())
		}
	}
	if (&Value{Type: 9}).Len() != 0 {
		t.Errorf("Len of an invalid value type")
	}
}
