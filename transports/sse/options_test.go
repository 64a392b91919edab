package sse

import (
	"slices"
	"testing"
	"time"
)

func TestOptionsDefaults(t *testing.T) {
	o, unknown, err := parseOptions(nil)
	if err != nil || unknown != nil {
		t.Fatal(err, unknown)
	}
	want := options{listen: DefaultListen, keepalive: 15 * time.Second, queueLimit: 100000, stallTimeout: 10 * time.Second,
		getTimeout: 5 * time.Second, putTimeout: 5 * time.Second, maxBodyBytes: 1 << 20, linger: 2 * time.Second}
	if !equalOptions(o, want) {
		t.Fatalf("defaults %+v, want %+v", o, want)
	}
}

func equalOptions(a, b options) bool {
	return a.listen == b.listen && slices.Equal(a.origins, b.origins) && a.anyOrigin == b.anyOrigin && a.token == b.token &&
		a.keepalive == b.keepalive && a.queueLimit == b.queueLimit && a.stallTimeout == b.stallTimeout &&
		a.getTimeout == b.getTimeout && a.putTimeout == b.putTimeout && a.maxBodyBytes == b.maxBodyBytes && a.linger == b.linger
}

func TestOptionsValues(t *testing.T) {
	want := options{listen: "0.0.0.0:9000", origins: []string{"http://a.example", "b.example:*"}, anyOrigin: true, token: "t",
		keepalive: 1500 * time.Millisecond, queueLimit: 64, stallTimeout: 2 * time.Second, getTimeout: 250 * time.Millisecond,
		putTimeout: 3 * time.Second, maxBodyBytes: 4096, linger: 0}
	// As text, the way environment variables give them.
	text := map[string]any{"listen": "0.0.0.0:9000", "allowed_origins": "http://a.example, b.example:* *", "token": "t",
		"keepalive": "1.5", "queue_limit": "64", "stall_timeout": "2s", "get_timeout": "250ms", "put_timeout": "3",
		"max_body_bytes": "4096", "linger": "0", "enabled": "true", "path": "", "extra": 1, "another": 2}
	o, unknown, err := parseOptions(text)
	if err != nil || !equalOptions(o, want) || !slices.Equal(unknown, []string{"another", "extra"}) {
		t.Fatalf("text options: %+v %v %v", o, unknown, err)
	}
	// Typed, the way YAML or a plugin process gives them.
	typed := map[string]any{"listen": "0.0.0.0:9000", "allowed_origins": []any{"http://a.example", "b.example:*", "*"}, "token": "t",
		"keepalive": 1.5, "queue_limit": 64.0, "stall_timeout": 2, "get_timeout": 250 * time.Millisecond, "put_timeout": int64(3),
		"max_body_bytes": 4096, "linger": 0.0}
	if o, _, err := parseOptions(typed); err != nil || !equalOptions(o, want) {
		t.Fatalf("typed options: %+v %v", o, err)
	}
	if o, _, _ := parseOptions(map[string]any{"listen": ""}); o.listen != DefaultListen {
		t.Errorf("empty listen: %q", o.listen)
	}
}

func TestOptionsErrors(t *testing.T) {
	for _, c := range []struct {
		m    map[string]any
		want string
	}{
		{map[string]any{"listen": 8081}, "listen: want host:port, got 8081"},
		{map[string]any{"listen": "localhost"}, `listen: "localhost" is not a host:port address: address localhost: missing port in address`},
		{map[string]any{"allowed_origins": 3}, "allowed_origins: want a list of strings, got int"},
		{map[string]any{"allowed_origins": []any{"a", 1}}, "allowed_origins: want a list of strings, got element 1"},
		{map[string]any{"allowed_origins": "[x"}, `allowed_origins: bad pattern "[x": syntax error in pattern`},
		{map[string]any{"token": 5}, "token: want a string, got int"},
		{map[string]any{"keepalive": "soon"}, `keepalive: want a duration such as "10s" or a number of seconds, got "soon"`},
		{map[string]any{"keepalive": "0"}, "keepalive: want a positive duration, got 0"},
		{map[string]any{"stall_timeout": "-1s"}, "stall_timeout: want a positive duration, got -1s"},
		{map[string]any{"get_timeout": true}, `get_timeout: want a duration such as "10s", got bool`},
		{map[string]any{"put_timeout": "2m"}, "put_timeout: 2m0s is above the maximum 1m0s"},
		{map[string]any{"linger": "-1"}, "linger: want a positive duration, got -1"},
		{map[string]any{"queue_limit": 3}, "queue_limit: 3 is below the minimum 16"},
		{map[string]any{"queue_limit": 1.5}, "queue_limit: want an integer, got 1.5"},
		{map[string]any{"max_body_bytes": "big"}, `max_body_bytes: want an integer, got "big"`},
		{map[string]any{"max_body_bytes": []any{}}, "max_body_bytes: want an integer, got []interface {}"},
	} {
		if _, _, err := parseOptions(c.m); err == nil || err.Error() != c.want {
			t.Errorf("%v: %v, want %q", c.m, err, c.want)
		}
	}
}
