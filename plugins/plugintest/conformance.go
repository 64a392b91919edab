package plugintest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pvhub/pvhub/plugins"
)

// Factory builds a fresh, unstarted transport for one check of the conformance suite, with
// the configuration to start it with (a listen address with port 0, for instance) and the
// ClientFactory that connects clients to it once it has started. Run calls it once per
// check; whatever it creates besides the transport it should release with t.Cleanup.
type Factory func(t *testing.T) (plugins.Transport, plugins.Config, ClientFactory)

// ClientFactory connects a new client (a browser, a subscriber) to the transport; Run calls
// it only after the transport's Start has returned. The client is closed by Run, but the
// factory may also register a t.Cleanup of its own.
type ClientFactory func(t *testing.T) Client

// Client drives a transport from its own client side (a WebSocket client, an HTTP client, an
// MQTT client) and reports what that client saw in the dialect-neutral form of ClientEvent.
// Run calls Subscribe, Unsubscribe and Put from one goroutine at a time, and Next from the
// same goroutine.
type Client interface {
	// Subscribe asks the transport for the named PV. It need not wait for an answer: what
	// follows arrives through Next.
	Subscribe(name string)
	// Unsubscribe drops the named PV, and returns once the transport has processed the
	// request as far as the client can tell (after its acknowledgement, or after the answer
	// to a later request on the same connection).
	Unsubscribe(name string)
	// Put writes v to the named PV and waits for the transport's answer: nil on success,
	// otherwise an error whose text includes the reason the transport gave.
	Put(name string, v plugins.Data) error
	// Next returns the next event the client saw, in the order it saw them. Acknowledgements
	// and answers to puts are not events. It returns an error when ctx is done, or once the
	// connection has ended and every event received before is consumed.
	Next(ctx context.Context) (ClientEvent, error)
	// Close disconnects the client and returns once the goroutines it started have ended.
	// It is idempotent.
	Close()
}

// EventKind says what a ClientEvent reports.
type EventKind uint8

// The kinds of ClientEvent.
const (
	// EventConnected reports that a PV became connected, as far as the client can tell (the
	// first connected message, or the first after a disconnection).
	EventConnected EventKind = iota + 1
	// EventDisconnected reports that a PV became disconnected.
	EventDisconnected
	// EventMetadata reports a PV's metadata; Units is set.
	EventMetadata
	// EventValue reports a PV's value; Float64s holds a numeric value, Text a text one.
	EventValue
)

// String returns "connected", "disconnected", "metadata" or "value".
func (k EventKind) String() string {
	switch k {
	case EventConnected:
		return "connected"
	case EventDisconnected:
		return "disconnected"
	case EventMetadata:
		return "metadata"
	case EventValue:
		return "value"
	}
	return fmt.Sprintf("EventKind(%d)", uint8(k))
}

// ClientEvent is what a client saw about one PV, independent of the transport's dialect. An
// adapter that receives one message carrying several of these (a PVWS first update carries
// the connection, the metadata and the value) reports them in the order connected, metadata,
// value.
type ClientEvent struct {
	Kind EventKind
	// Name is the PV's name.
	Name string
	// Float64s is the value of a numeric PV (EventValue), as float64s whatever its type.
	Float64s []float64
	// Text is the value of a text PV (EventValue).
	Text string
	// Units are the PV's engineering units (EventMetadata).
	Units string
}

// String returns a short description of e, for failure messages.
func (e ClientEvent) String() string {
	switch e.Kind {
	case EventMetadata:
		return fmt.Sprintf("%s %s units=%q", e.Kind, e.Name, e.Units)
	case EventValue:
		if e.Float64s != nil {
			return fmt.Sprintf("%s %s %v", e.Kind, e.Name, e.Float64s)
		}
		return fmt.Sprintf("%s %s %q", e.Kind, e.Name, e.Text)
	}
	return fmt.Sprintf("%s %s", e.Kind, e.Name)
}

// The PVs of the suite's host.
const (
	pvA       = "plugintest:A"       // DBF_DOUBLE, units "mm", value 1.5, writable
	pvB       = "plugintest:B"       // DBF_DOUBLE, units "V", value 2, writable
	pvRefused = "plugintest:REFUSED" // DBF_DOUBLE, writable as far as the transport knows; the host refuses puts
	manyPVs   = 100
	// refusedReason is the reason the suite's host gives when it refuses a put.
	refusedReason = "denied by rule plugintest-deny (the conformance host refuses every write)"
)

func manyName(i int) string { return fmt.Sprintf("plugintest:N:%03d", i) }

// timeout bounds every wait of the suite.
const timeout = 15 * time.Second

// Run runs the conformance suite against the transports that f builds, one subtest per
// check, each with a fresh transport started by a Harness:
//
//   - SubscribeOrder: a subscription brings connected, metadata (with units) and the value,
//     in that order.
//   - ValueUpdate: a published value reaches the client.
//   - Put: a put reaches the host, which applies it; the client gets success and the new
//     value. A put the host refuses gets an error containing the host's reason.
//   - DisconnectReconnect: a disconnection reaches the client; a reconnection brings the
//     connection, new metadata and the value again.
//   - SharedUpstream: two clients of one PV make one upstream Subscribe, and the upstream
//     Unsubscribe happens only once both have left.
//   - CloseReleases: a client that closes releases its subscriptions upstream.
//   - Coalescing: 10,000 updates of 100 PVs; the client may miss intermediate values but
//     sees each PV's values in order and ends with the last one published.
//   - CloseWithClient: Close of the transport with a client connected returns promptly, the
//     client sees its connection end, and no goroutine started by the check remains.
//
// The package calling Run should also verify in its TestMain that no goroutine leaks
// (goleak.VerifyTestMain).
func Run(t *testing.T, f Factory) {
	t.Run("SubscribeOrder", func(t *testing.T) { testSubscribeOrder(t, f) })
	t.Run("ValueUpdate", func(t *testing.T) { testValueUpdate(t, f) })
	t.Run("Put", func(t *testing.T) { testPut(t, f) })
	t.Run("DisconnectReconnect", func(t *testing.T) { testDisconnectReconnect(t, f) })
	t.Run("SharedUpstream", func(t *testing.T) { testSharedUpstream(t, f) })
	t.Run("CloseReleases", func(t *testing.T) { testCloseReleases(t, f) })
	t.Run("Coalescing", func(t *testing.T) { testCoalescing(t, f) })
	t.Run("CloseWithClient", func(t *testing.T) { testCloseWithClient(t, f) })
}

// recorder wraps the transport under test so as to see its requests to the host: it counts
// Subscribe and Unsubscribe per name, records puts, and refuses puts to pvRefused.
type recorder struct {
	plugins.Transport
	h *Harness

	mu     sync.Mutex
	subs   map[string]int
	unsubs map[string]int
	puts   []put
}

type put struct {
	name  string
	value plugins.Data
}

type recordingHost struct {
	plugins.Host
	r *recorder
}

func (r *recorder) Start(ctx context.Context, cfg plugins.Config, host plugins.Host) error {
	return r.Transport.Start(ctx, cfg, recordingHost{host, r})
}

func (h recordingHost) Subscribe(names ...string) {
	h.r.mu.Lock()
	for _, n := range names {
		h.r.subs[n]++
	}
	h.r.mu.Unlock()
	h.Host.Subscribe(names...)
}

func (h recordingHost) Unsubscribe(names ...string) {
	h.r.mu.Lock()
	for _, n := range names {
		h.r.unsubs[n]++
	}
	h.r.mu.Unlock()
	h.Host.Unsubscribe(names...)
}

func (h recordingHost) Put(name string, value plugins.Data, id uint64) {
	h.r.mu.Lock()
	h.r.puts = append(h.r.puts, put{name, value})
	h.r.mu.Unlock()
	if name == pvRefused {
		h.r.h.Publish(plugins.PutResult{Name: name, ID: id, Err: refusedReason})
		return
	}
	h.Host.Put(name, value, id)
}

func (r *recorder) counts(name string) (subs, unsubs int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.subs[name], r.unsubs[name]
}

func (r *recorder) lastPut() (put, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.puts) == 0 {
		return put{}, false
	}
	return r.puts[len(r.puts)-1], true
}

// env is one check's running transport, host and client factory.
type env struct {
	t         *testing.T
	h         *Harness
	r         *recorder
	newClient ClientFactory
}

func setup(t *testing.T, f Factory) *env {
	t.Helper()
	tr, cfg, cf := f(t)
	r := &recorder{Transport: tr, subs: map[string]int{}, unsubs: map[string]int{}}
	h := NewHarness(r)
	r.h = h
	ok := plugins.Value{Status: "NO_ALARM", Severity: "NO_ALARM", Seconds: 1000}
	double := func(name, units string, v float64) {
		val := ok
		val.Data = plugins.Float64s(v)
		h.AddPV(plugins.Metadata{Name: name, Type: plugins.TypeDouble, Count: 1, Units: units, Precision: 3}, val, true)
	}
	double(pvA, "mm", 1.5)
	double(pvB, "V", 2)
	double(pvRefused, "A", 0)
	for i := range manyPVs {
		double(manyName(i), "", -1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := h.Start(ctx, cfg); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { h.Close() })
	return &env{t: t, h: h, r: r, newClient: cf}
}

func (e *env) client() Client {
	e.t.Helper()
	c := e.newClient(e.t)
	e.t.Cleanup(c.Close)
	return c
}

// next returns the client's next event, failing the check after timeout.
func next(t *testing.T, c Client) ClientEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	ev, err := c.Next(ctx)
	if err != nil {
		t.Fatalf("waiting for the client's next event: %v", err)
	}
	return ev
}

// expect reads the client's events until one matches, failing the check after timeout.
func expect(t *testing.T, c Client, what string, match func(ClientEvent) bool) ClientEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var seen []string
	for {
		ev, err := c.Next(ctx)
		if err != nil {
			t.Fatalf("waiting for %s: %v (last events seen: %s)", what, err, tail(seen))
		}
		if match(ev) {
			return ev
		}
		seen = append(seen, ev.String())
	}
}

func tail(s []string) string {
	if len(s) > 10 {
		s = s[len(s)-10:]
	}
	return "[" + strings.Join(s, "; ") + "]"
}

func isKind(k EventKind, name string) func(ClientEvent) bool {
	return func(e ClientEvent) bool { return e.Kind == k && e.Name == name }
}

func isValue(name string, v ...float64) func(ClientEvent) bool {
	return func(e ClientEvent) bool { return e.Kind == EventValue && e.Name == name && slices.Equal(e.Float64s, v) }
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// subscribed subscribes c to name and waits for the value v.
func subscribed(t *testing.T, c Client, name string, v float64) {
	t.Helper()
	c.Subscribe(name)
	expect(t, c, fmt.Sprintf("the first value of %s", name), isValue(name, v))
}

func testSubscribeOrder(t *testing.T, f Factory) {
	e := setup(t, f)
	c := e.client()
	c.Subscribe(pvA)
	var got []ClientEvent
	for len(got) < 3 {
		if ev := next(t, c); ev.Name == pvA {
			got = append(got, ev)
		}
	}
	if got[0].Kind != EventConnected {
		t.Fatalf("first event %v, want connected", got[0])
	}
	if got[1].Kind != EventMetadata || got[1].Units != "mm" {
		t.Fatalf("second event %v, want metadata with units \"mm\"", got[1])
	}
	if !isValue(pvA, 1.5)(got[2]) {
		t.Fatalf("third event %v, want value [1.5]", got[2])
	}
	if !e.h.Subscribed(pvA) {
		t.Fatal("not subscribed upstream")
	}
}

func testValueUpdate(t *testing.T, f Factory) {
	e := setup(t, f)
	c := e.client()
	subscribed(t, c, pvA, 1.5)
	e.h.Publish(plugins.Value{Name: pvA, Data: plugins.Float64s(2.5), Status: "NO_ALARM", Severity: "NO_ALARM", Seconds: 1001})
	expect(t, c, "the published value 2.5", isValue(pvA, 2.5))
}

func testPut(t *testing.T, f Factory) {
	e := setup(t, f)
	c := e.client()
	subscribed(t, c, pvA, 1.5)
	if err := c.Put(pvA, plugins.Float64s(4.25)); err != nil {
		t.Fatalf("put to %s: %v", pvA, err)
	}
	p, ok := e.r.lastPut()
	if !ok || p.name != pvA || p.value.Kind != plugins.KindFloat64 && p.value.Kind != plugins.KindInt64 {
		t.Fatalf("the host received %+v (%t), want a put of 4.25 to %s", p, ok, pvA)
	}
	if got := asFloat64s(p.value); !slices.Equal(got, []float64{4.25}) {
		t.Fatalf("the host received %v, want [4.25]", got)
	}
	expect(t, c, "the value written", isValue(pvA, 4.25))

	subscribed(t, c, pvRefused, 0)
	err := c.Put(pvRefused, plugins.Float64s(1))
	if err == nil {
		t.Fatal("a put the host refuses succeeded")
	}
	if !strings.Contains(err.Error(), refusedReason) {
		t.Fatalf("refused put: %q does not contain the host's reason %q", err, refusedReason)
	}
}

func asFloat64s(d plugins.Data) []float64 {
	switch d.Kind {
	case plugins.KindFloat64:
		return d.Float64s
	case plugins.KindInt64:
		out := make([]float64, len(d.Int64s))
		for i, v := range d.Int64s {
			out[i] = float64(v)
		}
		return out
	}
	return nil
}

func testDisconnectReconnect(t *testing.T, f Factory) {
	e := setup(t, f)
	c := e.client()
	subscribed(t, c, pvA, 1.5)
	e.h.Publish(plugins.Connection{Name: pvA})
	expect(t, c, "the disconnection", isKind(EventDisconnected, pvA))
	e.h.Publish(plugins.Connection{Name: pvA, Connected: true, Read: true, Write: true},
		plugins.Metadata{Name: pvA, Type: plugins.TypeDouble, Count: 1, Units: "cm", Precision: 2},
		plugins.Value{Name: pvA, Data: plugins.Float64s(3), Status: "NO_ALARM", Severity: "NO_ALARM", Seconds: 1002})
	var got []ClientEvent
	for {
		ev := next(t, c)
		if ev.Name != pvA {
			continue
		}
		got = append(got, ev)
		if ev.Kind == EventValue {
			break
		}
	}
	// The connection first, then (possibly metadata as it was, then) the new metadata, then
	// the value.
	if got[0].Kind != EventConnected {
		t.Fatalf("after the reconnection: %v, want connected first", got)
	}
	if !isValue(pvA, 3)(got[len(got)-1]) {
		t.Fatalf("after the reconnection: %v, want the value [3] last", got)
	}
	if len(got) < 3 || got[len(got)-2].Kind != EventMetadata || got[len(got)-2].Units != "cm" {
		t.Fatalf("after the reconnection: %v, want metadata with units \"cm\" before the value", got)
	}
}

func testSharedUpstream(t *testing.T, f Factory) {
	e := setup(t, f)
	c1, c2 := e.client(), e.client()
	subscribed(t, c1, pvA, 1.5)
	subscribed(t, c2, pvA, 1.5)
	if subs, _ := e.r.counts(pvA); subs != 1 {
		t.Fatalf("%d upstream Subscribe calls for %s, want 1", subs, pvA)
	}
	c1.Unsubscribe(pvA)
	if _, unsubs := e.r.counts(pvA); unsubs != 0 || !e.h.Subscribed(pvA) {
		t.Fatalf("unsubscribed upstream (%d calls) while a client still wants %s", unsubs, pvA)
	}
	e.h.Publish(plugins.Value{Name: pvA, Data: plugins.Float64s(7), Status: "NO_ALARM", Severity: "NO_ALARM", Seconds: 1003})
	expect(t, c2, "the value after the other client left", isValue(pvA, 7))
	c2.Unsubscribe(pvA)
	waitFor(t, "the upstream subscription is released", func() bool {
		_, unsubs := e.r.counts(pvA)
		return unsubs == 1 && !e.h.Subscribed(pvA)
	})
	if subs, _ := e.r.counts(pvA); subs != 1 {
		t.Fatalf("%d upstream Subscribe calls for %s, want 1", subs, pvA)
	}
}

func testCloseReleases(t *testing.T, f Factory) {
	e := setup(t, f)
	c := e.client()
	subscribed(t, c, pvA, 1.5)
	subscribed(t, c, pvB, 2)
	c.Close()
	waitFor(t, "the closed client's subscriptions are released upstream", func() bool {
		return !e.h.Subscribed(pvA) && !e.h.Subscribed(pvB)
	})
}

func testCoalescing(t *testing.T, f Factory) {
	e := setup(t, f)
	c := e.client()
	for i := range manyPVs {
		c.Subscribe(manyName(i))
	}
	last := map[string]float64{}
	for len(last) < manyPVs {
		ev := expect(t, c, "the first values", func(e ClientEvent) bool { return e.Kind == EventValue })
		if len(ev.Float64s) == 1 && ev.Float64s[0] == -1 {
			last[ev.Name] = -1
		}
	}
	const rounds = 10000 / manyPVs
	for r := range rounds {
		batch := make([]plugins.Event, manyPVs)
		for i := range batch {
			batch[i] = plugins.Value{Name: manyName(i), Data: plugins.Float64s(float64(r)),
				Status: "NO_ALARM", Severity: "NO_ALARM", Seconds: uint32(2000 + r)}
		}
		e.h.Publish(batch...)
	}
	final := 0
	for final < manyPVs {
		ev := expect(t, c, fmt.Sprintf("the final values (%d of %d seen)", final, manyPVs),
			func(e ClientEvent) bool { return e.Kind == EventValue })
		prev, ok := last[ev.Name]
		if !ok || len(ev.Float64s) != 1 {
			t.Fatalf("unexpected value %v", ev)
		}
		v := ev.Float64s[0]
		if v < prev {
			t.Fatalf("%s: value %v after %v: values out of order", ev.Name, v, prev)
		}
		if v == rounds-1 && prev != rounds-1 {
			final++
		}
		last[ev.Name] = v
	}
}

func testCloseWithClient(t *testing.T, f Factory) {
	before := goleak.IgnoreCurrent()
	e := setup(t, f)
	c := e.client()
	subscribed(t, c, pvA, 1.5)
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- e.h.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close of the transport with a client connected did not return within 5 s")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v with a client connected", d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		_, err := c.Next(ctx)
		if err == nil {
			continue
		}
		if errors.Is(err, context.DeadlineExceeded) {
			t.Fatal("the client's connection did not end after Close of the transport")
		}
		break
	}
	c.Close()
	if err := goleak.Find(before); err != nil {
		t.Errorf("goroutines left after Close: %v", err)
	}
}

// JSONValue is the value event of name for a value decoded from JSON (by
// encoding/json into an any): a number or one of the strings "NaN", "Infinity"
// and "-Infinity" becomes Float64s of one element, a list of those Float64s, and
// anything else (text, a list holding text) Text. null gives an event with
// neither. Client adapters of JSON transports use it.
func JSONValue(name string, v any) ClientEvent {
	e := ClientEvent{Kind: EventValue, Name: name}
	num := func(x any) (float64, bool) {
		switch x := x.(type) {
		case float64:
			return x, true
		case string:
			switch x {
			case "NaN":
				return math.NaN(), true
			case "Infinity":
				return math.Inf(1), true
			case "-Infinity":
				return math.Inf(-1), true
			}
		}
		return 0, false
	}
	switch v := v.(type) {
	case nil:
	case []any:
		for _, x := range v {
			f, ok := num(x)
			if !ok {
				e.Float64s, e.Text = nil, fmt.Sprint(v)
				return e
			}
			e.Float64s = append(e.Float64s, f)
		}
	default:
		if f, ok := num(v); ok {
			e.Float64s = []float64{f}
		} else {
			e.Text = fmt.Sprint(v)
		}
	}
	return e
}
