package websocket

import (
	"fmt"
	"math"
	"net"
	"path"
	"strconv"
	"strings"
	"time"
)

// Default option values.
const (
	DefaultListen          = "127.0.0.1:8080"
	DefaultMaxMessageBytes = 4 << 20
	DefaultQueueLimit      = 100000
	DefaultStallTimeout    = 10 * time.Second
	DefaultPutTimeout      = 5 * time.Second
	DefaultConnectTimeout  = 5 * time.Second
)

// defaultOrigins are the origin host patterns allowed when allowed_origins is not set:
// pages served from the local machine (the request's own host is always allowed).
var defaultOrigins = []string{"localhost", "localhost:*", "127.0.0.1", "127.0.0.1:*", "[::1]", "[::1]:*"}

type options struct {
	listen          string
	origins         []string
	anyOrigin       bool
	token           string
	maxMessageBytes int
	queueLimit      int
	stallTimeout    time.Duration
	putTimeout      time.Duration
	connectTimeout  time.Duration
}

// knownOptions are the keys parseOptions reads, plus the ones the host adds.
var knownOptions = map[string]bool{"listen": true, "allowed_origins": true, "token": true,
	"max_message_bytes": true, "queue_limit": true, "stall_timeout": true, "put_timeout": true,
	"connect_timeout": true, "enabled": true, "path": true}

// parseOptions reads the transport's configuration slice. Values may be typed (YAML) or
// text (environment variables and flags).
func parseOptions(m map[string]any) (options, []string, error) {
	o := options{listen: DefaultListen, origins: defaultOrigins, maxMessageBytes: DefaultMaxMessageBytes,
		queueLimit: DefaultQueueLimit, stallTimeout: DefaultStallTimeout, putTimeout: DefaultPutTimeout,
		connectTimeout: DefaultConnectTimeout}
	var unknown []string
	for k := range m {
		if !knownOptions[k] {
			unknown = append(unknown, k)
		}
	}
	var err error
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
		o.origins = nil
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
	if o.maxMessageBytes, err = intOption(m, "max_message_bytes", o.maxMessageBytes, 1024); err != nil {
		return o, unknown, err
	}
	if o.queueLimit, err = intOption(m, "queue_limit", o.queueLimit, 16); err != nil {
		return o, unknown, err
	}
	if o.stallTimeout, err = durationOption(m, "stall_timeout", o.stallTimeout); err != nil {
		return o, unknown, err
	}
	if o.putTimeout, err = durationOption(m, "put_timeout", o.putTimeout); err != nil {
		return o, unknown, err
	}
	if o.connectTimeout, err = durationOption(m, "connect_timeout", o.connectTimeout); err != nil {
		return o, unknown, err
	}
	return o, unknown, nil
}

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

func durationOption(m map[string]any, key string, def time.Duration) (time.Duration, error) {
	v, ok := m[key]
	if !ok || v == nil {
		return def, nil
	}
	var d time.Duration
	switch v := v.(type) {
	case time.Duration:
		d = v
	case int:
		d = time.Duration(v) * time.Second
	case int64:
		d = time.Duration(v) * time.Second
	case float64:
		d = time.Duration(v * float64(time.Second))
	case string:
		s := strings.TrimSpace(v)
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			d = time.Duration(f * float64(time.Second))
		} else if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("%s: want a duration such as \"10s\", got %q", key, v)
		}
	default:
		return 0, fmt.Errorf("%s: want a duration such as \"10s\", got %T", key, v)
	}
	if d <= 0 {
		return 0, fmt.Errorf("%s: want a positive duration, got %v", key, v)
	}
	return d, nil
}
