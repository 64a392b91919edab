package client

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pvhub/pvhub/ca/catest"
	"github.com/pvhub/pvhub/ca/server"
	"github.com/pvhub/pvhub/ca/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func doubles(v ...float64) wire.Value { return wire.Value{Type: wire.DBRDouble, Doubles: v} }

func mustPV(t testing.TB, name string, o server.PVOptions) *server.PV {
	t.Helper()
	pv, err := server.NewPV(name, o)
	if err != nil {
		t.Fatal(err)
	}
	return pv
}

// testServer is one of our CA servers on a fixed loopback port, so that it can
// be stopped and started again on the same port.
type testServer struct {
	t          testing.TB
	port       int
	beaconPort int
	table      *server.Table
	srv        *server.Server
}

func newTestServer(t testing.TB, beaconPort int, pvs ...*server.PV) *testServer {
	t.Helper()
	ts := &testServer{t: t, port: catest.FreePort(t), beaconPort: beaconPort, table: server.NewTable(pvs...)}
	if ts.beaconPort == 0 {
		ts.beaconPort = catest.FreePort(t)
	}
	ts.start()
	t.Cleanup(ts.stop)
	return ts
}

func (ts *testServer) start() {
	ts.t.Helper()
	srv, err := server.New(server.Config{Source: ts.table, Port: ts.port, BeaconPort: ts.beaconPort,
		BeaconPeriod: time.Second, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		ts.t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		ts.t.Fatal(err)
	}
	ts.srv = srv
}

func (ts *testServer) stop() {
	if ts.srv != nil {
		_ = ts.srv.Close()
		ts.srv = nil
	}
}

// newClient returns a started client that searches only the test server.
func newClient(t testing.TB, ts *testServer, mod ...func(*Config)) *Client {
	t.Helper()
	cfg := Config{ServerPort: ts.port, RepeaterPort: ts.beaconPort, Logger: testLogger(t), NoRepeater: true}
	for _, m := range mod {
		m(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// waiter lets a test wait for a condition on state guarded by its mutex;
// whoever changes the state pokes it.
type waiter struct {
	mu      sync.Mutex
	changed chan struct{}
}

func (w *waiter) init() { w.changed = make(chan struct{}, 1) }

func (w *waiter) poke() {
	select {
	case w.changed <- struct{}{}:
	default:
	}
}

// waitFor waits until cond (called with mu held) holds, failing the test after
// d with what and the state that dump (also called with mu held) describes.
func (w *waiter) waitFor(t testing.TB, d time.Duration, what string, cond func() bool, dump func() string) {
	t.Helper()
	deadline := time.After(d)
	for {
		w.mu.Lock()
		ok := cond()
		w.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-w.changed:
		case <-deadline:
			w.mu.Lock()
			defer w.mu.Unlock()
			t.Fatalf("timed out after %v waiting for %s; %s", d, what, dump())
		}
	}
}

// events records connection events and updates of one channel.
type events struct {
	waiter
	conns   []Connection
	updates []float64
}

func newEvents() *events {
	e := &events{}
	e.init()
	return e
}

func (e *events) onConn(c Connection) {
	e.mu.Lock()
	e.conns = append(e.conns, c)
	e.mu.Unlock()
	e.poke()
}

func (e *events) onUpdate(u *Update) {
	e.mu.Lock()
	if u.DBR != nil {
		var v wire.Value
		_ = wire.Convert(&v, wire.DBRDouble, &u.DBR.Value, 0, nil)
		if len(v.Doubles) > 0 {
			e.updates = append(e.updates, v.Doubles[0])
		}
	}
	e.mu.Unlock()
	e.poke()
}

// wait waits until cond holds, failing the test after d.
func (e *events) wait(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	e.waitFor(t, d, what, cond, func() string { return fmt.Sprintf("connections %v, updates %v", e.conns, e.updates) })
}
