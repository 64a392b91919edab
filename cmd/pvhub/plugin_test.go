package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/pvhub/pvhub/config"
	"github.com/pvhub/pvhub/plugins"
	"github.com/pvhub/pvhub/plugins/plugintest/echotransport"
)

func TestPluginUsage(t *testing.T) {
	var errb bytes.Buffer
	if code := pluginCmd(nil, &errb); code != 2 || !strings.Contains(errb.String(), "Usage: pvhub plugin NAME") {
		t.Errorf("no name: %d %q", code, errb.String())
	}
	errb.Reset()
	if code := pluginCmd([]string{"nosuch"}, &errb); code != 2 || !strings.Contains(errb.String(), `no built-in transport "nosuch"`) {
		t.Errorf("unknown name: %d %q", code, errb.String())
	}
}

// TestTransportOptions maps the configured transports: a path runs that
// program, a built-in runs `pvhub plugin <name>`, a disabled one is left
// out, and an enabled one this build lacks is reported.
func TestTransportOptions(t *testing.T) {
	cfg, err := config.Load(config.LoadOptions{Flags: map[string]string{
		"transports.sse.enabled":    "false",
		"transports.mqtt.enabled":   "true",
		"transports.custom.path":    "/opt/bin/mytransport",
		"transports.custom.listen":  "127.0.0.1:9000",
		"transports.custom.colour":  "blue",
		"transports.websocket.path": "",
	}})
	if err != nil {
		t.Fatal(err)
	}
	reg := plugins.NewRegistry()
	_ = reg.Register("websocket", func() plugins.Transport { return echotransport.New() })
	var logs bytes.Buffer
	opts, err := transportOptions(cfg, reg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, o := range opts {
		got[o.Name] = o.Command().Args
	}
	if a := got["custom"]; len(a) != 1 || a[0] != "/opt/bin/mytransport" {
		t.Errorf("custom: %v", a)
	}
	if a := got["websocket"]; len(a) != 3 || a[1] != "plugin" || a[2] != "websocket" {
		t.Errorf("websocket: %v", a)
	}
	if _, ok := got["sse"]; ok {
		t.Error("a disabled transport is started")
	}
	if !strings.Contains(logs.String(), "mqtt") || !strings.Contains(logs.String(), "not started") {
		t.Errorf("the missing mqtt transport is not reported: %s", logs.String())
	}
	for _, o := range opts {
		if o.Name == "custom" && o.Options["colour"] != "blue" {
			t.Errorf("custom options %v", o.Options)
		}
	}
}
