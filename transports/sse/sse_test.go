package sse

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pvhub/pvhub/plugins"
)

// byPV reads events until each of names has n events, and returns them per PV.
func byPV(c *sseClient, n int, names ...string) map[string][]sseEvent {
	c.t.Helper()
	got := map[string][]sseEvent{}
	for {
		done := true
		for _, name := range names {
			if len(got[name]) < n {
				done = false
			}
		}
		if done {
			return got
		}
		e := c.next()
		pv, _ := e.json["pv"].(string)
		got[pv] = append(got[pv], e)
	}
}

func TestStreamStateAndUpdates(t *testing.T) {
	f := start(t, nil)
	c := f.stream("?pv=A&pv=E&pv=TXT&pv=ARR")
	got := byPV(c, 3, "A", "E", "TXT", "ARR")
	for name, evs := range got {
		for i, want := range []string{"connection", "metadata", "value"} {
			if evs[i].event != want || evs[i].json["type"] != want {
				t.Fatalf("%s: event %d is %q %s, want %s", name, i, evs[i].event, evs[i].data, want)
			}
		}
	}
	a := got["A"]
	if !is("connection", "pv", "A", "connected", true, "read", true, "write", true)(a[0]) {
		t.Errorf("A connection: %s", a[0].data)
	}
	if !is("metadata", "native_type", "DBF_DOUBLE", "count", 1, "units", "mm", "precision", 3,
		"display", map[string]any{"low": -10, "high": 10}, "control", map[string]any{"low": -100, "high": 100})(a[1]) {
		t.Errorf("A metadata: %s", a[1].data)
	}
	if !is("value", "value", 1.5, "status", "NO_ALARM", "severity", "NO_ALARM", "seconds", 631152000+1000,
		"nanos", 5, "time", "1990-01-01T00:16:40.000000005Z")(a[2]) {
		t.Errorf("A value: %s", a[2].data)
	}
	if e := got["E"][2]; !is("value", "value", 1, "text", "On")(e) {
		t.Errorf("E value: %s", e.data)
	}
	if e := got["E"][1]; !is("metadata", "enum_labels", []string{"Off", "On"})(e) {
		t.Errorf("E metadata: %s", e.data)
	}
	if e := got["TXT"][2]; !is("value", "value", "hello")(e) {
		t.Errorf("TXT value: %s", e.data)
	}
	if e := got["ARR"][2]; !is("value", "value", []float64{1, 2, 3})(e) {
		t.Errorf("ARR value: %s", e.data)
	}
	if got["RO"] != nil {
		t.Errorf("events of a PV not asked for: %v", got["RO"])
	}

	// Updates, a disconnection, a reconnection.
	f.h.Publish(plugins.Value{Name: "A", Data: plugins.Float64s(2.5), Status: "HIGH", Severity: "MINOR", Seconds: 1001})
	c.until("the update", is("value", "pv", "A", "value", 2.5, "status", "HIGH", "severity", "MINOR"))
	f.h.Publish(plugins.Connection{Name: "A"})
	c.until("the disconnection", is("connection", "pv", "A", "connected", false))
	f.h.Publish(plugins.Connection{Name: "A", Connected: true, Read: true, WriteDenied: `write denied by write.deny "A"`},
		plugins.Metadata{Name: "A", Type: plugins.TypeDouble, Count: 1, Units: "cm"},
		plugins.Value{Name: "A", Data: plugins.Float64s(3), Status: "NO_ALARM", Severity: "NO_ALARM"})
	var again []sseEvent
	for len(again) < 3 {
		if e := c.next(); e.json["pv"] == "A" {
			again = append(again, e)
		}
	}
	if !is("connection", "connected", true, "write", false, "write_denied", `write denied by write.deny "A"`)(again[0]) ||
		!is("metadata", "units", "cm")(again[1]) || !is("value", "value", 3)(again[2]) {
		t.Errorf("after the reconnection: %v", again)
	}
	if n := f.tr.subCount("A"); n != 1 {
		t.Errorf("%d upstream subscriptions of A, want 1", n)
	}

	c.close()
	waitFor(t, "the stream's PVs are released", func() bool {
		return f.tr.streamCount() == 0 && f.tr.hub.upstream() == 0 && !f.h.Subscribed("A") && !f.h.Subscribed("ARR")
	})
}

func TestStreamSharedUpstream(t *testing.T) {
	f := start(t, nil)
	c1 := f.stream("?pv=A")
	c1.until("the first value", is("value", "pv", "A", "value", 1.5))
	// The second stream gets the state from the cache: the host answers a subscription once.
	c2 := f.stream("?pvs=A")
	got := byPV(c2, 3, "A")["A"]
	if got[0].event != "connection" || got[1].event != "metadata" || !is("value", "value", 1.5)(got[2]) {
		t.Fatalf("the second stream's first events: %v", got)
	}
	if n := f.tr.subCount("A"); n != 1 {
		t.Fatalf("%d upstream subscriptions of A, want 1", n)
	}
	c1.close()
	waitFor(t, "the first stream is gone", func() bool { return f.tr.streamCount() == 1 })
	if !f.h.Subscribed("A") {
		t.Fatal("A unsubscribed while a stream still has it")
	}
	f.h.Publish(plugins.Value{Name: "A", Data: plugins.Float64s(9), Status: "NO_ALARM", Severity: "NO_ALARM"})
	c2.until("the value after the other stream left", is("value", "value", 9))
	c2.close()
	waitFor(t, "A is released", func() bool { return !f.h.Subscribed("A") && f.tr.hub.upstream() == 0 })
}

// TestStreamClientLeaves closes a client's connection while values flow: the stream's
// handler ends, and the PVs are released upstream (TestMain checks that no goroutine stays).
func TestStreamClientLeaves(t *testing.T) {
	f := start(t, nil)
	c := f.stream("?pv=A&pv=ARR")
	c.until("the first value", is("value", "pv", "A", "value", 1.5))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			f.h.Publish(plugins.Value{Name: "A", Data: plugins.Float64s(float64(i)), Status: "NO_ALARM", Severity: "NO_ALARM"},
				plugins.Value{Name: "ARR", Data: plugins.Float64s(float64(i), 0, 0), Status: "NO_ALARM", Severity: "NO_ALARM"})
			time.Sleep(time.Millisecond)
		}
	}()
	c.until("values flowing", func(e sseEvent) bool { v, _ := e.json["value"].(float64); return v > 20 })
	c.close()
	waitFor(t, "the stream ends and its PVs are released", func() bool {
		return f.tr.streamCount() == 0 && f.tr.hub.upstream() == 0 && !f.h.Subscribed("A") && !f.h.Subscribed("ARR")
	})
	close(stop)
	wg.Wait()
	waitFor(t, "the log says why the stream closed", func() bool {
		return strings.Contains(f.log.String(), `msg="sse stream closed" remote=`) &&
			strings.Contains(f.log.String(), `reason="the client left`)
	})
}

func TestStreamParameters(t *testing.T) {
	f := start(t, nil)
	c := f.stream("?pvs=A,%20E&pv=A")
	byPV(c, 3, "A", "E")
	if n := f.tr.subCount("A"); n != 1 {
		t.Errorf("%d upstream subscriptions of A, want 1", n)
	}
	// An unknown PV: reported disconnected.
	u := f.stream("?pv=NOPE")
	u.until("NOPE's connection", is("connection", "pv", "NOPE", "connected", false))

	f.do("GET", EventsPath, "").expect(t, 400, "no PV given: use /api/v1/events?pv=NAME (repeatable) or ?pvs=A,B")
	f.do("GET", EventsPath+"?pv=", "").expect(t, 400, "empty PV name in pv=")
	f.do("GET", EventsPath+"?pvs=A,,E", "").expect(t, 400, `empty PV name in pvs="A,,E"`)
	r := f.do("POST", EventsPath+"?pv=A", "")
	r.expect(t, 405, "method POST not allowed on /api/v1/events; allowed: GET, OPTIONS")
	if r.header.Get("Allow") != "GET, OPTIONS" {
		t.Errorf("Allow: %q", r.header.Get("Allow"))
	}
}

func TestStreamKeepalive(t *testing.T) {
	f := start(t, map[string]any{"keepalive": "20ms"})
	c := f.stream("?pv=A")
	c.until("a keep-alive comment", func(e sseEvent) bool { return e.event == "" && e.data == "keepalive" })
	c.until("another", func(e sseEvent) bool { return e.event == "" && e.data == "keepalive" })
}

// TestStreamStalledClient: a client that stops reading is ended once a write waits longer
// than stall_timeout, and its PVs are released.
func TestStreamStalledClient(t *testing.T) {
	f := start(t, map[string]any{"stall_timeout": "200ms"})
	resp, cancel := f.openStream("?pv=ARR")
	defer func() { cancel(); resp.Body.Close() }()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	waitFor(t, "the stream is open", func() bool { return f.h.Subscribed("ARR") })
	big := make([]float64, 100000)
	for i := range big {
		big[i] = float64(i) + 0.123456789
	}
	deadline := time.Now().Add(4 * wait)
	for i := 0; f.tr.streamCount() > 0; i++ {
		if time.Now().After(deadline) {
			t.Fatal("the stalled stream was not ended")
		}
		f.h.Publish(plugins.Value{Name: "ARR", Data: plugins.Float64s(big...), Seconds: uint32(i), Status: "NO_ALARM", Severity: "NO_ALARM"})
		time.Sleep(10 * time.Millisecond)
	}
	waitFor(t, "ARR is released", func() bool { return !f.h.Subscribed("ARR") && f.tr.hub.upstream() == 0 })
	if l := f.log.String(); !strings.Contains(l, `msg="ended a stream that does not keep up"`) ||
		!strings.Contains(l, "a write waited more than 200ms (stall_timeout)") {
		t.Errorf("log:\n%s", l)
	}
}

// TestStreamQueue checks the queue: values coalesce per PV unless another event of the PV
// came after them; connection and metadata events are kept; an overflow ends the stream with
// a final error event.
func TestStreamQueue(t *testing.T) {
	s := newStream(16)
	val := func(name string, v float64) entry {
		return entry{kind: entValue, name: name, value: &plugins.Value{Name: name, Data: plugins.Float64s(v)}}
	}
	s.enqueue(entry{kind: entConn, name: "A", conn: plugins.Connection{Name: "A", Connected: true}})
	s.enqueue(val("A", 1))
	s.enqueue(val("B", 1))
	s.enqueue(val("A", 2))
	s.enqueue(entry{kind: entMeta, name: "A", meta: &plugins.Metadata{Name: "A"}})
	s.enqueue(val("A", 3))
	s.enqueue(val("B", 2))
	s.enqueue(val("A", 4))
	var got []string
	for _, e := range s.take() {
		switch e.kind {
		case entConn:
			got = append(got, "conn "+e.name)
		case entMeta:
			got = append(got, "meta "+e.name)
		case entValue:
			got = append(got, fmt.Sprintf("value %s %v", e.name, e.value.Data.Float64s[0]))
		}
	}
	want := []string{"conn A", "value A 2", "value B 2", "meta A", "value A 4"}
	if !slices.Equal(got, want) {
		t.Fatalf("queue %v, want %v", got, want)
	}

	for i := range 17 {
		s.enqueue(entry{kind: entConn, name: fmt.Sprint("P", i)})
	}
	select {
	case <-s.stop:
	default:
		t.Fatal("a queue past its limit did not end the stream")
	}
	if n, _ := s.queued(); n != 0 {
		t.Fatalf("%d entries left in the queue of an ended stream", n)
	}
	rec := httptest.NewRecorder()
	why, slow := s.run(context.Background(), rcWriter{rec, http.NewResponseController(rec)}, time.Hour, time.Second)
	const reason = "the client does not keep up: more than 16 events queued (queue_limit)"
	if why != reason || !slow {
		t.Fatalf("run returned %q, %t", why, slow)
	}
	if body := rec.Body.String(); body != "event: error\ndata: {\"error\":\""+reason+"\"}\n\n" {
		t.Fatalf("final event %q", body)
	}
}

// TestStreamCoalescing publishes many values of many PVs to one stream: it ends with each
// PV's last value, values in order.
func TestStreamCoalescing(t *testing.T) {
	f := start(t, nil)
	const n = 50
	var names []string
	for i := range n {
		name := fmt.Sprintf("N%02d", i)
		names = append(names, name)
		f.h.AddPV(plugins.Metadata{Name: name, Type: plugins.TypeDouble, Count: 1}, withData(plugins.Float64s(-1)), true)
	}
	c := f.stream("?pvs=" + strings.Join(names, ","))
	byPV(c, 3, names...)
	const rounds = 200
	for r := range rounds {
		batch := make([]plugins.Event, n)
		for i := range batch {
			batch[i] = plugins.Value{Name: names[i], Data: plugins.Float64s(float64(r)), Status: "NO_ALARM", Severity: "NO_ALARM"}
		}
		f.h.Publish(batch...)
	}
	last := map[string]float64{}
	for len(last) < n || slices.ContainsFunc(names, func(s string) bool { return last[s] != rounds-1 }) {
		e := c.next()
		pv, _ := e.json["pv"].(string)
		v, _ := e.json["value"].(float64)
		if prev, ok := last[pv]; ok && v < prev {
			t.Fatalf("%s: %v after %v", pv, v, prev)
		}
		last[pv] = v
	}
}

func TestCloseEndsStreamsAndRequests(t *testing.T) {
	f := start(t, nil)
	c := f.stream("?pv=A")
	c.until("the value", is("value", "pv", "A"))
	// A GET waiting for a PV that does not connect.
	type result struct {
		status int
		err    string
	}
	got := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest("GET", f.base+PVPath+"NOPE?timeout=1m", nil)
		resp, err := f.client.Do(req)
		if err != nil {
			got <- result{err: err.Error()}
			return
		}
		defer resp.Body.Close()
		got <- result{status: resp.StatusCode}
	}()
	waitFor(t, "the GET waits", func() bool { return f.h.Subscribed("NOPE") })
	closed := make(chan error, 1)
	go func() { closed <- f.h.Close() }()
	rest := c.drain()
	if len(rest) == 0 || !is("error", "error", "the server is shutting down")(rest[len(rest)-1]) {
		t.Errorf("the stream's last events: %v", rest)
	}
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(wait):
		t.Fatal("Close did not return")
	}
	if r := <-got; r.status != http.StatusServiceUnavailable {
		t.Errorf("the waiting GET: %+v, want status 503", r)
	}
	// After Close, nothing is served.
	if _, err := f.client.Get(f.base + PVPath + "A"); err == nil {
		t.Error("a request after Close was answered")
	}
}

func TestStartAndClose(t *testing.T) {
	// Close without Start, twice.
	tr := newTransport()
	if err := tr.Close(); err != nil || tr.Close() != nil {
		t.Fatal(err)
	}
	if tr.Addr() != "" {
		t.Fatal("Addr before Start")
	}
	f := start(t, map[string]any{"bogus": 1, "enabled": true, "path": ""})
	if !strings.Contains(f.log.String(), `msg="unknown sse option ignored" key=bogus`) {
		t.Errorf("no warning about the unknown option:\n%s", f.log.String())
	}
	if err := f.tr.Start(context.Background(), plugins.Config{}, f.h); err == nil {
		t.Error("a second Start succeeded")
	}
	// The port is taken.
	busy := newTransport()
	err := busy.Start(context.Background(), plugins.Config{Options: map[string]any{"listen": f.tr.Addr()}}, f.h)
	if err == nil || !strings.Contains(err.Error(), "sse: cannot listen on") {
		t.Errorf("Start on a busy port: %v", err)
	}
	busy.Close()
	bad := newTransport()
	err = bad.Start(context.Background(), plugins.Config{Options: map[string]any{"queue_limit": "x"}}, f.h)
	if err == nil || err.Error() != `sse: queue_limit: want an integer, got "x"` {
		t.Errorf("Start with a bad option: %v", err)
	}
	bad.Close()
}
