package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/pvhub/pvhub/ca/catest"
)

// wsClient is a browser stand-in on the ophyd-websocket endpoint.
type wsClient struct {
	t    *testing.T
	conn *websocket.Conn
	ctx  context.Context
}

func dialWS(t *testing.T, ctx context.Context, addr string) *wsClient {
	t.Helper()
	conn, _, err := websocket.Dial(ctx, "ws://"+addr+"/api/v1/pv-socket", nil)
	if err != nil {
		t.Fatalf("websocket dial: %v", err)
	}
	t.Cleanup(func() { _ = conn.CloseNow() })
	return &wsClient{t: t, conn: conn, ctx: ctx}
}

func (c *wsClient) send(msg map[string]any) {
	c.t.Helper()
	b, _ := json.Marshal(msg)
	if err := c.conn.Write(c.ctx, websocket.MessageText, b); err != nil {
		c.t.Fatal(err)
	}
}

// until reads messages until one satisfies match, failing after 15 s.
func (c *wsClient) until(what string, match func(map[string]any) bool) map[string]any {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, 15*time.Second)
	defer cancel()
	var seen []string
	for {
		_, b, err := c.conn.Read(ctx)
		if err != nil {
			c.t.Fatalf("waiting for %s: %v; seen %v", what, err, seen)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			c.t.Fatalf("bad JSON %q", b)
		}
		if match(m) {
			return m
		}
		seen = append(seen, string(b))
	}
}

func valueIs(pv string, v float64) func(map[string]any) bool {
	return func(m map[string]any) bool {
		f, ok := m["value"].(float64)
		return m["pv"] == pv && m["sub_type"] == nil && ok && f == v
	}
}

var pluginPID = regexp.MustCompile(`msg="transport plugin running" transport=websocket pid=(\d+)`)

func pluginPIDs(log string) []int {
	var out []int
	for _, m := range pluginPID.FindAllStringSubmatch(log, -1) {
		n, _ := strconv.Atoi(m[1])
		out = append(out, n)
	}
	return out
}

func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	return err == nil && !strings.Contains(string(b), ") Z ")
}

// TestIntegrationWebSocketPlugin runs pvhub serve with the WebSocket transport
// out of process: a browser stand-in sees a relay PV that a CA client writes,
// writes it back, and after a kill -9 of the plugin, which is restarted, new
// sockets work while the relay never noticed. No plugin process outlives pvhub.
func TestIntegrationWebSocketPlugin(t *testing.T) {
	wsPort := catest.FreePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(wsPort)
	r := newRelay(t,
		"PVHUB_TRANSPORTS__WEBSOCKET__ENABLED=true",
		"PVHUB_TRANSPORTS__WEBSOCKET__LISTEN="+addr)
	r.start()
	if err := r.proc.WaitForStderr(30*time.Second, `msg="transport plugin running" transport=websocket`); err != nil {
		t.Fatal(err)
	}
	ctx := r.ctx

	ws := dialWS(t, ctx, addr)
	ws.send(map[string]any{"action": "subscribe", "pv": "RELAY:ws_f1"})
	ws.until("the meta message", func(m map[string]any) bool { return m["sub_type"] == "meta" && m["pv"] == "RELAY:ws_f1" })
	r.putc("RELAY:ws_f1", "42.5") // a CA client's put
	ws.until("the CA client's value", valueIs("RELAY:ws_f1", 42.5))
	ws.send(map[string]any{"action": "set", "pv": "RELAY:ws_f1", "value": 7})
	ack := ws.until("the set's ack", func(m map[string]any) bool { return m["message"] != nil || m["error"] != nil })
	if ack["error"] != nil {
		t.Fatalf("set refused: %v", ack)
	}
	checkFloats(t, "after the browser's set", r.get("RELAY:ws_f1"), 7)

	// kill -9 the plugin: it comes back; the relay is unaffected.
	first := pluginPIDs(r.proc.Stderr())
	if len(first) != 1 {
		t.Fatalf("plugin pids %v", first)
	}
	if err := syscall.Kill(first[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	checkFloats(t, "during the plugin's restart", r.get("RELAY:ws_f1"), 7)
	deadline := time.Now().Add(10 * time.Second)
	for len(pluginPIDs(r.proc.Stderr())) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the plugin was not restarted")
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("plugin restarted %v after kill -9", time.Since(killed))
	var ws2 *wsClient
	for ws2 == nil && time.Now().Before(deadline) {
		if c, _, err := websocket.Dial(ctx, "ws://"+addr+"/api/v1/pv-socket", nil); err == nil {
			t.Cleanup(func() { _ = c.CloseNow() })
			ws2 = &wsClient{t: t, conn: c, ctx: ctx}
		} else {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if ws2 == nil {
		t.Fatal("no websocket after the restart")
	}
	ws2.send(map[string]any{"action": "subscribe", "pv": "RELAY:ws_f1"})
	ws2.until("the value after the restart", valueIs("RELAY:ws_f1", 7))
	r.putc("RELAY:ws_f1", "8")
	ws2.until("a new value after the restart", valueIs("RELAY:ws_f1", 8))

	pids := pluginPIDs(r.proc.Stderr())
	r.stop()
	for _, pid := range pids {
		deadline := time.Now().Add(5 * time.Second)
		for processAlive(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("plugin process %d outlived pvhub", pid)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}
