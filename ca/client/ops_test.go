package client

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pvhub/pvhub/ca/server"
	"github.com/pvhub/pvhub/ca/wire"
)

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func clientPVs(t testing.TB) []*server.PV {
	meta := wire.Metadata{Units: "mm", Precision: 3, ClassName: "ao", EnumStrings: []string{"Off", "On", "Auto"}, Limits: wire.Limits{
		UpperDisp: 100, LowerDisp: -100, UpperAlarm: 90, UpperWarning: 80, LowerWarning: -80, LowerAlarm: math.NaN(), UpperCtrl: 95, LowerCtrl: -95}}
	mk := func(name string, v wire.Value, n int) *server.PV {
		return mustPV(t, name, server.PVOptions{Type: v.Type, Count: n, Value: v, Meta: meta,
			Alarm: server.Alarm{Status: wire.StatHigh, Severity: wire.SevMinor}, Stamp: wire.Timestamp{Sec: 1000, Nsec: 7}})
	}
	return []*server.PV{
		mk("C:double", doubles(3.25), 1),
		mk("C:long", wire.Value{Type: wire.DBRLong, Longs: []int32{-42}}, 1),
		mk("C:short", wire.Value{Type: wire.DBRShort, Shorts: []int16{7}}, 1),
		mk("C:float", wire.Value{Type: wire.DBRFloat, Floats: []float32{1.5}}, 1),
		mk("C:string", wire.Value{Type: wire.DBRString, Strings: []string{"hello"}}, 1),
		mk("C:enum", wire.Value{Type: wire.DBREnum, Enums: []uint16{2}}, 1),
		mk("C:chars", wire.Value{Type: wire.DBRChar, Chars: []byte("text\x00")}, 64),
		mk("C:wf", doubles(1, 2, 3, 4), 10),
		mustPV(t, "C:ro", server.PVOptions{Type: wire.DBRDouble, Count: 1, Value: doubles(1), ReadOnly: true}),
	}
}

// TestGetEveryType reads every PV in every readable DBR type, at count 0 and
// at the native count, and compares with what the server's state encodes to.
func TestGetEveryType(t *testing.T) {
	pvs := clientPVs(t)
	ts := newTestServer(t, 0, pvs...)
	c := newClient(t, ts)
	ctx := ctxT(t)
	for _, pv := range pvs {
		ch, err := c.Channel(pv.Name(), ChannelOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := ch.WaitConnected(ctx); err != nil {
			t.Fatal(err)
		}
		info := ch.Info()
		if info.Type != pv.Type() || info.Count != pv.Count() || !info.Read || info.Write == pv.ReadOnly() {
			t.Errorf("%s: connection %+v", pv.Name(), info)
		}
		for typ := wire.DBRType(0); typ <= wire.MaxDBRType; typ++ {
			if !typ.Readable() {
				continue
			}
			for _, count := range []int{0, pv.Count()} {
				got, err := ch.Get(ctx, typ, count)
				n := count
				if n == 0 {
					n = pv.Snapshot().Value.Len()
				}
				payload, encErr := wire.AppendDBR(nil, typ, n, pv.Snapshot())
				if encErr != nil {
					if !errors.Is(err, wire.ECAGetFail) {
						t.Errorf("%s as %s: error %v, want ECA_GETFAIL", pv.Name(), typ, err)
					}
					continue
				}
				if err != nil {
					t.Errorf("%s as %s count %d: %v", pv.Name(), typ, count, err)
					continue
				}
				var want wire.DBR
				_ = wire.DecodeDBR(&want, typ, n, payload)
				if fmt.Sprintf("%+v", *got) != fmt.Sprintf("%+v", want) {
					t.Errorf("%s as %s count %d:\n got %+v\nwant %+v", pv.Name(), typ, count, *got, want)
				}
			}
		}
	}
}

func TestPut(t *testing.T) {
	ts := newTestServer(t, 0, clientPVs(t)...)
	var mu sync.Mutex
	var asyncErrs []error
	c := newClient(t, ts)
	ctx := ctxT(t)
	open := func(name string) *Channel {
		ch, err := c.Channel(name, ChannelOptions{OnError: func(err error) {
			mu.Lock()
			asyncErrs = append(asyncErrs, err)
			mu.Unlock()
		}})
		if err != nil {
			t.Fatal(err)
		}
		return ch
	}
	get := func(ch *Channel, typ wire.DBRType) *wire.DBR {
		d, err := ch.Get(ctx, typ, 0)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	dbl := open("C:double")
	if err := dbl.Put(ctx, doubles(12.5)); err != nil {
		t.Fatal(err)
	}
	if v := get(dbl, wire.DBRDouble).Value.Doubles[0]; v != 12.5 {
		t.Errorf("after put: %v", v)
	}
	err := dbl.Put(ctx, wire.Value{Type: wire.DBRString, Strings: []string{"twelve"}})
	var cerr *Error
	if !errors.As(err, &cerr) || cerr.Status != wire.ECAPutFail || !strings.Contains(err.Error(), "C:double") {
		t.Errorf("put of text to a double: %v", err)
	}
	// A plain write that fails is reported through OnError.
	if err := dbl.PutNoWait(ctx, wire.Value{Type: wire.DBRString, Strings: []string{"x"}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(asyncErrs)
		mu.Unlock()
		if n > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	if len(asyncErrs) != 1 || !errors.Is(asyncErrs[0], wire.ECAPutFail) || !strings.Contains(asyncErrs[0].Error(), "cannot convert") {
		t.Errorf("asynchronous errors %v", asyncErrs)
	}
	mu.Unlock()
	// Enum by state name.
	enum := open("C:enum")
	if err := enum.Put(ctx, wire.Value{Type: wire.DBRString, Strings: []string{"On"}}); err != nil {
		t.Fatal(err)
	}
	if v := get(enum, wire.DBRString).Value.Strings[0]; v != "On" {
		t.Errorf("enum after put: %q", v)
	}
	// Arrays: a shorter write sets the current length.
	wf := open("C:wf")
	if err := wf.Put(ctx, doubles(9, 8)); err != nil {
		t.Fatal(err)
	}
	if d := get(wf, wire.DBRTimeDouble); fmt.Sprint(d.Value.Doubles) != "[9 8]" {
		t.Errorf("array after put: %v", d.Value.Doubles)
	}
	if err := wf.Put(ctx, doubles(make([]float64, 11)...)); !errors.Is(err, wire.ECABadCount) {
		t.Errorf("put of 11 elements to 10: %v", err)
	}
	// Text into a char array.
	chars := open("C:chars")
	if err := chars.Put(ctx, wire.Value{Type: wire.DBRChar, Chars: []byte("new text\x00")}); err != nil {
		t.Fatal(err)
	}
	if d := get(chars, wire.DBRChar); string(d.Value.Chars) != "new text\x00" {
		t.Errorf("char array after put: %q", d.Value.Chars)
	}
	// A read-only channel: refused by the client, before the wire.
	ro := open("C:ro")
	if err := ro.Put(ctx, doubles(2)); !errors.Is(err, wire.ECANoWtAccess) {
		t.Errorf("put to a read-only PV: %v", err)
	}
	// A get of a count above the native count is refused with a reason.
	if _, err := dbl.Get(ctx, wire.DBRDouble, 2); !errors.Is(err, wire.ECABadCount) {
		t.Errorf("get of 2 from 1: %v", err)
	}
}

// TestMonitors checks masks, count-0 monitors on a variable-length array, and
// that a cancelled monitor stays silent.
func TestMonitors(t *testing.T) {
	pvs := clientPVs(t)
	ts := newTestServer(t, 0, pvs...)
	c := newClient(t, ts)
	dbl, wf := ts.table.Get("C:double"), ts.table.Get("C:wf")
	ch, _ := c.Channel("C:double", ChannelOptions{})
	wch, _ := c.Channel("C:wf", ChannelOptions{})
	values, alarms := newEvents(), newEvents()
	vs, err := ch.Subscribe(SubscribeOptions{Type: wire.DBRTimeDouble, Mask: wire.DBEValue}, values.onUpdate)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.Subscribe(SubscribeOptions{Type: wire.DBRStsDouble, Mask: wire.DBEAlarm}, alarms.onUpdate); err != nil {
		t.Fatal(err)
	}
	var lens []int
	var lmu sync.Mutex
	lenEv := newEvents()
	if _, err := wch.Subscribe(SubscribeOptions{Type: wire.DBRTimeDouble, Native: true}, func(u *Update) {
		lmu.Lock()
		lens = append(lens, u.DBR.Value.Len())
		lmu.Unlock()
		lenEv.poke()
	}); err != nil {
		t.Fatal(err)
	}
	values.wait(t, 5*time.Second, "first value", func() bool { return len(values.updates) == 1 })
	alarms.wait(t, 5*time.Second, "first alarm update", func() bool { return len(alarms.updates) == 1 })
	for i := range 50 {
		a := server.Alarm{Status: wire.StatHigh, Severity: wire.SevMinor}
		if i >= 25 {
			a = server.NoAlarm
		}
		_ = dbl.Post(doubles(float64(i)), a, wire.Timestamp{})
	}
	values.wait(t, 5*time.Second, "50 values", func() bool { return len(values.updates) == 51 })
	alarms.wait(t, 5*time.Second, "one alarm change", func() bool { return len(alarms.updates) == 2 && alarms.updates[1] == 25 })
	for i, v := range values.updates[1:] {
		if v != float64(i) {
			t.Fatalf("value %d is %v", i, v)
		}
	}
	for _, n := range []int{1, 10, 0, 3} {
		v := make([]float64, n)
		_ = wf.Post(doubles(v...), server.NoAlarm, wire.Timestamp{})
	}
	lenEv.wait(t, 5*time.Second, "array lengths", func() bool {
		lmu.Lock()
		defer lmu.Unlock()
		return len(lens) == 5
	})
	if fmt.Sprint(lens) != "[4 1 10 0 3]" {
		t.Errorf("array lengths %v", lens)
	}
	vs.Cancel()
	_ = dbl.Post(doubles(100), server.NoAlarm, wire.Timestamp{})
	time.Sleep(100 * time.Millisecond)
	values.mu.Lock()
	if n := len(values.updates); n != 51 {
		t.Errorf("%d updates after cancel", n-51)
	}
	values.mu.Unlock()
}

// TestRemovedPV checks SERVER_DISCONN: the channel disconnects, searches, and
// reconnects when the PV exists again, with its monitor.
func TestRemovedPV(t *testing.T) {
	ts := newTestServer(t, 0, clientPVs(t)...)
	c := newClient(t, ts)
	ev := newEvents()
	ch, _ := c.Channel("C:double", ChannelOptions{OnConnection: ev.onConn})
	if _, err := ch.Subscribe(SubscribeOptions{Type: wire.DBRDouble}, ev.onUpdate); err != nil {
		t.Fatal(err)
	}
	ev.wait(t, 5*time.Second, "connected", func() bool { return len(ev.updates) == 1 })
	ts.table.Remove("C:double")
	ev.wait(t, 5*time.Second, "disconnected", func() bool { return len(ev.conns) == 2 && ev.conns[1].State == Disconnected })
	ts.table.Add(mustPV(t, "C:double", server.PVOptions{Type: wire.DBRDouble, Count: 1, Value: doubles(77)}))
	ev.wait(t, 10*time.Second, "reconnected", func() bool { return len(ev.conns) == 3 && len(ev.updates) == 2 && ev.updates[1] == 77 })
}

// flakySource claims every name but fails to open the first few times, as a
// server that answers searches but refuses channels.
type flakySource struct {
	*server.Table
	mu    sync.Mutex
	fails int
}

func (f *flakySource) Claim(string) bool { return true }

func (f *flakySource) Open(ctx context.Context, name string) (*server.PV, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fails > 0 {
		f.fails--
		return nil, errors.New("not yet")
	}
	return f.Table.Open(ctx, name)
}

// TestCreateChannelFails checks that CREATE_CH_FAIL sends the channel back to
// the search, and that it connects once the server accepts it.
func TestCreateChannelFails(t *testing.T) {
	ts := newTestServer(t, 0)
	ts.stop()
	src := &flakySource{Table: server.NewTable(clientPVs(t)...), fails: 2}
	srv, err := server.New(server.Config{Source: src, Port: ts.port, BeaconPort: ts.beaconPort})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c := newClient(t, ts)
	ch, _ := c.Channel("C:double", ChannelOptions{})
	if err := ch.WaitConnected(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	src.mu.Lock()
	if src.fails != 0 {
		t.Errorf("%d failures left", src.fails)
	}
	src.mu.Unlock()
}

// TestNameServer resolves names over TCP only (EPICS_CA_NAME_SERVERS), with no
// UDP search destination at all.
func TestNameServer(t *testing.T) {
	ts := newTestServer(t, 0, clientPVs(t)...)
	cfg, err := ConfigFromEnv(func(k string) (string, bool) {
		v, ok := map[string]string{"EPICS_CA_NAME_SERVERS": fmt.Sprintf("127.0.0.1:%d", ts.port)}[k]
		return v, ok
	})
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, ts, func(c *Config) { c.NameServers = cfg.NameServers })
	if len(c.dests) != 0 {
		t.Fatalf("UDP destinations %v with only a name server configured", c.dests)
	}
	ch, _ := c.Channel("C:long", ChannelOptions{})
	d, err := ch.Get(ctxT(t), wire.DBRLong, 1)
	if err != nil || d.Value.Longs[0] != -42 {
		t.Fatalf("get through a name server: %v %v", d, err)
	}
}

// TestNotFound checks that a get of a name nobody serves ends with the
// context, naming the PV.
func TestNotFound(t *testing.T) {
	ts := newTestServer(t, 0)
	c := newClient(t, ts)
	ch, _ := c.Channel("nobody:here", ChannelOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := ch.Get(ctx, wire.DBRDouble, 1)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "nobody:here") {
		t.Errorf("get of an unknown name: %v", err)
	}
	ch.Close()
	if err := ch.WaitConnected(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("wait on a closed channel: %v", err)
	}
}

func TestConfigFromEnv(t *testing.T) {
	env := map[string]string{
		"EPICS_CA_ADDR_LIST":         "127.0.0.1 127.0.0.2:6000",
		"EPICS_CA_AUTO_ADDR_LIST":    "NO",
		"EPICS_CA_SERVER_PORT":       "7064",
		"EPICS_CA_CONN_TMO":          "2.5",
		"EPICS_CA_MAX_SEARCH_PERIOD": "10",
		"EPICS_CA_MAX_ARRAY_BYTES":   "1000000",
	}
	cfg, err := ConfigFromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.AddrList) != 2 || cfg.AddrList[0].Port() != 7064 || cfg.AddrList[1].Port() != 6000 || cfg.AutoAddrList ||
		cfg.ConnTimeout != 2500*time.Millisecond || cfg.MaxSearchPeriod != 60*time.Second || cfg.MaxArrayBytes != 1000000 {
		t.Errorf("config %+v", cfg)
	}
	def, _ := ConfigFromEnv(func(string) (string, bool) { return "", false })
	if def.AutoAddrList || len(def.AddrList) != 0 {
		t.Errorf("defaults must not broadcast: %+v", def)
	}
	if _, err := ConfigFromEnv(func(k string) (string, bool) { return "x", k == "EPICS_CA_CONN_TMO" }); err == nil || !strings.Contains(err.Error(), "EPICS_CA_CONN_TMO") {
		t.Errorf("bad EPICS_CA_CONN_TMO: %v", err)
	}
}

// TestIdleCircuitCloses checks that closing the last channel of a circuit
// closes the circuit, and that a new channel to the same server opens a new one.
func TestIdleCircuitCloses(t *testing.T) {
	ts := newTestServer(t, 0, clientPVs(t)...)
	c := newClient(t, ts)
	ch, _ := c.Channel("C:double", ChannelOptions{})
	if err := ch.WaitConnected(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	ch.Close()
	deadline := time.Now().Add(5 * time.Second)
	for ts.srv.Clients() != 0 || func() bool { c.mu.Lock(); defer c.mu.Unlock(); return len(c.circuits) != 0 }() {
		if time.Now().After(deadline) {
			t.Fatalf("circuit still open: %d server clients", ts.srv.Clients())
		}
		time.Sleep(5 * time.Millisecond)
	}
	ch2, _ := c.Channel("C:long", ChannelOptions{})
	if err := ch2.WaitConnected(ctxT(t)); err != nil {
		t.Fatal(err)
	}
}

// TestEmptyArrayPlainMonitor checks that a count-0 monitor in a plain type of
// an empty array gets its first update (a payload-less EVENT_ADD, which libca
// would take for a cancel confirmation) and the later ones.
func TestEmptyArrayPlainMonitor(t *testing.T) {
	wf := mustPV(t, "C:empty", server.PVOptions{Type: wire.DBRLong, Count: 8})
	ts := newTestServer(t, 0, wf)
	c := newClient(t, ts)
	ch, _ := c.Channel("C:empty", ChannelOptions{})
	got := make(chan int, 10)
	if _, err := ch.Subscribe(SubscribeOptions{Type: wire.DBRLong}, func(u *Update) { got <- u.DBR.Value.Len() }); err != nil {
		t.Fatal(err)
	}
	for _, want := range []int{0, 3, 0} {
		select {
		case n := <-got:
			if n != want {
				t.Fatalf("update with %d elements, want %d", n, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no update with %d elements", want)
		}
		if want == 0 {
			_ = wf.Post(wire.Value{Type: wire.DBRLong, Longs: []int32{1, 2, 3}}, server.NoAlarm, wire.Timestamp{})
		} else {
			_ = wf.Post(wire.Value{Type: wire.DBRLong}, server.NoAlarm, wire.Timestamp{})
		}
	}
}

// TestPutLongString checks that text too long for a DBR_STRING is refused with
// the reason rather than cut.
func TestPutLongString(t *testing.T) {
	ts := newTestServer(t, 0, clientPVs(t)...)
	c := newClient(t, ts)
	ch, _ := c.Channel("C:string", ChannelOptions{})
	err := ch.Put(ctxT(t), wire.Value{Type: wire.DBRString, Strings: []string{strings.Repeat("x", 40)}})
	if !errors.Is(err, wire.ECAStrTooBig) || !strings.Contains(err.Error(), "at most 39") {
		t.Errorf("put of 40 characters: %v", err)
	}
}
