package mqtt

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pvhub/pvhub/plugins"
	"github.com/pvhub/pvhub/plugins/plugintest"
)

// TestConformance runs the plugin conformance suite through the embedded broker, with MQTT 5
// clients subscribing to PV topics and writing through set topics.
func TestConformance(t *testing.T) {
	plugintest.Run(t, func(t *testing.T) (plugins.Transport, plugins.Config, plugintest.ClientFactory) {
		tr := newTransport()
		cfg := plugins.Config{Name: "mqtt", Options: map[string]any{"listen": "127.0.0.1:0"}, RelayPrefix: "RELAY:"}
		var n atomic.Int32
		return tr, cfg, func(t *testing.T) plugintest.Client {
			t.Helper()
			return &confClient{c: dialClient(t, tr.Addr(), fmt.Sprintf("conformance-%d", n.Add(1))),
				seen: map[string]*seenPV{}, results: map[string]bool{}}
		}
	})
}

// confClient is a plugintest.Client over MQTT: it subscribes to PV topics, and turns each
// state message into the events it implies (connected or disconnected when the connection
// changed, metadata when it changed, the value when it changed).
type confClient struct {
	c       *testClient
	seen    map[string]*seenPV
	events  []plugintest.ClientEvent
	results map[string]bool // result topics subscribed
	id      uint64
}

type seenPV struct {
	known, connected bool
	meta, value      string
}

func (c *confClient) Subscribe(name string) { _ = c.c.subscribe("pvhub/" + name) }

func (c *confClient) Unsubscribe(name string) { _ = c.c.unsubscribe("pvhub/" + name) }

// Put writes {"value": v, "id": n} and waits for the result with id n; the state messages
// that arrive meanwhile become events for Next.
func (c *confClient) Put(name string, v plugins.Data) error {
	topic := "pvhub/" + name + "/set/result"
	if !c.results[topic] {
		if err := c.c.subscribe(topic); err != nil {
			return err
		}
		c.results[topic] = true
	}
	c.id++
	id := c.id
	var val string
	switch v.Kind {
	case plugins.KindFloat64:
		val = strconv.FormatFloat(v.Float64s[0], 'g', -1, 64)
	case plugins.KindInt64:
		val = strconv.FormatInt(v.Int64s[0], 10)
	default:
		return fmt.Errorf("the conformance client writes numbers only, not %v", v.Kind)
	}
	if err := c.c.publish("pvhub/"+name+"/set", fmt.Appendf(nil, `{"value":%s,"id":%d}`, val, id), 1, nil); err != nil {
		return err
	}
	for {
		m, err := c.c.await(context.Background(), waitTimeout, func(message) bool { return true })
		if err != nil {
			return err
		}
		if m.topic != topic {
			c.process(m)
			continue
		}
		r := m.json()
		if r["id"] != float64(id) {
			continue
		}
		if r["ok"] == true {
			return nil
		}
		return fmt.Errorf("put refused: %v", r["error"])
	}
}

// Next implements plugintest.Client.
func (c *confClient) Next(ctx context.Context) (plugintest.ClientEvent, error) {
	for len(c.events) == 0 {
		m, err := c.c.await(ctx, time.Hour, func(message) bool { return true })
		if err != nil {
			return plugintest.ClientEvent{}, err
		}
		c.process(m)
	}
	e := c.events[0]
	c.events = c.events[1:]
	return e, nil
}

func (c *confClient) Close() { c.c.Close() }

func (c *confClient) emit(e plugintest.ClientEvent) { c.events = append(c.events, e) }

func (c *confClient) process(m message) {
	name, ok := strings.CutPrefix(m.topic, "pvhub/")
	if !ok || strings.HasSuffix(name, "/set/result") || len(m.payload) == 0 {
		return
	}
	v := m.json()
	if v == nil {
		return
	}
	s := c.seen[name]
	if s == nil {
		s = &seenPV{}
		c.seen[name] = s
	}
	conn, _ := v["connected"].(bool)
	if !s.known || conn != s.connected {
		s.known, s.connected, s.meta, s.value = true, conn, "", ""
		kind := plugintest.EventDisconnected
		if conn {
			kind = plugintest.EventConnected
		}
		c.emit(plugintest.ClientEvent{Kind: kind, Name: name})
	}
	if !conn {
		return
	}
	if v["native_type"] != nil {
		key := fmt.Sprint(v["native_type"], v["count"], v["units"], v["precision"], v["display"], v["control"],
			v["warning"], v["alarm"], v["enum_labels"])
		if key != s.meta {
			s.meta = key
			units, _ := v["units"].(string)
			c.emit(plugintest.ClientEvent{Kind: plugintest.EventMetadata, Name: name, Units: units})
		}
	}
	if val, ok := v["value"]; ok {
		key := fmt.Sprint(val, v["seconds"], v["nanos"], v["status"], v["severity"])
		if key != s.value {
			s.value = key
			c.emit(plugintest.JSONValue(name, val))
		}
	}
}
