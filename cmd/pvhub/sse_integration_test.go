package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pvhub/pvhub/ca/catest"
)

// sseEvent is one server-sent event: its name and its data, decoded.
type sseEvent struct {
	event string
	data  map[string]any
}

// sseStream is a client of GET /api/v1/events, read by its own goroutine.
type sseStream struct {
	t      *testing.T
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	events  []sseEvent
	ended   error
	changed chan struct{}
}

// openSSE opens a stream of the PVs names on the SSE transport at addr.
func openSSE(t *testing.T, hc *http.Client, addr string, names ...string) *sseStream {
	t.Helper()
	q := url.Values{"pv": names}
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/api/v1/events?"+q.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET %s: %v", req.URL, err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		t.Fatalf("GET %s: %s %s", req.URL, resp.Status, b)
	}
	s := &sseStream{t: t, cancel: cancel, done: make(chan struct{}), changed: make(chan struct{})}
	go s.read(resp.Body)
	t.Cleanup(s.close)
	return s
}

func (s *sseStream) read(body io.ReadCloser) {
	defer close(s.done)
	defer body.Close()
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var name, data string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if name != "" {
				e := sseEvent{event: name}
				_ = json.Unmarshal([]byte(data), &e.data)
				s.mu.Lock()
				s.events = append(s.events, e)
				s.signal()
				s.mu.Unlock()
			}
			name, data = "", ""
		case strings.HasPrefix(line, "event: "):
			name = line[len("event: "):]
		case strings.HasPrefix(line, "data: "):
			data = line[len("data: "):]
		}
	}
	s.mu.Lock()
	s.ended = fmt.Errorf("the stream ended: %v", sc.Err())
	s.signal()
	s.mu.Unlock()
}

func (s *sseStream) signal() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// close ends the stream from the client's side.
func (s *sseStream) close() {
	s.cancel()
	<-s.done
}

// until returns the first event that match accepts, failing after 15 s. The events of the
// same PV that came before it are dropped; those of other PVs stay for a later until (the
// transport orders the events of one PV, not those of different PVs).
func (s *sseStream) until(what string, match func(sseEvent) bool) sseEvent {
	s.t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		s.mu.Lock()
		for i, e := range s.events {
			if !match(e) {
				continue
			}
			kept := s.events[:0:0]
			for j, b := range s.events {
				if j > i || j < i && fmt.Sprint(b.data["pv"]) != fmt.Sprint(e.data["pv"]) {
					kept = append(kept, b)
				}
			}
			s.events = kept
			s.mu.Unlock()
			return e
		}
		ended, ch, seen := s.ended, s.changed, len(s.events)
		var last []string
		for _, e := range s.events[max(0, seen-10):] {
			last = append(last, fmt.Sprint(e.event, e.data))
		}
		s.mu.Unlock()
		if ended != nil {
			s.t.Fatalf("waiting for %s: %v; unmatched events %v", what, ended, last)
		}
		select {
		case <-ch:
		case <-deadline:
			s.t.Fatalf("waiting for %s: nothing within 15 s; unmatched events (last 10 of %d) %v", what, seen, last)
		}
	}
}

// sseIs matches an event by name and fields (compared as their printed forms).
func sseIs(event string, fields ...any) func(sseEvent) bool {
	return func(e sseEvent) bool {
		if e.event != event {
			return false
		}
		for i := 0; i+1 < len(fields); i += 2 {
			v, ok := e.data[fields[i].(string)]
			if !ok || fmt.Sprint(v) != fmt.Sprint(fields[i+1]) {
				return false
			}
		}
		return true
	}
}

// sseAnswer is an answer of the REST endpoints.
type sseAnswer struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

// sseRequest sends a request to the SSE transport at addr.
func sseRequest(t *testing.T, hc *http.Client, method, addr, path, body string) sseAnswer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := sseAnswer{status: resp.StatusCode, header: resp.Header, raw: string(b)}
	if err := json.Unmarshal(b, &a.body); err != nil {
		t.Fatalf("%s %s: %s, the body is not a JSON object: %q", method, path, resp.Status, b)
	}
	return a
}

// expect checks the status of an answer and that its error contains errText.
func (a sseAnswer) expect(t *testing.T, what string, status int, errText string) {
	t.Helper()
	if a.status != status {
		t.Errorf("%s: status %d, want %d: %s", what, a.status, status, a.raw)
		return
	}
	if e, _ := a.body["error"].(string); !strings.Contains(e, errText) || errText == "" && e != "" {
		t.Errorf("%s: error %q, want one with %q", what, e, errText)
	}
}

// startSSE starts the daemon with the SSE transport on a free port and waits for the plugin.
func startSSE(t *testing.T, extra ...string) (*relayProc, string, *http.Client) {
	t.Helper()
	addr := "127.0.0.1:" + strconv.Itoa(catest.FreePort(t))
	r := newRelay(t, append([]string{"PVHUB_TRANSPORTS__SSE__ENABLED=true", "PVHUB_TRANSPORTS__SSE__LISTEN=" + addr}, extra...)...)
	r.start()
	if err := r.proc.WaitForStderr(30*time.Second, `msg="transport plugin running" transport=sse`); err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(hc.CloseIdleConnections)
	return r, addr, hc
}

// TestIntegrationSSERelay runs pvhub serve with the SSE transport out of process: a stream
// sees a relay PV that a CA client writes; PUT creates relay PVs that a CA client reads;
// GET reads them; every error status, through the daemon; a stream that the client drops
// mid-stream leaves the PV working.
func TestIntegrationSSERelay(t *testing.T) {
	r, addr, hc := startSSE(t, "PVHUB_TRANSPORTS__SSE__MAX_BODY_BYTES=4096")

	// A stream of a relay PV (the subscription creates it) sees a CA client's write.
	s := openSSE(t, hc, addr, "RELAY:sse_f1")
	s.until("the connection", sseIs("connection", "pv", "RELAY:sse_f1", "connected", true, "write", true))
	s.until("the metadata", sseIs("metadata", "pv", "RELAY:sse_f1", "native_type", "DBF_DOUBLE", "count", 1))
	r.putc("RELAY:sse_f1", "42.5")
	s.until("the CA client's value", sseIs("value", "pv", "RELAY:sse_f1", "value", 42.5))

	// PUT writes the stream's PV; CA sees it.
	a := sseRequest(t, hc, "PUT", addr, "/api/v1/pv/RELAY:sse_f1", `{"value": 7}`)
	a.expect(t, "PUT RELAY:sse_f1", 200, "")
	if a.body["type"] != "put_result" || a.body["ok"] != true || a.body["pv"] != "RELAY:sse_f1" {
		t.Errorf("PUT RELAY:sse_f1: %s", a.raw)
	}
	s.until("the PUT's value", sseIs("value", "pv", "RELAY:sse_f1", "value", 7))
	checkFloats(t, "RELAY:sse_f1 after the PUT", r.get("RELAY:sse_f1"), 7)

	// PUT creates relay PVs: a double, a long array, a text.
	sseRequest(t, hc, "PUT", addr, "/api/v1/pv/RELAY:sse_new_f1", `{"value": 3.25}`).expect(t, "PUT RELAY:sse_new_f1", 200, "")
	checkNative(t, r.info("RELAY:sse_new_f1"), "DBR_DOUBLE", 1)
	checkFloats(t, "RELAY:sse_new_f1 created by PUT", r.get("RELAY:sse_new_f1"), 3.25)
	sseRequest(t, hc, "PUT", addr, "/api/v1/pv/RELAY:sse_arr_i3", `{"value": [1, 2, 3]}`).expect(t, "PUT RELAY:sse_arr_i3", 200, "")
	checkFloats(t, "RELAY:sse_arr_i3 created by PUT", r.get("RELAY:sse_arr_i3"), 1, 2, 3)
	sseRequest(t, hc, "PUT", addr, "/api/v1/pv/RELAY:sse_text_c40", `{"value": "hello sse"}`).expect(t, "PUT RELAY:sse_text_c40", 200, "")
	checkText(t, "RELAY:sse_text_c40 created by PUT", r.get("RELAY:sse_text_c40", "-d", "DBR_STRING"), "hello sse")

	// GET.
	a = sseRequest(t, hc, "GET", addr, "/api/v1/pv/RELAY:sse_new_f1", "")
	a.expect(t, "GET RELAY:sse_new_f1", 200, "")
	if a.body["value"] != 3.25 || a.body["native_type"] != "DBF_DOUBLE" || a.body["connected"] != true || a.body["write"] != true {
		t.Errorf("GET RELAY:sse_new_f1: %s", a.raw)
	}
	a = sseRequest(t, hc, "GET", addr, "/api/v1/pv/RELAY:sse_text_c40", "")
	if a.status != 200 || a.body["value"] != "hello sse" || a.body["native_type"] != "DBF_CHAR" {
		t.Errorf("GET RELAY:sse_text_c40: %d %s", a.status, a.raw)
	}
	r.putc("RELAY:sse_arr_i3", "4", "5", "6")
	a = sseRequest(t, hc, "GET", addr, "/api/v1/pv/RELAY:sse_arr_i3?timeout=2s", "")
	if a.status != 200 || fmt.Sprint(a.body["value"]) != "[4 5 6]" || a.body["native_type"] != "DBF_LONG" {
		t.Errorf("GET RELAY:sse_arr_i3 after a CA put: %d %s", a.status, a.raw)
	}

	// Every error status, through the daemon.
	sseRequest(t, hc, "PUT", addr, "/api/v1/pv/RELAY:sse_f1", `{"value": "abc"}`).
		expect(t, "PUT of text to a double", 400, `cannot write PV RELAY:sse_f1: "abc" cannot be written to a DBF_DOUBLE PV`)
	sseRequest(t, hc, "PUT", addr, "/api/v1/pv/RELAY:sse_arr_i3", `{"value": 1.5}`).
		expect(t, "PUT of a fraction to a long", 400, "1.5 is not a whole number, and the PV is DBF_LONG")
	sseRequest(t, hc, "PUT", addr, "/api/v1/pv/RELAY:sse_f1", `{"value": 1`).
		expect(t, "PUT of bad JSON", 400, "the body is not valid JSON")
	// The default write rules allow RELAY:* only; the error names the rule.
	a = sseRequest(t, hc, "PUT", addr, "/api/v1/pv/IOC:x?timeout=2s", `{"value": 1}`)
	a.expect(t, "PUT to IOC:x", 403, "IOC:x: write denied by no write.allow pattern matches")
	if a.body["ok"] != false {
		t.Errorf("PUT to IOC:x: %s", a.raw)
	}
	// A name that is no relay name: the relay says so.
	sseRequest(t, hc, "PUT", addr, "/api/v1/pv/RELAY:bad%20name?timeout=2s", `{"value": 1}`).
		expect(t, "PUT to RELAY:bad name", 404, `"RELAY:bad name" is not a relay name`)
	a = sseRequest(t, hc, "DELETE", addr, "/api/v1/pv/RELAY:sse_f1", "")
	a.expect(t, "DELETE", 405, "method DELETE not allowed")
	if a.header.Get("Allow") != "GET, PUT, OPTIONS" {
		t.Errorf("DELETE: Allow %q", a.header.Get("Allow"))
	}
	sseRequest(t, hc, "PUT", addr, "/api/v1/pv/RELAY:sse_f1", `{"value": "`+strings.Repeat("x", 5000)+`"}`).
		expect(t, "PUT of a large body", 413, "the body is larger than 4096 bytes (max_body_bytes)")
	sseRequest(t, hc, "GET", addr, "/api/v1/pv/NOPE:nothing?timeout=1s", "").
		expect(t, "GET of a PV that exists nowhere", 504, "PV NOPE:nothing did not connect within 1s")
	sseRequest(t, hc, "GET", addr, "/api/v1/events", "").expect(t, "a stream of nothing", 400, "no PV given")

	// The client drops the stream while values flow; the PV carries on, and a new stream
	// and a GET get it.
	r.putc("RELAY:sse_f1", "8")
	s.until("a value before the client leaves", sseIs("value", "pv", "RELAY:sse_f1", "value", 8))
	r.putc("RELAY:sse_f1", "9")
	s.close()
	r.putc("RELAY:sse_f1", "10")
	s2 := openSSE(t, hc, addr, "RELAY:sse_f1")
	s2.until("the value after the other client left", sseIs("value", "pv", "RELAY:sse_f1", "value", 10))
	a = sseRequest(t, hc, "GET", addr, "/api/v1/pv/RELAY:sse_f1", "")
	if a.status != 200 || a.body["value"] != 10.0 {
		t.Errorf("GET after the client left: %d %s", a.status, a.raw)
	}
	s2.close()
	r.stop()
}

// TestIntegrationSSEIOC runs pvhub serve with the SSE transport out of process and an IOC
// stand-in: a stream sees the IOC's PVs, their updates, the IOC stopping and returning; a
// write rule refuses a PUT to a connected IOC PV (403, the rule named); and when the client
// drops the stream mid-stream, pvhub lets go of the PVs all the way to the IOC, whose circuit
// from pvhub closes.
func TestIntegrationSSEIOC(t *testing.T) {
	ioc := newIOCStandIn(t)
	r, addr, hc := startSSE(t, "PVHUB_CA__ADDR_LIST=127.0.0.1:"+strconv.Itoa(ioc.port))

	s := openSSE(t, hc, addr, "IOC:temp", "IOC:wave")
	meta := s.until("IOC:temp's metadata", sseIs("metadata", "pv", "IOC:temp", "units", "degC"))
	if meta.data["precision"] != 1.0 || fmt.Sprint(meta.data["control"]) != "map[high:150 low:-50]" {
		t.Errorf("IOC:temp's metadata: %v", meta.data)
	}
	s.until("IOC:temp's value", sseIs("value", "pv", "IOC:temp", "value", 20.5))
	s.until("IOC:wave's value", sseIs("value", "pv", "IOC:wave", "value", []any{1, 2, 3, 4}))
	ioc.post("IOC:temp", 31)
	s.until("the IOC's update", sseIs("value", "pv", "IOC:temp", "value", 31))

	// A connected IOC PV that the write rules do not let through.
	a := sseRequest(t, hc, "PUT", addr, "/api/v1/pv/IOC:temp", `{"value": 1}`)
	a.expect(t, "PUT to IOC:temp", 403, "IOC:temp: write denied by no write.allow pattern matches")
	a = sseRequest(t, hc, "GET", addr, "/api/v1/pv/IOC:temp", "")
	if a.status != 200 || a.body["value"] != 31.0 || a.body["write"] != false ||
		a.body["write_denied"] != "write denied by no write.allow pattern matches" {
		t.Errorf("GET IOC:temp: %d %s", a.status, a.raw)
	}

	// The IOC stops and returns.
	ioc.stop()
	s.until("the disconnection", sseIs("connection", "pv", "IOC:temp", "connected", false))
	ioc.start()
	s.until("the reconnection", sseIs("connection", "pv", "IOC:temp", "connected", true))
	s.until("the metadata again", sseIs("metadata", "pv", "IOC:temp", "units", "degC"))
	s.until("the value again", sseIs("value", "pv", "IOC:temp", "value", 31))
	if ioc.srv.Clients() == 0 {
		t.Fatal("pvhub has no circuit to the IOC")
	}

	// The client drops the stream while the IOC posts; pvhub unsubscribes, its PV actors
	// linger, then close their channels, and the IOC sees pvhub's circuit close.
	for i := range 5 {
		ioc.post("IOC:temp", float64(40+i))
	}
	// Values coalesce: any of the five.
	s.until("a value in the flow", func(e sseEvent) bool {
		v, _ := e.data["value"].(float64)
		return sseIs("value", "pv", "IOC:temp")(e) && v >= 40
	})
	s.close()
	for i := range 5 {
		ioc.post("IOC:temp", float64(50+i))
	}
	deadline := time.Now().Add(30 * time.Second)
	for ioc.srv.Clients() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("pvhub still has %d circuits to the IOC after the stream's client left", ioc.srv.Clients())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A later GET subscribes again and gets the IOC's value.
	a = sseRequest(t, hc, "GET", addr, "/api/v1/pv/IOC:temp", "")
	if a.status != 200 || a.body["value"] != 54.0 {
		t.Errorf("GET IOC:temp after the stream's client left: %d %s", a.status, a.raw)
	}
	r.stop()
}
