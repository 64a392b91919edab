package websocket_test

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	ws "github.com/coder/websocket"

	"github.com/pvhub/pvhub/plugins"
	"github.com/pvhub/pvhub/plugins/plugintest"
	"github.com/pvhub/pvhub/transports/websocket"
)

// TestConformanceOphyd runs the plugin conformance suite through the ophyd-websocket dialect.
func TestConformanceOphyd(t *testing.T) {
	plugintest.Run(t, conformanceFactory(websocket.OphydPath, ophyd))
}

// TestConformancePVWS runs the plugin conformance suite through the PVWS dialect.
func TestConformancePVWS(t *testing.T) {
	plugintest.Run(t, conformanceFactory(websocket.PVWSPath, pvws))
}

// TestConformanceNative runs the plugin conformance suite through pvhub's own dialect.
func TestConformanceNative(t *testing.T) {
	plugintest.Run(t, conformanceFactory(websocket.NativePath, native))
}

// conformanceFactory returns a plugintest.Factory for the transport, with clients speaking
// the dialect d at path.
func conformanceFactory(path string, d dialect) plugintest.Factory {
	return func(t *testing.T) (plugins.Transport, plugins.Config, plugintest.ClientFactory) {
		tr := websocket.New()
		cfg := plugins.Config{Name: "websocket", Options: map[string]any{"listen": "127.0.0.1:0"}}
		return tr, cfg, func(t *testing.T) plugintest.Client {
			t.Helper()
			return dialConformance(t, "ws://"+tr.(*websocket.Transport).Addr()+path, d)
		}
	}
}

// dialect says which browser protocol a conformance client speaks.
type dialect int

const (
	ophyd dialect = iota
	pvws
	native
)

// reply is an answer that is not an event: a put's result, an unsubscribe's acknowledgement,
// an echo.
type reply struct {
	msg map[string]any
}

// confClient is a plugintest.Client speaking one of the transport's dialects over a real
// WebSocket connection. One goroutine reads the socket and sorts what arrives into events
// and replies.
type confClient struct {
	c    *ws.Conn
	d    dialect
	done chan struct{}
	once sync.Once

	mu      sync.Mutex
	events  []plugintest.ClientEvent
	replies []reply
	ended   error
	changed chan struct{} // closed and replaced whenever events, replies or ended change
	state   map[string]int8
	seq     int
}

func dialConformance(t *testing.T, url string, d dialect) *confClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := ws.Dial(ctx, url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	c.SetReadLimit(64 << 20)
	cc := &confClient{c: c, d: d, done: make(chan struct{}), changed: make(chan struct{}), state: map[string]int8{}}
	go cc.read()
	return cc
}

func (c *confClient) read() {
	defer close(c.done)
	for {
		_, b, err := c.c.Read(context.Background())
		if err != nil {
			c.mu.Lock()
			c.ended = err
			c.signal()
			c.mu.Unlock()
			return
		}
		var m map[string]any
		if json.Unmarshal(b, &m) != nil {
			continue
		}
		c.mu.Lock()
		switch c.d {
		case ophyd:
			c.ophydMessage(m)
		case pvws:
			c.pvwsMessage(m)
		default:
			c.nativeMessage(m)
		}
		c.signal()
		c.mu.Unlock()
	}
}

// signal wakes the waiters; c.mu must be held.
func (c *confClient) signal() {
	close(c.changed)
	c.changed = make(chan struct{})
}

func (c *confClient) emit(e plugintest.ClientEvent) { c.events = append(c.events, e) }

// connection records the connection state of name and emits the transitions.
func (c *confClient) connection(name string, connected bool) {
	switch {
	case connected && c.state[name] != 1:
		c.state[name] = 1
		c.emit(plugintest.ClientEvent{Kind: plugintest.EventConnected, Name: name})
	case !connected && c.state[name] != -1:
		c.state[name] = -1
		c.emit(plugintest.ClientEvent{Kind: plugintest.EventDisconnected, Name: name})
	}
}

func (c *confClient) ophydMessage(m map[string]any) {
	name, _ := m["pv"].(string)
	conn, hasConn := m["connected"].(bool)
	switch {
	case m["sub_type"] == "meta" && name != "":
		c.connection(name, conn)
		if conn {
			units, _ := m["units"].(string)
			c.emit(plugintest.ClientEvent{Kind: plugintest.EventMetadata, Name: name, Units: units})
		}
	case name != "" && m["value"] != nil && m["action"] == nil:
		if hasConn {
			c.connection(name, conn)
		}
		c.emit(value(name, m["value"], nil))
	default:
		c.replies = append(c.replies, reply{m})
	}
}

func (c *confClient) pvwsMessage(m map[string]any) {
	name, _ := m["pv"].(string)
	if m["type"] != "update" || name == "" {
		c.replies = append(c.replies, reply{m})
		return
	}
	if conn, ok := m["connected"].(bool); ok {
		c.connection(name, conn)
		if !conn {
			return
		}
	}
	if m["vtype"] != nil {
		units, _ := m["units"].(string)
		c.emit(plugintest.ClientEvent{Kind: plugintest.EventMetadata, Name: name, Units: units})
	}
	switch {
	case m["b64dbl"] != nil:
		c.emit(value(name, nil, b64(m["b64dbl"], 8)))
	case m["b64flt"] != nil:
		c.emit(value(name, nil, b64(m["b64flt"], 4)))
	case m["b64int"] != nil:
		c.emit(value(name, nil, b64(m["b64int"], -4)))
	case m["b64srt"] != nil:
		c.emit(value(name, nil, b64(m["b64srt"], -2)))
	case m["value"] != nil:
		e := value(name, m["value"], nil)
		e.Text, _ = m["text"].(string)
		c.emit(e)
	case m["text"] != nil:
		c.emit(value(name, m["text"], nil))
	}
}

func (c *confClient) nativeMessage(m map[string]any) {
	name, _ := m["pv"].(string)
	switch m["type"] {
	case "connection":
		connected, _ := m["connected"].(bool)
		c.connection(name, connected)
	case "metadata":
		units, _ := m["units"].(string)
		c.emit(plugintest.ClientEvent{Kind: plugintest.EventMetadata, Name: name, Units: units})
	case "value":
		e := value(name, m["value"], nil)
		if s, ok := m["text"].(string); ok {
			e.Text = s
		}
		c.emit(e)
	default:
		c.replies = append(c.replies, reply{m})
	}
}

// value is the value event of a JSON value, or of floats decoded from a PVWS array.
func value(name string, v any, floats []float64) plugintest.ClientEvent {
	if floats != nil {
		return plugintest.ClientEvent{Kind: plugintest.EventValue, Name: name, Float64s: floats}
	}
	return plugintest.JSONValue(name, v)
}

// b64 decodes a PVWS base64 array of little-endian elements of size bytes (negative: signed
// integers of -size bytes).
func b64(v any, size int) []float64 {
	s, _ := v.(string)
	raw, _ := base64.StdEncoding.DecodeString(s)
	n := size
	if n < 0 {
		n = -n
	}
	out := []float64{}
	for i := 0; i+n <= len(raw); i += n {
		p := raw[i : i+n]
		switch size {
		case 8:
			out = append(out, math.Float64frombits(binary.LittleEndian.Uint64(p)))
		case 4:
			out = append(out, float64(math.Float32frombits(binary.LittleEndian.Uint32(p))))
		case -4:
			out = append(out, float64(int32(binary.LittleEndian.Uint32(p))))
		case -2:
			out = append(out, float64(int16(binary.LittleEndian.Uint16(p))))
		}
	}
	return out
}

func (c *confClient) send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.c.Write(ctx, ws.MessageText, b)
}

// awaitReply waits for the first reply that match accepts, and removes it.
func (c *confClient) awaitReply(match func(map[string]any) bool) (map[string]any, error) {
	deadline := time.After(15 * time.Second)
	for {
		c.mu.Lock()
		for i, r := range c.replies {
			if match(r.msg) {
				c.replies = append(c.replies[:i], c.replies[i+1:]...)
				c.mu.Unlock()
				return r.msg, nil
			}
		}
		ended, ch := c.ended, c.changed
		c.mu.Unlock()
		if ended != nil {
			return nil, ended
		}
		select {
		case <-ch:
		case <-deadline:
			return nil, errors.New("no reply within 15 s")
		}
	}
}

// Subscribe implements plugintest.Client.
func (c *confClient) Subscribe(name string) {
	if c.d == ophyd {
		c.send(map[string]any{"action": "subscribe", "pv": name})
	} else {
		c.send(map[string]any{"type": "subscribe", "pvs": []string{name}})
	}
}

// Unsubscribe implements plugintest.Client: ophyd acknowledges an unsubscribe; a PVWS clear
// is followed by an echo, answered once the clear is processed.
func (c *confClient) Unsubscribe(name string) {
	if c.d == ophyd {
		if c.send(map[string]any{"action": "unsubscribe", "pv": name}) != nil {
			return
		}
		c.awaitReply(func(m map[string]any) bool {
			return m["message"] == "Unsubscribed from "+name || m["message"] == "Not subscribed to "+name
		})
		return
	}
	if c.d == native {
		// A list request is answered after the unsubscribe is processed.
		if c.send(map[string]any{"type": "unsubscribe", "pvs": []string{name}}) != nil ||
			c.send(map[string]any{"type": "list"}) != nil {
			return
		}
		c.awaitReply(func(m map[string]any) bool { return m["type"] == "list" })
		return
	}
	c.mu.Lock()
	c.seq++
	body := fmt.Sprintf("sync %d", c.seq)
	c.mu.Unlock()
	if c.send(map[string]any{"type": "clear", "pvs": []string{name}}) != nil ||
		c.send(map[string]any{"type": "echo", "body": body}) != nil {
		return
	}
	c.awaitReply(func(m map[string]any) bool { return m["type"] == "echo" && m["body"] == body })
}

// Put implements plugintest.Client.
func (c *confClient) Put(name string, v plugins.Data) error {
	var val any
	switch v.Kind {
	case plugins.KindFloat64:
		val = v.Float64s
	case plugins.KindInt64:
		val = v.Int64s
	case plugins.KindString:
		val = v.Strings
	case plugins.KindBytes:
		val = string(v.Bytes)
	}
	if l, ok := val.([]float64); ok && len(l) == 1 {
		val = l[0]
	} else if l, ok := val.([]int64); ok && len(l) == 1 {
		val = l[0]
	} else if l, ok := val.([]string); ok && len(l) == 1 {
		val = l[0]
	}
	if c.d == ophyd {
		if err := c.send(map[string]any{"action": "set", "pv": name, "value": val}); err != nil {
			return err
		}
		m, err := c.awaitReply(func(m map[string]any) bool {
			s, _ := m["message"].(string)
			return m["error"] != nil || strings.HasPrefix(s, "Successfully set "+name+" to ")
		})
		if err != nil {
			return err
		}
		if e, ok := m["error"].(string); ok {
			return errors.New(e)
		}
		return nil
	}
	c.mu.Lock()
	c.seq++
	id := c.seq
	c.mu.Unlock()
	if c.d == native {
		if err := c.send(map[string]any{"type": "put", "pv": name, "value": val, "id": id}); err != nil {
			return err
		}
		m, err := c.awaitReply(func(m map[string]any) bool { return m["type"] == "put_result" && m["id"] == float64(id) })
		if err != nil {
			return err
		}
		if m["ok"] != true {
			s, _ := m["error"].(string)
			return errors.New(s)
		}
		return nil
	}
	if err := c.send(map[string]any{"type": "write", "pv": name, "value": val, "id": id}); err != nil {
		return err
	}
	m, err := c.awaitReply(func(m map[string]any) bool {
		return (m["type"] == "write" || m["type"] == "error") && m["pv"] == name
	})
	if err != nil {
		return err
	}
	if m["type"] == "error" {
		s, _ := m["message"].(string)
		return errors.New(s)
	}
	if m["ok"] != true || m["id"] != float64(id) {
		return fmt.Errorf("unexpected write answer %v", m)
	}
	return nil
}

// Next implements plugintest.Client.
func (c *confClient) Next(ctx context.Context) (plugintest.ClientEvent, error) {
	for {
		c.mu.Lock()
		if len(c.events) > 0 {
			e := c.events[0]
			c.events = c.events[1:]
			c.mu.Unlock()
			return e, nil
		}
		ended, ch := c.ended, c.changed
		c.mu.Unlock()
		if ended != nil {
			return plugintest.ClientEvent{}, ended
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return plugintest.ClientEvent{}, ctx.Err()
		}
	}
}

// Close implements plugintest.Client.
func (c *confClient) Close() {
	c.once.Do(func() {
		c.c.CloseNow()
		<-c.done
	})
}
