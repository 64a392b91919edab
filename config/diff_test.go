package config

import (
	"reflect"
	"testing"
)

func TestDiff(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   []Change
	}{
		{"nothing", func(*Config) {}, nil},
		{"write rules", func(c *Config) {
			c.Write.Allow = []string{"RELAY:*", "BL:*"}
			c.Write.Deny = []string{"SR:*"}
		}, []Change{
			{Key: "write.allow", Old: `["RELAY:*"]`, New: `["RELAY:*","BL:*"]`, Reloadable: true},
			{Key: "write.deny", Old: `[]`, New: `["SR:*"]`, Reloadable: true},
		}},
		{"transport disabled", func(c *Config) {
			c.Transports["mqtt"] = TransportConfig{Enabled: false, Listen: "127.0.0.1:1883"}
		}, []Change{{Key: "transports.mqtt.enabled", Old: "true", New: "false", Reloadable: true}}},
		{"restart needed", func(c *Config) {
			c.Relay.Prefix = "R2:"
			c.CA.ServerPort = 6064
			c.Relay.Autosave.Period = 0
			c.Log.Level = "debug"
		}, []Change{
			{Key: "relay.prefix", Old: `"RELAY:"`, New: `"R2:"`},
			{Key: "relay.autosave.period", Old: "30s", New: "0s"},
			{Key: "ca.server_port", Old: "5064", New: "6064"},
			{Key: "log.level", Old: `"info"`, New: `"debug"`},
		}},
		{"listen of a running transport", func(c *Config) {
			c.Transports["sse"] = TransportConfig{Enabled: true, Listen: "0.0.0.0:8081", Options: map[string]any{"cors": "*"}}
		}, []Change{
			{Key: "transports.sse.listen", Old: `"127.0.0.1:8081"`, New: `"0.0.0.0:8081"`},
			{Key: "transports.sse.cors", New: `"*"`},
		}},
		{"listen of a transport being enabled", func(c *Config) {
			c.Transports["mine"] = TransportConfig{Enabled: true, Path: "/bin/mine", Listen: "127.0.0.1:9000"}
		}, []Change{
			{Key: "transports.mine.enabled", New: "true", Reloadable: true},
			{Key: "transports.mine.listen", New: `"127.0.0.1:9000"`, Reloadable: true},
			{Key: "transports.mine.path", New: `"/bin/mine"`, Reloadable: true},
		}},
		{"transport removed", func(c *Config) { delete(c.Transports, "websocket") }, []Change{
			{Key: "transports.websocket.enabled", Old: "true", Reloadable: true},
			{Key: "transports.websocket.listen", Old: `"127.0.0.1:8080"`, Reloadable: true},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old, new := Default(), Default()
			tc.change(new)
			if got := Diff(old, new); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Diff =\n%v\nwant\n%v", got, tc.want)
			}
		})
	}
}

func TestReloadable(t *testing.T) {
	c := Default()
	for key, want := range map[string]bool{
		"write.allow":                true,
		"write.deny":                 true,
		"transports.mqtt.enabled":    true,
		"transports.mine.enabled":    true,
		"transports.mqtt.listen":     false,
		"transports.mqtt.x.enabled":  false,
		"transports..enabled":        false,
		"relay.prefix":               false,
		"relay.enabled":              false,
		"ca.server_port":             false,
		"log.level":                  false,
		"write":                      false,
		"transports.websocket.path":  false,
		"transports.websocket.topic": false,
	} {
		if got := c.Reloadable(key); got != want {
			t.Errorf("Reloadable(%q) = %v, want %v", key, got, want)
		}
	}
}

func TestChangeString(t *testing.T) {
	for _, tc := range []struct {
		c    Change
		want string
	}{
		{Change{Key: "relay.prefix", Old: `"A:"`, New: `"B:"`}, `relay.prefix: "A:" -> "B:" (needs a restart)`},
		{Change{Key: "transports.x.enabled", New: "true", Reloadable: true}, `transports.x.enabled: (none) -> true (applied live)`},
	} {
		if got := tc.c.String(); got != tc.want {
			t.Errorf("String() = %s, want %s", got, tc.want)
		}
	}
}
