package plugintest

import (
	"encoding/json"
	"fmt"
	"testing"
)

func TestJSONValue(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`1.5`, "[1.5] "},
		{`"NaN"`, "[NaN] "},
		{`[1, "-Infinity"]`, "[1 -Inf] "},
		{`"beam on"`, "[] beam on"},
		{`[1, "x"]`, "[] [1 x]"},
		{`null`, "[] "},
	} {
		var v any
		if err := json.Unmarshal([]byte(tc.in), &v); err != nil {
			t.Fatal(err)
		}
		e := JSONValue("A", v)
		if got := fmt.Sprint(e.Float64s, " ", e.Text); got != tc.want || e.Kind != EventValue || e.Name != "A" {
			t.Errorf("JSONValue(%s) = %v %q, want %q", tc.in, e.Kind, got, tc.want)
		}
	}
}
