package runtime

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/pvhub/pvhub/actors"
	"github.com/pvhub/pvhub/ca/catest"
	"github.com/pvhub/pvhub/ca/client"
	"github.com/pvhub/pvhub/ca/server"
	"github.com/pvhub/pvhub/ca/wire"
	"github.com/pvhub/pvhub/config"
	"github.com/pvhub/pvhub/metrics"
)

// collector is a subscriber actor that records the events it receives.
type collector struct {
	mu  sync.Mutex
	evs []any
	ch  chan struct{}
}

func (c *collector) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actors.ConnectionEvent, *actors.MetadataEvent, *actors.ValueEvent:
		c.mu.Lock()
		c.evs = append(c.evs, m)
		c.mu.Unlock()
		select {
		case c.ch <- struct{}{}:
		default:
		}
	}
}

func describe(e any) string {
	switch e := e.(type) {
	case *actors.ConnectionEvent:
		return fmt.Sprintf("conn(%v,w=%v)", e.Connected, e.Write)
	case *actors.MetadataEvent:
		return fmt.Sprintf("meta(%s,%s)", e.Type, e.Meta.Units)
	case *actors.ValueEvent:
		var v wire.Value
		_ = wire.Convert(&v, wire.DBRString, &e.Value, 3, nil)
		return fmt.Sprintf("value(%s,%s)", strings.Join(v.Strings, " "), e.Severity)
	}
	return "?"
}

// waitFor waits until the recorded events, described, end with want.
func (c *collector) waitFor(t *testing.T, want ...string) {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		c.mu.Lock()
		var got []string
		for _, e := range c.evs {
			got = append(got, describe(e))
		}
		c.mu.Unlock()
		if len(got) >= len(want) && strings.Join(got[len(got)-len(want):], " ") == strings.Join(want, " ") {
			return
		}
		select {
		case <-c.ch:
		case <-deadline:
			t.Fatalf("events %v, want them to end with %v", got, want)
		}
	}
}

// TestExternalPVEvents subscribes to a PV of another CA server (an IOC's
// stand-in): connection, metadata and value arrive in that order, updates
// follow, the IOC stopping is reported at once and its return brings metadata
// and value again. Writes follow the write rules.
func TestExternalPVEvents(t *testing.T) {
	iocPort := catest.FreePort(t)
	ioc := mustIOC(t, iocPort)
	f := start(t, func(o *Options) {
		o.Client = client.Config{AddrList: []netip.AddrPort{netip.AddrPortFrom(client.Loopback, uint16(iocPort))}, NoRepeater: true}
		o.Linger = 100 * time.Millisecond
	})
	col := &collector{ch: make(chan struct{}, 1)}
	sub := f.rt.System().Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return col }))
	f.rt.Subscribe("IOC:temp", sub)
	col.waitFor(t, "conn(true,w=false)", "meta(DBR_DOUBLE,degC)", "value(20.500,NO_ALARM)")
	pv := ioc.table.Get("IOC:temp")
	_ = pv.Post(wire.Value{Type: wire.DBRDouble, Doubles: []float64{31}}, server.Alarm{Status: wire.StatHigh, Severity: wire.SevMinor}, wire.Timestamp{})
	col.waitFor(t, "value(31.000,MINOR)")

	// Writes to external PVs are denied unless a rule allows them.
	err := f.rt.Put(f.ctx, "IOC:temp", wire.Value{Type: wire.DBRDouble, Doubles: []float64{1}})
	if err == nil || !strings.Contains(err.Error(), "write denied by no write.allow pattern matches") {
		t.Errorf("put to an external PV: %v", err)
	}

	ioc.srv.Close()
	col.waitFor(t, "conn(false,w=false)")
	ioc = mustIOCTable(t, iocPort, ioc.table)
	col.waitFor(t, "conn(true,w=false)", "meta(DBR_DOUBLE,degC)", "value(31.000,MINOR)")
	f.rt.Unsubscribe("IOC:temp", sub)
}

// TestExternalPut writes an external PV when a rule allows it.
func TestExternalPut(t *testing.T) {
	iocPort := catest.FreePort(t)
	ioc := mustIOC(t, iocPort)
	f := start(t, func(o *Options) {
		o.Client = client.Config{AddrList: []netip.AddrPort{netip.AddrPortFrom(client.Loopback, uint16(iocPort))}, NoRepeater: true}
		o.Write = allowAll{}
		o.Linger = 100 * time.Millisecond
	})
	if err := f.rt.Put(f.ctx, "IOC:temp", wire.Value{Type: wire.DBRString, Strings: []string{"12.5"}}); err != nil {
		t.Fatal(err)
	}
	if v := ioc.table.Get("IOC:temp").Snapshot().Value.Doubles[0]; v != 12.5 {
		t.Errorf("IOC:temp after put: %v", v)
	}
	err := f.rt.Put(f.ctx, "IOC:temp", wire.Value{Type: wire.DBRString, Strings: []string{"warm"}})
	if err == nil || !strings.Contains(err.Error(), "ECA_PUTFAIL") {
		t.Errorf("bad put to an external PV: %v", err)
	}
}

type allowAll struct{}

func (allowAll) Allowed(string) (bool, string) { return true, `write.allow "*"` }

// TestRelayEvents subscribes to a relay PV before it exists, then writes it
// and one of its fields.
func TestRelayEvents(t *testing.T) {
	f := start(t, nil)
	col := &collector{ch: make(chan struct{}, 1)}
	sub := f.rt.System().Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return col }))
	f.rt.Subscribe("RELAY:ev_f1", sub)
	col.waitFor(t, "conn(true,w=true)", "meta(DBR_DOUBLE,)", "value(,INVALID)")
	if err := f.rt.Put(f.ctx, "RELAY:ev_f1", dbl(4)); err != nil {
		t.Fatal(err)
	}
	col.waitFor(t, "value(4.000,NO_ALARM)")
	if err := f.rt.Put(f.ctx, "RELAY:ev_f1.EGU", str("mm")); err != nil {
		t.Fatal(err)
	}
	col.waitFor(t, "meta(DBR_DOUBLE,mm)", "value(4.000,NO_ALARM)")
	// A CA client's put reaches the subscriber too.
	if err := f.put("RELAY:ev_f1", dbl(5)); err != nil {
		t.Fatal(err)
	}
	col.waitFor(t, "value(5.000,NO_ALARM)")
	// The PV list, live.
	list := &collector{ch: make(chan struct{}, 1)}
	lsub := f.rt.System().Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return list }))
	f.rt.Subscribe("RELAY:pvlist", lsub)
	_ = f.rt.Put(f.ctx, "RELAY:ev2_f1", dbl(1))
	deadline := time.Now().Add(5 * time.Second)
	for {
		list.mu.Lock()
		var last any
		if n := len(list.evs); n > 0 {
			last = list.evs[n-1]
		}
		list.mu.Unlock()
		if v, ok := last.(*actors.ValueEvent); ok && strings.Contains(string(v.Value.Chars), "RELAY:ev2_f1") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the PV list never showed the new PV")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type iocFixture struct {
	srv   *server.Server
	table *server.Table
}

func mustIOC(t *testing.T, port int) *iocFixture {
	pv, err := server.NewPV("IOC:temp", server.PVOptions{Type: wire.DBRDouble, Count: 1,
		Value: wire.Value{Type: wire.DBRDouble, Doubles: []float64{20.5}}, Meta: wire.Metadata{Units: "degC", Precision: 1}})
	if err != nil {
		t.Fatal(err)
	}
	return mustIOCTable(t, port, server.NewTable(pv))
}

func mustIOCTable(t *testing.T, port int, table *server.Table) *iocFixture {
	srv, err := server.New(server.Config{Source: table, Port: port, BeaconPort: catest.FreePort(t), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return &iocFixture{srv: srv, table: table}
}

// lastConn returns the last connection event the collector recorded.
func (c *collector) lastConn() *actors.ConnectionEvent {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := len(c.evs) - 1; i >= 0; i-- {
		if e, ok := c.evs[i].(*actors.ConnectionEvent); ok {
			return e
		}
	}
	return nil
}

// waitConn waits until the last connection event has write access write and
// the denial denied.
func (c *collector) waitConn(t *testing.T, write bool, denied string) {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		if e := c.lastConn(); e != nil && e.Connected && e.Write == write && e.WriteDenied == denied {
			return
		}
		select {
		case <-c.ch:
		case <-deadline:
			t.Fatalf("last connection event %+v, want Write %v and WriteDenied %q", c.lastConn(), write, denied)
		}
	}
}

// TestRulesChanged: a connection event names the rule that denies writes, and
// after the rules change (a reload), subscribers of external, relay and service
// PVs get new connection events with the access the new rules give.
func TestRulesChanged(t *testing.T) {
	iocPort := catest.FreePort(t)
	mustIOC(t, iocPort)
	rules := config.NewWriteRules(config.WriteConfig{Allow: []string{"RELAY:*"}, Deny: []string{"RELAY:ro*"}})
	f := start(t, func(o *Options) {
		o.Client = client.Config{AddrList: []netip.AddrPort{netip.AddrPortFrom(client.Loopback, uint16(iocPort))}, NoRepeater: true}
		o.Write = rules
	})
	subscribe := func(name string) *collector {
		col := &collector{ch: make(chan struct{}, 1)}
		f.rt.Subscribe(name, f.rt.System().Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return col })))
		return col
	}
	ioc, rw, ro, del := subscribe("IOC:temp"), subscribe("RELAY:rw_f1"), subscribe("RELAY:ro_f1"), subscribe("RELAY:delpv")
	ioc.waitConn(t, false, "write denied by no write.allow pattern matches")
	rw.waitConn(t, true, "")
	ro.waitConn(t, false, `write denied by write.deny "RELAY:ro*"`)
	del.waitConn(t, true, "")

	rules.Set(config.WriteConfig{Allow: []string{"IOC:*", "RELAY:ro*"}})
	f.rt.RulesChanged()
	ioc.waitConn(t, true, "")
	rw.waitConn(t, false, "write denied by no write.allow pattern matches")
	ro.waitConn(t, true, "")
	del.waitConn(t, false, "write denied by no write.allow pattern matches")
	if err := f.rt.Put(f.ctx, "IOC:temp", dbl(3)); err != nil {
		t.Errorf("put allowed by the new rules: %v", err)
	}
	if err := f.rt.Put(f.ctx, "RELAY:rw_f1", dbl(3)); err == nil || !strings.Contains(err.Error(), "write denied by no write.allow pattern matches") {
		t.Errorf("put denied by the new rules: %v", err)
	}
}

// TestMetrics: the runtime's metrics follow relay puts, external PVs, the
// relay's PV count and the autosave; Ready says when it serves.
func TestMetrics(t *testing.T) {
	iocPort := catest.FreePort(t)
	mustIOC(t, iocPort)
	m := metrics.New()
	f := start(t, func(o *Options) {
		o.Client = client.Config{AddrList: []netip.AddrPort{netip.AddrPortFrom(client.Loopback, uint16(iocPort))}, NoRepeater: true}
		o.Metrics = m
		o.Relay.AutosavePath = t.TempDir() + "/relay.json"
		o.Relay.AutosavePeriod = time.Hour // written only at Close
	})
	if err := f.rt.Ready(); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	// While the runtime is busy (Start, Close, SetTransports hold its lock),
	// neither Ready nor a scrape waits.
	f.rt.mu.Lock()
	err := f.rt.Ready()
	circuits := m.Count("pvhub_ca_circuits", "server")
	f.rt.mu.Unlock()
	if err == nil || !strings.Contains(err.Error(), "starting, stopping") {
		t.Errorf("Ready while busy: %v", err)
	}
	if !math.IsNaN(circuits) {
		t.Errorf("server circuits while busy: %v, want NaN (unknown)", circuits)
	}
	if got := m.Count("pvhub_autosave_age_seconds", ""); got != 0 {
		t.Errorf("autosave age before any change: %v", got)
	}
	for i := range 3 {
		if err := f.rt.Put(f.ctx, "RELAY:m_f1", dbl(float64(i))); err != nil {
			t.Fatal(err)
		}
	}
	if got := m.Count("pvhub_updates_in_total", "relay"); got != 3 {
		t.Errorf("relay updates in: %v, want 3", got)
	}
	if got := m.Count("pvhub_relay_pvs", ""); got != 1 {
		t.Errorf("relay PVs: %v, want 1", got)
	}
	waitUntil(t, "an unsaved change to age", func() bool { return m.Count("pvhub_autosave_age_seconds", "") > 0 })
	col := &collector{ch: make(chan struct{}, 1)}
	sub := f.rt.System().Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return col }))
	f.rt.Subscribe("IOC:temp", sub)
	col.waitFor(t, "value(20.500,NO_ALARM)")
	if got := m.Count("pvhub_external_pvs", "connected"); got != 1 {
		t.Errorf("connected external PVs: %v, want 1", got)
	}
	if got := m.Count("pvhub_updates_in_total", "external"); got < 1 {
		t.Errorf("external updates in: %v", got)
	}
	if got := m.Count("pvhub_ca_circuits", "client"); got != 1 {
		t.Errorf("client circuits: %v, want 1", got)
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
