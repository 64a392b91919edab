package sse

import (
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/pvhub/pvhub/transports/internal/option"
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
	origins, anyOrigin, _, err := option.Origins(m)
	if err != nil {
		return o, unknown, err
	}
	o.origins, o.anyOrigin = origins, anyOrigin
	if v, ok := m["token"]; ok && v != nil {
		s, ok := v.(string)
		if !ok {
			return o, unknown, fmt.Errorf("token: want a string, got %T", v)
		}
		o.token = s
	}
	if o.keepalive, err = option.Duration(m, "keepalive", o.keepalive, false); err != nil {
		return o, unknown, err
	}
	if o.queueLimit, err = option.Int(m, "queue_limit", o.queueLimit, 16); err != nil {
		return o, unknown, err
	}
	if o.stallTimeout, err = option.Duration(m, "stall_timeout", o.stallTimeout, false); err != nil {
		return o, unknown, err
	}
	if o.getTimeout, err = option.Duration(m, "get_timeout", o.getTimeout, false); err != nil {
		return o, unknown, err
	}
	if o.putTimeout, err = option.Duration(m, "put_timeout", o.putTimeout, false); err != nil {
		return o, unknown, err
	}
	if o.maxBodyBytes, err = option.Int(m, "max_body_bytes", o.maxBodyBytes, 64); err != nil {
		return o, unknown, err
	}
	if o.linger, err = option.Duration(m, "linger", o.linger, true); err != nil {
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
