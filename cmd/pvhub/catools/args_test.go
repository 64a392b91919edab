package catools

import (
	"bytes"
	"errors"
	"flag"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pvhub/pvhub/ca/wire"
)

// env returns a LookupEnv over a map.
func env(kv ...string) LookupEnv {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestParseGet(t *testing.T) {
	tests := []struct {
		args []string
		want GetOptions
	}{
		{[]string{"A"}, GetOptions{Timeout: time.Second, PVs: []string{"A"}}},
		{[]string{"-w", "2.5", "-t", "A", "B"}, GetOptions{Timeout: 2500 * time.Millisecond, Mode: GetTerse, PVs: []string{"A", "B"}}},
		{[]string{"-w0.5", "A"}, GetOptions{Timeout: 500 * time.Millisecond, PVs: []string{"A"}}},
		{[]string{"A", "-a"}, GetOptions{Timeout: time.Second, Mode: GetWide, PVs: []string{"A"}}},
		{[]string{"-d", "CTRL_DOUBLE", "A"}, GetOptions{Timeout: time.Second, Mode: GetDBR, Type: wire.DBRCtrlDouble, PVs: []string{"A"}}},
		{[]string{"-dDBR_TIME_ENUM", "A"}, GetOptions{Timeout: time.Second, Mode: GetDBR, Type: wire.DBRTimeEnum, PVs: []string{"A"}}},
		{[]string{"-d", "38", "A"}, GetOptions{Timeout: time.Second, Mode: GetDBR, Type: wire.DBRClassName, PVs: []string{"A"}}},
		{[]string{"-nSc", "-#", "3", "A"}, GetOptions{Timeout: time.Second, Current: true, Count: 3,
			Format: Format{EnumAsNumber: true, CharAsString: true}, PVs: []string{"A"}}},
		{[]string{"-f3", "A"}, GetOptions{Timeout: time.Second, Format: Format{FloatVerb: 'f', FloatPrec: 3}, PVs: []string{"A"}}},
		{[]string{"-e", "2", "-g", "10", "A"}, GetOptions{Timeout: time.Second, Format: Format{FloatVerb: 'g', FloatPrec: 10}, PVs: []string{"A"}}},
		{[]string{"-0x", "-lb", "-F,", "-s", "A"}, GetOptions{Timeout: time.Second, FloatAsString: true,
			Format: Format{IntBase: Hex, FloatBase: Binary, Separator: ','}, PVs: []string{"A"}}},
		{[]string{"--", "-A"}, GetOptions{Timeout: time.Second, PVs: []string{"-A"}}},
		{[]string{"-w", "0", "A"}, GetOptions{PVs: []string{"A"}}},
	}
	for _, tc := range tests {
		got, err := ParseGet(tc.args, env())
		if err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		if !reflect.DeepEqual(*got, tc.want) {
			t.Errorf("%q:\ngot  %+v\nwant %+v", tc.args, *got, tc.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	parsers := map[string]func([]string, LookupEnv) error{
		"get":     func(a []string, e LookupEnv) error { _, err := ParseGet(a, e); return err },
		"put":     func(a []string, e LookupEnv) error { _, err := ParsePut(a, e); return err },
		"monitor": func(a []string, e LookupEnv) error { _, err := ParseMonitor(a, e); return err },
		"info":    func(a []string, e LookupEnv) error { _, err := ParseInfo(a, e); return err },
	}
	tests := []struct {
		tool string
		args []string
		want string
	}{
		{"get", nil, "no PV name given"},
		{"get", []string{"-x", "A"}, "unknown option -x"},
		{"get", []string{"--frob", "A"}, "unknown option --frob"},
		{"get", []string{"A", "-w"}, "option -w needs an argument"},
		{"get", []string{"-w", "abc", "A"}, `invalid value "abc" for option -w: not a number of seconds`},
		{"get", []string{"-w", "-1", "A"}, `invalid value "-1" for option -w: not a number of seconds`},
		{"get", []string{"-d", "FOO", "A"}, `invalid value "FOO" for option -d: unknown DBR type "FOO"`},
		{"get", []string{"-d", "PUT_ACKT", "A"}, `invalid value "PUT_ACKT" for option -d: DBR_PUT_ACKT cannot be read`},
		{"get", []string{"-#", "abc", "A"}, `invalid value "abc" for option -#: not an element count`},
		{"get", []string{"-f", "19", "A"}, `invalid value "19" for option -f: not a number of digits from 0 to 18`},
		{"get", []string{"-0q", "A"}, `invalid value "q" for option -0: not x, o or b`},
		{"get", []string{"-F", "ab", "A"}, `invalid value "ab" for option -F: not a single character`},
		{"get", []string{"-t", "-a", "A"}, "options -t, -a and -d exclude each other"},
		{"get", []string{"-a", "-d", "DOUBLE", "A"}, "options -t, -a and -d exclude each other"},
		{"put", nil, "no PV name given"},
		{"put", []string{"A"}, "no value given for A"},
		{"put", []string{"-a", "A", "3"}, "-a: no values after the count"},
		{"put", []string{"-a", "-S", "A", "x"}, "options -a and -S exclude each other"},
		{"put", []string{"-n", "-s", "A", "x"}, "options -n and -s exclude each other"},
		{"put", []string{"-t", "-l", "A", "x"}, "options -t and -l exclude each other"},
		{"put", []string{"-d", "A", "x"}, "unknown option -d"},
		{"monitor", nil, "no PV name given"},
		{"monitor", []string{"-m", "vq", "A"}, `invalid value "vq" for option -m: not a combination of v, a, l and p`},
		{"monitor", []string{"-t", "A"}, "unknown option -t"},
		{"info", []string{"-a", "A"}, "unknown option -a"},
		{"info", nil, "no PV name given"},
	}
	for _, tc := range tests {
		err := parsers[tc.tool](tc.args, env())
		var ue *UsageError
		if !errors.As(err, &ue) || ue.Msg != tc.want {
			t.Errorf("%s %q: got %v, want %q", tc.tool, tc.args, err, tc.want)
		}
	}
	for tool, parse := range parsers {
		for _, h := range []string{"-h", "-help", "--help", "-nh"} {
			if tool == "info" && h == "-nh" {
				continue
			}
			if err := parse([]string{h, "A", "1"}, env()); !errors.Is(err, flag.ErrHelp) {
				t.Errorf("%s %s: %v", tool, h, err)
			}
		}
	}
}

func TestReportUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := ReportUsage(flag.ErrHelp, "pvhub get", GetUsage, &out, &errb); code != ExitOK || out.String() != GetUsage || errb.Len() != 0 {
		t.Errorf("help: %d %q %q", code, out.String(), errb.String())
	}
	out.Reset()
	_, err := ParseGet([]string{"-x"}, nil)
	if code := ReportUsage(err, "pvhub get", GetUsage, &out, &errb); code != ExitUsage || out.Len() != 0 ||
		!strings.HasPrefix(errb.String(), "pvhub get: unknown option -x\n\nUsage: pvhub get [options] PV...\n") {
		t.Errorf("usage error: %d %q %q", code, out.String(), errb.String())
	}
}

func TestTimeoutFromEnvironment(t *testing.T) {
	o, err := ParseInfo([]string{"A"}, env("EPICS_CLI_TIMEOUT", "3.5"))
	if err != nil || o.Timeout != 3500*time.Millisecond || len(o.Warnings) != 0 {
		t.Errorf("EPICS_CLI_TIMEOUT=3.5: %+v %v", o, err)
	}
	o, err = ParseInfo([]string{"-w", "2", "A"}, env("EPICS_CLI_TIMEOUT", "3.5"))
	if err != nil || o.Timeout != 2*time.Second {
		t.Errorf("-w overrides EPICS_CLI_TIMEOUT: %+v %v", o, err)
	}
	o, err = ParseInfo([]string{"A"}, env("EPICS_CLI_TIMEOUT", "soon"))
	if err != nil || o.Timeout != time.Second || len(o.Warnings) != 1 ||
		o.Warnings[0] != `EPICS_CLI_TIMEOUT="soon" is not a number of seconds; using 1.0 s` {
		t.Errorf("bad EPICS_CLI_TIMEOUT: %+v %v", o, err)
	}
}

func TestParsePutAndMonitor(t *testing.T) {
	p, err := ParsePut([]string{"-c", "-w", "2", "-l", "-n", "T:ao", "-5", "-x"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := PutOptions{Format: Format{EnumAsNumber: true}, Mode: PutWide, Wait: true, Text: EnumIndex,
		Timeout: 2 * time.Second, PV: "T:ao", Values: []string{"-5", "-x"}}
	if !reflect.DeepEqual(*p, want) {
		t.Errorf("put:\ngot  %+v\nwant %+v", *p, want)
	}
	p, err = ParsePut([]string{"-tS", "T:cwf", "hello", "world"}, nil)
	if err != nil || p.Mode != PutTerse || !p.Format.CharAsString || p.PV != "T:cwf" || len(p.Values) != 2 {
		t.Errorf("put -tS: %+v %v", p, err)
	}
	p, err = ParsePut([]string{"-s", "-a", "T:wf", "2", "1", "2"}, nil)
	if err != nil || !p.Array || p.Text != EnumString || p.Format.EnumAsNumber {
		t.Errorf("put -s -a: %+v %v", p, err)
	}
	m, err := ParseMonitor([]string{"-m", "vap", "T:ao", "-#", "4", "-S", "T:wf"}, nil)
	if err != nil || m.Mask != wire.DBEValue|wire.DBEAlarm|wire.DBEProperty || m.Count != 4 || !m.Format.CharAsString ||
		!reflect.DeepEqual(m.PVs, []string{"T:ao", "T:wf"}) {
		t.Errorf("monitor: %+v %v", m, err)
	}
	m, err = ParseMonitor([]string{"T:ao"}, nil)
	if err != nil || m.Mask != wire.DBEValue|wire.DBEAlarm || m.Timeout != time.Second {
		t.Errorf("monitor defaults: %+v %v", m, err)
	}
}

func TestRequestTypeAndCount(t *testing.T) {
	get := func(args ...string) *GetOptions {
		o, err := ParseGet(append(args, "A"), nil)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	tests := []struct {
		o      *GetOptions
		native wire.DBRType
		want   wire.DBRType
	}{
		{get(), wire.DBRDouble, wire.DBRTimeDouble},
		{get(), wire.DBREnum, wire.DBRTimeString},
		{get("-n"), wire.DBREnum, wire.DBRTimeShort},
		{get("-s"), wire.DBRFloat, wire.DBRTimeString},
		{get("-s"), wire.DBRLong, wire.DBRTimeLong},
		{get("-t"), wire.DBRChar, wire.DBRTimeChar},
		{get("-d", "GR_ENUM"), wire.DBRDouble, wire.DBRGrEnum},
	}
	for _, tc := range tests {
		if got := tc.o.RequestType(tc.native); got != tc.want {
			t.Errorf("%+v %v: got %v, want %v", tc.o, tc.native, got, tc.want)
		}
	}
	for _, tc := range []struct {
		o            *GetOptions
		count, wantN int
	}{
		{get(), 10, 10},
		{get("-#", "3"), 10, 3},
		{get("-#", "30"), 10, 10},
		{get("-c"), 10, 0},
		{get("-c", "-#", "3"), 10, 3},
		{get("-c", "-#", "3"), 1, 1},
	} {
		if got := tc.o.RequestCount(tc.count); got != tc.wantN {
			t.Errorf("%+v count %d: got %d, want %d", tc.o, tc.count, got, tc.wantN)
		}
	}
	m, _ := ParseMonitor([]string{"-#", "3", "A"}, nil)
	if m.RequestCount(10) != 3 || m.RequestCount(1) != 1 || m.RequestType(wire.DBREnum) != wire.DBRTimeString {
		t.Errorf("monitor request: %d %d %v", m.RequestCount(10), m.RequestCount(1), m.RequestType(wire.DBREnum))
	}
	m, _ = ParseMonitor([]string{"A"}, nil)
	if m.RequestCount(10) != 0 {
		t.Errorf("monitor default count: %d", m.RequestCount(10))
	}
}

func TestPutLines(t *testing.T) {
	at := func(d *wire.DBR, s string) *wire.DBR {
		d.Stamp = stamp(t, s)
		return d
	}
	put := func(args ...string) *PutOptions {
		o, err := ParsePut(args, nil)
		if err != nil {
			t.Fatal(err)
		}
		o.Format.Location = time.UTC
		return o
	}
	tests := []struct {
		o    *PutOptions
		d    *wire.DBR
		old  bool
		want string
	}{
		{put("T:ao", "2.25"), doubles(wire.DBRTimeDouble, -5), true, "Old : T:ao                           -5\n"},
		{put("T:ao", "2.25"), doubles(wire.DBRTimeDouble, 2.25), false, "New : T:ao                           2.25\n"},
		{put("-t", "T:ao", "2.5"), doubles(wire.DBRTimeDouble, 2.25), true, ""},
		{put("-t", "T:ao", "2.5"), doubles(wire.DBRTimeDouble, 2.5), false, "2.5\n"},
		{put("-l", "T:ao", "3"), at(doubles(wire.DBRTimeDouble, 2.5), "2026-11-21 13:16:43.437184"), true,
			"Old : T:ao                           2026-11-21 13:16:43.437184 2.5  \n"},
		{put("-l", "T:ao", "3"), at(doubles(wire.DBRTimeDouble, 3), "2026-11-21 13:16:43.474756"), false,
			"New : T:ao                           2026-11-21 13:16:43.474756 3  \n"},
		{put("-a", "T:wf", "3", "1", "2", "3"), wf(wire.DBRTimeDouble, 10), true, "Old : T:wf 10 1 2.5 3.14159 -4 1e+10 0 0 0 0 0\n"},
		{put("-t", "-a", "T:wf", "2", "7", "8"), doubles(wire.DBRTimeDouble, 7, 8, 0, 0, 0, 0, 0, 0, 0, 0), false, "10 7 8 0 0 0 0 0 0 0 0\n"},
		{put("-S", "T:cwf", "hello"), chars(wire.DBRTimeChar, 64, "hi there"), true, "Old : T:cwf hi there\n"},
		{put("-t", "-S", "T:cwf", `h\xc3\xa9llo\n`), chars(wire.DBRTimeChar, 64, "h\xc3\xa9llo\n"), false, `h\xc3\xa9llo\n` + "\n"},
		{put("T:mbb", "Auto mode"), strs(wire.DBRTimeString, "Auto mode"), false, "New : T:mbb                          Auto mode\n"},
		{put("-n", "T:mbb", "2"), shorts(wire.DBRTimeShort, 0), true, "Old : T:mbb                          0\n"},
		{put("T:str", `a"b\tc`), strs(wire.DBRTimeString, "a\"b\tc"), false, `New : T:str                          a\"b\tc` + "\n"},
	}
	for _, tc := range tests {
		if got := tc.o.Line(tc.d, tc.old); got != tc.want {
			t.Errorf("put %s %q old=%v: got %q, want %q", tc.o.PV, tc.o.Values, tc.old, got, tc.want)
		}
	}
}

func TestPutValue(t *testing.T) {
	tests := []struct {
		args   []string
		native wire.DBRType
		count  int
		want   wire.Value
		warn   string
		err    string
	}{
		{[]string{"T:ao", "2.25"}, wire.DBRDouble, 1, wire.Value{Type: wire.DBRDouble, Doubles: []float64{2.25}}, "", ""},
		{[]string{"T:ao", "-5"}, wire.DBRDouble, 1, wire.Value{Type: wire.DBRDouble, Doubles: []float64{-5}}, "", ""},
		{[]string{"T:ao", "0x10"}, wire.DBRDouble, 1, wire.Value{Type: wire.DBRDouble, Doubles: []float64{16}}, "", ""},
		{[]string{"T:ao", "abc"}, wire.DBRDouble, 1, wire.Value{}, "", `value "abc" does not convert to DBR_DOUBLE: not a number`},
		{[]string{"T:ao", "1", "2"}, wire.DBRDouble, 1, wire.Value{}, "", `value "1 2" does not convert to DBR_DOUBLE: not a number`},
		{[]string{"T:long", "42"}, wire.DBRLong, 1, wire.Value{Type: wire.DBRLong, Longs: []int32{42}}, "", ""},
		{[]string{"T:long", "3000000000"}, wire.DBRLong, 1, wire.Value{}, "", `value "3000000000" does not convert to DBR_LONG: out of range -2147483648..2147483647`},
		{[]string{"T:str", "a", "b", "c"}, wire.DBRString, 1, wire.Value{Type: wire.DBRString, Strings: []string{"a b c"}}, "", ""},
		{[]string{"T:str", `a"b\tc`}, wire.DBRString, 1, wire.Value{Type: wire.DBRString, Strings: []string{"a\"b\tc"}}, "", ""},
		{[]string{"T:str", strings.Repeat("x", 40)}, wire.DBRString, 1, wire.Value{}, "",
			`value "` + strings.Repeat("x", 40) + `" does not convert to DBR_STRING: longer than the 39 characters a string PV holds`},
		{[]string{"T:mbb", "Auto", "mode"}, wire.DBREnum, 1, wire.Value{Type: wire.DBREnum, Enums: []uint16{2}}, "", ""},
		{[]string{"T:mbb", "0"}, wire.DBREnum, 1, wire.Value{Type: wire.DBREnum, Enums: []uint16{0}}, "", ""},
		{[]string{"T:mbb", "Bogus"}, wire.DBREnum, 1, wire.Value{}, "",
			`value "Bogus" does not convert to DBR_ENUM: not one of the states ["Off" "On" "Auto mode"]`},
		{[]string{"T:mbb", "7"}, wire.DBREnum, 1, wire.Value{}, "", `value "7" does not convert to DBR_ENUM: state index 7 out of range 0..2`},
		{[]string{"-n", "T:mbb", "2"}, wire.DBREnum, 1, wire.Value{Type: wire.DBREnum, Enums: []uint16{2}}, "", ""},
		{[]string{"-n", "T:mbb", "On"}, wire.DBREnum, 1, wire.Value{}, "", `value "On" does not convert to DBR_ENUM: not a state index (-n)`},
		{[]string{"-s", "T:mbb", "1"}, wire.DBREnum, 1, wire.Value{}, "",
			`value "1" does not convert to DBR_ENUM: not one of the states ["Off" "On" "Auto mode"] (-s)`},
		{[]string{"-s", "T:mbb", "On"}, wire.DBREnum, 1, wire.Value{Type: wire.DBREnum, Enums: []uint16{1}}, "", ""},
		{[]string{"-a", "T:wf", "3", "1", "2", "3"}, wire.DBRDouble, 10, wire.Value{Type: wire.DBRDouble, Doubles: []float64{1, 2, 3}}, "", ""},
		{[]string{"-a", "T:wf", "2", "1", "2", "3"}, wire.DBRDouble, 10, wire.Value{Type: wire.DBRDouble, Doubles: []float64{1, 2, 3}},
			"-a: count 2 differs from the 3 values given; writing 3", ""},
		{[]string{"-a", "T:wf", "x", "1"}, wire.DBRDouble, 10, wire.Value{}, "", `-a: the first value must be the number of values, not "x"`},
		{[]string{"-a", "T:wf", "2", "1", "zz"}, wire.DBRDouble, 10, wire.Value{}, "", `value "zz" (element 1) does not convert to DBR_DOUBLE: not a number`},
		{[]string{"-a", "T:wf", "3", "1", "2", "3"}, wire.DBRDouble, 2, wire.Value{}, "", "3 values given, but the PV holds at most 2"},
		{[]string{"T:wf", "1", "2", "3"}, wire.DBRDouble, 10, wire.Value{Type: wire.DBRDouble, Doubles: []float64{1, 2, 3}}, "", ""},
		{[]string{"T:wf", "4"}, wire.DBRDouble, 10, wire.Value{Type: wire.DBRDouble, Doubles: []float64{4}}, "", ""},
		{[]string{"T:swf", "ab", "c d"}, wire.DBRString, 4, wire.Value{Type: wire.DBRString, Strings: []string{"ab", "c d"}}, "", ""},
		{[]string{"-S", "T:cwf", "hello"}, wire.DBRChar, 64, wire.Value{Type: wire.DBRChar, Chars: []byte("hello\x00")}, "", ""},
		{[]string{"-S", "T:cwf", `h\xc3\xa9llo\n`}, wire.DBRChar, 64, wire.Value{Type: wire.DBRChar, Chars: []byte("h\xc3\xa9llo\n\x00")}, "", ""},
		{[]string{"-S", "T:cwf", "two", "words"}, wire.DBRChar, 64, wire.Value{Type: wire.DBRChar, Chars: []byte("two words\x00")}, "", ""},
		{[]string{"-S", "T:c5", "hello"}, wire.DBRChar, 5, wire.Value{Type: wire.DBRChar, Chars: []byte("hello")}, "", ""},
		{[]string{"-S", "T:c5", "hello!"}, wire.DBRChar, 5, wire.Value{}, "", "text of 6 characters does not fit in 5 elements"},
		{[]string{"-S", "T:ao", "hello"}, wire.DBRDouble, 1, wire.Value{}, "", "-S writes text to CHAR arrays only"},
		// Text without -S goes to the server as a DBR_STRING, as caput sends it.
		{[]string{"T:cwf", "hello"}, wire.DBRChar, 64, wire.Value{Type: wire.DBRString, Strings: []string{"hello"}}, "", ""},
		{[]string{"T:cwf", "1", "x"}, wire.DBRChar, 64, wire.Value{}, "",
			`value "x" (element 1) does not convert to DBR_CHAR: not a number (use -S to write text to a CHAR array)`},
	}
	states := mbbStates
	for _, tc := range tests {
		o, err := ParsePut(tc.args, nil)
		if err != nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		v, warns, err := o.PutValue(tc.native, tc.count, states)
		switch {
		case tc.err != "":
			if err == nil || err.Error() != tc.err {
				t.Errorf("%q: got error %v, want %q", tc.args, err, tc.err)
			}
		case err != nil:
			t.Errorf("%q: %v", tc.args, err)
		case !reflect.DeepEqual(v, tc.want):
			t.Errorf("%q: got %+v, want %+v", tc.args, v, tc.want)
		}
		if tc.warn != "" && (len(warns) != 1 || warns[0] != tc.warn) {
			t.Errorf("%q: warnings %q, want %q", tc.args, warns, tc.warn)
		}
		if tc.warn == "" && len(warns) != 0 {
			t.Errorf("%q: unexpected warnings %q", tc.args, warns)
		}
	}
}
