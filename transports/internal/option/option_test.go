package option

import (
	"fmt"
	"testing"
	"time"
)

func TestReaders(t *testing.T) {
	m := map[string]any{"n": 12.0, "ns": " 7 ", "frac": 1.5, "low": 3, "b": "true", "bad": []any{1},
		"d": "1.5s", "ds": 2, "dz": "0", "neg": "-1s", "s": 42.0, "l": "a, b c", "ly": []any{" x ", "y"}, "lbad": []any{1}}
	show := func(v any, err error) string {
		if err != nil {
			return "error: " + err.Error()
		}
		return fmt.Sprint(v)
	}
	for _, tc := range []struct{ got, want string }{
		{show(Int(m, "n", 0, 0)), "12"},
		{show(Int(m, "ns", 0, 0)), "7"},
		{show(Int(m, "missing", 9, 0)), "9"},
		{show(Int(m, "frac", 0, 0)), "error: frac: want an integer, got 1.5"},
		{show(Int(m, "low", 0, 16)), "error: low: 3 is below the minimum 16"},
		{show(Int(m, "bad", 0, 0)), "error: bad: want an integer, got []interface {}"},
		{show(Bool(m, "b", false)), "true"},
		{show(Bool(m, "n", false)), "error: n: want true or false, got float64"},
		{show(Duration(m, "d", 0, false)), "1.5s"},
		{show(Duration(m, "ds", 0, false)), "2s"},
		{show(Duration(m, "dz", time.Second, false)), "error: dz: want a positive duration, got 0"},
		{show(Duration(m, "dz", time.Second, true)), "0s"},
		{show(Duration(m, "neg", 0, true)), "error: neg: want a positive duration, got -1s"},
		{show(Duration(m, "s", 0, false)), "42s"},
		{show(ParseDuration("soon")), `error: want a duration such as "10s" or a number of seconds, got "soon"`},
		{show(ParseDuration(1e12)), `error: want a duration such as "10s", got 1e+12`},
		{show(String(m, "s", "")), "42"},
		{show(String(m, "bad", "")), "error: bad: want a string, got []interface {}"},
		{show(StringList(m["l"])), "[a b c]"},
		{show(StringList(m["ly"])), "[x y]"},
		{show(StringList(m["lbad"])), "error: want a list of strings, got element 1"},
		{origins(map[string]any{}), "[] false false"},
		{origins(map[string]any{"allowed_origins": "*.lab.org, *"}), "[*.lab.org] true true"},
		{origins(map[string]any{"allowed_origins": []any{"[bad"}}), `error: allowed_origins: bad pattern "[bad": syntax error in pattern`},
	} {
		if tc.got != tc.want {
			t.Errorf("got %s, want %s", tc.got, tc.want)
		}
	}
}

func origins(m map[string]any) string {
	p, anyOrigin, set, err := Origins(m)
	if err != nil {
		return "error: " + err.Error()
	}
	return fmt.Sprint(p, " ", anyOrigin, " ", set)
}
