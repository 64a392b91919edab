package server

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pvhub/pvhub/ca/catest"
	"github.com/pvhub/pvhub/ca/wire"
)

// The interop tests drive this server with the real EPICS client library:
// Debian's libca through catest's C driver, and pyepics. They skip when the
// peers are missing, and fail under CI=true.

// interopPVs are the PVs the libca tests read and write.
func interopPVs(t testing.TB) []*PV {
	stamp := wire.Timestamp{Sec: 1164111287, Nsec: 924091466}
	meta := wire.Metadata{Units: "mm", Precision: 3, ClassName: "ao", Limits: wire.Limits{
		UpperDisp: 100, LowerDisp: -100, UpperAlarm: 90, UpperWarning: 80, LowerWarning: -80, LowerAlarm: -90, UpperCtrl: 95, LowerCtrl: -95}}
	wf := make([]float64, 10)
	for i := range wf {
		wf[i] = float64(i) + 0.5
	}
	return []*PV{
		mustPV(t, "I:ao", PVOptions{Type: wire.DBRDouble, Count: 1, Value: doubles(3.25), Stamp: stamp, Meta: meta,
			Alarm: Alarm{Status: wire.StatHigh, Severity: wire.SevMinor}}),
		mustPV(t, "I:lo", PVOptions{Type: wire.DBRLong, Count: 1, Value: wire.Value{Type: wire.DBRLong, Longs: []int32{-42}}, Stamp: stamp,
			Meta: wire.Metadata{Units: "cts", Limits: wire.Limits{UpperDisp: 1000, LowerDisp: -1000, UpperCtrl: 500, LowerCtrl: -500}}}),
		mustPV(t, "I:si", PVOptions{Type: wire.DBRString, Count: 1, Value: wire.Value{Type: wire.DBRString, Strings: []string{"hello, world"}}, Stamp: stamp}),
		mustPV(t, "I:mbbi", PVOptions{Type: wire.DBREnum, Count: 1, Value: wire.Value{Type: wire.DBREnum, Enums: []uint16{1}}, Stamp: stamp,
			Meta: wire.Metadata{EnumStrings: []string{"Zero", "One", "Two"}, ClassName: "mbbi"}}),
		mustPV(t, "I:cwf", PVOptions{Type: wire.DBRChar, Count: 64, Value: wire.Value{Type: wire.DBRChar, Chars: []byte("some text\x00")}, Stamp: stamp}),
		mustPV(t, "I:wf", PVOptions{Type: wire.DBRDouble, Count: 10, Value: doubles(wf...), Stamp: stamp, Meta: meta}),
		mustPV(t, "I:ro", PVOptions{Type: wire.DBRDouble, Count: 1, Value: doubles(7), ReadOnly: true}),
	}
}

type interop struct {
	srv   *Server
	table *Table
	env   *catest.Env
	ctx   context.Context
}

// startInterop starts a server for real CA clients: its beacons go to a stub
// repeater that forwards them to the clients, as caRepeater would.
func startInterop(t *testing.T, cfg Config, pvs ...*PV) *interop {
	t.Helper()
	cfg.BeaconPort = catest.StubRepeater(t)
	srv, table := startServer(t, cfg, pvs...)
	env := &catest.Env{ServerPort: srv.UDPPort(), RepeaterPort: cfg.BeaconPort}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return &interop{srv: srv, table: table, env: env, ctx: ctx}
}

// expectLine checks what libca delivered for a read of pv in type typ and count
// n against what our own codec says the server sends.
func expectLine(t *testing.T, l catest.Line, pv *PV, typ wire.DBRType, n int) {
	t.Helper()
	st := pv.Snapshot()
	payload, err := wire.AppendDBR(nil, typ, n, st)
	if err != nil {
		if l.Int("eca") != int64(wire.ECAGetFail) {
			t.Errorf("%s as %s: libca got eca %d, want ECA_GETFAIL (%v)", pv.name, typ, l.Int("eca"), err)
		}
		return
	}
	var want wire.DBR
	if err := wire.DecodeDBR(&want, typ, n, payload); err != nil {
		t.Fatal(err)
	}
	where := fmt.Sprintf("%s as %s", pv.name, typ)
	if l.Int("eca") != int64(wire.ECANormal) || l.Int("type") != int64(typ) || l.Int("count") != int64(n) {
		t.Errorf("%s: eca %d type %d count %d", where, l.Int("eca"), l.Int("type"), l.Int("count"))
		return
	}
	fam := typ.Family()
	if fam != wire.FamilyPlain && fam != wire.FamilyClassName {
		if l.Int("alarm_status") != int64(want.Status) || l.Int("alarm_severity") != int64(want.Severity) {
			t.Errorf("%s: alarm %d/%d, want %d/%d", where, l.Int("alarm_status"), l.Int("alarm_severity"), want.Status, want.Severity)
		}
	}
	if fam == wire.FamilyTime && (l.Int("stamp_sec") != int64(want.Stamp.Sec) || l.Int("stamp_nsec") != int64(want.Stamp.Nsec)) {
		t.Errorf("%s: stamp %d.%d, want %+v", where, l.Int("stamp_sec"), l.Int("stamp_nsec"), want.Stamp)
	}
	if fam == wire.FamilyStsAck && (l.Int("ackt") != int64(want.AckT) || l.Int("acks") != int64(want.AckS)) {
		t.Errorf("%s: ackt/acks %d/%d", where, l.Int("ackt"), l.Int("acks"))
	}
	if (fam == wire.FamilyGr || fam == wire.FamilyCtrl) && typ.Base() != wire.DBRString {
		if typ.Base() == wire.DBREnum {
			strs := catest.Line{"value": l["enum_strs"]}.Strings()
			if strings.Join(strs, "|") != strings.Join(want.Meta.EnumStrings, "|") {
				t.Errorf("%s: enum strings %q, want %q", where, strs, want.Meta.EnumStrings)
			}
		} else {
			if l.Str("units") != want.Meta.Units {
				t.Errorf("%s: units %q, want %q", where, l.Str("units"), want.Meta.Units)
			}
			if (typ.Base() == wire.DBRDouble || typ.Base() == wire.DBRFloat) && l.Int("precision") != int64(want.Meta.Precision) {
				t.Errorf("%s: precision %d", where, l.Int("precision"))
			}
			lim := want.Meta.Limits
			checks := map[string]float64{"upper_disp_limit": lim.UpperDisp, "lower_disp_limit": lim.LowerDisp,
				"upper_alarm_limit": lim.UpperAlarm, "upper_warning_limit": lim.UpperWarning,
				"lower_warning_limit": lim.LowerWarning, "lower_alarm_limit": lim.LowerAlarm}
			if fam == wire.FamilyCtrl {
				checks["upper_ctrl_limit"], checks["lower_ctrl_limit"] = lim.UpperCtrl, lim.LowerCtrl
			}
			for k, w := range checks {
				if g := l.Float(k); g != w && !(math.IsNaN(g) && math.IsNaN(w)) {
					t.Errorf("%s: %s %v, want %v", where, k, g, w)
				}
			}
		}
	}
	switch typ.Base() {
	case wire.DBRString:
		if got := l.Strings(); strings.Join(got, "|") != strings.Join(want.Value.Strings, "|") {
			t.Errorf("%s: value %q, want %q", where, got, want.Value.Strings)
		}
	default:
		got := l.Floats()
		var w wire.Value
		_ = wire.Convert(&w, wire.DBRDouble, &want.Value, 0, nil)
		if len(got) != len(w.Doubles) {
			t.Errorf("%s: %d values, want %d", where, len(got), len(w.Doubles))
			return
		}
		for i := range got {
			if got[i] != w.Doubles[i] {
				t.Errorf("%s: value[%d] %v, want %v", where, i, got[i], w.Doubles[i])
				return
			}
		}
	}
}

// TestIntegrationLibcaGetEveryType reads every PV in every readable DBR type
// with libca and compares what libca decoded with what the server meant.
func TestIntegrationLibcaGetEveryType(t *testing.T) {
	drv := catest.Libca(t)
	pvs := interopPVs(t)
	it := startInterop(t, Config{}, pvs...)
	names := make([]string, len(pvs))
	for i, pv := range pvs {
		names[i] = pv.name
	}
	for typ := wire.DBRType(0); typ <= wire.MaxDBRType; typ++ {
		if !typ.Readable() {
			continue
		}
		for _, count := range []string{"native", "0", "1"} {
			args := []string{"get", "-d", strconv.Itoa(int(typ))}
			if count != "native" {
				args = append(args, "-c", count)
			}
			lines, err := drv.Run(it.ctx, it.env, append(args, names...)...)
			if err != nil && catest.ExitCode(err) != 1 {
				t.Fatalf("get %s: %v", typ, err)
			}
			for _, pv := range pvs {
				ls := catest.Find(lines, "value", pv.name)
				if len(ls) != 1 {
					t.Errorf("get %s %s: %d value lines", typ, pv.name, len(ls))
					continue
				}
				n := pv.capacity
				switch count {
				case "0":
					n = pv.Snapshot().Value.Len()
				case "1":
					n = 1
				}
				expectLine(t, ls[0], pv, typ, n)
			}
		}
	}
}

// TestIntegrationLibcaPut writes with and without completion, in several types.
func TestIntegrationLibcaPut(t *testing.T) {
	drv := catest.Libca(t)
	it := startInterop(t, Config{}, interopPVs(t)...)
	get := func(pv string, args ...string) catest.Line {
		t.Helper()
		lines, err := drv.Run(it.ctx, it.env, append(append([]string{"get"}, args...), pv)...)
		if err != nil {
			t.Fatalf("get %s: %v", pv, err)
		}
		return catest.Find(lines, "value", pv)[0]
	}
	put := func(wantExit int, args ...string) []catest.Line {
		t.Helper()
		lines, err := drv.Run(it.ctx, it.env, append([]string{"put"}, args...)...)
		if catest.ExitCode(err) != wantExit {
			t.Fatalf("put %v: exit %d (%v), want %d", args, catest.ExitCode(err), err, wantExit)
		}
		return lines
	}
	// Put with completion: the callback status is ECA_NORMAL and a read sees it.
	lines := put(0, "-c", "I:ao", "12.5")
	if done := catest.Find(lines, "put_done", "I:ao"); len(done) != 1 || done[0].Int("eca") != int64(wire.ECANormal) {
		t.Errorf("put -c: %v", lines)
	}
	if v := get("I:ao").Floats(); v[0] != 12.5 {
		t.Errorf("after put: %v", v)
	}
	// A plain put (WRITE) of a short DBR_STRING, as caput sends it.
	put(0, "I:ao", "-3.75")
	if v := get("I:ao").Floats(); v[0] != -3.75 {
		t.Errorf("after plain put: %v", v)
	}
	// A value that does not convert: ECA_PUTFAIL through the callback, and
	// through an exception for a plain put; the value is unchanged.
	lines = put(1, "-c", "I:ao", "abc")
	if done := catest.Find(lines, "put_done", "I:ao"); len(done) != 1 || done[0].Int("eca") != int64(wire.ECAPutFail) {
		t.Errorf("put -c abc: %v", lines)
	}
	lines = put(1, "I:ao", "abc")
	if ex := catest.Find(lines, "exception", "I:ao"); len(ex) != 1 || ex[0].Int("stat") != int64(wire.ECAPutFail) || !strings.Contains(ex[0].Str("ctx"), "cannot convert") {
		t.Errorf("put abc: %v", lines)
	}
	if v := get("I:ao").Floats(); v[0] != -3.75 {
		t.Errorf("after failed puts: %v", v)
	}
	// Enum by name and by index.
	put(0, "-c", "I:mbbi", "Two")
	if v := get("I:mbbi", "-d", "string").Strings(); v[0] != "Two" {
		t.Errorf("enum after put of Two: %v", v)
	}
	put(0, "-c", "-d", "short", "I:mbbi", "0")
	if v := get("I:mbbi").Floats(); v[0] != 0 {
		t.Errorf("enum after put of 0: %v", v)
	}
	put(1, "-c", "I:mbbi", "Three")
	// A shorter array sets the current length; count 0 reads it back.
	put(0, "-c", "I:wf", "1", "2", "3")
	if l := get("I:wf", "-c", "0"); l.Int("count") != 3 || fmt.Sprint(l.Floats()) != "[1 2 3]" {
		t.Errorf("wf after put of 3 elements: count %d %v", l.Int("count"), l.Floats())
	}
	if l := get("I:wf"); l.Int("count") != 10 || l.Floats()[3] != 0 {
		t.Errorf("wf read at native count: %v", l.Floats())
	}
	// Text into a char array, as caput -S sends it.
	put(0, "-c", "-S", "I:cwf", "a longer text than forty characters, for a char waveform")
	if b := get("I:cwf", "-c", "0").Bytes(); string(b) != "a longer text than forty characters, for a char waveform\x00" {
		t.Errorf("char array after put -S: %q", b)
	}
	// A string PV.
	put(0, "-c", "I:si", "new text")
	if v := get("I:si").Strings(); v[0] != "new text" {
		t.Errorf("string after put: %v", v)
	}
	// A read-only PV: libca sees no write access and refuses.
	lines = put(1, "-c", "I:ro", "1")
	if p := catest.Find(lines, "put", "I:ro"); len(p) != 1 || p[0].Int("ca_status") != int64(wire.ECANoWtAccess) {
		t.Errorf("put to a read-only PV: %v", lines)
	}
	if v := it.table.Get("I:ro").Snapshot().Value.Doubles[0]; v != 7 {
		t.Errorf("read-only PV changed to %v", v)
	}
}

// TestIntegrationLibcaMonitor checks that a libca monitor receives every change
// in order, alarms included, and that a client frozen while updates pile up
// gets the last value when it resumes.
func TestIntegrationLibcaMonitor(t *testing.T) {
	drv := catest.Libca(t)
	pvs := interopPVs(t)
	wave := mustPV(t, "I:wave", PVOptions{Type: wire.DBRDouble, Count: 1000, Value: doubles(make([]float64, 1000)...)})
	it := startInterop(t, Config{}, append(pvs, wave)...)
	ao := it.table.Get("I:ao")

	mon, err := drv.Start(it.ctx, it.env, "monitor", "-m", "va", "I:ao")
	if err != nil {
		t.Fatal(err)
	}
	first, err := mon.WaitFor(5*time.Second, func(l catest.Line) bool { return l.Event() == "value" })
	if err != nil || first.Floats()[0] != 3.25 {
		t.Fatalf("first monitor event %v %v", first, err)
	}
	const n = 200
	for i := 1; i <= n; i++ {
		a := NoAlarm
		if i%50 == 0 {
			a = Alarm{Status: wire.StatHiHi, Severity: wire.SevMajor}
		}
		if err := ao.Post(doubles(float64(i)), a, wire.Timestamp{}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	for i := 1; i <= n; i++ {
		l, err := mon.WaitFor(5*time.Second, func(l catest.Line) bool { return l.Event() == "value" })
		if err != nil {
			t.Fatalf("update %d: %v", i, err)
		}
		if v := l.Floats()[0]; v != float64(i) {
			t.Fatalf("update %d carries %v", i, v)
		}
		if wantSev := map[bool]int64{true: 2, false: 0}[i%50 == 0]; l.Int("alarm_severity") != wantSev {
			t.Errorf("update %d severity %d", i, l.Int("alarm_severity"))
		}
	}
	_ = mon.Stop()

	// A frozen client: 3000 updates of 8 KB (24 MB) cannot all wait in socket
	// buffers; the server coalesces and the client ends with the last value.
	slow, err := drv.Start(it.ctx, it.env, "monitor", "-m", "v", "I:wave")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := slow.WaitFor(5*time.Second, func(l catest.Line) bool { return l.Event() == "value" }); err != nil {
		t.Fatal(err)
	}
	if err := slow.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	v := make([]float64, 1000)
	const posts = 3000
	for i := 1; i <= posts; i++ {
		v[0], v[999] = float64(i), float64(i)
		if err := wave.Post(doubles(v...), NoAlarm, wire.Timestamp{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := slow.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	got := 0
	for {
		l, err := slow.WaitFor(5*time.Second, func(l catest.Line) bool { return l.Event() == "value" })
		if err != nil {
			t.Fatalf("after %d updates the last value never came: %v", got, err)
		}
		got++
		if f := l.Floats(); f[0] == posts && f[999] == posts {
			break
		}
	}
	if got >= posts {
		t.Errorf("frozen client received all %d updates; nothing was coalesced", got)
	}
	t.Logf("frozen client received %d of %d updates, ending with the last one", got, posts)
}

// TestIntegrationLibcaBigArray reads a 1,000,000-element array with libca, the
// client's EPICS_CA_MAX_ARRAY_BYTES raised, and writes it back.
func TestIntegrationLibcaBigArray(t *testing.T) {
	drv := catest.Libca(t)
	const n = 1_000_000
	v := make([]float64, n)
	for i := range v {
		v[i] = float64(i)
	}
	big := mustPV(t, "I:big", PVOptions{Type: wire.DBRDouble, Count: n, Value: doubles(v...)})
	it := startInterop(t, Config{MaxArrayBytes: 8*n + 1024}, big)
	it.env.MaxArrayBytes = 8*n + 1024
	lines, err := drv.Run(it.ctx, it.env, "get", "-d", "time_double", "I:big")
	if err != nil {
		t.Fatal(err)
	}
	l := catest.Find(lines, "value", "I:big")[0]
	got := l.Floats()
	if l.Int("count") != n || len(got) != n || got[0] != 0 || got[n-1] != n-1 || got[n/2] != n/2 {
		t.Fatalf("big array: count %d, %d values", l.Int("count"), len(got))
	}
	// libca since 3.16.1 grows its buffers on demand (EPICS_CA_AUTO_ARRAY_BYTES=YES
	// by default), so only a client that turns that off keeps the 16 KiB limit.
	it.env.MaxArrayBytes = 0
	it.env.Extra = []string{"EPICS_CA_AUTO_ARRAY_BYTES=NO"}
	lines, err = drv.Run(it.ctx, it.env, "get", "-w", "2", "I:big")
	// libca drops the oversize reply; the read never completes.
	if catest.ExitCode(err) != 3 || len(catest.Find(lines, "timeout", "I:big")) != 1 {
		t.Errorf("a client limited to 16 KiB reading an 8 MB array: %v %v", lines, err)
	}
}

// TestIntegrationLibcaServerStops checks that libca notices at once when the
// server goes away.
func TestIntegrationLibcaServerStops(t *testing.T) {
	drv := catest.Libca(t)
	it := startInterop(t, Config{}, interopPVs(t)...)
	mon, err := drv.Start(it.ctx, it.env, "monitor", "I:ao", "I:lo")
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := mon.WaitFor(5*time.Second, func(l catest.Line) bool { return l.Event() == "value" }); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	_ = it.srv.Close()
	for _, pv := range []string{"I:ao", "I:lo"} {
		l, err := mon.WaitFor(5*time.Second, func(l catest.Line) bool {
			return l.Event() == "conn" && l.Str("pv") == pv && !l.Bool("connected")
		})
		if err != nil {
			t.Fatalf("%s: no disconnect reported: %v", pv, err)
		}
		_ = l
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("disconnect noticed after %v", d)
	}
}

// TestIntegrationPyepics drives the server with pyepics: metadata, enum labels,
// put with wait, text in a char array, and monitors.
func TestIntegrationPyepics(t *testing.T) {
	py := catest.Pyepics(t)
	it := startInterop(t, Config{}, interopPVs(t)...)
	lines, err := py.Run(it.ctx, it.env, "get", "--form", "ctrl", "--ctrlvars", "I:ao", "I:mbbi", "I:cwf", "I:si")
	if err != nil {
		t.Fatal(err)
	}
	ao := catest.Find(lines, "value", "I:ao")[0]
	if ao.Float("value") != 3.25 || ao.Str("units") != "mm" || ao.Int("precision") != 3 || ao.Int("severity") != 1 {
		t.Errorf("pyepics I:ao: %v", ao)
	}
	mbbi := catest.Find(lines, "value", "I:mbbi")[0]
	if strs := (catest.Line{"value": mbbi["enum_strs"]}).Strings(); strings.Join(strs, ",") != "Zero,One,Two" {
		t.Errorf("pyepics enum strings %v (%v)", strs, mbbi)
	}
	if cwf := catest.Find(lines, "value", "I:cwf")[0]; string(cwf.Bytes()) != "some text\x00" || cwf.Int("nelm") != 64 {
		t.Errorf("pyepics char waveform %v", cwf)
	}
	lines, err = py.Run(it.ctx, it.env, "get", "--as-string", "I:mbbi", "I:ao")
	if err != nil {
		t.Fatal(err)
	}
	if v := catest.Find(lines, "value", "I:mbbi")[0].Str("value"); v != "One" {
		t.Errorf("enum as string %q", v)
	}
	if v := catest.Find(lines, "value", "I:ao")[0].Str("value"); v != "3.250" {
		t.Errorf("double as string %q (PREC 3)", v)
	}
	lines, err = py.Run(it.ctx, it.env, "get", "--as-string", "I:cwf")
	if err != nil {
		t.Fatal(err)
	}
	if v := catest.Find(lines, "value", "I:cwf")[0].Str("char_value"); v != "some text" {
		t.Errorf("char waveform as text %q", v)
	}
	if _, err := py.Run(it.ctx, it.env, "put", "--wait", "I:ao", "42.5"); err != nil {
		t.Fatal(err)
	}
	if _, err := py.Run(it.ctx, it.env, "put", "--wait", "--text", "I:cwf", "written by pyepics"); err != nil {
		t.Fatal(err)
	}
	if got := it.table.Get("I:ao").Snapshot().Value.Doubles[0]; got != 42.5 {
		t.Errorf("after pyepics put: %v", got)
	}
	if got := string(it.table.Get("I:cwf").Snapshot().Value.Chars); !strings.HasPrefix(got, "written by pyepics") {
		t.Errorf("char array after pyepics put: %q", got)
	}
	mon, err := py.Start(it.ctx, it.env, "monitor", "I:lo")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mon.WaitFor(10*time.Second, func(l catest.Line) bool { return l.Event() == "value" }); err != nil {
		t.Fatal(err)
	}
	lo := it.table.Get("I:lo")
	for i := int32(1); i <= 20; i++ {
		_ = lo.Post(wire.Value{Type: wire.DBRLong, Longs: []int32{i}}, NoAlarm, wire.Timestamp{})
		time.Sleep(2 * time.Millisecond)
	}
	for i := 1; i <= 20; i++ {
		l, err := mon.WaitFor(5*time.Second, func(l catest.Line) bool { return l.Event() == "value" })
		if err != nil || l.Float("value") != float64(i) {
			t.Fatalf("pyepics update %d: %v %v", i, l, err)
		}
	}
}
