package relay

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pvhub/pvhub/ca/wire"
)

var t0 = time.Date(2024, 1, 2, 3, 4, 5, 600, time.UTC)

func newState(t testing.TB, full string) *State {
	t.Helper()
	n, ok := ParseName(DefaultPrefix, full)
	if !ok {
		t.Fatalf("%q is not a relay name", full)
	}
	return New(n)
}

func dbl(v ...float64) wire.Value   { return wire.Value{Type: wire.DBRDouble, Doubles: v} }
func lng(v ...int32) wire.Value     { return wire.Value{Type: wire.DBRLong, Longs: v} }
func short(v ...int16) wire.Value   { return wire.Value{Type: wire.DBRShort, Shorts: v} }
func str(v ...string) wire.Value    { return wire.Value{Type: wire.DBRString, Strings: v} }
func chars(s string) wire.Value     { return wire.Value{Type: wire.DBRChar, Chars: []byte(s)} }
func enum(v ...uint16) wire.Value   { return wire.Value{Type: wire.DBREnum, Enums: v} }
func float(v ...float32) wire.Value { return wire.Value{Type: wire.DBRFloat, Floats: v} }

// ecaOf returns the status carried by err, or 0.
func ecaOf(err error) wire.ECA {
	var eca wire.ECA
	if errors.As(err, &eca) {
		return eca
	}
	return 0
}

// sameBits compares float slices bit for bit (so NaN equals NaN and -0 is not +0).
func sameBits(a, b []float64) bool {
	return slices.EqualFunc(a, b, func(x, y float64) bool { return math.Float64bits(x) == math.Float64bits(y) })
}

func wantDoubles(t *testing.T, s *State, want ...float64) {
	t.Helper()
	v := s.Value()
	if v.Type != wire.DBRDouble || !sameBits(v.Doubles, want) {
		t.Errorf("%s = %v (%v), want %v", s.PVName(), v.Doubles, v.Type, want)
	}
}

func wantLongs(t *testing.T, s *State, want ...int32) {
	t.Helper()
	v := s.Value()
	if v.Type != wire.DBRLong || !slices.Equal(v.Longs, want) {
		t.Errorf("%s = %v (%v), want %v", s.PVName(), v.Longs, v.Type, want)
	}
}

func wantText(t *testing.T, s *State, want string) {
	t.Helper()
	v := s.Value()
	if v.Type != wire.DBRChar || string(v.Chars) != want {
		t.Errorf("%s = %q (%v), want %q", s.PVName(), v.Chars, v.Type, want)
	}
}

func wantAlarm(t *testing.T, s *State, st wire.AlarmStatus, sev wire.AlarmSeverity) {
	t.Helper()
	if gst, gsev := s.Alarm(); gst != st || gsev != sev {
		t.Errorf("%s alarm = %v/%v, want %v/%v", s.PVName(), gst, gsev, st, sev)
	}
}

func wantErr(t *testing.T, err error, eca wire.ECA, text ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %v", eca)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Errorf("error %v is a %T, not an *Error", err, err)
	}
	if got := ecaOf(err); got != eca {
		t.Errorf("error %q has status %v, want %v", err, got.Name(), eca.Name())
	}
	for _, s := range text {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
}

func mustPut(t *testing.T, s *State, v wire.Value) {
	t.Helper()
	if err := s.Put(v, t0); err != nil {
		t.Fatalf("Put(%v) to %s: %v", v, s.PVName(), err)
	}
}

func mustField(t *testing.T, s *State, f string, v wire.Value) {
	t.Helper()
	if err := s.PutField(f, v); err != nil {
		t.Fatalf("PutField(%s, %v) to %s: %v", f, v, s.PVName(), err)
	}
}

func TestNewState(t *testing.T) {
	for _, name := range []string{"RELAY:x_f1", "RELAY:x_i1", "RELAY:x_f10", "RELAY:x_F10", "RELAY:x_c40", "RELAY:x_C40"} {
		s := newState(t, name)
		if v := s.Value(); v.Len() != 0 || v.Type != s.NativeType() {
			t.Errorf("%s: new value %+v", name, v)
		}
		wantAlarm(t, s, wire.StatUDF, wire.SevInvalid)
		if !s.Stamp().IsZero() || s.Defined() || s.Len() != 0 {
			t.Errorf("%s: stamp %v, defined %v, len %d", name, s.Stamp(), s.Defined(), s.Len())
		}
		if s.Attributes() != (Attributes{}) || s.Description() != "" {
			t.Errorf("%s: attributes %+v", name, s.Attributes())
		}
		m := s.Metadata()
		if m.Units != "" || m.Precision != 0 || m.Limits.UpperDisp != 0 || m.Limits.UpperCtrl != 0 || !math.IsNaN(m.Limits.UpperAlarm) {
			t.Errorf("%s: metadata %+v", name, m)
		}
		if s.PVName() != name || s.Name().PVName() != name || s.Name().Base != "x" {
			t.Errorf("%s: PVName %q, Name %+v", name, s.PVName(), s.Name())
		}
	}
}

func TestNewFromFieldName(t *testing.T) {
	s := newState(t, "RELAY:a.b_I20.HIHI")
	if s.PVName() != "RELAY:a.b_I20" || s.Count() != 20 || !s.Buffer() || s.Kind() != Int {
		t.Errorf("state %q count %d buffer %v kind %v", s.PVName(), s.Count(), s.Buffer(), s.Kind())
	}
	if n := s.Name(); n.Field != "" || n.Base != "a.b" || n.Full != "RELAY:a.b_I20" {
		t.Errorf("Name() = %+v", n)
	}
	if sv := s.Save(); sv.Name != "a.b_I20" {
		t.Errorf("Save().Name = %q", sv.Name)
	}
}

func TestPutScalarFloat(t *testing.T) {
	s := newState(t, "RELAY:x_f1")
	mustPut(t, s, dbl(1.5))
	wantDoubles(t, s, 1.5)
	wantAlarm(t, s, wire.StatNoAlarm, wire.SevNoAlarm)
	if s.Stamp() != wire.TimestampOf(t0) || !s.Defined() {
		t.Errorf("stamp %v, want %v", s.Stamp(), wire.TimestampOf(t0))
	}
	// Any type converts.
	for _, tt := range []struct {
		v    wire.Value
		want float64
	}{
		{str("2.5"), 2.5}, {str(" 1e3 "), 1000}, {str("0x10"), 16}, {lng(-7), -7}, {short(3), 3},
		{float(0.25), 0.25}, {enum(2), 2}, {chars("A"), 65}, {dbl(math.Inf(-1)), math.Inf(-1)},
	} {
		mustPut(t, s, tt.v)
		wantDoubles(t, s, tt.want)
	}
	// Errors leave the value unchanged.
	later := t0.Add(time.Hour)
	err := s.Put(str("abc"), later)
	wantErr(t, err, wire.ECAPutFail, `"abc"`)
	var ce *wire.ConvertError
	if !errors.As(err, &ce) || ce.Text != "abc" {
		t.Errorf("the conversion error is not reachable: %v", err)
	}
	wantErr(t, s.Put(dbl(1, 2), later), wire.ECABadCount, "one element", "2")
	wantErr(t, s.Put(dbl(), later), wire.ECABadCount, "one element")
	wantErr(t, s.Put(wire.Value{Type: wire.DBRTimeDouble}, later), wire.ECAPutFail, "DBR_TIME_DOUBLE")
	wantDoubles(t, s, math.Inf(-1))
	if s.Stamp() != wire.TimestampOf(t0) {
		t.Errorf("a failed put changed the stamp to %v", s.Stamp())
	}
}

func TestPutScalarInt(t *testing.T) {
	s := newState(t, "RELAY:n_i1")
	for _, tt := range []struct {
		v    wire.Value
		want int32
	}{
		{lng(42), 42}, {dbl(3.7), 3}, {dbl(-3.7), -3}, {str("17"), 17}, {str("0x20"), 32}, {str("2.9"), 2},
		{dbl(3e9), math.MaxInt32}, {dbl(-3e9), math.MinInt32}, {chars("\xff"), 255}, {short(-1), -1},
	} {
		mustPut(t, s, tt.v)
		wantLongs(t, s, tt.want)
	}
	wantErr(t, s.Put(str("12abc"), t0), wire.ECAPutFail, "12abc")
	wantErr(t, s.Put(str("9999999999"), t0), wire.ECAPutFail, "9999999999")
	wantLongs(t, s, -1)
	if m := s.Metadata(); m.ClassName != "ao" {
		t.Errorf("class %q", m.ClassName)
	}
}

func TestPutArray(t *testing.T) {
	s := newState(t, "RELAY:wf_f3")
	mustPut(t, s, dbl(1, 2, 3))
	wantDoubles(t, s, 1, 2, 3)
	mustPut(t, s, dbl(4))
	wantDoubles(t, s, 4)
	mustPut(t, s, str("5", "6"))
	wantDoubles(t, s, 5, 6)
	wantErr(t, s.Put(dbl(1, 2, 3, 4), t0), wire.ECABadCount, "4 elements", "3")
	wantErr(t, s.Put(str("1", "x"), t0), wire.ECAPutFail, `"x"`, "element 1")
	wantDoubles(t, s, 5, 6)
	mustPut(t, s, dbl())
	wantDoubles(t, s)
	wantAlarm(t, s, wire.StatNoAlarm, wire.SevNoAlarm)
	if m := s.Metadata(); m.ClassName != "waveform" {
		t.Errorf("class %q", m.ClassName)
	}

	n := newState(t, "RELAY:wf_i4")
	mustPut(t, n, dbl(1.9, -2.9, 3e10))
	wantLongs(t, n, 1, -2, math.MaxInt32)
}

func TestPutArrayCapacity(t *testing.T) {
	s := newState(t, "RELAY:wf_f1000")
	mustPut(t, s, dbl(make([]float64, 1000)...))
	if cap(s.data) != 8000 {
		t.Errorf("cap %d", cap(s.data))
	}
	mustPut(t, s, dbl(1, 2))
	if cap(s.data) != 16 || s.Len() != 2 {
		t.Errorf("after shrinking: cap %d len %d", cap(s.data), s.Len())
	}
	mustPut(t, s, dbl(3))
	if cap(s.data) != 16 || s.Len() != 1 {
		t.Errorf("reuse: cap %d len %d", cap(s.data), s.Len())
	}
}

func TestPutBuffer(t *testing.T) {
	s := newState(t, "RELAY:p_F3")
	wantDoubles(t, s)
	mustPut(t, s, dbl(1)) // a scalar appends one (pcaspy dropped it)
	wantDoubles(t, s, 1)  // no spurious leading 0
	mustPut(t, s, str("2"))
	wantDoubles(t, s, 1, 2)
	mustPut(t, s, dbl(3, 4)) // overflow drops the oldest
	wantDoubles(t, s, 2, 3, 4)
	mustPut(t, s, lng(5))
	wantDoubles(t, s, 3, 4, 5)
	mustPut(t, s, dbl(6, 7, 8))
	wantDoubles(t, s, 6, 7, 8)
	wantErr(t, s.Put(dbl(1, 2, 3, 4), t0), wire.ECABadCount, "4 elements")
	wantErr(t, s.Put(str("9", "z"), t0), wire.ECAPutFail, `"z"`)
	wantDoubles(t, s, 6, 7, 8)
	mustPut(t, s, dbl()) // appends nothing
	wantDoubles(t, s, 6, 7, 8)

	n := newState(t, "RELAY:n_I2")
	mustPut(t, n, lng(1))
	mustPut(t, n, dbl(2.5))
	mustPut(t, n, lng(3))
	wantLongs(t, n, 2, 3)
	mustPut(t, n, lng(4, 5))
	wantLongs(t, n, 4, 5)
	if m := n.Metadata(); m.ClassName != "waveform" {
		t.Errorf("class %q", m.ClassName)
	}
}

func TestPutBufferArrayAppend(t *testing.T) {
	s := newState(t, "RELAY:p_F5")
	mustPut(t, s, dbl(1, 2, 3))
	wantDoubles(t, s, 1, 2, 3)
	mustPut(t, s, dbl(4, 5, 6))
	wantDoubles(t, s, 2, 3, 4, 5, 6)
	mustPut(t, s, dbl(7, 8, 9, 10, 11))
	wantDoubles(t, s, 7, 8, 9, 10, 11)
}

func TestPutBufferGrowth(t *testing.T) {
	s := newState(t, "RELAY:p_F1000")
	want := []float64{}
	for i := range 2500 {
		mustPut(t, s, dbl(float64(i)))
		want = append(want, float64(i))
		if len(want) > 1000 {
			want = want[1:]
		}
		if c := cap(s.data); c > 8000 {
			t.Fatalf("after %d appends the capacity is %d bytes, beyond the count", i+1, c)
		}
	}
	wantDoubles(t, s, want...)
	if cap(s.data) != 8000 {
		t.Errorf("a full buffer has capacity %d", cap(s.data))
	}
	// A small buffer starts small.
	b := newState(t, "RELAY:q_F100000")
	mustPut(t, b, dbl(1))
	if c := cap(b.data); c != minBufferCap*8 {
		t.Errorf("a buffer with one element has capacity %d bytes", c)
	}
}

func TestPutChar(t *testing.T) {
	s := newState(t, "RELAY:msg_c10")
	mustPut(t, s, str("hello"))
	wantText(t, s, "hello")
	wantAlarm(t, s, wire.StatNoAlarm, wire.SevNoAlarm)
	mustPut(t, s, chars("hi\x00junk")) // stops at the NUL (caput -S sends one)
	wantText(t, s, "hi")
	mustPut(t, s, chars("0123456789\x00")) // 10 bytes of text with its NUL
	wantText(t, s, "0123456789")
	mustPut(t, s, str("tempé°"))
	wantText(t, s, "tempé°")
	mustPut(t, s, lng(72, 105))
	wantText(t, s, "Hi")
	mustPut(t, s, dbl(65, 0, 66))
	wantText(t, s, "A")
	mustPut(t, s, str(""))
	wantText(t, s, "")
	mustPut(t, s, str("x"))
	wantErr(t, s.Put(str("0123456789A"), t0), wire.ECABadCount, "11 bytes", "10")
	wantErr(t, s.Put(chars("0123456789AB"), t0), wire.ECABadCount, "12 bytes")
	wantErr(t, s.Put(str("a", "b"), t0), wire.ECABadCount, "one string")
	wantErr(t, s.Put(lng(72, 300), t0), wire.ECAPutFail, "element 1", "300")
	wantErr(t, s.Put(lng(-1), t0), wire.ECAPutFail, "-1")
	wantErr(t, s.Put(dbl(65.5), t0), wire.ECAPutFail, "65.5")
	wantErr(t, s.Put(dbl(math.NaN()), t0), wire.ECAPutFail, "NaN")
	wantText(t, s, "x")
	// Char PVs have no value alarms, whatever the limits.
	mustField(t, s, "HIHI", dbl(0))
	mustField(t, s, "HHSV", str("MAJOR"))
	mustPut(t, s, str("zzz"))
	wantAlarm(t, s, wire.StatNoAlarm, wire.SevNoAlarm)
	m := s.Metadata()
	if m.ClassName != "waveform" || !math.IsNaN(m.Limits.UpperAlarm) {
		t.Errorf("metadata %+v", m)
	}

	one := newState(t, "RELAY:k_c1")
	mustPut(t, one, str("y"))
	wantText(t, one, "y")
	wantErr(t, one.Put(str("yz"), t0), wire.ECABadCount)
	if one.Metadata().ClassName != "waveform" {
		t.Error("a one-byte char PV is not a waveform")
	}
}

func TestPutCharBuffer(t *testing.T) {
	s := newState(t, "RELAY:log_C5")
	mustPut(t, s, str("ab"))
	wantText(t, s, "ab")
	mustPut(t, s, chars("cde\x00"))
	wantText(t, s, "abcde")
	mustPut(t, s, str("fg"))
	wantText(t, s, "cdefg")
	mustPut(t, s, chars("h"))
	wantText(t, s, "defgh")
	mustPut(t, s, lng(105))
	wantText(t, s, "efghi")
	wantErr(t, s.Put(str("123456"), t0), wire.ECABadCount, "6 bytes")
	wantText(t, s, "efghi")
	later := t0.Add(time.Second)
	if err := s.Put(str(""), later); err != nil {
		t.Fatal(err)
	}
	wantText(t, s, "efghi")
	if s.Stamp() != wire.TimestampOf(later) {
		t.Errorf("an empty append did not stamp")
	}
	mustPut(t, s, str("12345"))
	wantText(t, s, "12345")
}

func TestPutDriveLimits(t *testing.T) {
	s := newState(t, "RELAY:sp_f1")
	mustField(t, s, "DRVL", dbl(0))
	mustField(t, s, "DRVH", dbl(10))
	mustPut(t, s, dbl(10))
	mustPut(t, s, dbl(0))
	wantErr(t, s.Put(dbl(10.5), t0), wire.ECAPutFail, "10.5", "DRVL 0", "DRVH 10")
	wantErr(t, s.Put(str("-1"), t0), wire.ECAPutFail, "-1", "drive limits")
	mustPut(t, s, dbl(math.NaN())) // NaN passes, as in an ao record
	mustPut(t, s, dbl(5))
	wantDoubles(t, s, 5)

	// DRVH <= DRVL disables the check.
	mustField(t, s, "DRVH", dbl(0))
	mustPut(t, s, dbl(100))
	mustField(t, s, "DRVL", dbl(-5))
	mustField(t, s, "DRVH", dbl(-5))
	mustPut(t, s, dbl(-100))

	a := newState(t, "RELAY:sp_F4")
	mustField(t, a, "DRVL", dbl(-1))
	mustField(t, a, "DRVH", dbl(1))
	mustPut(t, a, dbl(0.5, -0.5))
	wantErr(t, a.Put(dbl(0, 2, 0), t0), wire.ECAPutFail, "element 1 (2)")
	wantDoubles(t, a, 0.5, -0.5)

	n := newState(t, "RELAY:sp_i1")
	mustField(t, n, "DRVL", str("1"))
	mustField(t, n, "DRVH", str("3"))
	mustPut(t, n, dbl(3.9)) // converts to 3 first
	wantErr(t, n.Put(lng(4), t0), wire.ECAPutFail, "4 is outside")
	wantLongs(t, n, 3)
}

func TestErrorsAs(t *testing.T) {
	s := newState(t, "RELAY:x_f2")
	err := s.Put(dbl(1, 2, 3), t0)
	if !errors.Is(err, wire.ECABadCount) || errors.Is(err, wire.ECAPutFail) {
		t.Errorf("errors.Is on %v", err)
	}
	var e *Error
	if !errors.As(err, &e) || e.Status != wire.ECABadCount || e.Err != nil {
		t.Errorf("errors.As *Error on %v: %+v", err, e)
	}
	err = s.Put(str("nope"), t0)
	if !errors.As(err, &e) || e.Status != wire.ECAPutFail || e.Err == nil || e.Error() != e.Text {
		t.Errorf("errors.As *Error on %v: %+v", err, e)
	}
}

func TestAlarm(t *testing.T) {
	const (
		none  = wire.SevNoAlarm
		minor = wire.SevMinor
		major = wire.SevMajor
		inv   = wire.SevInvalid
	)
	type lim struct {
		hihi, high, low, lolo float64
		hhsv, hsv, lsv, llsv  wire.AlarmSeverity
	}
	full := lim{10, 5, -5, -10, major, minor, minor, major}
	tests := []struct {
		name string
		l    lim
		v    float64
		st   wire.AlarmStatus
		sev  wire.AlarmSeverity
	}{
		{"normal", full, 0, wire.StatNoAlarm, none},
		{"below high", full, 4.999, wire.StatNoAlarm, none},
		{"high", full, 5, wire.StatHigh, minor},
		{"between high and hihi", full, 9.99, wire.StatHigh, minor},
		{"hihi", full, 10, wire.StatHiHi, major},
		{"above hihi", full, 1e300, wire.StatHiHi, major},
		{"+inf", full, math.Inf(1), wire.StatHiHi, major},
		{"above low", full, -4.999, wire.StatNoAlarm, none},
		{"low", full, -5, wire.StatLow, minor},
		{"lolo", full, -10, wire.StatLoLo, major},
		{"-inf", full, math.Inf(-1), wire.StatLoLo, major},
		{"NaN is UDF", full, math.NaN(), wire.StatUDF, inv},
		{"NaN without limits", lim{}, math.NaN(), wire.StatUDF, inv},
		{"hihi without severity falls to high", lim{10, 5, -5, -10, none, minor, minor, major}, 11, wire.StatHigh, minor},
		{"lolo without severity falls to low", lim{10, 5, -5, -10, major, minor, minor, none}, -11, wire.StatLow, minor},
		{"no severities", lim{10, 5, -5, -10, none, none, none, none}, 100, wire.StatNoAlarm, none},
		{"zero limits without severities", lim{}, 0, wire.StatNoAlarm, none},
		{"zero hihi with severity is checked", lim{hhsv: major}, 0, wire.StatHiHi, major},
		{"zero lolo with severity is checked", lim{llsv: minor}, 0, wire.StatLoLo, minor},
		{"zero high with severity", lim{hsv: minor}, 1, wire.StatHigh, minor},
		{"zero low with severity", lim{lsv: major}, -1, wire.StatLow, major},
		{"invalid severity", lim{hihi: 1, hhsv: inv}, 2, wire.StatHiHi, inv},
		{"hihi before lolo", lim{hhsv: major, llsv: minor}, 0, wire.StatHiHi, major},
		{"lolo before high", lim{high: 5, lolo: 10, hsv: minor, llsv: major}, 7, wire.StatLoLo, major},
		{"high before low", lim{high: 0, low: 0, hsv: minor, lsv: major}, 0, wire.StatHigh, minor},
		{"NaN limit never trips", lim{hihi: math.NaN(), lolo: math.NaN(), hhsv: major, llsv: major}, 0, wire.StatNoAlarm, none},
		{"minor hihi", lim{hihi: 1, hhsv: minor}, 1, wire.StatHiHi, minor},
		{"major high", lim{high: 1, hsv: major}, 1, wire.StatHigh, major},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newState(t, "RELAY:a_f1")
			a := &Attributes{HIHI: tt.l.hihi, HIGH: tt.l.high, LOW: tt.l.low, LOLO: tt.l.lolo,
				HHSV: tt.l.hhsv, HSV: tt.l.hsv, LSV: tt.l.lsv, LLSV: tt.l.llsv}
			s.attrs = a
			mustPut(t, s, dbl(tt.v))
			wantAlarm(t, s, tt.st, tt.sev)

			// The same through PutField, after the put.
			p := newState(t, "RELAY:a_f1")
			mustPut(t, p, dbl(tt.v))
			for _, f := range []struct {
				name string
				v    float64
			}{{"HIHI", tt.l.hihi}, {"HIGH", tt.l.high}, {"LOW", tt.l.low}, {"LOLO", tt.l.lolo}} {
				mustField(t, p, f.name, dbl(f.v))
			}
			for _, f := range []struct {
				name string
				v    wire.AlarmSeverity
			}{{"HHSV", tt.l.hhsv}, {"HSV", tt.l.hsv}, {"LSV", tt.l.lsv}, {"LLSV", tt.l.llsv}} {
				mustField(t, p, f.name, enum(uint16(f.v)))
			}
			wantAlarm(t, p, tt.st, tt.sev)

			// An integer PV with an integral value alarms alike.
			if tt.v == math.Trunc(tt.v) && math.Abs(tt.v) < 1e9 {
				n := newState(t, "RELAY:a_i1")
				n.attrs = a
				mustPut(t, n, dbl(tt.v))
				wantAlarm(t, n, tt.st, tt.sev)
			}
		})
	}
}

func TestAlarmArraysUseLastElement(t *testing.T) {
	for _, name := range []string{"RELAY:a_f4", "RELAY:a_F4", "RELAY:a_i4", "RELAY:a_I4"} {
		s := newState(t, name)
		mustField(t, s, "HIHI", dbl(10))
		mustField(t, s, "HHSV", str("MAJOR"))
		mustPut(t, s, dbl(100, 0))
		wantAlarm(t, s, wire.StatNoAlarm, wire.SevNoAlarm)
		mustPut(t, s, dbl(0, 100))
		wantAlarm(t, s, wire.StatHiHi, wire.SevMajor)
		if !s.Buffer() {
			mustPut(t, s, dbl())
			wantAlarm(t, s, wire.StatNoAlarm, wire.SevNoAlarm)
		}
	}
}

func TestAlarmRecomputedByPutField(t *testing.T) {
	s := newState(t, "RELAY:r_f1")
	mustField(t, s, "HIGH", dbl(5))
	mustField(t, s, "HSV", str("MINOR"))
	wantAlarm(t, s, wire.StatUDF, wire.SevInvalid) // never written
	mustPut(t, s, dbl(7))
	wantAlarm(t, s, wire.StatHigh, wire.SevMinor)
	mustField(t, s, "HIGH", dbl(8))
	wantAlarm(t, s, wire.StatNoAlarm, wire.SevNoAlarm)
	mustField(t, s, "HIHI", dbl(6))
	mustField(t, s, "HHSV", str("INVALID"))
	wantAlarm(t, s, wire.StatHiHi, wire.SevInvalid)
	mustField(t, s, "HHSV", str("NO_ALARM"))
	wantAlarm(t, s, wire.StatNoAlarm, wire.SevNoAlarm)
	if s.Stamp() != wire.TimestampOf(t0) {
		t.Error("PutField changed the stamp")
	}
}

func TestMetadata(t *testing.T) {
	s := newState(t, "RELAY:m_f1")
	for _, f := range []struct {
		field string
		v     wire.Value
	}{
		{"EGU", str("mm")}, {"PREC", short(3)}, {"DESC", str("a description")},
		{"HOPR", dbl(100)}, {"LOPR", dbl(-100)}, {"DRVH", dbl(50)}, {"DRVL", dbl(-50)},
		{"HIHI", dbl(40)}, {"HIGH", dbl(30)}, {"LOW", dbl(-30)}, {"LOLO", dbl(-40)},
		{"HHSV", str("MAJOR")}, {"LSV", str("MINOR")},
	} {
		mustField(t, s, f.field, f.v)
	}
	m := s.Metadata()
	l := m.Limits
	if m.Units != "mm" || m.Precision != 3 || m.ClassName != "ao" || len(m.EnumStrings) != 0 ||
		l.UpperDisp != 100 || l.LowerDisp != -100 || l.UpperCtrl != 50 || l.LowerCtrl != -50 ||
		l.UpperAlarm != 40 || !math.IsNaN(l.UpperWarning) || l.LowerWarning != -30 || !math.IsNaN(l.LowerAlarm) {
		t.Errorf("metadata %+v", m)
	}
	if s.Description() != "a description" {
		t.Errorf("description %q", s.Description())
	}
}

func TestFields(t *testing.T) {
	s := newState(t, "RELAY:f_f1")
	types := map[string]wire.DBRType{
		"": wire.DBRDouble, "VAL": wire.DBRDouble, "EGU": wire.DBRString, "DESC": wire.DBRString,
		"PREC": wire.DBRShort, "HOPR": wire.DBRDouble, "LOPR": wire.DBRDouble, "DRVH": wire.DBRDouble,
		"DRVL": wire.DBRDouble, "HIHI": wire.DBRDouble, "HIGH": wire.DBRDouble, "LOW": wire.DBRDouble,
		"LOLO": wire.DBRDouble, "HHSV": wire.DBREnum, "HSV": wire.DBREnum, "LSV": wire.DBREnum, "LLSV": wire.DBREnum,
		"XYZ": wire.DBRString,
	}
	for f, typ := range types {
		if got := s.FieldType(f); got != typ {
			t.Errorf("FieldType(%q) = %v, want %v", f, got, typ)
		}
		if f == "XYZ" {
			continue
		}
		v, err := s.Field(f)
		if err != nil || v.Type != typ {
			t.Errorf("Field(%q) = %+v, %v", f, v, err)
		}
		if f != "" && f != "VAL" && (v.Len() != 1 || s.FieldCount(f) != 1) {
			t.Errorf("Field(%q) has %d elements, FieldCount %d", f, v.Len(), s.FieldCount(f))
		}
		if states := s.FieldStates(f); (typ == wire.DBREnum) != (len(states) == 4) {
			t.Errorf("FieldStates(%q) = %v", f, states)
		}
	}
	if st := s.FieldStates("HHSV"); !slices.Equal(st, []string{"NO_ALARM", "MINOR", "MAJOR", "INVALID"}) {
		t.Errorf("states %v", st)
	}
	if c := newState(t, "RELAY:f_C7"); c.FieldType("VAL") != wire.DBRChar || c.FieldCount("") != 7 || c.FieldType("HIHI") != wire.DBRDouble {
		t.Error("char field types")
	}
	if _, err := s.Field("XYZ"); ecaOf(err) != wire.ECAGetFail {
		t.Errorf("Field(XYZ) = %v", err)
	}

	get := func(f string) wire.Value {
		t.Helper()
		v, err := s.Field(f)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	mustField(t, s, "EGU", str("°C"))
	if v := get("EGU"); v.Strings[0] != "°C" {
		t.Errorf("EGU %q", v.Strings)
	}
	mustField(t, s, "DESC", chars("from a char array\x00tail"))
	if v := get("DESC"); v.Strings[0] != "from a char array" {
		t.Errorf("DESC %q", v.Strings)
	}
	mustField(t, s, "DESC", str(strings.Repeat("d", MaxDESC)))
	mustField(t, s, "EGU", lng(5))
	if v := get("EGU"); v.Strings[0] != "5" {
		t.Errorf("EGU %q", v.Strings)
	}
	mustField(t, s, "PREC", str("4"))
	if v := get("PREC"); v.Shorts[0] != 4 {
		t.Errorf("PREC %v", v.Shorts)
	}
	mustField(t, s, "PREC", dbl(17))
	mustField(t, s, "HIHI", str("1e3"))
	if v := get("HIHI"); v.Doubles[0] != 1000 {
		t.Errorf("HIHI %v", v.Doubles)
	}
	mustField(t, s, "LOLO", dbl(math.NaN()))
	if v := get("LOLO"); !math.IsNaN(v.Doubles[0]) {
		t.Errorf("LOLO %v", v.Doubles)
	}
	for _, tt := range []struct {
		v    wire.Value
		want wire.AlarmSeverity
	}{
		{str("MINOR"), wire.SevMinor}, {str("major"), wire.SevMajor}, {str(" Invalid "), wire.SevInvalid},
		{str("no_alarm"), wire.SevNoAlarm}, {str("2"), wire.SevMajor}, {enum(1), wire.SevMinor},
		{short(3), wire.SevInvalid}, {dbl(0), wire.SevNoAlarm}, {lng(2), wire.SevMajor},
	} {
		mustField(t, s, "LSV", tt.v)
		if v := get("LSV"); v.Enums[0] != uint16(tt.want) {
			t.Errorf("LSV from %v = %v, want %v", tt.v, v.Enums, tt.want)
		}
	}

	// Errors leave the attributes unchanged.
	before := s.Attributes()
	for _, tt := range []struct {
		field string
		v     wire.Value
		eca   wire.ECA
		text  string
	}{
		{"XYZ", dbl(1), wire.ECAPutFail, "XYZ"},
		{"VAL", dbl(1), wire.ECAPutFail, "Put"},
		{"", dbl(1), wire.ECAPutFail, "Put"},
		{"HIHI", dbl(1, 2), wire.ECABadCount, "one element"},
		{"HIHI", dbl(), wire.ECABadCount, "one element"},
		{"HIHI", chars("12"), wire.ECABadCount, "one element"},
		{"HIHI", str("abc"), wire.ECAPutFail, `"abc"`},
		{"HIHI", wire.Value{Type: wire.DBRCtrlDouble}, wire.ECAPutFail, "DBR_CTRL_DOUBLE"},
		{"PREC", dbl(2.5), wire.ECAPutFail, "2.5"},
		{"PREC", dbl(18), wire.ECAPutFail, "18"},
		{"PREC", lng(-1), wire.ECAPutFail, "-1"},
		{"PREC", str("x"), wire.ECAPutFail, `"x"`},
		{"EGU", str("0123456789abcdef"), wire.ECAPutFail, "15 bytes"},
		{"EGU", str("\xb0C"), wire.ECAPutFail, "UTF-8"},
		{"EGU", str("a\tb"), wire.ECAPutFail, "control"},
		{"DESC", str(strings.Repeat("d", MaxDESC+1)), wire.ECAPutFail, "39 bytes"},
		{"DESC", str("a", "b"), wire.ECABadCount, "one element"},
		{"HHSV", str("BAD"), wire.ECAPutFail, `"BAD"`},
		{"HHSV", str("4"), wire.ECAPutFail, `"4"`},
		{"HHSV", lng(4), wire.ECAPutFail, "4"},
		{"HHSV", dbl(1.5), wire.ECAPutFail, "1.5"},
		{"HHSV", dbl(-1), wire.ECAPutFail, "-1"},
	} {
		wantErr(t, s.PutField(tt.field, tt.v), tt.eca, tt.text)
	}
	if after := s.Attributes(); after.EGU != before.EGU || after.LSV != before.LSV || after.PREC != before.PREC {
		t.Errorf("attributes changed by failed puts: %+v", after)
	}
}

func TestAttributesReleasedWhenZero(t *testing.T) {
	s := newState(t, "RELAY:z_f1")
	mustField(t, s, "EGU", str("V"))
	if s.attrs == nil {
		t.Fatal("no attributes after setting EGU")
	}
	mustField(t, s, "EGU", str(""))
	if s.attrs != nil {
		t.Errorf("attributes kept after clearing: %+v", *s.attrs)
	}
	mustField(t, s, "HOPR", dbl(math.Copysign(0, -1)))
	if s.attrs == nil || !math.Signbit(s.Attributes().HOPR) {
		t.Error("a -0 limit was dropped")
	}
}

func TestValueIsACopy(t *testing.T) {
	s := newState(t, "RELAY:c_F4")
	raw := dbl(1, 2)
	mustPut(t, s, raw)
	raw.Doubles[0] = 99
	v := s.Value()
	v.Doubles[1] = 98
	wantDoubles(t, s, 1, 2)
}
