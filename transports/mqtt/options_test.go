package mqtt

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pvhub/pvhub/config"
	"github.com/pvhub/pvhub/plugins"
)

func TestOptionsDefaults(t *testing.T) {
	o, unknown, err := parseOptions(map[string]any{"enabled": true, "listen": "127.0.0.1:1883"})
	if err != nil || len(unknown) > 0 {
		t.Fatalf("%v %v", err, unknown)
	}
	if o.broker != nil || o.listen != "127.0.0.1:1883" || o.prefix != "pvhub" || o.qos != 0 || !o.retain ||
		o.statusTopic != "pvhub/status" || o.putTimeout != 10*time.Second || !strings.HasPrefix(o.clientID, "pvhub-") {
		t.Errorf("defaults: %+v", o)
	}
}

func TestOptionsValues(t *testing.T) {
	o, unknown, err := parseOptions(map[string]any{
		"broker": "mqtts://broker.example", "username": "bl", "password": 1234.0, "ca_file": "/ca.pem",
		"cert_file": "/c.pem", "key_file": "/c.key", "client_id": "pvhub-bl1", "topic_prefix": "bl1/pvs",
		"qos": "1", "retain": "false", "publish": "RELAY:*, IOC:temp SR:*:current", "status_topic": "bl1/pvhub",
		"put_timeout": "2s", "colour": "blue"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(unknown, []string{"colour"}) {
		t.Errorf("unknown %v", unknown)
	}
	if o.broker.String() != "mqtts://broker.example:8883" || !o.tls || o.password != "1234" || o.prefix != "bl1/pvs" ||
		o.qos != 1 || o.retain || o.statusTopic != "bl1/pvhub" || o.putTimeout != 2*time.Second || o.clientID != "pvhub-bl1" ||
		!slices.Equal(o.literal, []string{"IOC:temp"}) || !slices.Equal(o.patterns, []string{"RELAY:*", "SR:*:current"}) {
		t.Errorf("options: %+v", o)
	}
	for in, want := range map[string]string{"tcp://h": "mqtt://h:1883", "mqtt://h:1884": "mqtt://h:1884",
		"ssl://[::1]": "mqtts://[::1]:8883", "TLS://h:9": "mqtts://h:9"} {
		o, _, err := parseOptions(map[string]any{"broker": in})
		if err != nil || o.broker.String() != want {
			t.Errorf("broker %q: %v %v, want %s", in, o.broker, err, want)
		}
	}
	o, _, err = parseOptions(map[string]any{"status_topic": nil, "publish": []any{"A:b", "C:*"}})
	if err != nil || o.statusTopic != "" || !slices.Equal(o.literal, []string{"A:b"}) {
		t.Errorf("no status topic: %+v %v", o, err)
	}
}

func TestOptionsErrors(t *testing.T) {
	for _, tc := range []struct {
		opts map[string]any
		want string
	}{
		{map[string]any{"listen": "nohost"}, `listen: "nohost" is not a host:port address`},
		{map[string]any{"listen": 5}, `listen: "5" is not a host:port address`},
		{map[string]any{"broker": "broker.example:1883"}, `broker: "broker.example:1883" has the unsupported scheme "broker.example"`},
		{map[string]any{"broker": "ws://h"}, `has the unsupported scheme "ws"`},
		{map[string]any{"broker": "mqtt://"}, `has no host`},
		{map[string]any{"broker": "mqtt://u:p@h"}, `credentials (set username and password as options)`},
		{map[string]any{"broker": "mqtt://h:99999"}, `has a bad port`},
		{map[string]any{"broker": "h"}, `has no scheme`},
		{map[string]any{"cert_file": "/c.pem"}, `cert_file and key_file: set both`},
		{map[string]any{"broker": "mqtt://h", "ca_file": "/ca.pem"}, `TLS options need a TLS broker URL`},
		{map[string]any{"ca_file": "/ca.pem"}, `ca_file: the embedded broker verifies client certificates with ca_file only when it serves TLS`},
		{map[string]any{"topic_prefix": "a/+"}, `topic_prefix: "a/+" contains an MQTT wildcard`},
		{map[string]any{"topic_prefix": "a/"}, `starts or ends with /`},
		{map[string]any{"topic_prefix": "$SYS"}, `reserved for brokers`},
		{map[string]any{"topic_prefix": ""}, `topic_prefix: "" is empty`},
		{map[string]any{"qos": 2}, `qos: 2 is not supported: use 0 (at most once) or 1 (at least once)`},
		{map[string]any{"qos": "one"}, `qos: want an integer, got "one"`},
		{map[string]any{"retain": "perhaps"}, `retain: want true or false, got "perhaps"`},
		{map[string]any{"publish": []any{"A:[b"}}, `publish: bad pattern "A:[b"`},
		{map[string]any{"publish": 3.0}, `publish: want a list of strings`},
		{map[string]any{"status_topic": "s/#"}, `status_topic: "s/#" contains an MQTT wildcard`},
		{map[string]any{"put_timeout": "-1s"}, `put_timeout: want a positive duration`},
		{map[string]any{"password": []any{}}, `password: want a string`},
	} {
		_, _, err := parseOptions(tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want %q", tc.opts, err, tc.want)
		}
	}
}

// TestStartErrors: Start reports bad options, a busy listen address and unreadable TLS
// files, and logs unknown options.
func TestStartErrors(t *testing.T) {
	first := startEnv(t, nil)
	start := func(opts map[string]any, logs *logBuffer) error {
		tr := New()
		defer tr.Close()
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		l := slog.New(slog.DiscardHandler)
		if logs != nil {
			l = slog.New(slog.NewTextHandler(logs, nil))
		}
		return tr.Start(ctx, plugins.Config{Name: "mqtt", Options: opts, Logger: l}, first.h)
	}
	for _, tc := range []struct {
		opts map[string]any
		want string
	}{
		{map[string]any{"qos": 3}, "mqtt: qos: 3 is not supported"},
		{map[string]any{"listen": first.tr.Addr()}, "mqtt: cannot listen on \"" + first.tr.Addr() + "\""},
		{map[string]any{"listen": "127.0.0.1:0", "cert_file": "/nonexistent.pem", "key_file": "/nonexistent.key"}, "mqtt: cert_file and key_file: open /nonexistent.pem"},
		{map[string]any{"broker": "mqtts://127.0.0.1:1", "ca_file": "/nonexistent.pem"}, "mqtt: ca_file: open /nonexistent.pem"},
	} {
		if err := start(tc.opts, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.opts, err, tc.want)
		}
	}
	logs := &logBuffer{}
	if err := start(map[string]any{"listen": "127.0.0.1:0", "colour": "blue", "publish": "bad#name, RELAY:*"}, logs); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`msg="unknown mqtt option ignored" key=colour`,
		`msg="PV not published to MQTT: its name cannot be part of a topic" pv=bad#name`,
		`publish patterns with wildcards match relay PV names, and the relay is disabled`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, logs.String())
		}
	}
}

// TestExampleConfig parses the sample configuration.
func TestExampleConfig(t *testing.T) {
	c, err := config.Load(config.LoadOptions{File: "mqtt.example.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	tc, ok := c.Transports["mqtt"]
	if !ok {
		t.Fatal("no transports.mqtt")
	}
	o, unknown, err := parseOptions(tc.Map())
	if err != nil {
		t.Fatal(err)
	}
	if len(unknown) > 0 {
		t.Errorf("unknown options %v", unknown)
	}
	if o.listen != "127.0.0.1:1883" || o.broker != nil || o.prefix != "pvhub" || o.qos != 0 || !o.retain ||
		!slices.Equal(o.patterns, []string{"RELAY:*"}) || !slices.Equal(o.literal, []string{"SR:current"}) ||
		o.statusTopic != "pvhub/status" || o.putTimeout != 10*time.Second {
		t.Errorf("options: %+v", o)
	}
}
