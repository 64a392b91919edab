// Package option reads the values of a transport's configuration slice
// (plugins.Config.Options). Values come typed from YAML (string, bool, int,
// float64, []any) or as text from environment variables and flags; every
// reader accepts both and names the key in its error.
package option

import (
	"fmt"
	"math"
	"path"
	"strconv"
	"strings"
	"time"
)

// String reads a text value; a YAML scalar that looks like a number or a
// boolean (a password, a client id) is taken as its text.
func String(m map[string]any, key, def string) (string, error) {
	v, ok := m[key]
	if !ok || v == nil {
		return def, nil
	}
	switch v := v.(type) {
	case string:
		return strings.TrimSpace(v), nil
	case float64, int, int64, bool:
		return fmt.Sprint(v), nil
	}
	return "", fmt.Errorf("%s: want a string, got %T", key, v)
}

// StringList reads a YAML list of strings, or a text of items separated by
// commas or spaces.
func StringList(v any) ([]string, error) {
	switch v := v.(type) {
	case string:
		return strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' }), nil
	case []string:
		return v, nil
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("want a list of strings, got element %v", e)
			}
			out = append(out, strings.TrimSpace(s))
		}
		return out, nil
	}
	return nil, fmt.Errorf("want a list of strings, got %T", v)
}

// Int reads an integer of at least minimum.
func Int(m map[string]any, key string, def, minimum int) (int, error) {
	v, ok := m[key]
	if !ok || v == nil {
		return def, nil
	}
	var n int
	switch v := v.(type) {
	case int:
		n = v
	case int64:
		n = int(v)
	case float64:
		if v != math.Trunc(v) || math.Abs(v) > 1<<40 {
			return 0, fmt.Errorf("%s: want an integer, got %v", key, v)
		}
		n = int(v)
	case string:
		i, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return 0, fmt.Errorf("%s: want an integer, got %q", key, v)
		}
		n = i
	default:
		return 0, fmt.Errorf("%s: want an integer, got %T", key, v)
	}
	if n < minimum {
		return 0, fmt.Errorf("%s: %d is below the minimum %d", key, n, minimum)
	}
	return n, nil
}

// Bool reads true or false.
func Bool(m map[string]any, key string, def bool) (bool, error) {
	v, ok := m[key]
	if !ok || v == nil {
		return def, nil
	}
	switch v := v.(type) {
	case bool:
		return v, nil
	case string:
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return false, fmt.Errorf("%s: want true or false, got %q", key, v)
		}
		return b, nil
	}
	return false, fmt.Errorf("%s: want true or false, got %T", key, v)
}

// Duration reads a positive duration, written as "10s" or as a number of
// seconds; zero is accepted only when zeroOK.
func Duration(m map[string]any, key string, def time.Duration, zeroOK bool) (time.Duration, error) {
	v, ok := m[key]
	if !ok || v == nil {
		return def, nil
	}
	d, err := ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%s: %v", key, err)
	}
	if d < 0 || d == 0 && !zeroOK {
		return 0, fmt.Errorf("%s: want a positive duration, got %v", key, v)
	}
	return d, nil
}

// ParseDuration reads a Go duration ("1.5s", "200ms") or a number of seconds
// (at most a year).
func ParseDuration(v any) (time.Duration, error) {
	const tooLong = float64(365 * 24 * time.Hour / time.Second)
	seconds := func(f float64) (time.Duration, error) {
		if math.IsNaN(f) || math.Abs(f) > tooLong {
			return 0, fmt.Errorf("want a duration such as \"10s\", got %v", f)
		}
		return time.Duration(f * float64(time.Second)), nil
	}
	switch v := v.(type) {
	case time.Duration:
		return v, nil
	case int:
		return seconds(float64(v))
	case int64:
		return seconds(float64(v))
	case float64:
		return seconds(v)
	case string:
		s := strings.TrimSpace(v)
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return seconds(f)
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("want a duration such as \"10s\" or a number of seconds, got %q", v)
		}
		return d, nil
	}
	return 0, fmt.Errorf("want a duration such as \"10s\", got %T", v)
}

// Origins reads allowed_origins: host patterns (path.Match syntax) of the
// browser origins allowed besides the request's own host; "*" allows any.
// present is false when the key is not set.
func Origins(m map[string]any) (patterns []string, any, present bool, err error) {
	v, ok := m["allowed_origins"]
	if !ok || v == nil {
		return nil, false, false, nil
	}
	list, err := StringList(v)
	if err != nil {
		return nil, false, true, fmt.Errorf("allowed_origins: %v", err)
	}
	for _, p := range list {
		if p == "*" {
			any = true
			continue
		}
		if _, err := path.Match(p, ""); err != nil {
			return nil, false, true, fmt.Errorf("allowed_origins: bad pattern %q: %v", p, err)
		}
		patterns = append(patterns, p)
	}
	return patterns, any, true, nil
}
