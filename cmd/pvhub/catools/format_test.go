package catools

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/pvhub/pvhub/ca/wire"
)

// The expected lines in these tests were printed by caget, caput and
// camonitor of EPICS base 7.0.8 against a softIoc serving records of the
// same names (ao with PREC 3 and EGU mA, longout, stringin, mbbo with states
// Off/On/"Auto mode", DOUBLE, CHAR, LONG, STRING and FLOAT waveforms), in a
// process whose local time zone was UTC.

// stamp returns the EPICS time stamp of a UTC time written as the tools print
// it, with the microseconds as nanoseconds.
func stamp(t *testing.T, s string) wire.Timestamp {
	t.Helper()
	tm, err := time.ParseInLocation("2006-01-02 15:04:05.000000", s, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	return wire.TimestampOf(tm)
}

func doubles(t wire.DBRType, v ...float64) *wire.DBR {
	return &wire.DBR{Type: t, Value: wire.Value{Type: wire.DBRDouble, Doubles: v}}
}

func floats(t wire.DBRType, v ...float32) *wire.DBR {
	return &wire.DBR{Type: t, Value: wire.Value{Type: wire.DBRFloat, Floats: v}}
}

func longs(t wire.DBRType, v ...int32) *wire.DBR {
	return &wire.DBR{Type: t, Value: wire.Value{Type: wire.DBRLong, Longs: v}}
}

func shorts(t wire.DBRType, v ...int16) *wire.DBR {
	return &wire.DBR{Type: t, Value: wire.Value{Type: wire.DBRShort, Shorts: v}}
}

func strs(t wire.DBRType, v ...string) *wire.DBR {
	return &wire.DBR{Type: t, Value: wire.Value{Type: wire.DBRString, Strings: v}}
}

func enums(t wire.DBRType, states []string, v ...uint16) *wire.DBR {
	return &wire.DBR{Type: t, Value: wire.Value{Type: wire.DBREnum, Enums: v}, Meta: wire.Metadata{EnumStrings: states}}
}

// chars returns a CHAR DBR of n elements starting with text, NUL-filled.
func chars(t wire.DBRType, n int, text string) *wire.DBR {
	c := make([]uint8, n)
	copy(c, text)
	return &wire.DBR{Type: t, Value: wire.Value{Type: wire.DBRChar, Chars: c}}
}

// wf is the DOUBLE waveform T:wf after "caput -a T:wf 5 1 2.5 3.14159 -4 1e10".
func wf(t wire.DBRType, n int) *wire.DBR {
	return doubles(t, []float64{1, 2.5, 3.14159, -4, 1e10, 0, 0, 0, 0, 0}[:n]...)
}

var mbbStates = []string{"Off", "On", "Auto mode"}

func TestPlain(t *testing.T) {
	const zeros56 = " 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0"
	tests := []struct {
		name string
		f    Format
		pv   string
		d    *wire.DBR
		req  int
		want string
	}{
		{"double", Format{}, "T:ao", doubles(wire.DBRTimeDouble, 1.5), 0, "T:ao                           1.5"},
		{"double %g 6 digits", Format{}, "T:ao0", doubles(wire.DBRTimeDouble, 3.14159265358979), 0, "T:ao0                          3.14159"},
		{"large double", Format{}, "T:aobig", doubles(wire.DBRTimeDouble, 123456789.125), 0, "T:aobig                        1.23457e+08"},
		{"small double", Format{}, "T:aosmall", doubles(wire.DBRTimeDouble, 0.000012345), 0, "T:aosmall                      1.2345e-05"},
		{"long", Format{}, "T:long", longs(wire.DBRTimeLong, 42), 0, "T:long                         42"},
		{"string", Format{}, "T:str", strs(wire.DBRTimeString, "hello world"), 0, "T:str                          hello world"},
		{"empty string", Format{}, "T:strout", strs(wire.DBRTimeString, ""), 0, "T:strout                       "},
		{"escaped string", Format{}, "T:str", strs(wire.DBRTimeString, "a\"b\tc"), 0, `T:str                          a\"b\tc`},
		{"enum as string", Format{}, "T:mbb", strs(wire.DBRTimeString, "On"), 0, "T:mbb                          On"},
		{"enum -n", Format{EnumAsNumber: true}, "T:mbb", shorts(wire.DBRTimeShort, 1), 0, "T:mbb                          1"},
		{"menu field", Format{}, "T:ao.SCAN", strs(wire.DBRTimeString, "Passive"), 0, "T:ao.SCAN                      Passive"},
		{"uchar field", Format{}, "T:ao.UDF", chars(wire.DBRTimeChar, 1, ""), 0, "T:ao.UDF                       0"},
		{"double array", Format{}, "T:wf", wf(wire.DBRTimeDouble, 10), 0, "T:wf 10 1 2.5 3.14159 -4 1e+10 0 0 0 0 0"},
		{"char array", Format{}, "T:cwf", chars(wire.DBRTimeChar, 64, "hi there"), 0, "T:cwf 64 104 105 32 116 104 101 114 101" + zeros56},
		{"char array -S", Format{CharAsString: true}, "T:cwf", chars(wire.DBRTimeChar, 64, "hi there"), 0, "T:cwf hi there"},
		{"non-char array -S", Format{CharAsString: true}, "T:lwf", longs(wire.DBRTimeLong, 1, 2, 3, 0, 0, 0, 0, 0), 0, "T:lwf 8 1 2 3 0 0 0 0 0"},
		{"string array", Format{}, "T:swf", strs(wire.DBRTimeString, "ab", "c d", "", ""), 0, "T:swf 4 ab c d  "},
		{"float array", Format{}, "T:fwf", floats(wire.DBRTimeFloat, 1.5, 2.25, 0, 0), 0, "T:fwf 4 1.5 2.25 0 0"},
		{"-# 3 of an array", Format{}, "T:wf", wf(wire.DBRTimeDouble, 3), 3, "T:wf 3 1 2.5 3.14159"},
		{"-# 3 of a scalar", Format{}, "T:ao", doubles(wire.DBRTimeDouble, 1.5), 3, "T:ao                           1 1.5"},
		{"-# 1 of an array", Format{}, "T:wf", wf(wire.DBRTimeDouble, 1), 1, "T:wf                           1 1"},
		{"-# 3 of a char array", Format{}, "T:cwf", chars(wire.DBRTimeChar, 3, "hi "), 3, "T:cwf 3 104 105 32"},
		{"-# 3 -S", Format{CharAsString: true}, "T:cwf", chars(wire.DBRTimeChar, 3, "hi "), 3, "T:cwf hi "},
		{"-# 1 -S", Format{CharAsString: true}, "T:cwf", chars(wire.DBRTimeChar, 1, "h"), 1, "T:cwf                          h"},
		{"-c of an empty array", Format{}, "T:empty", doubles(wire.DBRTimeDouble), 0, "T:empty                        "},
		{"-c -S of an empty char array", Format{CharAsString: true}, "T:cempty", chars(wire.DBRTimeChar, 0, ""), 0, "T:cempty                       "},
		{"-e 3", Format{FloatVerb: 'e', FloatPrec: 3}, "T:ao", doubles(wire.DBRTimeDouble, 1.5), 0, "T:ao                           1.500e+00"},
		{"-e 3 array", Format{FloatVerb: 'e', FloatPrec: 3}, "T:wf", wf(wire.DBRTimeDouble, 10), 0,
			"T:wf 10 1.000e+00 2.500e+00 3.142e+00 -4.000e+00 1.000e+10 0.000e+00 0.000e+00 0.000e+00 0.000e+00 0.000e+00"},
		{"-f 2", Format{FloatVerb: 'f', FloatPrec: 2}, "T:ao", doubles(wire.DBRTimeDouble, 1.5), 0, "T:ao                           1.50"},
		{"-f 2 ties to even", Format{FloatVerb: 'f', FloatPrec: 2}, "T:aobig", doubles(wire.DBRTimeDouble, 123456789.125), 0, "T:aobig                        123456789.12"},
		{"-f 2 long", Format{FloatVerb: 'f', FloatPrec: 2}, "T:long", longs(wire.DBRTimeLong, 42), 0, "T:long                         42"},
		{"-g 10", Format{FloatVerb: 'g', FloatPrec: 10}, "T:ao0", doubles(wire.DBRTimeDouble, 3.14159265358979), 0, "T:ao0                          3.141592654"},
		{"-e 0", Format{FloatVerb: 'e', FloatPrec: 0}, "T:ao", doubles(wire.DBRTimeDouble, 16), 0, "T:ao                           2e+01"},
		{"-g 0", Format{FloatVerb: 'g', FloatPrec: 0}, "T:ao", doubles(wire.DBRTimeDouble, 16), 0, "T:ao                           2e+01"},
		{"-f 0", Format{FloatVerb: 'f', FloatPrec: 0}, "T:ao", doubles(wire.DBRTimeDouble, 16), 0, "T:ao                           16"},
		{"-0x", Format{IntBase: Hex}, "T:long", longs(wire.DBRTimeLong, 42), 0, "T:long                         0x2A"},
		{"-0x keeps doubles", Format{IntBase: Hex}, "T:ao", doubles(wire.DBRTimeDouble, 1.5), 0, "T:ao                           1.5"},
		{"-0x negative short", Format{IntBase: Hex}, "T:ao.PREC", shorts(wire.DBRTimeShort, -3), 0, "T:ao.PREC                      0xFFFFFFFD"},
		{"-0o negative short", Format{IntBase: Octal}, "T:ao.PREC", shorts(wire.DBRTimeShort, -3), 0, "T:ao.PREC                      0o37777777775"},
		{"-0b negative short", Format{IntBase: Binary}, "T:ao.PREC", shorts(wire.DBRTimeShort, -3), 0, "T:ao.PREC                      11111111111111111111111111111101"},
		{"-0b one", Format{IntBase: Binary}, "T:long", longs(wire.DBRTimeLong, 1), 0, "T:long                         1"},
		{"-lx", Format{FloatBase: Hex}, "T:ao", doubles(wire.DBRTimeDouble, 1.5), 0, "T:ao                           0x2"},
		{"-lb", Format{FloatBase: Binary}, "T:ao", doubles(wire.DBRTimeDouble, 16), 0, "T:ao                           10000"},
		{"-F,", Format{Separator: ','}, "T:ao", doubles(wire.DBRTimeDouble, 1.5), 0, "T:ao,1.5"},
		{"-F, array", Format{Separator: ','}, "T:wf", wf(wire.DBRTimeDouble, 10), 0, "T:wf,10,1,2.5,3.14159,-4,1e+10,0,0,0,0,0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.f.Plain(tc.pv, tc.d, tc.req); got != tc.want+"\n" {
				t.Errorf("got  %q\nwant %q", got, tc.want+"\n")
			}
		})
	}
}

func TestTerse(t *testing.T) {
	tests := []struct {
		f    Format
		d    *wire.DBR
		want string
	}{
		{Format{}, doubles(wire.DBRTimeDouble, 1.5), "1.5"},
		{Format{}, wf(wire.DBRTimeDouble, 10), "10 1 2.5 3.14159 -4 1e+10 0 0 0 0 0"},
		{Format{}, strs(wire.DBRTimeString, "hello world"), "hello world"},
		{Format{CharAsString: true}, chars(wire.DBRTimeChar, 64, "hi there"), "hi there"},
		{Format{EnumAsNumber: true}, shorts(wire.DBRTimeShort, 1), "1"},
	}
	for _, tc := range tests {
		if got := tc.f.Terse(tc.d, 0); got != tc.want+"\n" {
			t.Errorf("got %q, want %q", got, tc.want+"\n")
		}
	}
}

func TestWide(t *testing.T) {
	at := func(d *wire.DBR, s string) *wire.DBR {
		d.Stamp = stamp(t, s)
		return d
	}
	alarm := func(d *wire.DBR, st wire.AlarmStatus, sv wire.AlarmSeverity) *wire.DBR {
		d.Status, d.Severity = st, sv
		return d
	}
	utf := "h\xc3\xa9llo\n\x00"
	tests := []struct {
		name string
		f    Format
		pv   string
		d    *wire.DBR
		req  int
		want string
	}{
		{"caget -a scalar", Format{}, "T:ao", at(doubles(wire.DBRTimeDouble, 1.5), "2026-11-21 13:15:57.618243"), 0,
			"T:ao                           2026-11-21 13:15:57.618243 1.5  "},
		{"caget -a array", Format{}, "T:wf", at(wf(wire.DBRTimeDouble, 10), "2026-11-21 13:16:02.206837"), 0,
			"T:wf 2026-11-21 13:16:02.206837 10 1 2.5 3.14159 -4 1e+10 0 0 0 0 0  "},
		{"never processed", Format{}, "T:never", alarm(doubles(wire.DBRTimeDouble, 0), wire.StatUDF, wire.SevInvalid), 0,
			"T:never                        <undefined> 0 UDF INVALID"},
		{"minor alarm", Format{}, "T:ao", alarm(at(doubles(wire.DBRTimeDouble, 70), "2026-11-21 13:16:52.068697"), wire.StatHigh, wire.SevMinor), 0,
			"T:ao                           2026-11-21 13:16:52.068697 70 HIGH MINOR"},
		{"major alarm", Format{}, "T:ao", alarm(at(doubles(wire.DBRTimeDouble, 85), "2026-11-21 13:16:52.101181"), wire.StatHiHi, wire.SevMajor), 0,
			"T:ao                           2026-11-21 13:16:52.101181 85 HIHI MAJOR"},
		{"enum state", Format{}, "T:mbb", at(strs(wire.DBRTimeString, "Auto mode"), "2026-11-21 13:16:43.916083"), 0,
			"T:mbb                          2026-11-21 13:16:43.916083 Auto mode  "},
		{"signed chars", Format{}, "T:cwf", at(chars(wire.DBRTimeChar, 8, utf), "2026-11-21 13:16:43.696176"), 0,
			"T:cwf 2026-11-21 13:16:43.696176 8 104 -61 -87 108 108 111 10 0  "},
		{"-S escapes", Format{CharAsString: true}, "T:cwf", at(chars(wire.DBRTimeChar, 8, utf), "2026-11-21 13:16:43.696176"), 0,
			`T:cwf 2026-11-21 13:16:43.696176 h\xc3\xa9llo\n  `},
		{"-n -S -# 2 enum", Format{EnumAsNumber: true, CharAsString: true}, "T:mbb", at(shorts(wire.DBRTimeShort, 7), "2026-11-21 13:16:43.916083"), 2,
			"T:mbb                          2026-11-21 13:16:43.916083 1 7  "},
		{"-n -S -# 2 char array", Format{EnumAsNumber: true, CharAsString: true}, "T:cwf", at(chars(wire.DBRTimeChar, 2, utf), "2026-11-21 13:16:43.696176"), 2,
			`T:cwf 2026-11-21 13:16:43.696176 h\xc3  `},
		{"-S -# 2 cuts the text", Format{CharAsString: true}, "T:cwf", at(chars(wire.DBRTimeChar, 8, utf), "2026-11-21 13:16:43.696176"), 2,
			`T:cwf 2026-11-21 13:16:43.696176 h\xc3  `},
		{"-n -S -# 2 array", Format{EnumAsNumber: true, CharAsString: true}, "T:wf", at(doubles(wire.DBRTimeDouble, 1, 2), "2026-11-21 13:16:50.831552"), 2,
			"T:wf 2026-11-21 13:16:50.831552 2 1 2  "},
		{"-n -S -# 2 scalar", Format{EnumAsNumber: true, CharAsString: true}, "T:ao", at(doubles(wire.DBRTimeDouble, 1), "2026-11-21 13:16:52.133492"), 2,
			"T:ao                           2026-11-21 13:16:52.133492 1 1  "},
		{"string array", Format{}, "T:swf", at(strs(wire.DBRTimeString, "ab", "c d"), "2026-11-21 13:16:02.305094"), 0,
			"T:swf 2026-11-21 13:16:02.305094 2 ab c d  "},
		{"empty array", Format{}, "T:empty", alarm(doubles(wire.DBRTimeDouble), wire.StatUDF, wire.SevInvalid), 0,
			"T:empty                        <undefined> UDF INVALID"},
		{"empty char array -S", Format{CharAsString: true}, "T:cempty", alarm(chars(wire.DBRTimeChar, 0, ""), wire.StatUDF, wire.SevInvalid), 0,
			"T:cempty                       <undefined> UDF INVALID"},
		{"-F,", Format{Separator: ','}, "T:ao", at(doubles(wire.DBRTimeDouble, 1.5), "2026-11-21 13:15:57.618243"), 0,
			"T:ao,2026-11-21 13:15:57.618243,1.5,,"},
		{"unknown alarm codes", Format{}, "X", alarm(doubles(wire.DBRTimeDouble, 1), 99, 9), 0,
			"X                              <undefined> 1 ?? ??"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.f.Location = time.UTC
			if got := tc.f.Wide(tc.pv, tc.d, tc.req); got != tc.want+"\n" {
				t.Errorf("got  %q\nwant %q", got, tc.want+"\n")
			}
		})
	}
}

func TestMonitorStatusLines(t *testing.T) {
	f := Format{Location: time.UTC}
	if got, want := f.NotConnected("nope"), "nope                           *** Not connected (PV not found)\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	now := time.Date(2026, 11, 21, 13, 19, 15, 915116000, time.UTC)
	if got, want := f.Disconnected("T:ao", 1, now), "T:ao                           2026-11-21 13:19:15.915116 *** disconnected\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got, want := f.Disconnected("T:wf", 10, now), "T:wf 2026-11-21 13:19:15.915116 *** disconnected\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestFormatStamp(t *testing.T) {
	base := wire.TimestampOf(time.Date(2026, 11, 21, 13, 15, 57, 0, time.UTC))
	tests := []struct {
		nsec uint32
		loc  *time.Location
		want string
	}{
		{0, time.UTC, "2026-11-21 13:15:57.000000"},
		{499, time.UTC, "2026-11-21 13:15:57.000000"},
		{500, time.UTC, "2026-11-21 13:15:57.000001"},
		{618243000, time.UTC, "2026-11-21 13:15:57.618243"},
		{999999499, time.UTC, "2026-11-21 13:15:57.999999"},
		{999999600, time.UTC, "2026-11-21 13:15:57.999999"}, // rounded, never carried into the seconds
		{618243000, time.FixedZone("CET", 3600), "2026-11-21 14:15:57.618243"},
	}
	for _, tc := range tests {
		ts := base
		ts.Nsec = tc.nsec
		if got := FormatStamp(ts, tc.loc); got != tc.want {
			t.Errorf("nsec %d: got %q, want %q", tc.nsec, got, tc.want)
		}
	}
	if got := FormatStamp(wire.Timestamp{}, time.UTC); got != "<undefined>" {
		t.Errorf("zero stamp: %q", got)
	}
	if got := FormatStamp(wire.Timestamp{Nsec: 1}, time.UTC); got != "1990-01-01 00:00:00.000000" {
		t.Errorf("epoch: %q", got)
	}
}

func TestElement(t *testing.T) {
	ctrl := enums(wire.DBRCtrlEnum, mbbStates, 2, 7, 16)
	tests := []struct {
		f    Format
		d    *wire.DBR
		i    int
		want string
	}{
		{Format{}, ctrl, 0, "Auto mode"},
		{Format{}, ctrl, 1, "Enum Index Overflow (7)"},
		{Format{}, ctrl, 2, "Illegal Value (16)"},
		{Format{EnumAsNumber: true}, ctrl, 0, "2"},
		{Format{}, enums(wire.DBRTimeEnum, nil, 7), 0, "7"},
		{Format{}, enums(wire.DBRGrEnum, mbbStates, 1), 0, "On"},
		{Format{}, doubles(wire.DBRDouble, math.NaN()), 0, "nan"},
		{Format{}, doubles(wire.DBRDouble, math.Inf(-1)), 0, "-inf"},
		{Format{}, floats(wire.DBRFloat, 0.1), 0, "0.1"},
		{Format{FloatVerb: 'f', FloatPrec: 10}, floats(wire.DBRFloat, 0.1), 0, "0.1000000015"},
		{Format{FloatBase: Hex}, doubles(wire.DBRDouble, -1.5), 0, "0xFFFFFFFE"},
		{Format{FloatBase: Octal}, doubles(wire.DBRDouble, 8.49), 0, "0o10"},
		{Format{FloatBase: Binary}, doubles(wire.DBRDouble, 0), 0, "0"},
		{Format{}, chars(wire.DBRChar, 1, "\xff"), 0, "-1"},
		{Format{}, strs(wire.DBRString, "tab\there \\ 'q' \x01\x7f"), 0, `tab\there \\ \'q\' \x01\x7f`},
	}
	for _, tc := range tests {
		if got := tc.f.Element(tc.d, tc.i); got != tc.want {
			t.Errorf("%v element %d: got %q, want %q", tc.d.Type, tc.i, got, tc.want)
		}
	}
}

func TestBlock(t *testing.T) {
	f := Format{Location: time.UTC}
	ao := doubles(wire.DBRCtrlDouble, 70)
	ao.Status, ao.Severity = wire.StatHigh, wire.SevMinor
	ao.Meta = wire.Metadata{Units: "mA", Precision: 3, Limits: wire.Limits{
		UpperDisp: 100, LowerDisp: -100, UpperAlarm: 80, UpperWarning: 60, LowerWarning: -60, LowerAlarm: -80, UpperCtrl: 90, LowerCtrl: -90}}
	grAo := *ao
	grAo.Type = wire.DBRGrDouble
	timeAo := doubles(wire.DBRTimeDouble, 70)
	timeAo.Status, timeAo.Severity, timeAo.Stamp = wire.StatHigh, wire.SevMinor, stamp(t, "2026-11-21 13:17:14.443767")
	stsAo := doubles(wire.DBRStsDouble, 70)
	stsAo.Status, stsAo.Severity = wire.StatHigh, wire.SevMinor
	long := longs(wire.DBRCtrlLong, 42)
	long.Meta.Units = "cts"
	grChar := chars(wire.DBRGrChar, 1, "*") // a LONG of 42 read as CHAR
	grChar.Meta.Units = "cts"
	mbb := enums(wire.DBRCtrlEnum, mbbStates, 7)
	timeMbb := enums(wire.DBRTimeEnum, nil, 7)
	timeMbb.Stamp = stamp(t, "2026-11-21 13:16:43.916083")
	ack := strs(wire.DBRStsAckString, "70.000")
	ack.Status, ack.Severity, ack.AckT, ack.AckS = wire.StatHigh, wire.SevMinor, 1, uint16(wire.SevMajor)
	class := strs(wire.DBRClassName, "ao")
	class.Meta.ClassName = "ao"
	nan := math.NaN()
	wfCtrl := doubles(wire.DBRCtrlDouble, 1, 2, 3, 0, 0, 0, 0, 0, 0, 0)
	wfCtrl.Meta = wire.Metadata{Precision: 2, Limits: wire.Limits{UpperAlarm: nan, UpperWarning: nan, LowerWarning: nan, LowerAlarm: nan}}
	cwf := chars(wire.DBRCtrlChar, 64, "h\xc3\xa9llo\n")
	prec := shorts(wire.DBRCtrlShort, 3)
	prec.Meta.Limits = wire.Limits{LowerDisp: -32768, UpperDisp: 32767, LowerCtrl: -32768, UpperCtrl: 32767}

	const aoHead = "T:ao\n    Native data type: DBF_DOUBLE\n"
	const limits = `    Lo disp limit:    -100
    Hi disp limit:    100
    Lo alarm limit:   -80
    Lo warn limit:    -60
    Hi warn limit:    60
    Hi alarm limit:   80
`
	const intLimits = `    Lo disp limit:           0
    Hi disp limit:           0
    Lo alarm limit:          0
    Lo warn limit:           0
    Hi warn limit:           0
    Hi alarm limit:          0
`
	tests := []struct {
		name   string
		f      Format
		pv     string
		native wire.DBRType
		d      *wire.DBR
		want   string
	}{
		{"CTRL_DOUBLE", f, "T:ao", wire.DBRDouble, ao, aoHead + `    Request type:     DBR_CTRL_DOUBLE
    Element count:    1
    Value:            70
    Status:           HIGH
    Severity:         MINOR
    Units:            mA
    Precision:        3
` + limits + `    Lo ctrl limit:    -90
    Hi ctrl limit:    90
`},
		{"GR_DOUBLE", f, "T:ao", wire.DBRDouble, &grAo, aoHead + `    Request type:     DBR_GR_DOUBLE
    Element count:    1
    Value:            70
    Status:           HIGH
    Severity:         MINOR
    Units:            mA
    Precision:        3
` + limits},
		{"TIME_DOUBLE", f, "T:ao", wire.DBRDouble, timeAo, aoHead + `    Request type:     DBR_TIME_DOUBLE
    Element count:    1
    Value:            70
    Timestamp:        2026-11-21 13:17:14.443767
    Status:           HIGH
    Severity:         MINOR
`},
		{"STS_DOUBLE", f, "T:ao", wire.DBRDouble, stsAo, aoHead + `    Request type:     DBR_STS_DOUBLE
    Element count:    1
    Value:            70
    Status:           HIGH
    Severity:         MINOR
`},
		{"DOUBLE", f, "T:ao", wire.DBRDouble, doubles(wire.DBRDouble, 70), aoHead + `    Request type:     DBR_DOUBLE
    Element count:    1
    Value:            70
`},
		{"CTRL_LONG", f, "T:long", wire.DBRLong, long, `T:long
    Native data type: DBF_LONG
    Request type:     DBR_CTRL_LONG
    Element count:    1
    Value:            42
    Status:           NO_ALARM
    Severity:         NO_ALARM
    Units:            cts
` + intLimits + `    Lo ctrl limit:           0
    Hi ctrl limit:           0
`},
		{"GR_CHAR of a LONG", f, "T:long", wire.DBRLong, grChar, `T:long
    Native data type: DBF_LONG
    Request type:     DBR_GR_CHAR
    Element count:    1
    Value:            42
    Status:           NO_ALARM
    Severity:         NO_ALARM
    Units:            cts
` + intLimits},
		{"CTRL_ENUM", f, "T:mbb", wire.DBREnum, mbb, `T:mbb
    Native data type: DBF_ENUM
    Request type:     DBR_CTRL_ENUM
    Element count:    1
    Value:            Enum Index Overflow (7)
    Status:           NO_ALARM
    Severity:         NO_ALARM
    Enums:            ( 3)
                      [ 0] Off
                      [ 1] On
                      [ 2] Auto mode
`},
		{"TIME_ENUM", f, "T:mbb", wire.DBREnum, timeMbb, `T:mbb
    Native data type: DBF_ENUM
    Request type:     DBR_TIME_ENUM
    Element count:    1
    Value:            7
    Timestamp:        2026-11-21 13:16:43.916083
    Status:           NO_ALARM
    Severity:         NO_ALARM
`},
		{"CTRL_STRING", f, "T:str", wire.DBRString, strs(wire.DBRCtrlString, "a b c"), `T:str
    Native data type: DBF_STRING
    Request type:     DBR_CTRL_STRING
    Element count:    1
    Value:            a b c
    Status:           NO_ALARM
    Severity:         NO_ALARM
`},
		{"STSACK_STRING", f, "T:ao", wire.DBRDouble, ack, aoHead + `    Request type:     DBR_STSACK_STRING
    Element count:    1
    Value:            70.000
    Status:           HIGH
    Severity:         MINOR
    Ack transient?:   YES
    Ack severity:     MAJOR
`},
		{"CLASS_NAME", f, "T:ao", wire.DBRDouble, class, aoHead + `    Request type:     DBR_CLASS_NAME
    Class Name:       ao
`},
		{"CTRL_DOUBLE array with NaN limits", f, "T:wf", wire.DBRDouble, wfCtrl, `T:wf
    Native data type: DBF_DOUBLE
    Request type:     DBR_CTRL_DOUBLE
    Element count:    10
    Value:            1 2 3 0 0 0 0 0 0 0
    Status:           NO_ALARM
    Severity:         NO_ALARM
    Units:            
    Precision:        2
    Lo disp limit:    0
    Hi disp limit:    0
    Lo alarm limit:   nan
    Lo warn limit:    nan
    Hi warn limit:    nan
    Hi alarm limit:   nan
    Lo ctrl limit:    0
    Hi ctrl limit:    0
`},
		{"CTRL_CHAR -S", Format{CharAsString: true}, "T:cwf", wire.DBRChar, cwf, `T:cwf
    Native data type: DBF_CHAR
    Request type:     DBR_CTRL_CHAR
    Element count:    64
    Value:            h\xc3\xa9llo\n
    Status:           NO_ALARM
    Severity:         NO_ALARM
    Units:            
` + intLimits + `    Lo ctrl limit:           0
    Hi ctrl limit:           0
`},
		{"CTRL_SHORT", f, "T:ao.PREC", wire.DBRShort, prec, `T:ao.PREC
    Native data type: DBF_SHORT
    Request type:     DBR_CTRL_SHORT
    Element count:    1
    Value:            3
    Status:           NO_ALARM
    Severity:         NO_ALARM
    Units:            
    Lo disp limit:      -32768
    Hi disp limit:       32767
    Lo alarm limit:          0
    Lo warn limit:           0
    Hi warn limit:           0
    Hi alarm limit:          0
    Lo ctrl limit:      -32768
    Hi ctrl limit:       32767
`},
		{"STRING of a DOUBLE", f, "T:ao", wire.DBRDouble, strs(wire.DBRString, "70.000"), aoHead + `    Request type:     DBR_STRING
    Element count:    1
    Value:            70.000
`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.f.Block(tc.pv, tc.native, tc.d, 0); got != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tc.want)
				gl, wl := strings.Split(got, "\n"), strings.Split(tc.want, "\n")
				for i := range min(len(gl), len(wl)) {
					if gl[i] != wl[i] {
						t.Errorf("first difference, line %d: %q vs %q", i+1, gl[i], wl[i])
						break
					}
				}
			}
		})
	}
}

func TestInfo(t *testing.T) {
	in := Info{Name: "T:ro", State: StateConnected, Host: "localhost:27311", Read: true, Native: wire.DBRDouble, Count: 1}
	want := `T:ro
    State:            connected
    Host:             localhost:27311
    Access:           read, no write
    Native data type: DBF_DOUBLE
    Request type:     DBR_DOUBLE
    Element count:    1
`
	if got := in.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	in = Info{Name: "T:cwf", State: StateConnected, Host: "localhost:27311", Read: true, Write: true, Native: wire.DBRChar, Count: 64}
	want = `T:cwf
    State:            connected
    Host:             localhost:27311
    Access:           read, write
    Native data type: DBF_CHAR
    Request type:     DBR_CHAR
    Element count:    64
`
	if got := in.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestEscape(t *testing.T) {
	tests := []struct{ raw, esc string }{
		{"plain text", "plain text"},
		{"a\"b\tc", `a\"b\tc`},
		{"h\xc3\xa9llo\n", `h\xc3\xa9llo\n`},
		{"\a\b\f\r\v\\'\x00", `\a\b\f\r\v\\\'\0`},
	}
	for _, tc := range tests {
		if got := Escape(tc.raw); got != tc.esc {
			t.Errorf("Escape(%q) = %q, want %q", tc.raw, got, tc.esc)
		}
		if got := string(Unescape(tc.esc)); got != tc.raw {
			t.Errorf("Unescape(%q) = %q, want %q", tc.esc, got, tc.raw)
		}
	}
	for in, want := range map[string]string{
		`\x41\x4`:  "A\x04",
		`\x4g`:     "\x04g",
		`\xg`:      "g",
		`\q`:       "q",
		`end\`:     "end",
		`\x414`:    "A4",
		`\xFF\xfe`: "\xff\xfe",
	} {
		if got := string(Unescape(in)); got != want {
			t.Errorf("Unescape(%q) = %q, want %q", in, got, want)
		}
	}
}
