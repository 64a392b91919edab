package websocket

import (
	"testing"
	"time"

	"github.com/pvhub/pvhub/config"
)

func TestExampleConfig(t *testing.T) {
	c, err := config.Load(config.LoadOptions{File: "websocket.example.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	tc, ok := c.Transports["websocket"]
	if !ok {
		t.Fatal("no transports.websocket")
	}
	o, unknown, err := parseOptions(tc.Map())
	if err != nil {
		t.Fatal(err)
	}
	if len(unknown) > 0 {
		t.Errorf("unknown options %v", unknown)
	}
	if o.listen != "127.0.0.1:8080" || o.token != "change-me" || len(o.origins) != 3 || o.maxMessageBytes != 4<<20 ||
		o.queueLimit != 100000 || o.stallTimeout != 10*time.Second || o.putTimeout != 5*time.Second || o.connectTimeout != 5*time.Second {
		t.Errorf("options: %+v", o)
	}
	// Text values, as environment variables and flags give them.
	o, _, err = parseOptions(map[string]any{"allowed_origins": "a.example, b.example", "stall_timeout": "2", "queue_limit": "64"})
	if err != nil || len(o.origins) != 2 || o.stallTimeout != 2*time.Second || o.queueLimit != 64 {
		t.Errorf("text options: %+v %v", o, err)
	}
}
