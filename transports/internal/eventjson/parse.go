package eventjson

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/pvhub/pvhub/plugins"
)

// ParseValue converts a JSON value from a client into Data of the PV's native type.
// Numbers, numeric strings and booleans convert to numeric types (integers must be whole
// and in range), a label converts to an enum index, text converts to a DBF_CHAR array, and
// a JSON array writes an array PV.
func ParseValue(m *plugins.Metadata, raw []byte) (plugins.Data, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return plugins.Data{}, fmt.Errorf("the value is not valid JSON")
	}
	list, isList := v.([]any)
	if !isList {
		if m.Type == plugins.TypeChar {
			if s, ok := v.(string); ok && m.Count != 1 {
				if m.Count > 0 && len(s) > m.Count {
					return plugins.Data{}, fmt.Errorf("the text has %d bytes, the PV holds at most %d", len(s), m.Count)
				}
				return plugins.Bytes([]byte(s)), nil
			}
		}
		list = []any{v}
	}
	if len(list) == 0 {
		return plugins.Data{}, fmt.Errorf("the value is an empty array")
	}
	if m.Count > 0 && len(list) > m.Count {
		return plugins.Data{}, fmt.Errorf("the value has %d elements, the PV holds at most %d", len(list), m.Count)
	}
	switch m.Type.Kind() {
	case plugins.KindString:
		out := make([]string, len(list))
		for i, e := range list {
			switch e := e.(type) {
			case string:
				out[i] = e
			case json.Number:
				out[i] = e.String()
			case bool:
				out[i] = strconv.FormatBool(e)
			default:
				return plugins.Data{}, fmt.Errorf("%s cannot be written to a %v PV", describe(e), m.Type)
			}
		}
		return plugins.Strings(out...), nil
	case plugins.KindFloat64:
		out := make([]float64, len(list))
		for i, e := range list {
			f, err := toFloat(e)
			if err != nil {
				return plugins.Data{}, fmt.Errorf("%v cannot be written to a %v PV: %w", describe(e), m.Type, err)
			}
			out[i] = f
		}
		return plugins.Float64s(out...), nil
	default: // integers, enums and chars
		lo, hi := intRange(m.Type)
		out := make([]int64, len(list))
		for i, e := range list {
			if s, ok := e.(string); ok && m.Type == plugins.TypeEnum {
				if idx := indexOf(m.EnumLabels, s); idx >= 0 {
					out[i] = int64(idx)
					continue
				}
			}
			f, err := toFloat(e)
			if err != nil {
				if m.Type == plugins.TypeEnum {
					return plugins.Data{}, fmt.Errorf("%v is neither a state (%s) nor a number", describe(e), strings.Join(m.EnumLabels, ", "))
				}
				return plugins.Data{}, fmt.Errorf("%v cannot be written to a %v PV: %w", describe(e), m.Type, err)
			}
			if f != math.Trunc(f) {
				return plugins.Data{}, fmt.Errorf("%v is not a whole number, and the PV is %v", describe(e), m.Type)
			}
			if f < lo || f > hi {
				return plugins.Data{}, fmt.Errorf("%v is out of range for %v (%v to %v)", describe(e), m.Type, lo, hi)
			}
			out[i] = int64(f)
		}
		if m.Type == plugins.TypeChar {
			b := make([]byte, len(out))
			for i, x := range out {
				b[i] = byte(x)
			}
			return plugins.Bytes(b), nil
		}
		return plugins.Int64s(out...), nil
	}
}

func toFloat(e any) (float64, error) {
	switch e := e.(type) {
	case json.Number:
		f, err := strconv.ParseFloat(string(e), 64)
		if err != nil {
			return 0, fmt.Errorf("not a number")
		}
		return f, nil
	case bool:
		if e {
			return 1, nil
		}
		return 0, nil
	case string:
		s := strings.TrimSpace(e)
		switch s {
		case "NaN":
			return math.NaN(), nil
		case "Infinity", "+Infinity":
			return math.Inf(1), nil
		case "-Infinity":
			return math.Inf(-1), nil
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return 0, fmt.Errorf("not a number")
		}
		return f, nil
	case nil:
		return 0, fmt.Errorf("null is not a value")
	}
	return 0, fmt.Errorf("not a number")
}

func intRange(t plugins.Type) (float64, float64) {
	switch t {
	case plugins.TypeShort:
		return math.MinInt16, math.MaxInt16
	case plugins.TypeEnum:
		return 0, math.MaxUint16
	case plugins.TypeChar:
		return math.MinInt8, math.MaxUint8
	}
	return math.MinInt32, math.MaxInt32
}

func describe(e any) string {
	switch e := e.(type) {
	case string:
		return strconv.Quote(e)
	case nil:
		return "null"
	case map[string]any:
		return "an object"
	case []any:
		return "a nested array"
	}
	return fmt.Sprint(e)
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

// ParseUntyped converts a JSON value to Data when the PV's type is not known (a
// relay name that the write will create): numbers become float64, or int64 when
// every one is a whole number within int64; strings become strings; a list holds
// elements of one of these kinds. Booleans and null are refused.
func ParseUntyped(raw []byte) (plugins.Data, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return plugins.Data{}, fmt.Errorf("the value is not valid JSON")
	}
	if dec.More() {
		return plugins.Data{}, fmt.Errorf("the value is followed by more JSON")
	}
	list, isList := v.([]any)
	if !isList {
		list = []any{v}
	}
	if len(list) == 0 {
		return plugins.Data{}, fmt.Errorf("the value is an empty array")
	}
	if _, ok := list[0].(string); ok {
		out := make([]string, len(list))
		for i, e := range list {
			s, ok := e.(string)
			if !ok {
				return plugins.Data{}, fmt.Errorf("the array mixes text and %s", describe(e))
			}
			out[i] = s
		}
		return plugins.Strings(out...), nil
	}
	floats := make([]float64, len(list))
	whole := true
	for i, e := range list {
		n, ok := e.(json.Number)
		if !ok {
			return plugins.Data{}, fmt.Errorf("%s is not a number or text", describe(e))
		}
		f, err := strconv.ParseFloat(string(n), 64)
		if err != nil {
			return plugins.Data{}, fmt.Errorf("%s is not a number", n)
		}
		floats[i] = f
		if f != math.Trunc(f) || f < math.MinInt64 || f >= math.MaxInt64 {
			whole = false
		}
	}
	if !whole {
		return plugins.Float64s(floats...), nil
	}
	ints := make([]int64, len(floats))
	for i, f := range floats {
		ints[i] = int64(f)
	}
	return plugins.Int64s(ints...), nil
}
