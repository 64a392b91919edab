package sse

import (
	"fmt"
	"math"
	"net"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Default option values.
const (
	DefaultListen       = "127.0.0.1:8081"
	DefaultKeepalive    = 15 * time.Second
	DefaultQueueLimit   = 100000
	DefaultStallTimeout = 10 * time.Second
	DefaultGetTimeout   = 5 * time.Second
	DefaultPutTimeout   = 5 * time.Second
	DefaultMaxBodyBytes = 1 << 20
	DefaultLinger       = 2 * time.Second
	// MaxTimeout caps the timeout query parameter of GET and PUT.
	MaxTimeout = time.Minute
)

type options struct {
	listen       string
	origins      []string // origin patterns allowed besides the page's own
	anyOrigin    bool
	token        string
	keepalive    time.Duration
	queueLimit   int
	stallTimeout time.Duration
	getTimeout   time.Duration
	putTimeout   time.Duration
	maxBodyBytes int
	linger       time.Duration
}

// knownOptions are the keys parseOptions reads, plus the ones the host adds.
var knownOptions = map[string]bool{"listen": true, "allowed_origins": true, "token": true,
	"keepalive": true, "queue_limit": true, "stall_timeout": true, "get_timeout": true,
	"put_timeout": true, "max_body_bytes": true, "linger": true, "enabled": true, "path": true}

// parseOptions reads the transport's configuration slice; it returns the unknown keys,
// sorted, and the first bad value. Values may be typed (YAML) or text (environment
// variables and flags).
func parseOptions(m map[string]any) (options, []string, error) {
	o := options{listen: DefaultListen, keepalive: DefaultKeepalive, queueLimit: DefaultQueueLimit,
		stallTimeout: DefaultStallTimeout, getTimeout: DefaultGetTimeout, putTimeout: DefaultPutTimeout,
		maxBodyBytes: DefaultMaxBodyBytes, linger: DefaultLinger}
	var unknown []string
	for k := range m {
		if !knownOptions[k] {
			unknown = append(unknown, k)
		}
	}
	slices.Sort(unknown)
	if v, ok := m["listen"]; ok && v != nil {
		s, ok := v.(string)
		if !ok {
			return o, unknown, fmt.Errorf("listen: want host:port, got %v", v)
		}
		if s != "" {
			o.listen = s
		}
	}
	if _, _, err := net.SplitHostPort(o.listen); err != nil {
		return o, unknown, fmt.Errorf("listen: %q is not a host:port address: %v", o.listen, err)
	}
	if v, ok := m["allowed_origins"]; ok && v != nil {
		list, err := stringList(v)
		if err != nil {
			return o, unknown, fmt.Errorf("allowed_origins: %v", err)
		}
		for _, p := range list {
			if p == "*" {
				o.anyOrigin = true
				continue
			}
			if _, err := path.Match(p, ""); err != nil {
				return o, unknown, fmt.Errorf("allowed_origins: bad pattern %q: %v", p, err)
			}
			o.origins = append(o.origins, p)
		}
	}
	if v, ok := m["token"]; ok && v != nil {
		s, ok := v.(string)
		if !ok {
			return o, unknown, fmt.Errorf("token: want a string, got %T", v)
		}
		o.token = s
	}
	var err error
	if o.keepalive, err = durationOption(m, "keepalive", o.keepalive, false); err != nil {
		return o, unknown, err
	}
	if o.queueLimit, err = intOption(m, "queue_limit", o.queueLimit, 16); err != nil {
		return o, unknown, err
	}
	if o.stallTimeout, err = durationOption(m, "stall_timeout", o.stallTimeout, false); err != nil {
		return o, unknown, err
	}
	if o.getTimeout, err = durationOption(m, "get_timeout", o.getTimeout, false); err != nil {
		return o, unknown, err
	}
	if o.putTimeout, err = durationOption(m, "put_timeout", o.putTimeout, false); err != nil {
		return o, unknown, err
	}
	if o.maxBodyBytes, err = intOption(m, "max_body_bytes", o.maxBodyBytes, 64); err != nil {
		return o, unknown, err
	}
	if o.linger, err = durationOption(m, "linger", o.linger, true); err != nil {
		return o, unknown, err
	}
	for _, k := range []string{"get_timeout", "put_timeout"} {
		d := o.getTimeout
		if k == "put_timeout" {
			d = o.putTimeout
		}
		if d > MaxTimeout {
			return o, unknown, fmt.Errorf("%s: %v is above the maximum %v", k, d, MaxTimeout)
		}
	}
	return o, unknown, nil
}

// stringList reads a YAML list or a text of items separated by commas or spaces.
func stringList(v any) ([]string, error) {
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
			out = append(out, s)
		}
		return out, nil
	}
	return nil, fmt.Errorf("want a list of strings, got %T", v)
}

func intOption(m map[string]any, key string, def, minimum int) (int, error) {
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

// durationOption reads a duration written as "10s" or as a number of seconds; zero is
// accepted only when zeroOK.
func durationOption(m map[string]any, key string, def time.Duration, zeroOK bool) (time.Duration, error) {
	v, ok := m[key]
	if !ok || v == nil {
		return def, nil
	}
	d, err := parseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%s: %v", key, err)
	}
	if d < 0 || d == 0 && !zeroOK {
		return 0, fmt.Errorf("%s: want a positive duration, got %v", key, v)
	}
	return d, nil
}

// parseDuration reads a Go duration ("1.5s", "200ms") or a number of seconds.
func parseDuration(v any) (time.Duration, error) {
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
