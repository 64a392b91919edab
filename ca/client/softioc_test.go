package client

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/pvhub/pvhub/ca/catest"
	"github.com/pvhub/pvhub/ca/wire"
)

// softIocDB is the database of the checks against a real IOC. The records
// read in every type are processed at init (PINI), so that they have a time
// stamp and no UDF alarm, except the waveforms, which the test writes before
// reading them (S:ewf stays empty). S:cnt counts at 10 Hz; S:delay completes
// its processing 0.5 s late (ODLY), like a slow device.
const softIocDB = `
record(ao, "S:ao") {
  field(VAL, "3.25") field(PREC, "3") field(EGU, "mm")
  field(HOPR, "100") field(LOPR, "-100")
  field(HIHI, "90") field(HIGH, "80") field(LOW, "-80") field(LOLO, "-90")
  field(HHSV, "MAJOR") field(HSV, "MINOR") field(LSV, "MINOR") field(LLSV, "MAJOR")
  field(DRVH, "95") field(DRVL, "-95")
  field(ADEL, "5")
  field(PINI, "YES")
}
record(longout, "S:lo") {
  field(VAL, "21") field(EGU, "cnt")
  field(HOPR, "50") field(LOPR, "-50")
  field(HIHI, "45") field(HIGH, "40") field(LOW, "-40") field(LOLO, "-45")
  field(HHSV, "MAJOR") field(HSV, "MINOR") field(LSV, "MINOR") field(LLSV, "MAJOR")
  field(DRVH, "48") field(DRVL, "-48")
  field(PINI, "YES")
}
record(stringout, "S:so") { field(VAL, "hello world") field(PINI, "YES") }
record(mbbo, "S:mbbo") {
  field(ZRST, "zero") field(ONST, "one") field(TWST, "two")
  field(VAL, "1") field(PINI, "YES")
}
record(bo, "S:bo") { field(ZNAM, "Off") field(ONAM, "On") field(VAL, "1") field(PINI, "YES") }
record(waveform, "S:dwf") { field(FTVL, "DOUBLE") field(NELM, "100") field(EGU, "V") }
record(waveform, "S:cwf") { field(FTVL, "CHAR") field(NELM, "64") }
record(waveform, "S:ewf") { field(FTVL, "LONG") field(NELM, "8") }
record(calc, "S:cnt") { field(SCAN, ".1 second") field(CALC, "A+1") field(INPA, "S:cnt") }
record(calcout, "S:delay") { field(CALC, "A") field(ODLY, "0.5") }
`

// iocPV is what the checks expect of one record, as read with every DBR type
// after the initial writes of the test.
type iocPV struct {
	name   string
	native wire.DBRType
	count  int
	class  string
	str    []string  // the value as DBR_STRING, zero-filled to count
	num    []float64 // the value as DBR_DOUBLE; nil: numeric reads fail (ECA_GETFAIL)
	units  string
	prec   int16
	limits *wire.Limits // nil: not checked
	enums  []string
}

func iocPadStrings(s []string, n int) []string {
	out := make([]string, n)
	copy(out, s)
	return out
}

func iocPadFloats(f []float64, n int) []float64 {
	out := make([]float64, n)
	copy(out, f)
	return out
}

var iocPVs = []iocPV{
	{name: "S:ao", native: wire.DBRDouble, count: 1, class: "ao", str: []string{"3.250"}, num: []float64{3.25},
		units: "mm", prec: 3, limits: &wire.Limits{UpperDisp: 100, LowerDisp: -100, UpperAlarm: 90, UpperWarning: 80,
			LowerWarning: -80, LowerAlarm: -90, UpperCtrl: 95, LowerCtrl: -95}},
	{name: "S:lo", native: wire.DBRLong, count: 1, class: "longout", str: []string{"21"}, num: []float64{21},
		units: "cnt", limits: &wire.Limits{UpperDisp: 50, LowerDisp: -50, UpperAlarm: 45, UpperWarning: 40,
			LowerWarning: -40, LowerAlarm: -45, UpperCtrl: 48, LowerCtrl: -48}},
	{name: "S:so", native: wire.DBRString, count: 1, class: "stringout", str: []string{"hello world"}},
	{name: "S:mbbo", native: wire.DBREnum, count: 1, class: "mbbo", str: []string{"one"}, num: []float64{1},
		enums: []string{"zero", "one", "two"}},
	{name: "S:bo", native: wire.DBREnum, count: 1, class: "bo", str: []string{"On"}, num: []float64{1},
		enums: []string{"Off", "On"}},
	{name: "S:dwf", native: wire.DBRDouble, count: 100, class: "waveform", str: iocPadStrings([]string{"1", "2", "3"}, 100),
		num: iocPadFloats([]float64{1, 2, 3}, 100), units: "V"},
	{name: "S:cwf", native: wire.DBRChar, count: 64, class: "waveform", str: iocPadStrings([]string{"104", "105", "0"}, 64),
		num: iocPadFloats([]float64{104, 105}, 64)},
	{name: "S:cnt", native: wire.DBRDouble, count: 1, class: "calc"},
}

// iocUpdate is a copy of a monitor update.
type iocUpdate struct {
	at       time.Time
	vals     []float64
	strs     []string
	status   wire.AlarmStatus
	severity wire.AlarmSeverity
	stamp    wire.Timestamp
	units    string
	err      error
}

// iocEvents records the connection events, monitor updates and asynchronous
// errors of one channel.
type iocEvents struct {
	waiter
	conns   []Connection
	connAt  []time.Time
	updates []iocUpdate
	errs    []error
}

func newIOCEvents() *iocEvents {
	e := &iocEvents{}
	e.init()
	return e
}

func (e *iocEvents) onConn(c Connection) {
	e.mu.Lock()
	e.conns = append(e.conns, c)
	e.connAt = append(e.connAt, time.Now())
	e.mu.Unlock()
	e.poke()
}

func (e *iocEvents) onError(err error) {
	e.mu.Lock()
	e.errs = append(e.errs, err)
	e.mu.Unlock()
	e.poke()
}

func (e *iocEvents) onUpdate(u *Update) {
	up := iocUpdate{at: time.Now(), err: u.Err}
	if u.DBR != nil {
		up.vals = iocNumbers(u.DBR.Value)
		if u.DBR.Value.Type == wire.DBRString {
			up.strs = slices.Clone(u.DBR.Value.Strings)
		}
		up.status, up.severity, up.stamp, up.units = u.DBR.Status, u.DBR.Severity, u.DBR.Stamp, u.DBR.Meta.Units
	}
	e.mu.Lock()
	e.updates = append(e.updates, up)
	e.mu.Unlock()
	e.poke()
}

// wait waits until cond (called with e.mu held) holds, failing the test after d.
func (e *iocEvents) wait(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	e.waitFor(t, d, what, cond, func() string {
		return fmt.Sprintf("connections %v; updates %v; errors %v", e.conns, e.updates, e.errs)
	})
}

// snapshot returns copies of the connection events and updates.
func (e *iocEvents) snapshot() ([]Connection, []iocUpdate) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.conns), slices.Clone(e.updates)
}

// iocNumbers returns the elements of a numeric value as float64s; nil for strings.
func iocNumbers(v wire.Value) []float64 {
	var out []float64
	switch v.Type {
	case wire.DBRShort:
		for _, x := range v.Shorts {
			out = append(out, float64(x))
		}
	case wire.DBRFloat:
		for _, x := range v.Floats {
			out = append(out, float64(x))
		}
	case wire.DBREnum:
		for _, x := range v.Enums {
			out = append(out, float64(x))
		}
	case wire.DBRChar:
		for _, x := range v.Chars {
			out = append(out, float64(x))
		}
	case wire.DBRLong:
		for _, x := range v.Longs {
			out = append(out, float64(x))
		}
	case wire.DBRDouble:
		out = append(out, v.Doubles...)
	}
	return out
}

// iocCast converts f as the IOC's C conversions do for a DBR base type:
// integers truncate, DBR_CHAR is an unsigned byte.
func iocCast(base wire.DBRType, f float64) float64 {
	switch base {
	case wire.DBRShort:
		return float64(int16(f))
	case wire.DBRFloat:
		return float64(float32(f))
	case wire.DBREnum:
		return float64(uint16(f))
	case wire.DBRChar:
		return float64(uint8(int8(f)))
	case wire.DBRLong:
		return float64(int32(f))
	}
	return f
}

// TestIntegrationClientAgainstSoftIoc runs the client against a real IOC
// (rsrv) from a locally built EPICS base named by EPICS_BASE: reads in every
// DBR type, count-0 reads of arrays, writes with and without completion (and
// their failures), monitors with masks and of arrays, echoes and a frozen
// IOC, name resolution over TCP, idle circuits, and the IOC stopped and
// restarted on the same port. It is an optional local check, not a CI peer:
// without EPICS_BASE it skips. Everything stays on 127.0.0.1.
func TestIntegrationClientAgainstSoftIoc(t *testing.T) {
	ioc := catest.SoftIoc(t, softIocDB)
	port := uint16(ioc.Port())
	c, err := New(Config{ServerPort: ioc.Port(), RepeaterPort: ioc.BeaconPort(),
		AddrList: []netip.AddrPort{netip.AddrPortFrom(Loopback, port)}, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	chans := map[string]*Channel{}
	evs := map[string]*iocEvents{}
	for _, pv := range append(slices.Clone(iocPVs), iocPV{name: "S:ao.EGU"}, iocPV{name: "S:delay.A"}, iocPV{name: "S:ewf"}) {
		ev := newIOCEvents()
		ch, err := c.Channel(pv.name, ChannelOptions{OnConnection: ev.onConn, OnError: ev.onError})
		if err != nil {
			t.Fatal(err)
		}
		chans[pv.name], evs[pv.name] = ch, ev
	}
	for name, ch := range chans {
		if err := ch.WaitConnected(ctx); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	put := func(t *testing.T, name string, v wire.Value) {
		t.Helper()
		if err := chans[name].Put(ctx, v); err != nil {
			t.Fatalf("put %v to %s: %v", v, name, err)
		}
	}
	get := func(t *testing.T, name string, typ wire.DBRType, count int) *wire.DBR {
		t.Helper()
		d, err := chans[name].Get(ctx, typ, count)
		if err != nil {
			t.Fatalf("get %s as %v (count %d): %v", name, typ, count, err)
		}
		return d
	}

	t.Run("Info", func(t *testing.T) {
		server := fmt.Sprintf("127.0.0.1:%d", port)
		for _, pv := range iocPVs {
			info := chans[pv.name].Info()
			if info.State != Connected || info.Type != pv.native || info.Count != pv.count ||
				info.Server != server || !info.Read || !info.Write || info.Err != nil {
				t.Errorf("%s: %+v; want %v[%d] on %s, read and write", pv.name, info, pv.native, pv.count, server)
			}
		}
		if info := chans["S:ao.EGU"].Info(); info.Type != wire.DBRString || info.Count != 1 {
			t.Errorf("S:ao.EGU: %+v", info)
		}
	})

	// Known array contents first.
	put(t, "S:dwf", wire.Value{Type: wire.DBRDouble, Doubles: []float64{1, 2, 3}})
	put(t, "S:cwf", wire.Value{Type: wire.DBRChar, Chars: []byte("hi\x00")})

	t.Run("GetEveryType", func(t *testing.T) {
		before := time.Now()
		for _, pv := range iocPVs {
			if pv.name == "S:cnt" {
				continue // counting
			}
			for typ := wire.DBRType(0); typ <= wire.MaxDBRType; typ++ {
				if typ == wire.DBRPutAckT || typ == wire.DBRPutAckS {
					continue // write-only
				}
				d, err := chans[pv.name].Get(ctx, typ, pv.count)
				checkIOCGet(t, pv, typ, d, err, before)
			}
		}
	})

	t.Run("GetCountZero", func(t *testing.T) {
		d := get(t, "S:dwf", wire.DBRDouble, 0)
		if !slices.Equal(d.Value.Doubles, []float64{1, 2, 3}) {
			t.Errorf("count-0 get of S:dwf: %v", d.Value)
		}
		d = get(t, "S:cwf", wire.DBRTimeChar, 0)
		if string(d.Value.Chars) != "hi\x00" || d.Stamp.IsZero() {
			t.Errorf("count-0 get of S:cwf: %+v", d)
		}
		d = get(t, "S:ao", wire.DBRCtrlDouble, 0)
		if d.Value.Len() != 1 || d.Value.Doubles[0] != 3.25 || d.Meta.Units != "mm" {
			t.Errorf("count-0 get of S:ao: %+v", d)
		}
		// Fewer elements written: count 0 reads the new length, the full
		// count reads the rest as zeros, and the channel keeps its size.
		put(t, "S:dwf", wire.Value{Type: wire.DBRLong, Longs: []int32{4, 5, 6, 7}})
		if d := get(t, "S:dwf", wire.DBRTimeDouble, 0); !slices.Equal(d.Value.Doubles, []float64{4, 5, 6, 7}) {
			t.Errorf("count-0 get after a 4-element put: %v", d.Value)
		}
		if d := get(t, "S:dwf", wire.DBRDouble, 100); !slices.Equal(d.Value.Doubles, iocPadFloats([]float64{4, 5, 6, 7}, 100)) {
			t.Errorf("full get after a 4-element put: %v", d.Value)
		}
		if d := get(t, "S:dwf", wire.DBRDouble, 2); !slices.Equal(d.Value.Doubles, []float64{4, 5}) {
			t.Errorf("2-element get: %v", d.Value)
		}
		if info := chans["S:dwf"].Info(); info.Count != 100 {
			t.Errorf("S:dwf count %d after the put", info.Count)
		}
		_, err := chans["S:dwf"].Get(ctx, wire.DBRDouble, 101)
		if !errors.Is(err, wire.ECABadCount) {
			t.Errorf("get of 101 elements: %v", err)
		}
	})

	t.Run("Put", func(t *testing.T) {
		put(t, "S:ao", wire.Value{Type: wire.DBRDouble, Doubles: []float64{7.5}})
		if d := get(t, "S:ao", wire.DBRDouble, 1); d.Value.Doubles[0] != 7.5 {
			t.Errorf("S:ao after put 7.5: %v", d.Value)
		}
		put(t, "S:ao", wire.Value{Type: wire.DBRString, Strings: []string{"2.5"}})
		if d := get(t, "S:ao", wire.DBRString, 1); d.Value.Strings[0] != "2.500" {
			t.Errorf("S:ao after put \"2.5\": %v", d.Value)
		}
		// Above DRVH: the record clamps the value, which is then in HIHI.
		put(t, "S:ao", wire.Value{Type: wire.DBRFloat, Floats: []float32{99}})
		d := get(t, "S:ao", wire.DBRTimeDouble, 1)
		if d.Value.Doubles[0] != 95 || d.Status != wire.StatHiHi || d.Severity != wire.SevMajor {
			t.Errorf("S:ao after put 99 (DRVH 95): %+v", d)
		}
		put(t, "S:ao", wire.Value{Type: wire.DBRDouble, Doubles: []float64{3.25}})
		// The MAJOR alarm stays unacknowledged (ACKT is YES).
		if d := get(t, "S:ao", wire.DBRStsAckString, 1); d.Value.Strings[0] != "3.250" || d.Severity != wire.SevNoAlarm ||
			d.AckT != 1 || d.AckS != uint16(wire.SevMajor) {
			t.Errorf("STSACK_STRING of S:ao after the alarm: %+v", d)
		}

		put(t, "S:lo", wire.Value{Type: wire.DBRShort, Shorts: []int16{7}})
		put(t, "S:lo", wire.Value{Type: wire.DBRString, Strings: []string{"12"}})
		if d := get(t, "S:lo", wire.DBRLong, 1); d.Value.Longs[0] != 12 {
			t.Errorf("S:lo after put \"12\": %v", d.Value)
		}
		put(t, "S:so", wire.Value{Type: wire.DBRString, Strings: []string{"new text"}})
		if d := get(t, "S:so", wire.DBRStsString, 1); d.Value.Strings[0] != "new text" {
			t.Errorf("S:so after put: %v", d.Value)
		}
		put(t, "S:mbbo", wire.Value{Type: wire.DBRString, Strings: []string{"two"}})
		if d := get(t, "S:mbbo", wire.DBREnum, 1); d.Value.Enums[0] != 2 {
			t.Errorf("S:mbbo after put \"two\": %v", d.Value)
		}
		put(t, "S:mbbo", wire.Value{Type: wire.DBREnum, Enums: []uint16{0}})
		if d := get(t, "S:mbbo", wire.DBRString, 1); d.Value.Strings[0] != "zero" {
			t.Errorf("S:mbbo after put 0: %v", d.Value)
		}
		err := chans["S:mbbo"].Put(ctx, wire.Value{Type: wire.DBRString, Strings: []string{"bogus"}})
		var ce *Error
		if !errors.Is(err, wire.ECAPutFail) || !errors.As(err, &ce) || ce.PV != "S:mbbo" || ce.Op != "put" {
			t.Errorf("put of a bad enum string: %v; want ECA_PUTFAIL", err)
		}
		if d := get(t, "S:mbbo", wire.DBREnum, 1); d.Value.Enums[0] != 0 {
			t.Errorf("S:mbbo after the failed put: %v", d.Value)
		}
		put(t, "S:bo", wire.Value{Type: wire.DBRString, Strings: []string{"Off"}})
		if d := get(t, "S:bo", wire.DBRCtrlEnum, 1); d.Value.Enums[0] != 0 || !slices.Equal(d.Meta.EnumStrings, []string{"Off", "On"}) {
			t.Errorf("S:bo after put \"Off\": %+v", d)
		}
		put(t, "S:cwf", wire.Value{Type: wire.DBRChar, Chars: []byte("hello\x00")})
		if d := get(t, "S:cwf", wire.DBRChar, 0); string(d.Value.Chars) != "hello\x00" {
			t.Errorf("S:cwf after put: %q", d.Value.Chars)
		}
		// More elements than the channel has: refused by the client.
		err = chans["S:ao"].Put(ctx, wire.Value{Type: wire.DBRDouble, Doubles: []float64{1, 2}})
		if !errors.Is(err, wire.ECABadCount) {
			t.Errorf("put of 2 elements to a scalar: %v", err)
		}
	})

	t.Run("PutCompletion", func(t *testing.T) {
		// S:delay (calcout, ODLY 0.5) completes its processing 0.5 s after
		// a write to A: Put returns only then, PutNoWait at once.
		ch := chans["S:delay.A"]
		start := time.Now()
		if err := ch.Put(ctx, wire.Value{Type: wire.DBRDouble, Doubles: []float64{5}}); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took < 400*time.Millisecond {
			t.Errorf("Put of an asynchronous record returned after %v, before the record completed (ODLY 0.5 s)", took)
		}
		start = time.Now()
		if err := ch.PutNoWait(ctx, wire.Value{Type: wire.DBRDouble, Doubles: []float64{6}}); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took > 300*time.Millisecond {
			t.Errorf("PutNoWait took %v", took)
		}
		// A second Put waits for the processing that PutNoWait started, then
		// for its own.
		if err := ch.Put(ctx, wire.Value{Type: wire.DBRDouble, Doubles: []float64{7}}); err != nil {
			t.Fatal(err)
		}
		if d := get(t, "S:delay.A", wire.DBRDouble, 1); d.Value.Doubles[0] != 7 {
			t.Errorf("S:delay.A = %v", d.Value)
		}
	})

	t.Run("PutNoWait", func(t *testing.T) {
		ch := chans["S:ao"]
		if err := ch.PutNoWait(ctx, wire.Value{Type: wire.DBRDouble, Doubles: []float64{1.5}}); err != nil {
			t.Fatal(err)
		}
		// Requests on one circuit are handled in order: the read sees the write.
		if d := get(t, "S:ao", wire.DBRDouble, 1); d.Value.Doubles[0] != 1.5 {
			t.Errorf("S:ao after PutNoWait 1.5: %v", d.Value)
		}
		if err := chans["S:lo"].PutNoWait(ctx, wire.Value{Type: wire.DBRDouble, Doubles: []float64{-3.7}}); err != nil {
			t.Fatal(err)
		}
		if d := get(t, "S:lo", wire.DBRLong, 1); d.Value.Longs[0] != -3 {
			t.Errorf("S:lo after PutNoWait -3.7: %v", d.Value)
		}
		// A failed plain write is reported later, to OnError.
		ev := evs["S:mbbo"]
		if err := chans["S:mbbo"].PutNoWait(ctx, wire.Value{Type: wire.DBRString, Strings: []string{"bogus"}}); err != nil {
			t.Fatal(err)
		}
		ev.wait(t, 10*time.Second, "the failed PutNoWait on OnError", func() bool { return len(ev.errs) > 0 })
		ev.mu.Lock()
		err := ev.errs[0]
		ev.mu.Unlock()
		if !errors.Is(err, wire.ECAPutFail) {
			t.Errorf("OnError got %v; want ECA_PUTFAIL", err)
		}
	})

	t.Run("CounterMonitor", func(t *testing.T) {
		ev := newIOCEvents()
		sub, err := chans["S:cnt"].Subscribe(SubscribeOptions{Type: wire.DBRTimeDouble, Native: true}, ev.onUpdate)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Cancel()
		ev.wait(t, 10*time.Second, "6 counter updates", func() bool { return len(ev.updates) >= 6 })
		_, ups := ev.snapshot()
		for i, u := range ups {
			if u.err != nil || len(u.vals) != 1 || u.stamp.IsZero() {
				t.Fatalf("update %d: %+v", i, u)
			}
			if i == 0 {
				continue
			}
			if u.vals[0] != ups[i-1].vals[0]+1 {
				t.Errorf("update %d: %v after %v; want consecutive values", i, u.vals[0], ups[i-1].vals[0])
			}
			if !ups[i-1].stamp.Time().Before(u.stamp.Time()) {
				t.Errorf("update %d: stamp %v not after %v", i, u.stamp.Time(), ups[i-1].stamp.Time())
			}
		}
	})

	t.Run("Masks", func(t *testing.T) {
		ch := chans["S:ao"]
		put(t, "S:ao", wire.Value{Type: wire.DBRDouble, Doubles: []float64{3.25}})
		subscribe := func(mask uint16) *iocEvents {
			ev := newIOCEvents()
			sub, err := ch.Subscribe(SubscribeOptions{Type: wire.DBRTimeDouble, Mask: mask}, ev.onUpdate)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(sub.Cancel)
			ev.wait(t, 10*time.Second, "the first update", func() bool { return len(ev.updates) == 1 })
			return ev
		}
		alarm, value, log := subscribe(wire.DBEAlarm), subscribe(wire.DBEValue), subscribe(wire.DBELog)
		for _, v := range []float64{10, 85, 86, 10} {
			put(t, "S:ao", wire.Value{Type: wire.DBRDouble, Doubles: []float64{v}})
		}
		type step struct {
			v    float64
			stat wire.AlarmStatus
			sevr wire.AlarmSeverity
		}
		check := func(name string, ev *iocEvents, want []step) {
			t.Helper()
			ev.wait(t, 10*time.Second, name+" updates", func() bool { return len(ev.updates) >= len(want) })
			// Updates arrive in order: every update from a later put would
			// have arrived before the last expected one.
			time.Sleep(100 * time.Millisecond)
			_, ups := ev.snapshot()
			var got []step
			for _, u := range ups {
				if u.err != nil || len(u.vals) != 1 {
					t.Errorf("%s: update %+v", name, u)
					return
				}
				got = append(got, step{u.vals[0], u.status, u.severity})
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s monitor: %v; want %v", name, got, want)
			}
		}
		none, high := wire.StatNoAlarm, wire.StatHigh
		check("DBE_ALARM", alarm, []step{{3.25, none, wire.SevNoAlarm}, {85, high, wire.SevMinor}, {10, none, wire.SevNoAlarm}})
		check("DBE_VALUE", value, []step{{3.25, none, wire.SevNoAlarm}, {10, none, wire.SevNoAlarm},
			{85, high, wire.SevMinor}, {86, high, wire.SevMinor}, {10, none, wire.SevNoAlarm}})
		// ADEL 5: 86 is within the archive deadband of 85.
		check("DBE_LOG", log, []step{{3.25, none, wire.SevNoAlarm}, {10, none, wire.SevNoAlarm},
			{85, high, wire.SevMinor}, {10, none, wire.SevNoAlarm}})

		// DBE_PROPERTY: a change of EGU.
		prop := newIOCEvents()
		sub, err := ch.Subscribe(SubscribeOptions{Type: wire.DBRCtrlDouble, Mask: wire.DBEProperty}, prop.onUpdate)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Cancel()
		prop.wait(t, 10*time.Second, "the first property update", func() bool { return len(prop.updates) == 1 })
		put(t, "S:ao", wire.Value{Type: wire.DBRDouble, Doubles: []float64{20}}) // no property event
		put(t, "S:ao.EGU", wire.Value{Type: wire.DBRString, Strings: []string{"cm"}})
		prop.wait(t, 10*time.Second, "a property update", func() bool { return len(prop.updates) >= 2 })
		time.Sleep(100 * time.Millisecond)
		_, ups := prop.snapshot()
		if len(ups) != 2 || ups[0].units != "mm" || ups[1].units != "cm" || ups[1].vals[0] != 20 {
			t.Errorf("DBE_PROPERTY monitor: %+v", ups)
		}
	})

	t.Run("ArrayMonitor", func(t *testing.T) {
		ch := chans["S:dwf"]
		put(t, "S:dwf", wire.Value{Type: wire.DBRDouble, Doubles: []float64{4, 5, 6, 7}})
		// Count 0: each update has the current length; count 5: always 5.
		var0, fixed := newIOCEvents(), newIOCEvents()
		for _, s := range []struct {
			ev    *iocEvents
			count int
		}{{var0, 0}, {fixed, 5}} {
			sub, err := ch.Subscribe(SubscribeOptions{Type: wire.DBRTimeDouble, Native: true, Count: s.count}, s.ev.onUpdate)
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Cancel()
			s.ev.wait(t, 10*time.Second, "the first array update", func() bool { return len(s.ev.updates) == 1 })
		}
		full := make([]float64, 100)
		for i := range full {
			full[i] = float64(i) / 2
		}
		put(t, "S:dwf", wire.Value{Type: wire.DBRDouble, Doubles: []float64{9}})
		put(t, "S:dwf", wire.Value{Type: wire.DBRDouble, Doubles: full})
		put(t, "S:dwf", wire.Value{Type: wire.DBRShort, Shorts: []int16{1, 2}})
		want := map[*iocEvents][][]float64{
			var0:  {{4, 5, 6, 7}, {9}, full, {1, 2}},
			fixed: {{4, 5, 6, 7, 0}, {9, 0, 0, 0, 0}, full[:5], {1, 2, 0, 0, 0}},
		}
		for ev, w := range want {
			ev.wait(t, 10*time.Second, "4 array updates", func() bool { return len(ev.updates) >= len(w) })
			_, ups := ev.snapshot()
			if len(ups) != len(w) {
				t.Errorf("%d array updates, want %d", len(ups), len(w))
				continue
			}
			for i, u := range ups {
				if !slices.Equal(u.vals, w[i]) {
					t.Errorf("array update %d: %v, want %v", i, u.vals, w[i])
				}
			}
		}
	})

	t.Run("EmptyArray", func(t *testing.T) {
		// S:ewf was never written: it has no elements.
		ch := chans["S:ewf"]
		if d := get(t, "S:ewf", wire.DBRTimeLong, 0); d.Value.Len() != 0 || d.Value.Type != wire.DBRLong {
			t.Errorf("count-0 get of an empty array: %+v", d)
		}
		if d := get(t, "S:ewf", wire.DBRLong, 0); d.Value.Len() != 0 {
			t.Errorf("count-0 plain get of an empty array: %+v", d)
		}
		if d := get(t, "S:ewf", wire.DBRLong, 8); !slices.Equal(d.Value.Longs, make([]int32, 8)) {
			t.Errorf("full get of an empty array: %+v", d)
		}
		ev := newIOCEvents()
		sub, err := ch.Subscribe(SubscribeOptions{Type: wire.DBRTimeLong, Count: 0}, ev.onUpdate)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Cancel()
		ev.wait(t, 10*time.Second, "the first update of an empty array", func() bool { return len(ev.updates) == 1 })
		put(t, "S:ewf", wire.Value{Type: wire.DBRLong, Longs: []int32{8, 9}})
		ev.wait(t, 10*time.Second, "the second update", func() bool { return len(ev.updates) == 2 })
		if _, ups := ev.snapshot(); len(ups[0].vals) != 0 || ups[0].err != nil || !slices.Equal(ups[1].vals, []float64{8, 9}) {
			t.Errorf("updates of an array that was empty: %+v", ups)
		}
	})

	t.Run("UnresponsiveIOC", func(t *testing.T) {
		// A second client with short timeouts: an idle circuit is probed
		// with echoes, which rsrv answers; a frozen IOC leaves them
		// unanswered, and the channel disconnects until the IOC thaws.
		c2, err := New(Config{ServerPort: ioc.Port(), RepeaterPort: ioc.BeaconPort(),
			AddrList:    []netip.AddrPort{netip.AddrPortFrom(Loopback, port)},
			ConnTimeout: 500 * time.Millisecond, EchoTimeout: time.Second, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		if err := c2.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		defer c2.Close()
		ev := newIOCEvents()
		ch, err := c2.Channel("S:ao", ChannelOptions{OnConnection: ev.onConn})
		if err != nil {
			t.Fatal(err)
		}
		if err := ch.WaitConnected(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second) // at least one echo probe
		if cs, _ := ev.snapshot(); len(cs) != 1 || ch.State() != Connected {
			t.Fatalf("idle circuit: connection events %v", cs)
		}
		proc := ioc.Proc()
		if err := proc.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		frozen := time.Now()
		thawed := false
		thaw := func() {
			if !thawed {
				thawed = true
				if err := proc.Signal(syscall.SIGCONT); err != nil {
					t.Error(err)
				}
			}
		}
		defer thaw()
		ev.wait(t, 10*time.Second, "disconnected from the frozen IOC", func() bool {
			return len(ev.conns) == 2 && ev.conns[1].State == Disconnected
		})
		cs, _ := ev.snapshot()
		lost := time.Since(frozen)
		if lost > 5*time.Second {
			t.Errorf("the frozen IOC was noticed after %v", lost)
		}
		if !errors.Is(cs[1].Err, wire.ECAUnrespTmo) {
			t.Errorf("disconnection reason %v; want ECA_UNRESPTMO", cs[1].Err)
		}
		thaw()
		thawedAt := time.Now()
		ev.wait(t, 20*time.Second, "connected again after the IOC thawed", func() bool {
			return len(ev.conns) == 3 && ev.conns[2].State == Connected
		})
		t.Logf("frozen IOC: Disconnected after %v (ConnTimeout 0.5 s + EchoTimeout 1 s); connected again %v after SIGCONT",
			lost.Round(time.Millisecond), time.Since(thawedAt).Round(time.Millisecond))
		if d := get(t, "S:ao", wire.DBRDouble, 1); d == nil {
			t.Error("no value after the thaw")
		}
		if st := chans["S:ao"].State(); st != Connected {
			t.Errorf("the first client (ConnTimeout 30 s) is %v", st)
		}
	})

	t.Run("Errors", func(t *testing.T) {
		// A monitor in a type the IOC cannot convert to: the update carries
		// the IOC's failure status and no value.
		ev := newIOCEvents()
		sub, err := chans["S:so"].Subscribe(SubscribeOptions{Type: wire.DBRTimeDouble}, ev.onUpdate)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Cancel()
		ev.wait(t, 10*time.Second, "the failed monitor update", func() bool { return len(ev.updates) >= 1 })
		if _, ups := ev.snapshot(); !errors.Is(ups[0].err, wire.ECAGetFail) || ups[0].vals != nil {
			t.Errorf("monitor of text as a double: %+v; want ECA_GETFAIL", ups[0])
		}
		// An unknown name stays unresolved.
		nope, err := c.Channel("S:nope", ChannelOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer nope.Close()
		short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancelShort()
		if err := nope.WaitConnected(short); !errors.Is(err, context.DeadlineExceeded) || nope.State() != Searching {
			t.Errorf("unknown PV: %v, %v", err, nope.State())
		}
		// A second channel to the same PV is independent of the first.
		dup, err := c.Channel("S:ao", ChannelOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want := get(t, "S:ao", wire.DBRDouble, 1).Value.Doubles[0]
		if d, err := dup.Get(ctx, wire.DBRDouble, 1); err != nil || d.Value.Doubles[0] != want {
			t.Errorf("get on a second channel to S:ao: %v, %v; want %v", d, err, want)
		}
		dup.Close()
		if d := get(t, "S:ao", wire.DBRDouble, 1); d.Value.Doubles[0] != want {
			t.Errorf("S:ao after closing a second channel to it: %v", d.Value)
		}
		if _, err := dup.Get(ctx, wire.DBRDouble, 1); !errors.Is(err, ErrClosed) {
			t.Errorf("get on a closed channel: %v", err)
		}
	})

	t.Run("NameServer", func(t *testing.T) {
		// Names resolved over TCP only (EPICS_CA_NAME_SERVERS): rsrv
		// answers searches on a circuit too.
		c3, err := New(Config{ServerPort: ioc.Port(), RepeaterPort: ioc.BeaconPort(),
			NameServers: []netip.AddrPort{netip.AddrPortFrom(Loopback, port)}, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		if err := c3.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		defer c3.Close()
		if len(c3.dests) != 0 {
			t.Fatalf("UDP destinations %v with only a name server configured", c3.dests)
		}
		ch, err := c3.Channel("S:lo", ChannelOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if d, err := ch.Get(ctx, wire.DBRCtrlLong, 1); err != nil || d.Meta.Units != "cnt" {
			t.Fatalf("get through a name server: %+v, %v", d, err)
		}
		if info := ch.Info(); info.Server != fmt.Sprintf("127.0.0.1:%d", port) {
			t.Errorf("connected to %s", info.Server)
		}
	})

	t.Run("IdleCircuitCloses", func(t *testing.T) {
		c3, err := New(Config{ServerPort: ioc.Port(), RepeaterPort: ioc.BeaconPort(),
			AddrList: []netip.AddrPort{netip.AddrPortFrom(Loopback, port)}, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		if err := c3.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		defer c3.Close()
		circuits := func() int {
			c3.mu.Lock()
			defer c3.mu.Unlock()
			return len(c3.circuits)
		}
		for range 2 {
			ch, err := c3.Channel("S:ao", ChannelOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ch.Get(ctx, wire.DBRDouble, 1); err != nil {
				t.Fatal(err)
			}
			if n := circuits(); n != 1 {
				t.Fatalf("%d circuits", n)
			}
			ch.Close()
			deadline := time.Now().Add(5 * time.Second)
			for circuits() != 0 {
				if time.Now().After(deadline) {
					t.Fatal("the circuit stayed open after its last channel closed")
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
	})

	t.Run("StopAndRestart", func(t *testing.T) {
		cnt, ao := newIOCEvents(), newIOCEvents()
		if _, err := chans["S:cnt"].Subscribe(SubscribeOptions{Type: wire.DBRTimeDouble, Native: true}, cnt.onUpdate); err != nil {
			t.Fatal(err)
		}
		if _, err := chans["S:ao"].Subscribe(SubscribeOptions{Type: wire.DBRCtrlDouble, Native: true}, ao.onUpdate); err != nil {
			t.Fatal(err)
		}
		put(t, "S:ao", wire.Value{Type: wire.DBRDouble, Doubles: []float64{42}})
		ao.wait(t, 10*time.Second, "S:ao at 42", func() bool {
			return len(ao.updates) > 0 && ao.updates[len(ao.updates)-1].vals[0] == 42
		})
		cnt.wait(t, 10*time.Second, "counter updates", func() bool { return len(cnt.updates) >= 2 })

		conns := evs["S:cnt"]
		stopAt := time.Now()
		ioc.Stop()
		killed := time.Now()
		for _, name := range []string{"S:cnt", "S:ao"} {
			ev := evs[name]
			ev.wait(t, 10*time.Second, name+" disconnected", func() bool {
				return len(ev.conns) == 2 && ev.conns[1].State == Disconnected
			})
		}
		conns.mu.Lock()
		disconnectedAt := conns.connAt[1]
		conns.mu.Unlock()
		t.Logf("the channel reported Disconnected %v after Stop was called (Stop, kill and wait, took %v)",
			disconnectedAt.Sub(stopAt).Round(time.Millisecond), killed.Sub(stopAt).Round(time.Millisecond))
		if d := disconnectedAt.Sub(stopAt); d > 2*time.Second {
			t.Errorf("Disconnected came %v after the IOC died", d)
		}
		if st := chans["S:cnt"].State(); st != Disconnected {
			t.Errorf("state %v after the IOC died", st)
		}
		short, cancelShort := context.WithTimeout(ctx, 200*time.Millisecond)
		_, err := chans["S:ao"].Get(short, wire.DBRDouble, 1)
		cancelShort()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("get while disconnected: %v", err)
		}
		// A monitor started and a write issued while disconnected take
		// effect on the restarted IOC.
		lo := newIOCEvents()
		loSub, err := chans["S:lo"].Subscribe(SubscribeOptions{Type: wire.DBRTimeLong}, lo.onUpdate)
		if err != nil {
			t.Fatal(err)
		}
		defer loSub.Cancel()
		putDone := make(chan error, 1)
		go func() { putDone <- chans["S:bo"].Put(ctx, wire.Value{Type: wire.DBRString, Strings: []string{"Off"}}) }()
		_, before := cnt.snapshot()
		time.Sleep(500 * time.Millisecond) // let the search back off a little
		if _, ups := lo.snapshot(); len(ups) != 0 {
			t.Errorf("updates of a monitor started while disconnected: %+v", ups)
		}

		restartAt := time.Now()
		if err := ioc.Restart(); err != nil {
			t.Fatal(err)
		}
		readyAt := time.Now()
		conns.wait(t, 20*time.Second, "S:cnt connected again", func() bool {
			return len(conns.conns) == 3 && conns.conns[2].State == Connected
		})
		conns.mu.Lock()
		connectedAt := conns.connAt[2]
		conns.mu.Unlock()
		// Fresh values without any call: the counter goes on from the new
		// IOC's value, and S:ao is back at its database value.
		cnt.wait(t, 20*time.Second, "3 counter updates after the reconnection", func() bool {
			n := 0
			for _, u := range cnt.updates[len(before):] {
				if u.at.After(connectedAt) {
					n++
				}
			}
			return n >= 3
		})
		ao.wait(t, 20*time.Second, "S:ao back at 3.25", func() bool {
			u := ao.updates[len(ao.updates)-1]
			return u.at.After(connectedAt) && u.vals[0] == 3.25 && u.units == "mm"
		})
		_, after := cnt.snapshot()
		firstFresh := after[len(before)]
		t.Logf("reconnected %v after the restarted IOC was ready (%v after Restart was called; IOC start %v); "+
			"first fresh counter value %v %v after ready",
			connectedAt.Sub(readyAt).Round(time.Millisecond), connectedAt.Sub(restartAt).Round(time.Millisecond),
			readyAt.Sub(restartAt).Round(time.Millisecond), firstFresh.vals, firstFresh.at.Sub(readyAt).Round(time.Millisecond))
		if d := connectedAt.Sub(readyAt); d > 10*time.Second {
			t.Errorf("reconnection took %v", d)
		}
		fresh := after[len(before):]
		for i := 1; i < len(fresh); i++ {
			if fresh[i].vals[0] != fresh[i-1].vals[0]+1 {
				t.Errorf("counter after the restart: %v then %v", fresh[i-1].vals, fresh[i].vals)
			}
		}
		if !firstFresh.stamp.Time().After(killed.Add(-time.Second)) {
			t.Errorf("first update after the restart has an old stamp %v", firstFresh.stamp.Time())
		}
		for _, name := range []string{"S:cnt", "S:ao"} {
			cs, _ := evs[name].snapshot()
			var states []State
			for _, c := range cs {
				states = append(states, c.State)
			}
			if !slices.Equal(states, []State{Connected, Disconnected, Connected}) {
				t.Errorf("%s connection events %v", name, cs)
			} else if cs[2] != cs[0] || cs[1].Err == nil || cs[1].Server != "" {
				t.Errorf("%s connection events %+v: want the same connection again, and a reason", name, cs)
			}
		}
		if d := get(t, "S:ao", wire.DBRDouble, 1); d.Value.Doubles[0] != 3.25 {
			t.Errorf("get after the restart: %v", d.Value)
		}
		select {
		case err := <-putDone:
			if err != nil {
				t.Errorf("put issued while disconnected: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("put issued while disconnected did not complete after the restart")
		}
		if d := get(t, "S:bo", wire.DBREnum, 1); d.Value.Enums[0] != 0 {
			t.Errorf("S:bo after the put issued while disconnected: %v", d.Value)
		}
		lo.wait(t, 10*time.Second, "the monitor started while disconnected", func() bool { return len(lo.updates) >= 1 })
		if _, ups := lo.snapshot(); ups[0].vals[0] != 21 || ups[0].stamp.IsZero() {
			t.Errorf("first update of the monitor started while disconnected: %+v", ups[0])
		}
		put(t, "S:ao", wire.Value{Type: wire.DBRDouble, Doubles: []float64{5}})
		ao.wait(t, 10*time.Second, "S:ao at 5 after the restart", func() bool {
			return ao.updates[len(ao.updates)-1].vals[0] == 5
		})
	})
}

// checkIOCGet checks a read of pv in DBR type typ against the database.
func checkIOCGet(t *testing.T, pv iocPV, typ wire.DBRType, d *wire.DBR, err error, since time.Time) {
	t.Helper()
	fail := func(format string, a ...any) {
		t.Errorf("get %s as %v: %s", pv.name, typ, fmt.Sprintf(format, a...))
	}
	fam, base := typ.Family(), typ.Base()
	isString := base == wire.DBRString
	if pv.num == nil && !isString {
		// rsrv cannot convert the text to a number.
		if !errors.Is(err, wire.ECAGetFail) {
			fail("%v, %+v; want ECA_GETFAIL", err, d)
		}
		return
	}
	if err != nil {
		fail("%v", err)
		return
	}
	if d.Type != typ || d.Value.Type != base {
		fail("type %v, value type %v", d.Type, d.Value.Type)
	}
	// Every read has the count asked for, DBR_CLASS_NAME too: rsrv sends
	// the name followed by count-1 more strings, some of them stale bytes of
	// its buffer, which libca hands to its user as they are.
	if d.Value.Len() != pv.count {
		fail("%d elements, want %d", d.Value.Len(), pv.count)
		return
	}
	if fam != wire.FamilyPlain && fam != wire.FamilyClassName {
		if d.Status != wire.StatNoAlarm || d.Severity != wire.SevNoAlarm {
			fail("alarm %v/%v", d.Status, d.Severity)
		}
	}
	if fam == wire.FamilyTime {
		if st := d.Stamp.Time(); st.Before(since.Add(-time.Hour)) || st.After(time.Now().Add(time.Minute)) {
			fail("stamp %v", st)
		}
	}
	if fam == wire.FamilyStsAck && (d.AckT != 1 || d.AckS != uint16(wire.SevNoAlarm)) {
		fail("ackt %d, acks %d", d.AckT, d.AckS)
	}
	if (fam == wire.FamilyGr || fam == wire.FamilyCtrl) && !isString {
		if base == wire.DBREnum {
			if !slices.Equal(d.Meta.EnumStrings, pv.enums) && (len(pv.enums) > 0 || len(d.Meta.EnumStrings) > 0) {
				fail("enum strings %q, want %q", d.Meta.EnumStrings, pv.enums)
			}
		} else {
			if d.Meta.Units != pv.units {
				fail("units %q, want %q", d.Meta.Units, pv.units)
			}
			wantPrec := int16(0)
			if base == wire.DBRFloat || base == wire.DBRDouble {
				wantPrec = pv.prec
			}
			if d.Meta.Precision != wantPrec {
				fail("precision %d, want %d", d.Meta.Precision, wantPrec)
			}
			if pv.limits != nil {
				want := *pv.limits
				if fam == wire.FamilyGr {
					want.UpperCtrl, want.LowerCtrl = 0, 0
				}
				for _, l := range []*float64{&want.UpperDisp, &want.LowerDisp, &want.UpperAlarm, &want.UpperWarning,
					&want.LowerWarning, &want.LowerAlarm, &want.UpperCtrl, &want.LowerCtrl} {
					*l = iocCast(base, *l)
				}
				if d.Meta.Limits != want {
					fail("limits %+v, want %+v", d.Meta.Limits, want)
				}
			}
		}
	}
	if typ == wire.DBRClassName {
		if d.Meta.ClassName != pv.class || d.Value.Strings[0] != pv.class {
			fail("class %q (value %q), want %q", d.Meta.ClassName, d.Value.Strings, pv.class)
		}
		return
	}
	if isString {
		if !slices.Equal(d.Value.Strings, pv.str) {
			fail("strings %q, want %q", d.Value.Strings, pv.str)
		}
		return
	}
	got := iocNumbers(d.Value)
	for i, w := range pv.num {
		if w = iocCast(base, w); got[i] != w && !(math.IsNaN(w) && math.IsNaN(got[i])) {
			fail("value[%d] = %v, want %v", i, got[i], w)
			return
		}
	}
}

// TestIntegrationEmptyArrayMonitorAgainstSoftIoc checks, against rsrv, that a
// count-0 monitor in a plain type of an empty array gets its first update: rsrv
// sends it without payload, as a cancel confirmation looks.
func TestIntegrationEmptyArrayMonitorAgainstSoftIoc(t *testing.T) {
	ioc := catest.SoftIoc(t, `record(waveform, "R:ewf") { field(FTVL, "LONG") field(NELM, "8") }`)
	c, err := New(Config{ServerPort: ioc.Port(), RepeaterPort: ioc.BeaconPort(), NoRepeater: true,
		AddrList: []netip.AddrPort{netip.AddrPortFrom(Loopback, uint16(ioc.Port()))}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ch, _ := c.Channel("R:ewf", ChannelOptions{})
	got := make(chan int, 10)
	if _, err := ch.Subscribe(SubscribeOptions{Type: wire.DBRLong}, func(u *Update) { got <- u.DBR.Value.Len() }); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-got:
		if n != 0 {
			t.Errorf("first update has %d elements", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no first update for a count-0 DBR_LONG monitor of an empty array")
	}
}
