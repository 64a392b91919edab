package sse

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pvhub/pvhub/plugins"
	"github.com/pvhub/pvhub/plugins/plugintest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// wait bounds every wait of these tests; they wait for conditions, never for durations.
const wait = 15 * time.Second

// ReadSSE parses a text/event-stream from r until it ends: fn gets each event's name
// ("message" when it has none) and data (its data lines joined by newlines), and each
// comment line with the name "" and the comment's text. The conformance test uses it too.
func ReadSSE(r io.Reader, fn func(event, data string)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 256<<20)
	var name string
	var data []string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if name != "" || data != nil {
				if name == "" {
					name = "message"
				}
				fn(name, strings.Join(data, "\n"))
			}
			name, data = "", nil
		case strings.HasPrefix(line, ":"):
			fn("", strings.TrimSpace(line[1:]))
		default:
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "event":
				name = value
			case "data":
				data = append(data, value)
			}
		}
	}
	return sc.Err()
}

// testTransport wraps the transport to see its requests to the host, and gives some names
// special puts: DENIED is refused by a write rule, BROKEN by its IOC, SILENT never answered,
// and CREATE:* (which never connect) accepted, as a relay name would be.
type testTransport struct {
	*Transport
	h *plugintest.Harness

	mu   sync.Mutex
	subs map[string]int
	puts []recordedPut
}

type recordedPut struct {
	name  string
	value plugins.Data
}

type testHost struct {
	plugins.Host
	tt *testTransport
}

func (tt *testTransport) Start(ctx context.Context, cfg plugins.Config, host plugins.Host) error {
	return tt.Transport.Start(ctx, cfg, testHost{host, tt})
}

func (h testHost) Subscribe(names ...string) {
	h.tt.mu.Lock()
	for _, n := range names {
		h.tt.subs[n]++
	}
	h.tt.mu.Unlock()
	h.Host.Subscribe(names...)
}

const deniedReason = `DENIED: write denied by write.deny "DEN*"`

func (h testHost) Put(name string, v plugins.Data, id uint64) {
	h.tt.mu.Lock()
	h.tt.puts = append(h.tt.puts, recordedPut{name, v})
	h.tt.mu.Unlock()
	switch {
	case name == "DENIED":
		h.tt.h.Publish(plugins.PutResult{Name: name, ID: id, Err: deniedReason})
	case name == "BROKEN":
		h.tt.h.Publish(plugins.PutResult{Name: name, ID: id, Err: "BROKEN: put: ECA_PUTFAIL: put failed"})
	case name == "SILENT":
	case strings.HasPrefix(name, "CREATE:"):
		h.tt.h.Publish(plugins.PutResult{Name: name, ID: id})
	default:
		h.Host.Put(name, v, id)
	}
}

func (tt *testTransport) subCount(name string) int {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	return tt.subs[name]
}

func (tt *testTransport) lastPut() recordedPut {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	if len(tt.puts) == 0 {
		return recordedPut{}
	}
	return tt.puts[len(tt.puts)-1]
}

// logBuffer collects a logger's output.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

type fixture struct {
	t      *testing.T
	tr     *testTransport
	h      *plugintest.Harness
	log    *logBuffer
	client *http.Client
	base   string
}

var okValue = plugins.Value{Seconds: 1000, Nanos: 5, Status: "NO_ALARM", Severity: "NO_ALARM"}

func withData(d plugins.Data) plugins.Value { v := okValue; v.Data = d; return v }

// start starts the transport on 127.0.0.1:0 with opts, against a harness with the PVs
// A (double, mm), RO (long, read-only), E (enum Off/On), TXT (char[16], text), ARR (double[3]),
// and DENIED, BROKEN and SILENT (doubles, see testTransport).
func start(t *testing.T, opts map[string]any) *fixture {
	t.Helper()
	tt := &testTransport{Transport: newTransport(), subs: map[string]int{}}
	h := plugintest.NewHarness(tt)
	tt.h = h
	if opts == nil {
		opts = map[string]any{}
	}
	if _, ok := opts["listen"]; !ok {
		opts["listen"] = "127.0.0.1:0"
	}
	h.AddPV(plugins.Metadata{Name: "A", Type: plugins.TypeDouble, Count: 1, Units: "mm", Precision: 3,
		Display: plugins.Range{Low: -10, High: 10}, Control: plugins.Range{Low: -100, High: 100}},
		withData(plugins.Float64s(1.5)), true)
	h.AddPV(plugins.Metadata{Name: "RO", Type: plugins.TypeLong, Count: 1}, withData(plugins.Int64s(7)), false)
	h.AddPV(plugins.Metadata{Name: "E", Type: plugins.TypeEnum, Count: 1, EnumLabels: []string{"Off", "On"}},
		withData(plugins.Int64s(1)), true)
	h.AddPV(plugins.Metadata{Name: "TXT", Type: plugins.TypeChar, Count: 16}, withData(plugins.Bytes([]byte("hello\x00"))), true)
	h.AddPV(plugins.Metadata{Name: "ARR", Type: plugins.TypeDouble, Count: 3}, withData(plugins.Float64s(1, 2, 3)), true)
	for _, n := range []string{"DENIED", "BROKEN", "SILENT"} {
		h.AddPV(plugins.Metadata{Name: n, Type: plugins.TypeDouble, Count: 1}, withData(plugins.Float64s(0)), true)
	}
	lb := &logBuffer{}
	cfg := plugins.Config{Name: "sse", Options: opts, Logger: slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if err := h.Start(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	client := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(client.CloseIdleConnections)
	return &fixture{t: t, tr: tt, h: h, log: lb, client: client, base: "http://" + tt.Addr()}
}

// response is an HTTP answer with its body decoded as a JSON object.
type response struct {
	status int
	header http.Header
	body   string
	json   map[string]any
}

// do sends a request; hdr holds header name/value pairs.
func (f *fixture) do(method, path, body string, hdr ...string) response {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, f.base+path, rd)
	if err != nil {
		f.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := f.client.Do(req)
	if err != nil {
		f.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	r := response{status: resp.StatusCode, header: resp.Header, body: string(b)}
	if len(b) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(b, &r.json); err != nil {
			f.t.Fatalf("%s %s: the body is not a JSON object: %v\n%s", method, path, err, b)
		}
	}
	return r
}

// expect checks a response's status and, when want is not "", that its "error" contains want.
func (r response) expect(t *testing.T, status int, want string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	if want != "" {
		if e, _ := r.json["error"].(string); !strings.Contains(e, want) {
			t.Fatalf("error %q does not contain %q (status %d)", e, want, r.status)
		}
	}
}

// sseEvent is one event (or comment, with event "") of a stream.
type sseEvent struct {
	event string
	data  string
	json  map[string]any
}

// sseClient reads one stream on its own goroutine.
type sseClient struct {
	t      *testing.T
	resp   *http.Response
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	events  []sseEvent
	ended   error
	changed chan struct{}
}

// openStream opens GET path+query and returns the response without reading it.
func (f *fixture) openStream(query string, hdr ...string) (*http.Response, context.CancelFunc) {
	f.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.base+EventsPath+query, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := f.client.Do(req)
	if err != nil {
		cancel()
		f.t.Fatalf("GET %s: %v", EventsPath+query, err)
	}
	return resp, cancel
}

// stream opens a stream and checks that it is one.
func (f *fixture) stream(query string, hdr ...string) *sseClient {
	f.t.Helper()
	resp, cancel := f.openStream(query, hdr...)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream; charset=utf-8" {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		f.t.Fatalf("GET %s: status %d, content type %q: %s", EventsPath+query, resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	c := &sseClient{t: f.t, resp: resp, cancel: cancel, done: make(chan struct{}), changed: make(chan struct{})}
	go c.read()
	f.t.Cleanup(c.close)
	return c
}

func (c *sseClient) read() {
	defer close(c.done)
	err := ReadSSE(c.resp.Body, func(event, data string) {
		e := sseEvent{event: event, data: data}
		if event != "" {
			_ = json.Unmarshal([]byte(data), &e.json)
		}
		c.mu.Lock()
		c.events = append(c.events, e)
		c.signal()
		c.mu.Unlock()
	})
	if err == nil {
		err = io.EOF
	}
	c.mu.Lock()
	c.ended = err
	c.signal()
	c.mu.Unlock()
}

func (c *sseClient) signal() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// close ends the stream from the client's side and waits for the reader.
func (c *sseClient) close() {
	c.cancel()
	<-c.done
	c.resp.Body.Close()
}

var errNoEvent = errors.New("no event")

// tryNext returns the next event (comments included), or the stream's end, waiting at most
// wait.
func (c *sseClient) tryNext() (sseEvent, error) {
	deadline := time.After(wait)
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
			return sseEvent{}, ended
		}
		select {
		case <-ch:
		case <-deadline:
			return sseEvent{}, errNoEvent
		}
	}
}

// next returns the next event, skipping comments.
func (c *sseClient) next() sseEvent {
	c.t.Helper()
	for {
		e, err := c.tryNext()
		if err != nil {
			c.t.Fatalf("waiting for an event: %v", err)
		}
		if e.event != "" {
			return e
		}
	}
}

// until returns the first event (or comment) that match accepts, dropping the others.
func (c *sseClient) until(what string, match func(sseEvent) bool) sseEvent {
	c.t.Helper()
	var seen []string
	for {
		e, err := c.tryNext()
		if err != nil {
			if len(seen) > 10 {
				seen = seen[len(seen)-10:]
			}
			c.t.Fatalf("waiting for %s: %v; last seen: %v", what, err, seen)
		}
		if match(e) {
			return e
		}
		seen = append(seen, e.event+" "+e.data)
	}
}

// drain waits for the end of the stream and returns the events left.
func (c *sseClient) drain() []sseEvent {
	c.t.Helper()
	var out []sseEvent
	for {
		e, err := c.tryNext()
		if errors.Is(err, errNoEvent) {
			c.t.Fatal("the stream did not end")
		}
		if err != nil {
			return out
		}
		out = append(out, e)
	}
}

// is matches an event by name and fields (numbers compare as float64; fields absent from
// the event never match).
func is(event string, fields ...any) func(sseEvent) bool {
	return func(e sseEvent) bool {
		if e.event != event {
			return false
		}
		for i := 0; i+1 < len(fields); i += 2 {
			v, ok := e.json[fields[i].(string)]
			if !ok || !equalJSON(v, fields[i+1]) {
				return false
			}
		}
		return true
	}
}

func equalJSON(got, want any) bool {
	a, _ := json.Marshal(got)
	b, _ := json.Marshal(want)
	return bytes.Equal(a, b)
}

// waitFor waits until cond holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
