package websocket

import (
	"fmt"
	"net"
	"time"

	"github.com/pvhub/pvhub/transports/internal/option"
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
	if origins, anyOrigin, set, err := option.Origins(m); err != nil {
		return o, unknown, err
	} else if set {
		o.origins, o.anyOrigin = origins, anyOrigin
	}
	if v, ok := m["token"]; ok && v != nil {
		s, ok := v.(string)
		if !ok {
			return o, unknown, fmt.Errorf("token: want a string, got %T", v)
		}
		o.token = s
	}
	if o.maxMessageBytes, err = option.Int(m, "max_message_bytes", o.maxMessageBytes, 1024); err != nil {
		return o, unknown, err
	}
	if o.queueLimit, err = option.Int(m, "queue_limit", o.queueLimit, 16); err != nil {
		return o, unknown, err
	}
	if o.stallTimeout, err = option.Duration(m, "stall_timeout", o.stallTimeout, false); err != nil {
		return o, unknown, err
	}
	if o.putTimeout, err = option.Duration(m, "put_timeout", o.putTimeout, false); err != nil {
		return o, unknown, err
	}
	if o.connectTimeout, err = option.Duration(m, "connect_timeout", o.connectTimeout, false); err != nil {
		return o, unknown, err
	}
	return o, unknown, nil
}
