package runtime

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pvhub/pvhub/ca/catest"
	"github.com/pvhub/pvhub/ca/client"
	"github.com/pvhub/pvhub/ca/server"
	"github.com/pvhub/pvhub/ca/wire"
)

// protoactor's dead-letter throttle keeps a goroutine for one throttle interval
// after a dead letter (messages to stopped actors while the system shuts down);
// it ends by itself.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"))
}

type logBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type fixture struct {
	t    *testing.T
	rt   *Runtime
	port int
	logs *logBuf
	c    *client.Client
	ctx  context.Context
}

// start runs a runtime with the relay on a free loopback port and a client of it.
func start(t *testing.T, mod func(*Options)) *fixture {
	t.Helper()
	port := catest.FreePort(t)
	logs := &logBuf{}
	opts := Options{
		Relay:  RelayOptions{Enabled: true, Prefix: "RELAY:", MaxPVs: 100, MaxElements: 10000, AutosavePeriod: time.Hour},
		Server: server.Config{Port: port, BeaconPort: catest.FreePort(t)},
		Client: client.Config{NoRepeater: true, ServerPort: catest.FreePort(t)}, // never the host's 5064/5065
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if mod != nil {
		mod(&opts)
	}
	rt, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, rt: rt, port: port, logs: logs}
	t.Cleanup(func() {
		if f.c != nil {
			_ = f.c.Close()
		}
		if err := rt.Close(); err != nil {
			t.Error(err)
		}
		if t.Failed() || os.Getenv("SHOWLOGS") != "" {
			t.Log(logs.String())
		}
	})
	f.c, err = client.New(client.Config{AddrList: []netip.AddrPort{netip.AddrPortFrom(client.Loopback, uint16(port))}, NoRepeater: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	f.ctx = ctx
	return f
}

func (f *fixture) ch(name string) *client.Channel {
	f.t.Helper()
	ch, err := f.c.Channel(name, client.ChannelOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	return ch
}

// put and get use a channel of their own and close it, as caput and caget do.
func (f *fixture) put(name string, v wire.Value) error {
	f.t.Helper()
	ch := f.ch(name)
	defer ch.Close()
	return ch.Put(f.ctx, v)
}

func (f *fixture) get(name string, t wire.DBRType) *wire.DBR {
	f.t.Helper()
	ch := f.ch(name)
	defer ch.Close()
	d, err := ch.Get(f.ctx, t, 0)
	if err != nil {
		f.t.Fatalf("get %s: %v", name, err)
	}
	return d
}

func dbl(v ...float64) wire.Value { return wire.Value{Type: wire.DBRDouble, Doubles: v} }
func str(s string) wire.Value     { return wire.Value{Type: wire.DBRString, Strings: []string{s}} }

func TestRelayKinds(t *testing.T) {
	f := start(t, nil)
	// A float scalar, created by its first put; the value and the kind.
	if err := f.put("RELAY:temp_f1", dbl(21.5)); err != nil {
		t.Fatal(err)
	}
	d := f.get("RELAY:temp_f1", wire.DBRTimeDouble)
	if d.Value.Doubles[0] != 21.5 || d.Severity != wire.SevNoAlarm || d.Stamp.IsZero() {
		t.Errorf("temp_f1: %+v", d)
	}
	ch := f.ch("RELAY:temp_f1")
	if err := ch.WaitConnected(f.ctx); err != nil || ch.Info().Type != wire.DBRDouble || ch.Info().Count != 1 {
		t.Errorf("temp_f1 channel %+v", ch.Info())
	}
	// An int array takes up to count elements; more is refused, the value kept.
	if err := f.put("RELAY:n_i5", wire.Value{Type: wire.DBRLong, Longs: []int32{1, 2, 3}}); err != nil {
		t.Fatal(err)
	}
	if err := f.put("RELAY:n_i5", wire.Value{Type: wire.DBRLong, Longs: make([]int32, 6)}); !errors.Is(err, wire.ECABadCount) {
		t.Errorf("6 elements into 5: %v", err)
	}
	if d := f.get("RELAY:n_i5", wire.DBRLong); len(d.Value.Longs) != 3 || d.Value.Longs[2] != 3 {
		t.Errorf("n_i5 %v", d.Value.Longs)
	}
	// A buffer appends scalars and arrays, keeping the newest count, no leading 0.
	for _, v := range []wire.Value{dbl(1), dbl(2, 3), dbl(4, 5, 6)} {
		if err := f.put("RELAY:hist_F4", v); err != nil {
			t.Fatal(err)
		}
	}
	if d := f.get("RELAY:hist_F4", wire.DBRDouble); len(d.Value.Doubles) != 4 || d.Value.Doubles[0] != 3 || d.Value.Doubles[3] != 6 {
		t.Errorf("buffer %v", d.Value.Doubles)
	}
	// A char PV takes text, and a client asking for a string gets the text.
	if err := f.put("RELAY:msg_c32", str("hello relay")); err != nil {
		t.Fatal(err)
	}
	if d := f.get("RELAY:msg_c32", wire.DBRString); d.Value.Strings[0] != "hello relay" {
		t.Errorf("text %q", d.Value.Strings)
	}
	if err := f.put("RELAY:msg_c32", str(strings.Repeat("x", 33))); err == nil {
		t.Error("33 bytes into 32 accepted")
	}
	// Names that are not relay names are not served.
	ch = f.ch("RELAY:bad_x3")
	ctx, cancel := context.WithTimeout(f.ctx, 300*time.Millisecond)
	defer cancel()
	if err := ch.WaitConnected(ctx); err == nil {
		t.Error("RELAY:bad_x3 connected")
	}
}

func TestRelayAttributesAndAlarms(t *testing.T) {
	f := start(t, nil)
	for field, v := range map[string]wire.Value{"EGU": str("degC"), "PREC": str("2"), "HIGH": dbl(25), "HSV": str("MINOR"),
		"HIHI": dbl(30), "HHSV": str("MAJOR"), "DRVH": dbl(40), "DRVL": dbl(-10), "HOPR": dbl(50), "LOPR": dbl(-20), "DESC": str("room")} {
		if err := f.put("RELAY:t_f1."+field, v); err != nil {
			t.Fatalf("%s: %v", field, err)
		}
	}
	if err := f.put("RELAY:t_f1", dbl(26)); err != nil {
		t.Fatal(err)
	}
	d := f.get("RELAY:t_f1", wire.DBRCtrlDouble)
	m := d.Meta
	if d.Status != wire.StatHigh || d.Severity != wire.SevMinor || m.Units != "degC" || m.Precision != 2 ||
		m.Limits.UpperWarning != 25 || m.Limits.UpperAlarm != 30 || m.Limits.UpperCtrl != 40 || m.Limits.LowerCtrl != -10 || m.Limits.UpperDisp != 50 {
		t.Errorf("CTRL metadata %+v alarm %s/%s", m, d.Status, d.Severity)
	}
	if err := f.put("RELAY:t_f1", dbl(31)); err != nil {
		t.Fatal(err)
	}
	if d := f.get("RELAY:t_f1", wire.DBRStsDouble); d.Severity != wire.SevMajor {
		t.Errorf("31 gives %s", d.Severity)
	}
	// Outside the drive limits: refused, value unchanged. A CA put with
	// completion carries only the status; a transport's put gets the reason.
	if err := f.put("RELAY:t_f1", dbl(41)); !errors.Is(err, wire.ECAPutFail) {
		t.Errorf("CA put above DRVH: %v", err)
	}
	if err := f.rt.Put(f.ctx, "RELAY:t_f1", dbl(41)); err == nil || !strings.Contains(err.Error(), "outside the drive limits") {
		t.Errorf("transport put above DRVH: %v", err)
	}
	if d := f.get("RELAY:t_f1", wire.DBRDouble); d.Value.Doubles[0] != 31 {
		t.Errorf("value after refused put %v", d.Value.Doubles)
	}
	if d := f.get("RELAY:t_f1.DESC", wire.DBRString); d.Value.Strings[0] != "room" {
		t.Errorf("DESC %q", d.Value.Strings)
	}
}

// TestMonitorBeforeFirstPut opens a monitor on a relay name nobody wrote yet:
// the first update is INVALID/UDF, and the first put arrives.
func TestMonitorBeforeFirstPut(t *testing.T) {
	f := start(t, nil)
	ch := f.ch("RELAY:later_f1")
	got := make(chan wire.DBR, 10)
	if _, err := ch.Subscribe(client.SubscribeOptions{Type: wire.DBRTimeDouble}, func(u *client.Update) {
		d := *u.DBR
		d.Value = d.Value.Clone()
		got <- d
	}); err != nil {
		t.Fatal(err)
	}
	first := <-got
	if first.Severity != wire.SevInvalid || first.Status != wire.StatUDF {
		t.Errorf("first update %+v", first)
	}
	if err := f.put("RELAY:later_f1", dbl(7)); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-got:
		if d.Value.Doubles[0] != 7 || d.Severity != wire.SevNoAlarm {
			t.Errorf("first value %+v", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the first put never reached the monitor")
	}
}

func TestPVListDeleteAndCaps(t *testing.T) {
	f := start(t, func(o *Options) { o.Relay.MaxPVs, o.Relay.MaxElements = 3, 100 })
	for _, n := range []string{"RELAY:a_f1", "RELAY:b_f1", "RELAY:c_f1"} {
		if err := f.put(n, dbl(1)); err != nil {
			t.Fatal(err)
		}
	}
	// A fourth PV is beyond relay.max_pvs: through a transport the error says so.
	err := f.rt.Put(f.ctx, "RELAY:d_f1", dbl(1))
	if err == nil || !strings.Contains(err.Error(), "relay.max_pvs (3)") {
		t.Errorf("fourth PV: %v", err)
	}
	if err := f.rt.Put(f.ctx, "RELAY:big_f101", dbl(1)); err == nil || !strings.Contains(err.Error(), "100") {
		t.Errorf("101 elements with a cap of 100: %v", err)
	}
	time.Sleep(2 * pvlistWait)
	if d := f.get("RELAY:pvlist", wire.DBRString); d.Value.Strings[0] != "RELAY:a_f1,RELAY:b_f1,RELAY:c_f1" {
		t.Errorf("pvlist %q", d.Value.Strings)
	}
	// delpv: the PV's clients are disconnected. A client that still wants the
	// name reconnects, which creates the PV anew, empty (INVALID/UDF) until a
	// later put.
	events := make(chan client.State, 10)
	b, _ := f.c.Channel("RELAY:b_f1", client.ChannelOptions{OnConnection: func(c client.Connection) { events <- c.State }})
	if err := b.WaitConnected(f.ctx); err != nil {
		t.Fatal(err)
	}
	<-events
	if err := f.put("RELAY:delpv", str("b_f1")); err != nil {
		t.Fatal(err)
	}
	for _, want := range []client.State{client.Disconnected, client.Connected} {
		select {
		case s := <-events:
			if s != want {
				t.Errorf("after delpv: %s, want %s", s, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("after delpv: no %s event", want)
		}
	}
	if d, err := b.Get(f.ctx, wire.DBRStsDouble, 1); err != nil || d.Severity != wire.SevInvalid || d.Status != wire.StatUDF {
		t.Errorf("re-created PV: %+v %v", d, err)
	}
	// With nobody holding it, a deleted PV stays gone.
	b.Close()
	if err := f.put("RELAY:delpv", str("RELAY:b_f1")); err != nil {
		t.Fatal(err)
	}
	// A plain CA write gets the server's reason in CA_PROTO_ERROR.
	asyncErr := make(chan error, 1)
	del, _ := f.c.Channel("RELAY:delpv", client.ChannelOptions{OnError: func(err error) { asyncErr <- err }})
	if err := del.PutNoWait(f.ctx, str("nosuch_f1")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-asyncErr:
		if !strings.Contains(err.Error(), "no relay PV named RELAY:nosuch_f1") {
			t.Errorf("delete of an unknown PV: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("no error for the delete of an unknown PV")
	}
	time.Sleep(2 * pvlistWait)
	if d := f.get("RELAY:pvlist", wire.DBRString); d.Value.Strings[0] != "RELAY:a_f1,RELAY:c_f1" {
		t.Errorf("pvlist after delete %q", d.Value.Strings)
	}
	// A later put creates it anew.
	if err := f.rt.Put(f.ctx, "RELAY:b_f1", dbl(2)); err != nil {
		t.Errorf("re-creating b_f1: %v", err)
	}
}

const pvlistWait = 150 * time.Millisecond

// TestAutosave saves at shutdown and restores at start, before the first
// search: values, attributes and alarms come back.
func TestAutosave(t *testing.T) {
	path := filepath.Join(t.TempDir(), "relay.json")
	auto := func(o *Options) { o.Relay.AutosavePath = path }
	f := start(t, auto)
	_ = f.put("RELAY:t_f1.HIGH", dbl(5))
	_ = f.put("RELAY:t_f1.HSV", str("MINOR"))
	_ = f.put("RELAY:t_f1", dbl(6))
	_ = f.put("RELAY:buf_F3", dbl(1, 2))
	_ = f.put("RELAY:msg_c16", str("kept"))
	_ = f.c.Close()
	f.c = nil
	if err := f.rt.Close(); err != nil {
		t.Fatal(err)
	}
	g := start(t, auto)
	if d := g.get("RELAY:t_f1", wire.DBRCtrlDouble); d.Value.Doubles[0] != 6 || d.Severity != wire.SevMinor || d.Meta.Limits.UpperWarning != 5 {
		t.Errorf("restored t_f1 %+v", d)
	}
	if d := g.get("RELAY:buf_F3", wire.DBRDouble); len(d.Value.Doubles) != 2 {
		t.Errorf("restored buffer %v", d.Value.Doubles)
	}
	if d := g.get("RELAY:msg_c16", wire.DBRString); d.Value.Strings[0] != "kept" {
		t.Errorf("restored text %q", d.Value.Strings)
	}
}

// TestCorruptAutosave checks that a corrupt file is reported and kept aside,
// and never silently replaced.
func TestCorruptAutosave(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "relay.json")
	if err := os.WriteFile(path, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	f := start(t, func(o *Options) { o.Relay.AutosavePath = path })
	if !strings.Contains(f.logs.String(), "autosave file is corrupt") {
		t.Errorf("no error logged:\n%s", f.logs.String())
	}
	entries, _ := os.ReadDir(dir)
	kept := false
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "relay.json.corrupt-") {
			b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
			kept = string(b) == "{not json"
		}
	}
	if !kept {
		t.Errorf("corrupt file not kept aside: %v", entries)
	}
}
