package websocket

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/pvhub/pvhub/plugins"
	"github.com/pvhub/pvhub/plugins/plugintest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// countingTransport wraps the transport to count the host's Subscribe calls per name.
type countingTransport struct {
	*Transport
	mu   sync.Mutex
	subs map[string]int
}

type countingHost struct {
	plugins.Host
	ct *countingTransport
}

func (h countingHost) Subscribe(names ...string) {
	h.ct.mu.Lock()
	for _, n := range names {
		h.ct.subs[n]++
	}
	h.ct.mu.Unlock()
	h.Host.Subscribe(names...)
}

func (ct *countingTransport) Start(ctx context.Context, cfg plugins.Config, host plugins.Host) error {
	return ct.Transport.Start(ctx, cfg, countingHost{host, ct})
}

func (ct *countingTransport) count(name string) int {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	return ct.subs[name]
}

type fixture struct {
	t  *testing.T
	tr *countingTransport
	h  *plugintest.Harness
}

func start(t *testing.T, opts map[string]any) *fixture {
	t.Helper()
	ct := &countingTransport{Transport: newTransport(), subs: map[string]int{}}
	h := plugintest.NewHarness(ct)
	if opts == nil {
		opts = map[string]any{}
	}
	if _, ok := opts["listen"]; !ok {
		opts["listen"] = "127.0.0.1:0"
	}
	h.AddPV(plugins.Metadata{Name: "A", Type: plugins.TypeDouble, Count: 1, Units: "mm", Precision: 3,
		Display: plugins.Range{Low: -10, High: 10}, Control: plugins.Range{Low: -100, High: 100}},
		plugins.Value{Data: plugins.Float64s(1.5), Seconds: 1000, Nanos: 5, Status: "NO_ALARM", Severity: "NO_ALARM"}, true)
	h.AddPV(plugins.Metadata{Name: "RO", Type: plugins.TypeLong, Count: 1},
		plugins.Value{Data: plugins.Int64s(7), Status: "NO_ALARM", Severity: "NO_ALARM"}, false)
	h.AddPV(plugins.Metadata{Name: "E", Type: plugins.TypeEnum, Count: 1, EnumLabels: []string{"Off", "On"}},
		plugins.Value{Data: plugins.Int64s(1), Status: "NO_ALARM", Severity: "NO_ALARM"}, true)
	if err := h.Start(context.Background(), plugins.Config{Name: "websocket", Options: opts, RelayPrefix: "RELAY:"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return &fixture{t: t, tr: ct, h: h}
}

type wsClient struct {
	t *testing.T
	c *websocket.Conn
}

func (f *fixture) dial(path string, hdr http.Header) *wsClient {
	f.t.Helper()
	c, err := f.tryDial(path, hdr)
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

func (f *fixture) tryDial(path string, hdr http.Header) (*wsClient, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+f.tr.Addr()+path, &websocket.DialOptions{HTTPHeader: hdr})
	if err != nil {
		return nil, err
	}
	c.SetReadLimit(64 << 20)
	w := &wsClient{t: f.t, c: c}
	f.t.Cleanup(func() { c.CloseNow() })
	return w, nil
}

func (w *wsClient) send(s string) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.c.Write(ctx, websocket.MessageText, []byte(s)); err != nil {
		w.t.Fatal(err)
	}
}

func (w *wsClient) read() map[string]any {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, b, err := w.c.Read(ctx)
	if err != nil {
		w.t.Fatalf("read: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		w.t.Fatalf("invalid JSON %s: %v", b, err)
	}
	return m
}

// until reads messages until pred matches one, and returns it.
func (w *wsClient) until(what string, pred func(map[string]any) bool) map[string]any {
	w.t.Helper()
	for i := 0; i < 100; i++ {
		m := w.read()
		if pred(m) {
			return m
		}
	}
	w.t.Fatalf("no message: %s", what)
	return nil
}

func has(k string, v any) func(map[string]any) bool {
	return func(m map[string]any) bool { return fmt.Sprint(m[k]) == fmt.Sprint(v) }
}

func and(ps ...func(map[string]any) bool) func(map[string]any) bool {
	return func(m map[string]any) bool {
		for _, p := range ps {
			if !p(m) {
				return false
			}
		}
		return true
	}
}

func TestOphydEndToEnd(t *testing.T) {
	f := start(t, nil)
	c := f.dial(OphydPath, nil)
	c.send(`{"action":"subscribe","pv":"A"}`)
	if m := c.read(); m["message"] != "Subscribed to A" {
		t.Fatalf("ack: %v", m)
	}
	// Depending on when the host's events arrive, a connection-only meta
	// message may come first; the one with the metadata, then the value, follow.
	meta := c.until("meta", and(has("sub_type", "meta"), has("units", "mm")))
	if meta["precision"] != 3.0 || meta["connected"] != true ||
		meta["lower_ctrl_limit"] != -100.0 || meta["severity"] != 0.0 || meta["write_access"] != true {
		t.Fatalf("meta: %v", meta)
	}
	v := c.until("value", func(m map[string]any) bool { return m["sub_type"] == nil && m["value"] != nil })
	if v["pv"] != "A" || v["value"] != 1.5 || v["connected"] != true || math.Abs(v["timestamp"].(float64)-(631152000+1000)) > 1e-3 {
		t.Fatalf("value: %v", v)
	}
	c.send(`{"action":"subscribe","pv":"A"}`)
	c.until("already", has("message", "Already subscribed to A"))

	f.h.Publish(plugins.Value{Name: "A", Data: plugins.Float64s(2.5), Status: "HIGH", Severity: "MINOR"})
	c.until("alarm meta", and(has("sub_type", "meta"), has("severity", 1)))
	c.until("update", has("value", 2.5))

	c.send(`{"action":"set","pv":"A","value":4.25}`)
	c.until("ack", has("message", "Successfully set A to 4.25"))
	c.until("new value", has("value", 4.25))
	c.send(`{"action":"set","pv":"A","value":"5"}`)
	c.until("ack", has("message", `Successfully set A to "5"`))
	c.send(`{"action":"set","pv":"A","value":1000}`)
	c.until("limits", has("error", "Value 1000 is outside of limits for PV A. Low limit: -100, High limit: 100"))

	// Read-only PV: the connection event says Write false.
	c.send(`{"action":"subscribe","pv":"RO"}`)
	c.until("ro value", has("value", 7))
	c.send(`{"action":"set","pv":"RO","value":1}`)
	c.until("ro error", has("error", "Write access is not enabled for PV RO. Cannot set value: it is read-only."))
	// The host's refusal is relayed: the connection said writable, the host says no.
	f.h.Publish(plugins.Connection{Name: "RO", Connected: true, Read: true, Write: true})
	c.until("meta rw", and(has("pv", "RO"), has("write_access", true)))
	c.send(`{"action":"set","pv":"RO","value":1}`)
	c.until("host error", has("error", "Could not set value of RO to 1: PV RO is read-only"))
	// subscribeReadOnly refuses writes whatever the access rights.
	c.send(`{"action":"subscribeReadOnly","pv":"E"}`)
	c.until("E", has("pv", "E"))
	c.send(`{"action":"set","pv":"E","value":"Off"}`)
	c.until("ro sub", has("error", "Write access is not enabled for PV E. Cannot set value: subscribed read-only."))
	// A write rule's denial is named.
	f.h.Publish(plugins.Connection{Name: "RO", Connected: true, Read: true, WriteDenied: `write denied by write.deny "R*"`})
	c.until("rule meta", and(has("pv", "RO"), has("write_access", false)))
	c.send(`{"action":"set","pv":"RO","value":1}`)
	c.until("rule error", has("error", `Write access is not enabled for PV RO. Cannot set value: write denied by write.deny "R*".`))

	// Disconnect and reconnect: meta connected false, then meta again.
	f.h.Publish(plugins.Connection{Name: "A"})
	c.until("disconnect", and(has("sub_type", "meta"), has("pv", "A"), has("connected", false)))
	f.h.Publish(plugins.Connection{Name: "A", Connected: true, Read: true, Write: true},
		plugins.Metadata{Name: "A", Type: plugins.TypeDouble, Count: 1, Units: "cm"},
		plugins.Value{Name: "A", Data: plugins.Float64s(3), Status: "NO_ALARM", Severity: "NO_ALARM"})
	c.until("reconnect meta", and(has("sub_type", "meta"), has("connected", true), has("units", "cm")))
	c.until("reconnect value", and(has("pv", "A"), has("value", 3)))

	c.send(`{"action":"refresh"}`)
	c.until("refresh", has("message", "Refreshed all PVs"))

	c.send(`{"action":"unsubscribe","pv":"A"}`)
	c.until("unsub", has("message", "Unsubscribed from A"))
	c.send(`{"action":"unsubscribe","pv":"A"}`)
	c.until("not sub", has("message", "Not subscribed to A"))
	if f.h.Subscribed("A") {
		t.Fatal("A still subscribed upstream")
	}
	c.send(`{"action":"unsubscribe","pvs":["E","X"]}`)
	m := c.until("list unsub", has("action", "unsubscribe"))
	if fmt.Sprint(m["unsubscribed"], m["not_subscribed"]) != "[E] [X]" {
		t.Fatalf("unsubscribe reply: %v", m)
	}
	// Closing the socket releases everything.
	c.c.Close(websocket.StatusNormalClosure, "")
	waitFor(t, "release", func() bool { return !f.h.Subscribed("RO") && f.tr.hub.upstream() == 0 })
}

func TestOphydSubscribeSafely(t *testing.T) {
	f := start(t, map[string]any{"connect_timeout": "200ms"})
	c := f.dial(OphydPath, nil)
	c.send(`{"action":"subscribeSafely","pv":"A"}`)
	c.until("ack", has("message", "Subscribed to A"))
	c.send(`{"action":"subscribeSafely","pv":"NOPE"}`)
	c.until("fail", has("error", "Failed to connect to PV NOPE: not connected within 200ms"))
	waitFor(t, "unsubscribed", func() bool { return !f.h.Subscribed("NOPE") })
}

func TestPVWSEndToEnd(t *testing.T) {
	f := start(t, nil)
	c := f.dial(PVWSPath, nil)
	c.send(`{"type":"subscribe","pvs":["A","E"]}`)
	first := c.until("A", has("pv", "A"))
	if first["type"] != "update" || first["vtype"] != "VDouble" || first["units"] != "mm" || first["precision"] != 3.0 ||
		first["min"] != -10.0 || first["severity"] != "NONE" || first["value"] != 1.5 || first["readonly"] != false ||
		first["seconds"] != 631153000.0 || first["nanos"] != 5.0 {
		t.Fatalf("first update: %v", first)
	}
	e := c.until("E", has("pv", "E"))
	if e["vtype"] != "VEnum" || fmt.Sprint(e["labels"]) != "[Off On]" || e["value"] != 1.0 || e["text"] != "On" {
		t.Fatalf("enum update: %v", e)
	}
	f.h.Publish(plugins.Value{Name: "A", Data: plugins.Float64s(2), Status: "HIHI", Severity: "MAJOR"})
	u := c.until("update", has("value", 2))
	if u["vtype"] != nil || u["severity"] != "MAJOR" {
		t.Fatalf("later update: %v", u)
	}
	c.send(`{"type":"list"}`)
	if l := c.until("list", has("type", "list")); fmt.Sprint(l["pvs"]) != "[A E]" {
		t.Fatalf("list: %v", l)
	}
	c.send(`{"type":"write","pv":"A","value":6.5,"id":17}`)
	c.until("write ack", and(has("type", "write"), has("ok", true), has("id", 17)))
	c.until("written", has("value", 6.5))
	c.send(`{"type":"write","pv":"E","value":"Off"}`)
	c.until("enum written", and(has("pv", "E"), has("text", "Off")))
	c.send(`{"type":"monitor","pvs":["RO"]}`)
	c.until("ro", and(has("pv", "RO"), has("readonly", true)))
	c.send(`{"type":"write","pv":"RO","value":1}`)
	c.until("ro err", and(has("type", "error"), has("message", "Cannot write PV RO: it is read-only")))
	// A change of write access alone: an update with readonly only, as PVWS sends.
	f.h.Publish(plugins.Connection{Name: "RO", Connected: true, Read: true, Write: true})
	if m := c.until("access update", and(has("pv", "RO"), has("readonly", false))); len(m) != 3 {
		t.Fatalf("access update: %v", m)
	}
	c.send(`{"type":"write","pv":"RO","value":1}`)
	c.until("host error", and(has("type", "error"), has("message", "Cannot write PV RO: PV RO is read-only")))
	f.h.Publish(plugins.Connection{Name: "RO", Connected: true, Read: true, WriteDenied: `write denied by no write.allow pattern matches`})
	c.until("access update", and(has("pv", "RO"), has("readonly", true)))
	c.send(`{"type":"write","pv":"RO","value":1}`)
	c.until("rule error", and(has("type", "error"), has("message", "Cannot write PV RO: write denied by no write.allow pattern matches")))
	c.send(`{"type":"write","pv":"Z","value":1}`)
	c.until("unknown", has("message", "Cannot write unknown PV Z: subscribe to it first"))

	// Disconnect → severity UNDEFINED; reconnect → metadata again.
	f.h.Publish(plugins.Connection{Name: "A"})
	c.until("disc", and(has("pv", "A"), has("connected", false), has("severity", "UNDEFINED")))
	f.h.Publish(plugins.Connection{Name: "A", Connected: true, Read: true, Write: true},
		plugins.Metadata{Name: "A", Type: plugins.TypeDouble, Count: 1, Units: "cm"},
		plugins.Value{Name: "A", Data: plugins.Float64s(3), Status: "NO_ALARM", Severity: "NO_ALARM"})
	r := c.until("reconnect", and(has("pv", "A"), has("value", 3)))
	if r["vtype"] != "VDouble" || r["units"] != "cm" || r["connected"] != true || r["severity"] != "NONE" {
		t.Fatalf("reconnect update: %v", r)
	}

	c.send(`{"type":"echo","body":"Hello","other":[1]}`)
	c.until("echo", has("body", "Hello"))
	c.send(`{"type":"ping"}`)
	c.send(`{"type":"echo","body":"after ping"}`)
	c.until("echo2", has("body", "after ping"))

	c.send(`{"type":"clear","pvs":["A","E","RO"]}`)
	waitFor(t, "cleared", func() bool { return !f.h.Subscribed("A") && !f.h.Subscribed("E") })
	c.send(`{"type":"list"}`)
	if l := c.until("list", has("type", "list")); fmt.Sprint(l["pvs"]) != "[]" {
		t.Fatalf("list after clear: %v", l)
	}
}

func TestArraysAndNaN(t *testing.T) {
	f := start(t, nil)
	f.h.AddPV(plugins.Metadata{Name: "WF", Type: plugins.TypeDouble, Count: 4},
		plugins.Value{Data: plugins.Float64s(1, math.NaN(), math.Inf(1), math.Inf(-1))}, true)
	f.h.AddPV(plugins.Metadata{Name: "IW", Type: plugins.TypeLong, Count: 3}, plugins.Value{Data: plugins.Int64s(0, 0, 0)}, true)
	f.h.AddPV(plugins.Metadata{Name: "SW", Type: plugins.TypeShort, Count: 2}, plugins.Value{Data: plugins.Int64s(-1, 2)}, true)
	f.h.AddPV(plugins.Metadata{Name: "CW", Type: plugins.TypeChar, Count: 8}, plugins.Value{Data: plugins.Bytes([]byte("hi\x00xx"))}, true)
	f.h.AddPV(plugins.Metadata{Name: "N", Type: plugins.TypeDouble, Count: 1}, plugins.Value{Data: plugins.Float64s(math.NaN())}, true)
	f.h.AddPV(plugins.Metadata{Name: "S", Type: plugins.TypeString, Count: 1}, plugins.Value{Data: plugins.Strings("he said \"hi\"\n")}, true)

	o := f.dial(OphydPath, nil)
	o.send(`{"action":"subscribe","pvs":["WF","IW","SW","CW","N","S"]}`)
	want := map[string]string{"WF": `[1 NaN Infinity -Infinity]`, "IW": "[0 0 0]", "SW": "[-1 2]", "CW": "hi", "N": "NaN", "S": "he said \"hi\"\n"}
	for len(want) > 0 {
		m := o.read()
		if m["sub_type"] != nil || m["value"] == nil && m["pv"] == nil {
			continue
		}
		name, _ := m["pv"].(string)
		if w, ok := want[name]; ok {
			if got := fmt.Sprint(m["value"]); got != w {
				t.Errorf("ophyd %s = %q, want %q", name, got, w)
			}
			delete(want, name)
		}
	}
	p := f.dial(PVWSPath, nil)
	p.send(`{"type":"subscribe","pvs":["WF","IW","SW","CW","N","S"]}`)
	wantP := map[string]string{"WF": "VDoubleArray b64dbl AAAAAAAA8D8BAAAAAAD4fwAAAAAAAPB/AAAAAAAA8P8=",
		"IW": "VIntArray b64int AAAAAAAAAAAAAAAA", "SW": "VShortArray b64srt //8CAA==", "CW": "VByteArray b64byt aGkAeHg=",
		"N": "VDouble value NaN", "S": "VString text he said \"hi\"\n"}
	for len(wantP) > 0 {
		m := p.read()
		name, _ := m["pv"].(string)
		w, ok := wantP[name]
		if !ok {
			continue
		}
		parts := strings.SplitN(w, " ", 3)
		if m["vtype"] != parts[0] || fmt.Sprint(m[parts[1]]) != parts[2] {
			t.Errorf("pvws %s: %v, want %s", name, m, w)
		}
		delete(wantP, name)
	}
	// Writing an array, and text to a DBF_CHAR array.
	o.send(`{"action":"set","pv":"IW","value":[1,2,3]}`)
	o.until("array set", has("message", "Successfully set IW to [1,2,3]"))
	o.until("array value", and(has("pv", "IW"), has("value", "[1 2 3]")))
	o.send(`{"action":"set","pv":"CW","value":"abc"}`)
	o.until("char set", has("message", `Successfully set CW to "abc"`))
	o.until("char value", and(has("pv", "CW"), has("value", "abc")))
}

func TestBadInput(t *testing.T) {
	f := start(t, map[string]any{"max_message_bytes": 2048})
	o := f.dial(OphydPath, nil)
	for _, tc := range []struct{ in, want string }{
		{`{"action":`, "Invalid JSON format"},
		{`[1,2]`, `Invalid message: expected a JSON object such as {"action":"subscribe","pv":"IOC:m1"}`},
		{`{"pv":"A"}`, "No action specified. Example msg: {action: 'subscribe', pv: 'IOC:m1'}"},
		{`{"action":"dance","pv":"A"}`, "Received action: dance, actions must be 'subscribe', 'unsubscribe', 'refresh', 'subscribeSafely', 'subscribeReadOnly', or 'set'. Example msg: {action: 'subscribe', pv: 'IOC:m1'}"},
		{`{"action":"subscribe"}`, "No PV specified"},
		{`{"action":"subscribe","pv":5}`, `"pv" must be a PV name or a list of names, "pvs" a list of names`},
		{`{"action":"set","pv":"A","value":1}`, "PV A is not subscribed. Subscribe to PV before setting value."},
	} {
		o.send(tc.in)
		if m := o.read(); m["error"] != tc.want {
			t.Errorf("%s: got %v, want %q", tc.in, m, tc.want)
		}
	}
	o.send(`{"action":"subscribe","pv":"A"}`)
	o.until("value", has("value", 1.5))
	for _, tc := range []struct{ in, want string }{
		{`{"action":"set","pv":"A","value":"abc"}`, `Could not set value of A to "abc": "abc" cannot be written to a DBF_DOUBLE PV: not a number`},
		{`{"action":"set","pv":"A","value":{"x":1}}`, `Value must be a number. Could not set value of A to {"x":1}`},
		{`{"action":"set","pv":"A","value":1,"timeout":"x"}`, `Timeout must be a number. Could not set value of A to 1`},
		{`{"action":"set","pv":"A","value":[1,2]}`, `Could not set value of A to [1,2]: the value has 2 elements, the PV holds at most 1`},
	} {
		o.send(tc.in)
		if m := o.until("error", func(m map[string]any) bool { return m["error"] != nil }); m["error"] != tc.want {
			t.Errorf("%s: got %v, want %q", tc.in, m, tc.want)
		}
	}
	o.send(`{"action":"subscribe","pv":"` + strings.Repeat("x", 4000) + `"}`)
	if m := o.until("too big", func(m map[string]any) bool { return m["error"] != nil }); !strings.HasPrefix(m["error"].(string), "message too big: 4030 bytes, the limit is 2048") {
		t.Errorf("oversize: %v", m)
	}
	o.c.Write(context.Background(), websocket.MessageBinary, []byte("x"))
	o.until("binary", has("error", "binary messages are not supported; send JSON text messages"))
	o.send(`{"action":"refresh"}`) // the socket is still open
	o.until("still open", has("message", "Refreshed all PVs"))

	p := f.dial(PVWSPath, nil)
	for _, tc := range []struct{ in, want string }{
		{`{"type":`, "invalid JSON"},
		{`"x"`, `expected a JSON object such as {"type":"subscribe","pvs":["IOC:m1"]}`},
		{`{"pvs":["A"]}`, `missing "type": expected subscribe, monitor, clear, list, write, ping or echo`},
		{`{"type":"fly"}`, `unknown type "fly": expected subscribe, monitor, clear, list, write, ping or echo`},
		{`{"type":"subscribe"}`, `subscribe needs "pvs": a list of PV names`},
		{`{"type":"write","value":1}`, `write needs "pv": a PV name`},
		{`{"type":"write","pv":"A"}`, `write needs "value"`},
	} {
		p.send(tc.in)
		if m := p.read(); m["type"] != "error" || m["message"] != tc.want {
			t.Errorf("%s: got %v, want %q", tc.in, m, tc.want)
		}
	}
	p.send(`{"type":"subscribe","pvs":["RO"]}`)
	p.until("RO", has("pv", "RO"))
	f.h.Publish(plugins.Connection{Name: "RO", Connected: true, Read: true, Write: true})
	p.until("RO writable", and(has("pv", "RO"), has("readonly", false)))
	p.send(`{"type":"write","pv":"RO","value":1.5}`)
	p.until("not integer", has("message", "Cannot write PV RO: 1.5 is not a whole number, and the PV is DBF_LONG"))
	p.send(`{"type":"write","pv":"RO","value":1e12}`)
	p.until("range", has("message", "Cannot write PV RO: 1e12 is out of range for DBF_LONG (-2.147483648e+09 to 2.147483647e+09)"))
	p.send(`{"type":"list"}`)
	p.until("still open", has("type", "list"))
}

func TestSharedUpstream(t *testing.T) {
	f := start(t, nil)
	var cs []*wsClient
	for i := 0; i < 3; i++ {
		path := OphydPath
		if i == 2 {
			path = PVWSPath
		}
		c := f.dial(path, nil)
		if path == OphydPath {
			c.send(`{"action":"subscribe","pv":"A"}`)
		} else {
			c.send(`{"type":"subscribe","pvs":["A"]}`)
		}
		c.until("value", has("value", 1.5))
		cs = append(cs, c)
	}
	if n := f.tr.count("A"); n != 1 {
		t.Fatalf("%d upstream subscriptions, want 1", n)
	}
	f.h.Publish(plugins.Value{Name: "A", Data: plugins.Float64s(9)})
	for _, c := range cs {
		c.until("fan-out", has("value", 9))
	}
	cs[0].c.Close(websocket.StatusNormalClosure, "")
	cs[1].send(`{"action":"unsubscribe","pv":"A"}`)
	cs[1].until("unsub", has("message", "Unsubscribed from A"))
	if !f.h.Subscribed("A") {
		t.Fatal("unsubscribed upstream while a socket still wants A")
	}
	cs[2].c.Close(websocket.StatusNormalClosure, "")
	waitFor(t, "last one leaves", func() bool { return !f.h.Subscribed("A") })
}

func TestStalledClient(t *testing.T) {
	// The stall limit must exceed what a reading client starved of CPU (the
	// race detector on a loaded 2-core machine) can take for one write; the
	// publishing below lasts twice as long, so the stalled client is caught.
	f := start(t, map[string]any{"stall_timeout": "2s", "queue_limit": 1000})
	const n = 50
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("W%d", i)
		f.h.AddPV(plugins.Metadata{Name: names[i], Type: plugins.TypeDouble, Count: 2048}, plugins.Value{Data: plugins.Float64s(make([]float64, 2048)...)}, true)
	}
	list, _ := json.Marshal(names)
	stalled := f.dial(PVWSPath, nil)
	stalled.send(`{"type":"subscribe","pvs":` + string(list) + `}`)
	good := f.dial(PVWSPath, nil)
	good.send(`{"type":"subscribe","pvs":` + string(list) + `}`)
	var sc *client
	waitFor(t, "two clients", func() bool { return f.tr.clientCount() == 2 })
	f.tr.mu.Lock()
	for c := range f.tr.clients {
		if c.log != nil && len(f.tr.clients) == 2 {
			if sc == nil {
				sc = c
			}
		}
	}
	f.tr.mu.Unlock()
	// The good client reads concurrently, recording the newest round seen per PV.
	var mu sync.Mutex
	seen := map[string]int{}
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, b, err := good.c.Read(ctx)
			cancel()
			if err != nil {
				return
			}
			var m map[string]any
			if json.Unmarshal(b, &m) != nil {
				continue
			}
			if s, _ := m["b64dbl"].(string); s != "" {
				raw, _ := decodeB64(s)
				mu.Lock()
				seen[m["pv"].(string)] = int(math.Float64frombits(leUint64(raw)))
				mu.Unlock()
			}
		}
	}()
	data := make([]float64, 2048)
	deadline := time.Now().Add(4 * time.Second)
	round := 0
	for time.Now().Before(deadline) {
		round++
		for _, nm := range names {
			d := append([]float64(nil), data...)
			d[0] = float64(round)
			f.h.Publish(plugins.Value{Name: nm, Data: plugins.Float64s(d...)})
		}
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()
	// Under -race on a loaded machine the good client may need a while to read
	// what it was sent; what matters is that it gets every final value while the
	// stalled client reads nothing. The catch-up time is logged, not asserted
	// (timing goals belong in benchmarks).
	short := func() []string {
		mu.Lock()
		defer mu.Unlock()
		var out []string
		for _, nm := range names {
			if seen[nm] != round {
				out = append(out, fmt.Sprintf("%s=%d", nm, seen[nm]))
			}
		}
		return out
	}
	for limit := time.Now().Add(time.Minute); len(short()) > 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(limit) {
			t.Fatalf("the good client lacks final values of round %d: %v", round, short())
		}
	}
	t.Logf("the good client had every final value %v after the last publish", time.Since(start))
	// The stalled client is closed, its subscriptions released, its queue bounded.
	waitFor(t, "stalled closed", func() bool { return f.tr.clientCount() == 1 })
	if sc != nil {
		_, peak := sc.queued()
		if peak > 1000 {
			t.Errorf("queue peak %d above the limit", peak)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var err error
	for err == nil {
		_, _, err = stalled.c.Read(ctx)
	}
	t.Logf("stalled client ended with %v", err)
	good.c.CloseNow()
	<-readerDone
}

func TestOriginAndToken(t *testing.T) {
	f := start(t, map[string]any{"token": "s3cret", "allowed_origins": []any{"https://good.example"}})
	if _, err := f.tryDial(OphydPath, nil); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("no token: %v", err)
	}
	if _, err := f.tryDial(OphydPath+"?token=wrong", nil); err == nil {
		t.Fatal("wrong token accepted")
	}
	c := f.dial(OphydPath+"?token=s3cret", nil)
	c.send(`{"action":"refresh"}`)
	c.read()
	hdr := http.Header{"Authorization": {"Bearer s3cret"}}
	f.dial(PVWSPath, hdr)
	hdr.Set("Origin", "https://good.example")
	f.dial(PVWSPath, hdr)
	hdr.Set("Origin", "http://evil.example")
	if _, err := f.tryDial(PVWSPath, hdr); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("bad origin: %v", err)
	}

	g := start(t, nil) // default: same origin and localhost only
	h := http.Header{"Origin": {"http://localhost:3000"}}
	g.dial(OphydPath, h)
	h.Set("Origin", "http://evil.example")
	if _, err := g.tryDial(OphydPath, h); err == nil {
		t.Fatal("foreign origin accepted by default")
	}
}

func TestBadListen(t *testing.T) {
	for _, addr := range []string{"nonsense", "127.0.0.1:99999"} {
		h := plugintest.NewHarness(New())
		err := h.Start(context.Background(), plugins.Config{Options: map[string]any{"listen": addr}})
		if err == nil || !strings.Contains(err.Error(), addr) {
			t.Errorf("listen %q: %v", addr, err)
		}
		h.Close()
	}
	h := plugintest.NewHarness(New())
	if err := h.Start(context.Background(), plugins.Config{Options: map[string]any{"listen": "127.0.0.1:0", "stall_timeout": "soon"}}); err == nil {
		t.Error("bad duration accepted")
	}
	h.Close()
}

func TestTenThousandPVs(t *testing.T) {
	f := start(t, nil)
	names := make([]string, 10000)
	for i := range names {
		names[i] = fmt.Sprintf("SOME:LONGISH:PV:NAME:%05d", i)
	}
	list, _ := json.Marshal(names)
	c := f.dial(PVWSPath, nil)
	c.send(`{"type":"subscribe","pvs":` + string(list) + `}`)
	waitFor(t, "subscribed", func() bool { return f.tr.hub.upstream() == 10000 && f.h.Subscribed(names[9999]) })
	o := f.dial(OphydPath, nil)
	o.send(`{"action":"subscribe","pvs":` + string(list) + `}`)
	m := o.until("ack", has("action", "subscribe"))
	if l, _ := m["subscribed"].([]any); len(l) != 10000 {
		t.Fatalf("subscribed %d", len(l))
	}
	// Unknown PVs are reported disconnected to ophyd clients.
	o.until("disconnected meta", and(has("sub_type", "meta"), has("connected", false)))
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitForWithin(t, 10*time.Second, what, cond)
}

// waitForWithin is waitFor with its own limit, for waits that depend on how
// loaded the machine is (it is a failure bound, not a timing goal).
func waitForWithin(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestCloseWithOpenSockets(t *testing.T) {
	f := start(t, nil)
	c := f.dial(OphydPath, nil)
	c.send(`{"action":"subscribe","pv":"A"}`)
	c.until("value", has("value", 1.5))
	done := make(chan struct{})
	go func() {
		defer close(done)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for {
			if _, _, err := c.c.Read(ctx); err != nil {
				if websocket.CloseStatus(err) != websocket.StatusGoingAway {
					t.Errorf("close status: %v", err)
				}
				return
			}
		}
	}()
	f.h.Close()
	<-done
}

func BenchmarkEncodeOphydValue(b *testing.B) {
	m := &plugins.Metadata{Name: "IOC:m1", Type: plugins.TypeDouble, Count: 1}
	v := &view{meta: m, conn: plugins.Connection{Connected: true, Read: true, Write: true}, haveConn: true}
	val := &plugins.Value{Name: "IOC:m1", Data: plugins.Float64s(1.2345), Seconds: 1000, Nanos: 5, Status: "NO_ALARM", Severity: "NO_ALARM"}
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = appendOphydValue(buf[:0], "IOC:m1", v, val)
	}
}

func BenchmarkEncodePVWSValue(b *testing.B) {
	m := &plugins.Metadata{Name: "IOC:m1", Type: plugins.TypeDouble, Count: 1}
	v := &view{meta: m, conn: plugins.Connection{Connected: true, Read: true, Write: true}, haveConn: true, sentFirst: true, lastSev: "NONE", lastConnOK: true}
	val := &plugins.Value{Name: "IOC:m1", Data: plugins.Float64s(1.2345), Seconds: 1000, Nanos: 5, Status: "NO_ALARM", Severity: "NO_ALARM"}
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = appendPVWSUpdate(buf[:0], "IOC:m1", v, val)
	}
}
