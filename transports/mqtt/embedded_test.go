package mqtt

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"go.uber.org/goleak"

	"github.com/pvhub/pvhub/plugins"
	"github.com/pvhub/pvhub/plugins/plugintest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// okValue is a value with no alarm at EPICS second s.
func okValue(name string, d plugins.Data, s uint32) plugins.Value {
	return plugins.Value{Name: name, Data: d, Status: "NO_ALARM", Severity: "NO_ALARM", Seconds: s}
}

// logBuffer collects a transport's log records as text, for checks.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// env is a transport under test in a Harness, with recorded host calls.
type env struct {
	t    *testing.T
	tr   *Transport
	h    *plugintest.Harness
	host *recHost
	logs *logBuffer
}

// recHost wraps the harness as the transport's host and counts its calls.
type recHost struct {
	plugins.Host
	mu     sync.Mutex
	subs   map[string]int
	unsubs map[string]int
	puts   []recPut
}

type recPut struct {
	name string
	data plugins.Data
}

func (r *recHost) Subscribe(names ...string) {
	r.mu.Lock()
	for _, n := range names {
		r.subs[n]++
	}
	r.mu.Unlock()
	r.Host.Subscribe(names...)
}

func (r *recHost) Unsubscribe(names ...string) {
	r.mu.Lock()
	for _, n := range names {
		r.unsubs[n]++
	}
	r.mu.Unlock()
	r.Host.Unsubscribe(names...)
}

func (r *recHost) Put(name string, d plugins.Data, id uint64) {
	r.mu.Lock()
	r.puts = append(r.puts, recPut{name, d})
	r.mu.Unlock()
	r.Host.Put(name, d, id)
}

func (r *recHost) counts(name string) (int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.subs[name], r.unsubs[name]
}

func (r *recHost) lastPut() (recPut, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.puts) == 0 {
		return recPut{}, 0
	}
	return r.puts[len(r.puts)-1], len(r.puts)
}

// recorder is a transport that hands its Start a recording host.
type recorder struct {
	*Transport
	host *recHost
}

func (r *recorder) Start(ctx context.Context, cfg plugins.Config, host plugins.Host) error {
	r.host.Host = host
	return r.Transport.Start(ctx, cfg, r.host)
}

// pvs of the test host.
const (
	pvDouble = "T:double"
	pvEnum   = "T:enum"
	pvText   = "T:text"
	pvRO     = "T:readonly"
)

// startEnv starts a transport with options (listen 127.0.0.1:0 unless given) in a harness
// with a few PVs.
func startEnv(t *testing.T, opts map[string]any) *env {
	t.Helper()
	if opts == nil {
		opts = map[string]any{}
	}
	if _, ok := opts["listen"]; !ok {
		opts["listen"] = "127.0.0.1:0"
	}
	tr := newTransport()
	rh := &recHost{subs: map[string]int{}, unsubs: map[string]int{}}
	h := plugintest.NewHarness(&recorder{Transport: tr, host: rh})
	h.AddPV(plugins.Metadata{Name: pvDouble, Type: plugins.TypeDouble, Count: 1, Units: "mm", Precision: 3},
		okValue(pvDouble, plugins.Float64s(1.5), 1000), true)
	h.AddPV(plugins.Metadata{Name: pvEnum, Type: plugins.TypeEnum, Count: 1, EnumLabels: []string{"Off", "On"}},
		okValue(pvEnum, plugins.Int64s(0), 1000), true)
	h.AddPV(plugins.Metadata{Name: pvText, Type: plugins.TypeChar, Count: 64},
		okValue(pvText, plugins.Bytes([]byte("hello")), 1000), true)
	h.AddPV(plugins.Metadata{Name: pvRO, Type: plugins.TypeDouble, Count: 1},
		okValue(pvRO, plugins.Float64s(7), 1000), false)
	logs := &logBuffer{}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	err := h.Start(ctx, plugins.Config{Name: "mqtt", Options: opts, RelayPrefix: "RELAY:",
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		h.Close()
		if t.Failed() {
			t.Logf("transport log:\n%s", logs.String())
		}
	})
	return &env{t: t, tr: tr, h: h, host: rh, logs: logs}
}

func (e *env) client(id string) *testClient {
	e.t.Helper()
	return dialClient(e.t, e.tr.Addr(), id)
}

// waitUntil polls cond until it holds, failing after waitTimeout.
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestEmbeddedSubscribe: a client subscribing to a PV's topic gets its retained state, then
// its updates; a second client gets the retained state at once; the upstream subscription is
// one and is released when the last client leaves, and the retained state is deleted then.
func TestEmbeddedSubscribe(t *testing.T) {
	e := startEnv(t, nil)
	topic := "pvhub/" + pvDouble
	c1 := e.client("c1")
	c1.mustSubscribe(topic)
	m := c1.next("the first state", stateIs(topic, map[string]any{"connected": true, "value": 1.5, "units": "mm"}))
	v := m.json()
	if v["pv"] != pvDouble || v["native_type"] != "DBF_DOUBLE" || v["precision"] != 3.0 || v["severity"] != "NO_ALARM" ||
		v["seconds"] != float64(1000+631152000) || v["time"] != "1990-01-01T00:16:40Z" || v["write"] != true {
		t.Errorf("first state: %s", m.payload)
	}
	e.h.Publish(okValue(pvDouble, plugins.Float64s(2.5), 1001))
	m = c1.next("the update", stateIs(topic, map[string]any{"value": 2.5}))
	if m.json()["units"] != "mm" {
		t.Errorf("an update is not the whole state: %s", m.payload)
	}

	c2 := e.client("c2")
	c2.mustSubscribe(topic)
	m = c2.next("the retained state", onTopic(topic))
	if v := m.json(); v["value"] != 2.5 || !m.retain {
		t.Errorf("retained state for the second client: %v", m)
	}
	if subs, _ := e.host.counts(pvDouble); subs != 1 {
		t.Errorf("%d upstream subscriptions, want 1", subs)
	}

	// A third client watching every topic sees the retained state deleted at the end.
	watcher := e.client("watcher")
	watcher.mustSubscribe("pvhub/#")
	watcher.next("the retained state", stateIs(topic, map[string]any{"value": 2.5}))

	if err := c1.unsubscribe(topic); err != nil {
		t.Fatal(err)
	}
	if _, unsubs := e.host.counts(pvDouble); unsubs != 0 || !e.h.Subscribed(pvDouble) {
		t.Fatal("released upstream while a client is still subscribed")
	}
	e.h.Publish(okValue(pvDouble, plugins.Float64s(3.5), 1002))
	c2.next("the update after the first client left", stateIs(topic, map[string]any{"value": 3.5}))
	c2.Close() // a disconnection releases its subscriptions
	waitUntil(t, "the upstream subscription is released", func() bool { return !e.h.Subscribed(pvDouble) })
	m = watcher.next("the retained state deleted", func(m message) bool { return m.topic == topic && len(m.payload) == 0 })
	if _, unsubs := e.host.counts(pvDouble); unsubs != 1 {
		t.Errorf("%d upstream unsubscriptions, want 1", unsubs)
	}

	// Subscribing again starts afresh: no stale retained state (3.5), the host's state
	// (the harness still holds 1.5).
	c3 := e.client("c3")
	c3.mustSubscribe(topic)
	m = c3.next("the state again", onTopic(topic))
	if v := m.json(); v["value"] != 1.5 || m.retain {
		t.Errorf("state after a new subscription: %v", m)
	}
	if subs, _ := e.host.counts(pvDouble); subs != 2 {
		t.Errorf("%d upstream subscriptions in all, want 2", subs)
	}
}

// TestEmbeddedStates: enum labels, char arrays as text, arrays, disconnection (the state is
// then the connection alone) and reconnection, NaN as a string.
func TestEmbeddedStates(t *testing.T) {
	e := startEnv(t, nil)
	c := e.client("c")
	c.mustSubscribe("pvhub/"+pvEnum, "pvhub/"+pvText)
	// The two first states come in either order.
	isEnum := stateIs("pvhub/"+pvEnum, map[string]any{"value": 0, "text": "Off"})
	isText := stateIs("pvhub/"+pvText, map[string]any{"value": "hello", "native_type": "DBF_CHAR"})
	var enum, text bool
	for !enum || !text {
		m := c.next("the enum and the text", func(m message) bool { return isEnum(m) || isText(m) })
		if isEnum(m) {
			enum = true
			if fmt.Sprint(m.json()["enum_labels"]) != "[Off On]" {
				t.Errorf("enum state: %s", m.payload)
			}
		} else {
			text = true
		}
	}
	var m message

	e.h.Publish(plugins.Connection{Name: pvEnum})
	m = c.next("the disconnection", stateIs("pvhub/"+pvEnum, map[string]any{"connected": false}))
	if v := m.json(); v["value"] != nil || v["native_type"] != nil {
		t.Errorf("a disconnected PV's state carries stale fields: %s", m.payload)
	}
	e.h.Publish(plugins.Connection{Name: pvEnum, Connected: true, Read: true, Write: true},
		plugins.Metadata{Name: pvEnum, Type: plugins.TypeEnum, Count: 1, EnumLabels: []string{"Off", "On"}},
		okValue(pvEnum, plugins.Int64s(1), 1010))
	c.next("the reconnection", stateIs("pvhub/"+pvEnum, map[string]any{"connected": true, "value": 1, "text": "On"}))

	e.h.Publish(plugins.Metadata{Name: pvText, Type: plugins.TypeDouble, Count: 3},
		okValue(pvText, plugins.Float64s(1, nan(), -2), 1011))
	m = c.next("an array", func(m message) bool { return m.topic == "pvhub/"+pvText && m.json()["count"] == 3.0 })
	if !strings.Contains(string(m.payload), `"value":[1,"NaN",-2]`) {
		t.Errorf("array with NaN: %s", m.payload)
	}
}

// TestEmbeddedSet: writes through <pv>/set with a JSON object, a bare JSON value and plain
// text; the results on <pv>/set/result; errors for bad payloads and refused writes; an MQTT 5
// response topic with correlation data.
func TestEmbeddedSet(t *testing.T) {
	e := startEnv(t, nil)
	c := e.client("writer")
	c.mustSubscribe("pvhub/"+pvDouble, "pvhub/+/set/result", "pvhub/T:enum/set/result", "pvhub/T:text/set/result",
		"pvhub/T:readonly/set/result", "pvhub/NOPE/set/result")
	c.next("the state", onTopic("pvhub/"+pvDouble))
	result := func(pv string) func(message) bool { return onTopic("pvhub/" + pv + "/set/result") }

	c.mustPublish("pvhub/"+pvDouble+"/set", `{"value": 4.25, "id": 17}`)
	r := c.next("the result", result(pvDouble))
	if v := r.json(); v["ok"] != true || v["id"] != 17.0 || v["type"] != "put_result" || v["pv"] != pvDouble || r.retain {
		t.Errorf("result: %v", r)
	}
	c.next("the new value", stateIs("pvhub/"+pvDouble, map[string]any{"value": 4.25}))

	c.mustPublish("pvhub/"+pvDouble+"/set", ` 12 `)
	if v := c.next("the result", result(pvDouble)).json(); v["ok"] != true {
		t.Errorf("bare JSON: %v", v)
	}
	c.next("the new value", stateIs("pvhub/"+pvDouble, map[string]any{"value": 12}))
	if p, _ := e.host.lastPut(); p.data.Kind != plugins.KindFloat64 || p.data.Float64s[0] != 12 {
		t.Errorf("the host got %+v for a bare 12 to a double", p)
	}

	// Plain text: an enum label, a char array's text, a number as text.
	c.mustPublish("pvhub/"+pvEnum+"/set", `On`)
	if v := c.next("the result", result(pvEnum)).json(); v["ok"] != true {
		t.Errorf("enum label as text: %v", v)
	}
	// The enum's metadata is unknown to the transport (nobody subscribed): the host gets text.
	if p, _ := e.host.lastPut(); p.name != pvEnum || p.data.Kind != plugins.KindString || p.data.Strings[0] != "On" {
		t.Errorf("the host got %+v for the text On", p)
	}
	c.mustPublish("pvhub/"+pvDouble+"/set", `NaN`)
	if v := c.next("the result", result(pvDouble)).json(); v["ok"] != true {
		t.Errorf("NaN as text: %v", v)
	}
	if p, _ := e.host.lastPut(); p.data.Kind != plugins.KindFloat64 || p.data.Float64s[0] == p.data.Float64s[0] {
		t.Errorf("the host got %+v for NaN", p)
	}

	// Errors: bad payloads (no host call), a refused write (the host's reason).
	_, before := e.host.lastPut()
	for _, tc := range []struct{ payload, want string }{
		{`{"val": 1}`, `unknown key "val"`},
		{`{"id": 3}`, `no "value"`},
		{`[1, 2]`, `2 elements, the PV holds at most 1`},
		{`true false`, `"true false" cannot be written to a DBF_DOUBLE PV: not a number`},
		{`"abc"`, `"abc" cannot be written to a DBF_DOUBLE PV`},
		{``, `the message is empty`},
		{`{"value": 1, "id": -1}`, `"id" is -1`},
	} {
		c.mustPublish("pvhub/"+pvDouble+"/set", tc.payload)
		v := c.next("the error for "+tc.payload, result(pvDouble)).json()
		if v["ok"] != false || !strings.Contains(fmt.Sprint(v["error"]), tc.want) || !strings.HasPrefix(fmt.Sprint(v["error"]), pvDouble+": ") {
			t.Errorf("%q: %v, want an error containing %q", tc.payload, v, tc.want)
		}
	}
	if _, after := e.host.lastPut(); after != before {
		t.Errorf("bad payloads reached the host")
	}
	c.mustPublish("pvhub/"+pvRO+"/set", `1`)
	if v := c.next("the refusal", result(pvRO)).json(); v["ok"] != false || v["error"] != "PV T:readonly is read-only" {
		t.Errorf("refused write: %v", v)
	}
	c.mustPublish("pvhub/NOPE/set", `1`)
	if v := c.next("the refusal", result("NOPE")).json(); v["ok"] != false || v["error"] != "PV NOPE not found" {
		t.Errorf("write to an unknown PV: %v", v)
	}

	// MQTT 5 request/response: the result goes to the response topic with the correlation data.
	c.mustSubscribe("replies/writer")
	err := c.publish("pvhub/"+pvDouble+"/set", []byte(`5`), 1,
		&paho.PublishProperties{ResponseTopic: "replies/writer", CorrelationData: []byte("req-1")})
	if err != nil {
		t.Fatal(err)
	}
	r = c.next("the response", onTopic("replies/writer"))
	if v := r.json(); v["ok"] != true || string(r.corr) != "req-1" {
		t.Errorf("response: %v corr %q", r, r.corr)
	}
	c.next("the new value", stateIs("pvhub/"+pvDouble, map[string]any{"value": 5}))
}

// TestEmbeddedACL: clients cannot publish on pvhub's own topics (states, results, status),
// nor leave a will there; a retained set is not retained.
func TestEmbeddedACL(t *testing.T) {
	e := startEnv(t, nil)
	c := e.client("c")
	c.mustSubscribe("pvhub/" + pvDouble)
	c.next("the state", stateIs("pvhub/"+pvDouble, map[string]any{"value": 1.5}))
	// QoS 0: silently dropped by the broker.
	if err := c.publish("pvhub/"+pvDouble, []byte(`{"value":99}`), 0, nil); err != nil {
		t.Fatal(err)
	}
	c2 := e.client("c2")
	c2.mustSubscribe("pvhub/" + pvDouble)
	if m := c2.next("the retained state", onTopic("pvhub/"+pvDouble)); m.json()["value"] != 1.5 {
		t.Errorf("a client overwrote a PV's state: %v", m)
	}
	// A will on a PV topic is refused at connection.
	if _, err := connectClient(e.tr.Addr(), "spoofer", clientOpts{will: &paho.WillMessage{Topic: "pvhub/status", Payload: []byte("x"), Retain: true}}); err == nil {
		t.Error("a client with a will on the status topic was accepted")
	}
	// A will elsewhere is fine.
	w := dialClient(t, e.tr.Addr(), "willing", clientOpts{will: &paho.WillMessage{Topic: "elsewhere/status", Payload: []byte("gone")}})
	w.Close()
	if !strings.Contains(e.logs.String(), "will message would publish to a pvhub topic") {
		t.Error("the refusal is not logged")
	}
}

// TestEmbeddedAuth: with username and password set, the embedded broker requires them.
func TestEmbeddedAuth(t *testing.T) {
	e := startEnv(t, map[string]any{"username": "bl", "password": "secret"})
	if _, err := connectClient(e.tr.Addr(), "anon"); err == nil {
		t.Error("a client without credentials was accepted")
	}
	if _, err := connectClient(e.tr.Addr(), "wrong", clientOpts{username: "bl", password: "nope"}); err == nil {
		t.Error("a client with a wrong password was accepted")
	}
	c := dialClient(t, e.tr.Addr(), "good", clientOpts{username: "bl", password: "secret"})
	c.mustSubscribe("pvhub/" + pvDouble)
	c.next("the state", onTopic("pvhub/"+pvDouble))
}

// TestEmbeddedStatus: the status topic says online (retained) while the transport runs, and
// offline to its subscribers when it closes.
func TestEmbeddedStatus(t *testing.T) {
	e := startEnv(t, nil)
	c := e.client("c")
	c.mustSubscribe("pvhub/status")
	m := c.next("online", onTopic("pvhub/status"))
	if string(m.payload) != `{"status":"online"}` || !m.retain {
		t.Errorf("status: %v", m)
	}
	if err := e.h.Close(); err != nil {
		t.Fatal(err)
	}
	m = c.next("offline", onTopic("pvhub/status"))
	if string(m.payload) != `{"status":"offline"}` {
		t.Errorf("status at close: %v", m)
	}
	waitUntil(t, "the client's connection ends", func() bool { return c.endedErr() != nil })
}

// TestEmbeddedPublishPatterns: literal names in publish are published from the start; a
// pattern publishes the relay PVs that RELAY:pvlist lists and match it, and releases those
// no longer listed.
func TestEmbeddedPublishPatterns(t *testing.T) {
	rd := plugins.Metadata{Type: plugins.TypeDouble, Count: 1}
	tr := newTransport()
	rh := &recHost{subs: map[string]int{}, unsubs: map[string]int{}}
	h := plugintest.NewHarness(&recorder{Transport: tr, host: rh})
	for _, n := range []string{"RELAY:a", "RELAY:b", "RELAY:x_1", "IOC:temp"} {
		m := rd
		m.Name = n
		h.AddPV(m, okValue(n, plugins.Float64s(1), 1000), true)
	}
	list := func(names string) plugins.Value {
		return okValue("RELAY:pvlist", plugins.Bytes(append([]byte(names), 0)), 1000)
	}
	h.AddPV(plugins.Metadata{Name: "RELAY:pvlist", Type: plugins.TypeChar, Count: 16384}, list("RELAY:a,RELAY:x_1"), false)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	err := h.Start(ctx, plugins.Config{Name: "mqtt", RelayPrefix: "RELAY:", Logger: slog.New(slog.DiscardHandler),
		Options: map[string]any{"listen": "127.0.0.1:0", "publish": []any{"IOC:temp", "RELAY:[a-c]", "RELAY:x*", "bad+name"}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	c := dialClient(t, tr.Addr(), "c")
	c.mustSubscribe("pvhub/#")
	seen := map[string]bool{}
	for len(seen) < 3 {
		m := c.next("the published PVs", func(m message) bool { return m.topic != "pvhub/status" })
		seen[m.topic] = true
	}
	for _, want := range []string{"pvhub/IOC:temp", "pvhub/RELAY:a", "pvhub/RELAY:x_1"} {
		if !seen[want] {
			t.Errorf("%s not published (saw %v)", want, seen)
		}
	}
	if h.Subscribed("RELAY:b") {
		t.Error("RELAY:b is subscribed before it is listed")
	}
	// RELAY:b appears, RELAY:a goes.
	h.Publish(list("RELAY:b,RELAY:x_1"))
	var gotB, goneA bool
	for !gotB || !goneA {
		m := c.next("RELAY:b, and the retained state of RELAY:a deleted", func(m message) bool {
			return m.topic == "pvhub/RELAY:b" || m.topic == "pvhub/RELAY:a" && len(m.payload) == 0
		})
		gotB, goneA = gotB || m.topic == "pvhub/RELAY:b", goneA || m.topic == "pvhub/RELAY:a"
	}
	waitUntil(t, "RELAY:a is released", func() bool { return !h.Subscribed("RELAY:a") })
	if !h.Subscribed("RELAY:x_1") || !h.Subscribed("IOC:temp") || !h.Subscribed("RELAY:pvlist") {
		t.Error("a published PV was released")
	}
	// A client's subscription and a pattern on the same PV: the client leaving keeps it.
	c2 := dialClient(t, tr.Addr(), "c2")
	c2.mustSubscribe("pvhub/RELAY:b")
	c2.next("RELAY:b", onTopic("pvhub/RELAY:b"))
	c2.Close()
	h.Publish(okValue("RELAY:b", plugins.Float64s(8), 1001))
	c.next("an update of RELAY:b", stateIs("pvhub/RELAY:b", map[string]any{"value": 8}))

	// A list that fills its PV was cut by the relay: its last name is ignored.
	h.Publish(plugins.Metadata{Name: "RELAY:pvlist", Type: plugins.TypeChar, Count: 18}, list("RELAY:x_1,RELAY:b"))
	waitUntil(t, "RELAY:b, last in a full list, is released", func() bool { return !h.Subscribed("RELAY:b") })
	if !h.Subscribed("RELAY:x_1") {
		t.Error("RELAY:x_1 was released")
	}
}

// TestEmbeddedSessions: a persistent session keeps its PVs published while its client is
// away; the client taking its session back with a clean start releases them.
func TestEmbeddedSessions(t *testing.T) {
	e := startEnv(t, nil)
	topic := "pvhub/" + pvDouble
	c := dialClient(t, e.tr.Addr(), "keeper", clientOpts{persistent: true})
	c.mustSubscribe(topic)
	c.next("the state", onTopic(topic))
	c.Close()
	// Back with its session: still subscribed, nothing released or subscribed again.
	c = dialClient(t, e.tr.Addr(), "keeper", clientOpts{persistent: true})
	e.h.Publish(okValue(pvDouble, plugins.Float64s(31), 1031))
	c.next("an update through the kept session", stateIs(topic, map[string]any{"value": 31}))
	if subs, unsubs := e.host.counts(pvDouble); subs != 1 || unsubs != 0 {
		t.Errorf("upstream subscribe %d, unsubscribe %d; want 1 and 0", subs, unsubs)
	}
	c.Close()
	// A clean start discards the session, and its subscriptions.
	c = dialClient(t, e.tr.Addr(), "keeper")
	waitUntil(t, "the discarded session's PV is released", func() bool { return !e.h.Subscribed(pvDouble) })
	if _, unsubs := e.host.counts(pvDouble); unsubs != 1 {
		t.Errorf("%d upstream unsubscriptions, want 1", unsubs)
	}
}

// TestEmbeddedClose: Close with clients connected returns promptly and leaves no goroutine;
// Close without Start and twice is fine.
func TestEmbeddedClose(t *testing.T) {
	before := goleak.IgnoreCurrent()
	e := startEnv(t, nil)
	c := e.client("c")
	c.mustSubscribe("pvhub/" + pvDouble)
	c.next("the state", onTopic("pvhub/"+pvDouble))
	// A connection that never sends CONNECT.
	raw, err := dialRaw(e.tr.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if err := e.h.Close(); err != nil {
		t.Fatal(err)
	}
	c.Close()
	raw.Close()
	if err := goleak.Find(before); err != nil {
		t.Error(err)
	}
	tr := New()
	if err := tr.Close(); err != nil {
		t.Error(err)
	}
	if err := tr.Close(); err != nil {
		t.Error(err)
	}
}
