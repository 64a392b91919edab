package eventjson

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/pvhub/pvhub/plugins"
)

func TestAppendEvents(t *testing.T) {
	dbl := plugins.Metadata{Name: "X", Type: plugins.TypeDouble, Count: 1, Units: "mm", Precision: 3,
		Display: plugins.Range{Low: -10, High: 10}, Control: plugins.Range{Low: -5, High: 5}}
	enum := plugins.Metadata{Name: "E", Type: plugins.TypeEnum, Count: 1, EnumLabels: []string{"Off", "On"}}
	text := plugins.Metadata{Name: "T", Type: plugins.TypeChar, Count: 40}
	wave := plugins.Metadata{Name: "W", Type: plugins.TypeLong, Count: 3}
	// 2022-09-23T08:11:41.367890532Z is 1663920701 POSIX seconds.
	stamp := uint32(1663920701 - EPICSEpoch)
	for _, tc := range []struct {
		name string
		got  []byte
		want string
	}{
		{"connection", AppendConnection(nil, plugins.Connection{Name: "X", Connected: true, Read: true, Write: true}),
			`{"type":"connection","pv":"X","connected":true,"read":true,"write":true}`},
		{"denied", AppendConnection(nil, plugins.Connection{Name: "X", Connected: true, Read: true, WriteDenied: `write denied by write.deny "X*"`}),
			`{"type":"connection","pv":"X","connected":true,"read":true,"write":false,"write_denied":"write denied by write.deny \"X*\""}`},
		{"disconnected", AppendConnection(nil, plugins.Connection{Name: "X"}),
			`{"type":"connection","pv":"X","connected":false,"read":false,"write":false}`},
		{"metadata", AppendMetadata(nil, dbl),
			`{"type":"metadata","pv":"X","native_type":"DBF_DOUBLE","count":1,"units":"mm","precision":3,"display":{"low":-10,"high":10},"control":{"low":-5,"high":5},"warning":{"low":0,"high":0},"alarm":{"low":0,"high":0}}`},
		{"enum metadata", AppendMetadata(nil, enum),
			`{"type":"metadata","pv":"E","native_type":"DBF_ENUM","count":1,"enum_labels":["Off","On"]}`},
		{"string metadata", AppendMetadata(nil, plugins.Metadata{Name: "S", Type: plugins.TypeString, Count: 1, Description: "a note"}),
			`{"type":"metadata","pv":"S","native_type":"DBF_STRING","count":1,"description":"a note"}`},
		{"double", AppendValue(nil, plugins.Value{Name: "X", Data: plugins.Float64s(1.5), Seconds: stamp, Nanos: 367890532, Status: "HIGH", Severity: "MINOR"}, &dbl),
			`{"type":"value","pv":"X","value":1.5,"status":"HIGH","severity":"MINOR","seconds":1663920701,"nanos":367890532,"time":"2022-09-23T08:11:41.367890532Z"}`},
		{"nan", AppendValue(nil, plugins.Value{Name: "X", Data: plugins.Float64s(math.NaN())}, nil),
			`{"type":"value","pv":"X","value":"NaN","status":"","severity":"","seconds":631152000,"nanos":0,"time":"1990-01-01T00:00:00Z"}`},
		{"enum", AppendValue(nil, plugins.Value{Name: "E", Data: plugins.Int64s(1), Seconds: stamp}, &enum),
			`{"type":"value","pv":"E","value":1,"text":"On","status":"","severity":"","seconds":1663920701,"nanos":0,"time":"2022-09-23T08:11:41Z"}`},
		{"enum out of range", AppendValue(nil, plugins.Value{Name: "E", Data: plugins.Int64s(7), Seconds: stamp}, &enum),
			`{"type":"value","pv":"E","value":7,"status":"","severity":"","seconds":1663920701,"nanos":0,"time":"2022-09-23T08:11:41Z"}`},
		{"char text", AppendValue(nil, plugins.Value{Name: "T", Data: plugins.Bytes([]byte("beam \"on\"\x00junk")), Seconds: stamp}, &text),
			`{"type":"value","pv":"T","value":"beam \"on\"","status":"","severity":"","seconds":1663920701,"nanos":0,"time":"2022-09-23T08:11:41Z"}`},
		{"array of one", AppendValue(nil, plugins.Value{Name: "W", Data: plugins.Int64s(4), Seconds: stamp}, &wave),
			`{"type":"value","pv":"W","value":[4],"status":"","severity":"","seconds":1663920701,"nanos":0,"time":"2022-09-23T08:11:41Z"}`},
		{"empty array", AppendValue(nil, plugins.Value{Name: "W", Data: plugins.Int64s(), Seconds: stamp}, &wave),
			`{"type":"value","pv":"W","value":[],"status":"","severity":"","seconds":1663920701,"nanos":0,"time":"2022-09-23T08:11:41Z"}`},
		{"strings", AppendValue(nil, plugins.Value{Name: "S", Data: plugins.Strings("a", "b"), Seconds: stamp}, nil),
			`{"type":"value","pv":"S","value":["a","b"],"status":"","severity":"","seconds":1663920701,"nanos":0,"time":"2022-09-23T08:11:41Z"}`},
		{"put ok", AppendPutResult(nil, plugins.PutResult{Name: "X", ID: 7}), `{"type":"put_result","pv":"X","id":7,"ok":true}`},
		{"put error", AppendPutResult(nil, plugins.PutResult{Name: "X", ID: 8, Err: "X: write denied by no write.allow pattern matches"}),
			`{"type":"put_result","pv":"X","id":8,"ok":false,"error":"X: write denied by no write.allow pattern matches"}`},
		{"state", AppendState(nil, State{Name: "E", Conn: &plugins.Connection{Name: "E", Connected: true, Read: true, Write: true}, Meta: &enum,
			Value: &plugins.Value{Name: "E", Data: plugins.Int64s(0), Seconds: stamp, Status: "NO_ALARM", Severity: "NO_ALARM"}}),
			`{"pv":"E","connected":true,"read":true,"write":true,"native_type":"DBF_ENUM","count":1,"enum_labels":["Off","On"],"value":0,"text":"Off","status":"NO_ALARM","severity":"NO_ALARM","seconds":1663920701,"nanos":0,"time":"2022-09-23T08:11:41Z"}`},
		{"state disconnected", AppendState(nil, State{Name: "X", Conn: &plugins.Connection{Name: "X"}}),
			`{"pv":"X","connected":false,"read":false,"write":false}`},
	} {
		if string(tc.got) != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, tc.got, tc.want)
		}
		if !json.Valid(tc.got) {
			t.Errorf("%s: invalid JSON %s", tc.name, tc.got)
		}
	}
}

func TestParseValue(t *testing.T) {
	dbl := &plugins.Metadata{Type: plugins.TypeDouble, Count: 1}
	long := &plugins.Metadata{Type: plugins.TypeLong, Count: 4}
	enum := &plugins.Metadata{Type: plugins.TypeEnum, Count: 1, EnumLabels: []string{"Off", "On"}}
	char := &plugins.Metadata{Type: plugins.TypeChar, Count: 8}
	str := &plugins.Metadata{Type: plugins.TypeString, Count: 1}
	for _, tc := range []struct {
		m    *plugins.Metadata
		in   string
		want string // fmt of the Data's elements, or the error
	}{
		{dbl, `1.5`, "float64 [1.5]"},
		{dbl, `"2.5"`, "float64 [2.5]"},
		{dbl, `true`, "float64 [1]"},
		{dbl, `"NaN"`, "float64 [NaN]"},
		{dbl, `"warm"`, `error: "warm" cannot be written to a DBF_DOUBLE PV: not a number`},
		{dbl, `[1,2]`, "error: the value has 2 elements, the PV holds at most 1"},
		{dbl, `{`, "error: the value is not valid JSON"},
		{dbl, `null`, "error: null cannot be written to a DBF_DOUBLE PV: null is not a value"},
		{long, `[1,2,3]`, "int64 [1 2 3]"},
		{long, `1.5`, "error: 1.5 is not a whole number, and the PV is DBF_LONG"},
		{long, `1e12`, "error: 1e12 is out of range for DBF_LONG (-2.147483648e+09 to 2.147483647e+09)"},
		{long, `[]`, "error: the value is an empty array"},
		{long, `[[1]]`, "error: a nested array cannot be written to a DBF_LONG PV: not a number"},
		{enum, `"On"`, "int64 [1]"},
		{enum, `0`, "int64 [0]"},
		{enum, `"Maybe"`, `error: "Maybe" is neither a state (Off, On) nor a number`},
		{char, `"beam on"`, "bytes [98 101 97 109 32 111 110]"},
		{char, `"much too long"`, "error: the text has 13 bytes, the PV holds at most 8"},
		{str, `"text"`, "string [text]"},
		{str, `12`, "string [12]"},
		{str, `{"a":1}`, "error: an object cannot be written to a DBF_STRING PV"},
	} {
		d, err := ParseValue(tc.m, []byte(tc.in))
		if got := show(d, err); got != tc.want {
			t.Errorf("ParseValue(%v, %s) = %s, want %s", tc.m.Type, tc.in, got, tc.want)
		}
	}
}

func TestParseUntyped(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`1.5`, "float64 [1.5]"},
		{`3`, "int64 [3]"},
		{`[1, 2, 3]`, "int64 [1 2 3]"},
		{`[1, 2.5]`, "float64 [1 2.5]"},
		{`1e300`, "float64 [1e+300]"},
		{`"beam on"`, "string [beam on]"},
		{`["a", "b"]`, "string [a b]"},
		{`["a", 1]`, "error: the array mixes text and 1"},
		{`[1, "a"]`, `error: "a" is not a number or text`},
		{`true`, "error: true is not a number or text"},
		{`null`, "error: null is not a number or text"},
		{`[]`, "error: the value is an empty array"},
		{`1 2`, "error: the value is followed by more JSON"},
		{``, "error: the value is not valid JSON"},
	} {
		d, err := ParseUntyped([]byte(tc.in))
		if got := show(d, err); got != tc.want {
			t.Errorf("ParseUntyped(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func show(d plugins.Data, err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	var s []string
	switch d.Kind {
	case plugins.KindFloat64:
		for _, f := range d.Float64s {
			s = append(s, formatG(f))
		}
	case plugins.KindInt64:
		for _, x := range d.Int64s {
			s = append(s, formatG(float64(x)))
		}
	case plugins.KindString:
		s = d.Strings
	case plugins.KindBytes:
		for _, c := range d.Bytes {
			s = append(s, formatG(float64(c)))
		}
	}
	return d.Kind.String() + " [" + strings.Join(s, " ") + "]"
}

func formatG(f float64) string {
	b, _ := json.Marshal(f)
	if math.IsNaN(f) {
		return "NaN"
	}
	if math.Abs(f) >= 1e21 {
		return strings.Replace(string(b), "e+", "e+", 1)
	}
	return string(b)
}

// FuzzParse: the parsers never panic, and what they accept encodes to valid JSON.
func FuzzParse(f *testing.F) {
	for _, s := range []string{`1.5`, `[1,2]`, `"On"`, `"text"`, `["a","b"]`, `null`, `{"a":1}`, `[[1]]`, `1e400`, `"NaN"`, `-0`, `[]`} {
		f.Add([]byte(s), uint8(6), uint8(3))
	}
	f.Fuzz(func(t *testing.T, raw []byte, typ, count uint8) {
		m := &plugins.Metadata{Name: "F", Type: plugins.Type(typ % 7), Count: int(count), EnumLabels: []string{"Off", "On"}}
		for _, parse := range []func() (plugins.Data, error){
			func() (plugins.Data, error) { return ParseValue(m, raw) },
			func() (plugins.Data, error) { return ParseUntyped(raw) },
		} {
			d, err := parse()
			if err != nil {
				continue
			}
			out := AppendValue(nil, plugins.Value{Name: "F", Data: d}, m)
			if !json.Valid(out) {
				t.Fatalf("invalid JSON %s for input %q", out, raw)
			}
			out = AppendState(nil, State{Name: "F", Meta: m, Value: &plugins.Value{Name: "F", Data: d}})
			if !json.Valid(out) {
				t.Fatalf("invalid JSON %s for input %q", out, raw)
			}
		}
	})
}
