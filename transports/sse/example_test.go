package sse

import (
	"testing"
	"time"

	"github.com/pvhub/pvhub/config"
)

func TestExampleConfig(t *testing.T) {
	c, err := config.Load(config.LoadOptions{File: "sse.example.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	tc, ok := c.Transports["sse"]
	if !ok {
		t.Fatal("no transports.sse")
	}
	o, unknown, err := parseOptions(tc.Map())
	if err != nil {
		t.Fatal(err)
	}
	if len(unknown) > 0 {
		t.Errorf("unknown options %v", unknown)
	}
	want := options{listen: "127.0.0.1:8081", origins: []string{"http://localhost:*", "https://*.beamline.example"}, token: "change-me",
		keepalive: 15 * time.Second, queueLimit: 100000, stallTimeout: 10 * time.Second, getTimeout: 5 * time.Second,
		putTimeout: 5 * time.Second, maxBodyBytes: 1 << 20, linger: 2 * time.Second}
	if !equalOptions(o, want) {
		t.Errorf("options %+v, want %+v", o, want)
	}
}
