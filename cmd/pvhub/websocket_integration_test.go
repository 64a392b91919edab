package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/pvhub/pvhub/ca/catest"
	"github.com/pvhub/pvhub/ca/server"
	"github.com/pvhub/pvhub/ca/wire"
)

// wsClient is a browser stand-in on one of the WebSocket endpoints.
type wsClient struct {
	t    *testing.T
	conn *websocket.Conn
	ctx  context.Context
	// backlog holds the messages received and not yet matched, in order. The
	// transport orders the messages of one PV, not those of different PVs.
	backlog []map[string]any
}

// dialWS opens a socket on the ophyd-websocket endpoint; dialWSPath on another.
func dialWS(t *testing.T, ctx context.Context, addr string) *wsClient {
	t.Helper()
	return dialWSPath(t, ctx, addr, "/api/v1/pv-socket")
}

func dialWSPath(t *testing.T, ctx context.Context, addr, path string) *wsClient {
	t.Helper()
	conn, _, err := websocket.Dial(ctx, "ws://"+addr+path, nil)
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

// until returns the first message, in the backlog or read from the socket, that
// satisfies match, failing after 15 s. The messages of the same PV that came
// before it are dropped from the backlog: a later until sees only what came
// after, for that PV.
func (c *wsClient) until(what string, match func(map[string]any) bool) map[string]any {
	c.t.Helper()
	// take returns m, the message matched at backlog index at (len(backlog) for
	// a message just read), and drops it and the earlier ones of its PV.
	take := func(m map[string]any, at int) map[string]any {
		kept := c.backlog[:0]
		for j, b := range c.backlog {
			if j < at && fmt.Sprint(b["pv"]) != fmt.Sprint(m["pv"]) || j > at {
				kept = append(kept, b)
			}
		}
		c.backlog = kept
		return m
	}
	for i, m := range c.backlog {
		if match(m) {
			return take(m, i)
		}
	}
	ctx, cancel := context.WithTimeout(c.ctx, 15*time.Second)
	defer cancel()
	for {
		_, b, err := c.conn.Read(ctx)
		if err != nil {
			c.t.Fatalf("waiting for %s: %v; unmatched messages: %v", what, err, c.backlog)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			c.t.Fatalf("bad JSON %q", b)
		}
		if match(m) {
			return take(m, len(c.backlog))
		}
		c.backlog = append(c.backlog, m)
		if len(c.backlog) > 10000 {
			c.backlog = c.backlog[1:]
		}
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

	// The metrics and health endpoints saw it all.
	if code, body := httpGet(t, "http://"+r.metrics+"/readyz"); code != 200 || body != "ready\n" {
		t.Errorf("/readyz: %d %q", code, body)
	}
	if code, body := httpGet(t, "http://"+r.metrics+"/healthz"); code != 200 {
		t.Errorf("/healthz: %d %q", code, body)
	}
	_, body := httpGet(t, "http://"+r.metrics+"/metrics")
	for _, want := range []string{`pvhub_plugin_restarts_total{transport="websocket"} 1`, "pvhub_relay_pvs 1",
		`pvhub_subscriptions{transport="websocket"} 1`, `pvhub_ca_circuits{side="server"}`} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

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

// iocStandIn is our CA server serving two PVs on a port of its own, as an IOC
// would: IOC:temp (a double with units, precision and limits), IOC:wave (four
// longs) and IOC:mode (an enum, Off/On). Stop and start it to make the daemon's channels disconnect and
// reconnect; the PVs keep their values.
type iocStandIn struct {
	t     *testing.T
	port  int
	table *server.Table
	srv   *server.Server
}

func newIOCStandIn(t *testing.T) *iocStandIn {
	t.Helper()
	temp, err := server.NewPV("IOC:temp", server.PVOptions{Type: wire.DBRDouble, Count: 1,
		Value: wire.Value{Type: wire.DBRDouble, Doubles: []float64{20.5}},
		Meta:  wire.Metadata{Units: "degC", Precision: 1, Limits: wire.Limits{LowerCtrl: -50, UpperCtrl: 150, LowerDisp: -50, UpperDisp: 150}}})
	if err != nil {
		t.Fatal(err)
	}
	wave, err := server.NewPV("IOC:wave", server.PVOptions{Type: wire.DBRLong, Count: 4,
		Value: wire.Value{Type: wire.DBRLong, Longs: []int32{1, 2, 3, 4}}})
	if err != nil {
		t.Fatal(err)
	}
	mode, err := server.NewPV("IOC:mode", server.PVOptions{Type: wire.DBREnum, Count: 1,
		Value: wire.Value{Type: wire.DBREnum, Enums: []uint16{1}}, Meta: wire.Metadata{EnumStrings: []string{"Off", "On"}}})
	if err != nil {
		t.Fatal(err)
	}
	ioc := &iocStandIn{t: t, port: catest.FreePort(t), table: server.NewTable(temp, wave, mode)}
	ioc.start()
	t.Cleanup(ioc.stop)
	return ioc
}

func (i *iocStandIn) start() {
	i.t.Helper()
	srv, err := server.New(server.Config{Source: i.table, Port: i.port, BeaconPort: catest.FreePort(i.t),
		Logger: slog.New(slog.DiscardHandler)})
	if err == nil {
		err = srv.Start(context.Background())
	}
	if err != nil {
		i.t.Fatalf("IOC stand-in on port %d: %v", i.port, err)
	}
	i.srv = srv
}

func (i *iocStandIn) stop() {
	if i.srv != nil {
		_ = i.srv.Close()
		i.srv = nil
	}
}

func (i *iocStandIn) post(name string, v float64) {
	i.t.Helper()
	if err := i.table.Get(name).Post(wire.Value{Type: wire.DBRDouble, Doubles: []float64{v}}, server.Alarm{}, wire.Timestamp{}); err != nil {
		i.t.Fatal(err)
	}
}

// has matches a message whose key holds want (numbers compare as float64).
func has(key string, want any) func(map[string]any) bool {
	return func(m map[string]any) bool { return fmt.Sprint(m[key]) == fmt.Sprint(want) }
}

func and(fs ...func(map[string]any) bool) func(map[string]any) bool {
	return func(m map[string]any) bool {
		for _, f := range fs {
			if !f(m) {
				return false
			}
		}
		return true
	}
}

// TestIntegrationWebSocketIOC runs pvhub serve with the WebSocket plugin out of
// process and an IOC stand-in: an ophyd-websocket and a PVWS client subscribe to
// the IOC's PVs and to a relay PV, see the IOC's values, write where write.allow
// lets them (and get an error naming the rule where it does not), see the IOC
// stop (disconnection reported at once) and come back (metadata and value
// again), while the relay PV carries on.
func TestIntegrationWebSocketIOC(t *testing.T) {
	ioc := newIOCStandIn(t)
	addr := "127.0.0.1:" + strconv.Itoa(catest.FreePort(t))
	r := newRelay(t,
		"PVHUB_TRANSPORTS__WEBSOCKET__ENABLED=true",
		"PVHUB_TRANSPORTS__WEBSOCKET__LISTEN="+addr,
		"PVHUB_CA__ADDR_LIST=127.0.0.1:"+strconv.Itoa(ioc.port),
		"PVHUB_WRITE__ALLOW=RELAY:* IOC:temp")
	r.start()
	if err := r.proc.WaitForStderr(30*time.Second, `msg="transport plugin running" transport=websocket`); err != nil {
		t.Fatal(err)
	}
	ctx := r.ctx
	r.putc("RELAY:e2e_f1", "1")

	oph := dialWS(t, ctx, addr)
	oph.send(map[string]any{"action": "subscribe", "pvs": []string{"IOC:temp", "IOC:wave", "RELAY:e2e_f1"}})
	meta := oph.until("IOC:temp's metadata", and(has("pv", "IOC:temp"), has("sub_type", "meta"), has("units", "degC")))
	if meta["precision"] != 1.0 || meta["connected"] != true || meta["upper_ctrl_limit"] != 150.0 || meta["write_access"] != true {
		t.Errorf("ophyd meta of IOC:temp: %v", meta)
	}
	oph.until("IOC:temp's value", valueIs("IOC:temp", 20.5))
	wave := oph.until("IOC:wave's value", and(has("pv", "IOC:wave"), has("value", []any{1, 2, 3, 4})))
	if wave["sub_type"] != nil {
		t.Errorf("ophyd IOC:wave: %v", wave)
	}
	oph.until("the relay PV's value", valueIs("RELAY:e2e_f1", 1))

	pv := dialWSPath(t, ctx, addr, "/pvws/pv")
	pv.send(map[string]any{"type": "subscribe", "pvs": []string{"IOC:temp", "IOC:wave", "RELAY:e2e_f1"}})
	first := pv.until("IOC:temp's first update", and(has("pv", "IOC:temp"), has("type", "update"), has("value", 20.5)))
	if first["vtype"] != "VDouble" || first["units"] != "degC" || first["precision"] != 1.0 || first["readonly"] != false {
		t.Errorf("PVWS first update of IOC:temp: %v", first)
	}
	// Four little-endian int32: 1, 2, 3, 4.
	pv.until("IOC:wave's update", and(has("pv", "IOC:wave"), has("b64int", "AQAAAAIAAAADAAAABAAAAA==")))
	pv.until("the relay PV's update", and(has("pv", "RELAY:e2e_f1"), has("value", 1)))

	// The IOC's updates reach both.
	ioc.post("IOC:temp", 31)
	oph.until("the IOC's update", valueIs("IOC:temp", 31))
	pv.until("the IOC's update", and(has("pv", "IOC:temp"), has("value", 31)))

	// Writes: allowed to IOC:temp and the relay, denied to IOC:wave with the rule named.
	oph.send(map[string]any{"action": "set", "pv": "IOC:temp", "value": 12.5})
	oph.until("the set's ack", has("message", "Successfully set IOC:temp to 12.5"))
	if got := ioc.table.Get("IOC:temp").Snapshot().Value.Doubles[0]; got != 12.5 {
		t.Errorf("IOC:temp after the ophyd set: %v", got)
	}
	pv.until("the written value", and(has("pv", "IOC:temp"), has("value", 12.5)))
	oph.send(map[string]any{"action": "set", "pv": "IOC:wave", "value": []int{5, 6, 7, 8}})
	denied := oph.until("the denied set", func(m map[string]any) bool { return strings.Contains(fmt.Sprint(m["error"]), "IOC:wave") })
	if e := denied["error"]; e != "Write access is not enabled for PV IOC:wave. Cannot set value: write denied by no write.allow pattern matches." {
		t.Errorf("ophyd set of IOC:wave: %q", e)
	}
	pv.send(map[string]any{"type": "write", "pv": "IOC:wave", "value": []int{5, 6, 7, 8}, "id": 3})
	if e := pv.until("the denied write", has("type", "error")); e["message"] != "Cannot write PV IOC:wave: write denied by no write.allow pattern matches" {
		t.Errorf("PVWS write of IOC:wave: %v", e)
	}
	pv.send(map[string]any{"type": "write", "pv": "RELAY:e2e_f1", "value": 3, "id": 4})
	pv.until("the write's ack", and(has("type", "write"), has("ok", true), has("id", 4)))
	checkFloats(t, "RELAY:e2e_f1 after the PVWS write", r.get("RELAY:e2e_f1"), 3)
	oph.until("the PVWS client's write", valueIs("RELAY:e2e_f1", 3))

	// The IOC stops: both clients are told at once.
	ioc.stop()
	stopped := time.Now()
	oph.until("the disconnection", and(has("pv", "IOC:temp"), has("sub_type", "meta"), has("connected", false)))
	pv.until("the disconnection", and(has("pv", "IOC:temp"), has("connected", false), has("severity", "UNDEFINED")))
	t.Logf("IOC stop reported to both clients after %v", time.Since(stopped))
	oph.send(map[string]any{"action": "set", "pv": "IOC:temp", "value": 1})
	if e := oph.until("the set while disconnected", func(m map[string]any) bool { return m["error"] != nil || m["message"] != nil }); e["error"] == nil {
		t.Errorf("a set while the IOC is down was acknowledged: %v", e)
	}
	// The relay carries on meanwhile.
	r.putc("RELAY:e2e_f1", "4")
	oph.until("a relay update while the IOC is down", valueIs("RELAY:e2e_f1", 4))
	pv.until("a relay update while the IOC is down", and(has("pv", "RELAY:e2e_f1"), has("value", 4)))

	// The IOC returns: metadata and value again, in both dialects.
	ioc.start()
	restarted := time.Now()
	again := oph.until("the metadata after the reconnection", and(has("pv", "IOC:temp"), has("sub_type", "meta"), has("connected", true), has("units", "degC")))
	if again["precision"] != 1.0 {
		t.Errorf("ophyd meta after the reconnection: %v", again)
	}
	oph.until("the value after the reconnection", valueIs("IOC:temp", 12.5))
	back := pv.until("the update after the reconnection", and(has("pv", "IOC:temp"), has("connected", true), has("value", 12.5)))
	if back["vtype"] != "VDouble" || back["units"] != "degC" || back["severity"] != "NONE" {
		t.Errorf("PVWS update after the reconnection: %v", back)
	}
	t.Logf("IOC return reported to both clients after %v", time.Since(restarted))
	ioc.post("IOC:temp", 22)
	oph.until("an update after the reconnection", valueIs("IOC:temp", 22))
	pv.until("an update after the reconnection", and(has("pv", "IOC:temp"), has("value", 22)))
	r.stop()
}

// httpGet returns the status and body of a GET of url.
func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
