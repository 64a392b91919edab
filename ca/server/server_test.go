package server

import (
	"context"
	"log/slog"
	"math"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pvhub/pvhub/ca/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testLogger sends log lines to the test's log and counts warnings.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// capLogger records log lines for assertions.
type capLogger struct {
	mu    sync.Mutex
	lines []string
}

func (c *capLogger) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lines = append(c.lines, string(p))
	return len(p), nil
}

func (c *capLogger) count(substr string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, l := range c.lines {
		if strings.Contains(l, substr) {
			n++
		}
	}
	return n
}

func aoPV(t testing.TB) *PV {
	return mustPV(t, "T:ao", PVOptions{Type: wire.DBRDouble, Count: 1, Value: doubles(1.5),
		Stamp: wire.Timestamp{Sec: 1000, Nsec: 5},
		Meta: wire.Metadata{Units: "V", Precision: 3, Limits: wire.Limits{UpperDisp: 100, LowerDisp: -100,
			UpperAlarm: 90, UpperWarning: 50, LowerWarning: math.NaN(), LowerAlarm: math.NaN(), UpperCtrl: 100, LowerCtrl: -100}}})
}

func TestUDPSearch(t *testing.T) {
	srv, _ := startServer(t, Config{}, aoPV(t))
	conn, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: srv.UDPPort()})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ask := func(msgs ...wire.Message) []wire.Frame {
		t.Helper()
		var b []byte
		for _, m := range msgs {
			b = m.AppendTo(b)
		}
		if _, err := conn.Write(b); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		buf := make([]byte, wire.MaxUDPRecv)
		n, err := conn.Read(buf)
		if err != nil {
			return nil
		}
		dec := wire.NewDecoder(0)
		dec.Feed(buf[:n])
		var fs []wire.Frame
		for {
			f, err := dec.Next()
			if err != nil {
				return fs
			}
			fs = append(fs, f)
		}
	}
	version := &wire.Version{DataType: 1, Minor: 13, Seq: 7}

	// A known name among unknown ones: one reply, after a VERSION echoing the sequence.
	fs := ask(version, &wire.SearchRequest{Reply: wire.SearchDontReply, Minor: 13, SearchID: 1, Name: "nope"},
		&wire.SearchRequest{Reply: wire.SearchDontReply, Minor: 13, SearchID: 2, Name: "T:ao"})
	if len(fs) != 2 {
		t.Fatalf("got %d messages, want VERSION + one reply", len(fs))
	}
	if h := fs[0].Header; h.Command != wire.CmdVersion || h.P1 != 7 || h.Count != 13 || h.DataType != 1 {
		t.Errorf("reply VERSION %+v", h)
	}
	want := (&wire.SearchResponse{Port: uint16(srv.TCPPort()), IP: wire.BeaconIPUnknown, SearchID: 2, Minor: 13}).AppendTo(nil)
	got := wire.AppendHeader(nil, fs[1].Header)
	got = append(got, fs[1].Payload...)
	if string(got) != string(want) {
		t.Errorf("search reply % x, want % x", got, want)
	}
	// Unknown names get no reply at all.
	if fs := ask(version, &wire.SearchRequest{Reply: wire.SearchDontReply, Minor: 13, SearchID: 3, Name: "nope"}); fs != nil {
		t.Errorf("reply to an unknown name: %+v", fs)
	}
	// A datagram that does not start with VERSION is ignored, as an IOC ignores it.
	if fs := ask(&wire.SearchRequest{Reply: wire.SearchDontReply, Minor: 13, SearchID: 4, Name: "T:ao"}); fs != nil {
		t.Errorf("reply to a search without VERSION: %+v", fs)
	}
	// Garbage is ignored and the responder carries on.
	if _, err := conn.Write([]byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if fs := ask(version, &wire.SearchRequest{Minor: 13, SearchID: 5, Name: "T:ao"}); len(fs) != 2 {
		t.Errorf("no reply after garbage: %+v", fs)
	}
}

// TestUDPSearchManyNames checks that replies to a datagram full of searches are
// split into datagrams of at most 1024 bytes, each led by VERSION.
func TestUDPSearchManyNames(t *testing.T) {
	var pvs []*PV
	for i := range 100 {
		pvs = append(pvs, mustPV(t, "M:"+string(rune('A'+i/26))+string(rune('a'+i%26)), PVOptions{Type: wire.DBRLong, Count: 1}))
	}
	srv, _ := startServer(t, Config{}, pvs...)
	conn, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: srv.UDPPort()})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	b := (&wire.Version{DataType: 1, Minor: 13, Seq: 1}).AppendTo(nil)
	for i, pv := range pvs[:40] {
		b = (&wire.SearchRequest{Minor: 13, SearchID: uint32(i), Name: pv.Name()}).AppendTo(b)
	}
	if _, err := conn.Write(b); err != nil {
		t.Fatal(err)
	}
	seen := map[uint32]bool{}
	buf := make([]byte, wire.MaxUDPRecv)
	for len(seen) < 40 {
		_ = conn.SetReadDeadline(time.Now().Add(time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("got %d of 40 replies: %v", len(seen), err)
		}
		if n > wire.MaxUDPSend {
			t.Errorf("reply datagram of %d bytes", n)
		}
		dec := wire.NewDecoder(0)
		dec.Feed(buf[:n])
		first := true
		for {
			f, err := dec.Next()
			if err != nil {
				break
			}
			if first && f.Header.Command != wire.CmdVersion {
				t.Fatalf("datagram starts with %s", f.Header.Command)
			}
			if !first {
				seen[f.Header.P2] = true
			}
			first = false
		}
	}
}

func TestCircuitBasics(t *testing.T) {
	srv, _ := startServer(t, Config{}, aoPV(t))
	c := dial(t, srv)
	c.hello()
	sid, h := c.create(1, "T:ao")
	if wire.DBRType(h.DataType) != wire.DBRDouble || h.Count != 1 {
		t.Fatalf("create reply %+v", h)
	}
	// Unknown names fail with CREATE_CH_FAIL naming the CID.
	c.send(&wire.CreateChan{CID: 9, Minor: 13, Name: "nope"})
	if f := c.expect(wire.CmdCreateChFail); f.Header.P1 != 9 {
		t.Errorf("CREATE_CH_FAIL for cid %d", f.Header.P1)
	}
	// Echo and READ_SYNC come back.
	c.send(&wire.Echo{})
	c.expect(wire.CmdEcho)
	c.send(&wire.ReadSync{Header: wire.Header{Command: wire.CmdReadSync, P1: 3}})
	if f := c.expect(wire.CmdReadSync); f.Header.P1 != 3 {
		t.Errorf("READ_SYNC echo %+v", f.Header)
	}
	// A read in DBR_CTRL_DOUBLE carries everything.
	rh, d := c.read(sid, 1, wire.DBRCtrlDouble, 1)
	if wire.ECA(rh.P1) != wire.ECANormal || d.Value.Doubles[0] != 1.5 || d.Meta.Units != "V" || d.Meta.Precision != 3 ||
		d.Meta.Limits.UpperWarning != 50 || !math.IsNaN(d.Meta.Limits.LowerAlarm) || d.Meta.Limits.LowerCtrl != -100 {
		t.Errorf("CTRL_DOUBLE read %+v %+v", rh, d)
	}
	// Write then read on one circuit: the read sees the write.
	c.send(&wire.Write{DataType: wire.DBRString, Count: 1, SID: sid, ID: 1, Data: []byte("2.5\x00")},
		&wire.ReadNotify{DataType: wire.DBRDouble, Count: 1, SID: sid, IOID: 2})
	f := c.expect(wire.CmdReadNotify)
	var got wire.DBR
	if err := wire.DecodeDBR(&got, wire.DBRDouble, 1, f.Payload); err != nil || got.Value.Doubles[0] != 2.5 {
		t.Errorf("read after write: %v %v", got.Value.Doubles, err)
	}
	// WRITE_NOTIFY completes with ECA_NORMAL, and a bad value with ECA_PUTFAIL.
	c.send(&wire.WriteNotify{DataType: wire.DBRString, Count: 1, SID: sid, IOID: 3, Data: []byte("3.5\x00")})
	if f := c.expect(wire.CmdWriteNotify); wire.ECA(f.Header.P1) != wire.ECANormal || f.Header.P2 != 3 {
		t.Errorf("WRITE_NOTIFY reply %+v", f.Header)
	}
	c.send(&wire.WriteNotify{DataType: wire.DBRString, Count: 1, SID: sid, IOID: 4, Data: []byte("abc\x00")})
	if f := c.expect(wire.CmdWriteNotify); wire.ECA(f.Header.P1) != wire.ECAPutFail || f.Header.P2 != 4 {
		t.Errorf("bad WRITE_NOTIFY reply %+v", f.Header)
	}
	// A plain WRITE of a bad value gets CA_PROTO_ERROR naming the PV and the problem.
	c.send(&wire.Write{DataType: wire.DBRString, Count: 1, SID: sid, ID: 1, Data: []byte("abc\x00")})
	e, text := errorText(t, c.expect(wire.CmdError))
	if e.Status != wire.ECAPutFail || e.CID != 1 || e.Request.Command != wire.CmdWrite || !strings.Contains(text, `T:ao: cannot convert "abc"`) {
		t.Errorf("error for a bad write: %s (%+v)", text, e)
	}
	// CLEAR_CHANNEL is confirmed, and the SID is then unknown.
	c.send(&wire.ClearChannel{SID: sid, CID: 1})
	if f := c.expect(wire.CmdClearChannel); f.Header.P1 != sid || f.Header.P2 != 1 {
		t.Errorf("clear reply %+v", f.Header)
	}
	c.send(&wire.ReadNotify{DataType: wire.DBRDouble, Count: 1, SID: sid, IOID: 5})
	if e, text := errorText(t, c.expect(wire.CmdError)); e.Status != wire.ECABadChID {
		t.Errorf("read after clear: %s", text)
	}
}

// TestReadEveryType reads a PV of each native type in every readable DBR type
// and checks the payload against the codec's own encoding.
func TestReadEveryType(t *testing.T) {
	meta := wire.Metadata{Units: "mm", Precision: 2, EnumStrings: []string{"Zero", "One", "Two"}, ClassName: "test",
		Limits: wire.Limits{UpperDisp: 10, LowerDisp: -10, UpperAlarm: 9, UpperWarning: 8, LowerWarning: -8, LowerAlarm: -9, UpperCtrl: 10, LowerCtrl: -10}}
	vals := map[wire.DBRType]wire.Value{
		wire.DBRString: {Type: wire.DBRString, Strings: []string{"7"}},
		wire.DBRShort:  {Type: wire.DBRShort, Shorts: []int16{-7, 3}},
		wire.DBRFloat:  {Type: wire.DBRFloat, Floats: []float32{1.25, 2}},
		wire.DBREnum:   {Type: wire.DBREnum, Enums: []uint16{2}},
		wire.DBRChar:   {Type: wire.DBRChar, Chars: []byte("hi")},
		wire.DBRLong:   {Type: wire.DBRLong, Longs: []int32{123456, 7}},
		wire.DBRDouble: {Type: wire.DBRDouble, Doubles: []float64{2.5, -1}},
	}
	var pvs []*PV
	for typ, v := range vals {
		pvs = append(pvs, mustPV(t, "E:"+typ.String(), PVOptions{Type: typ, Count: 4, Value: v, Meta: meta, Alarm: Alarm{Status: wire.StatHigh, Severity: wire.SevMinor}}))
	}
	srv, table := startServer(t, Config{}, pvs...)
	c := dial(t, srv)
	c.hello()
	for typ := range vals {
		pv := table.Get("E:" + typ.String())
		sid, _ := c.create(uint32(typ)+1, pv.Name())
		for rt := wire.DBRType(0); rt <= wire.MaxDBRType; rt++ {
			if !rt.Readable() {
				continue
			}
			for _, count := range []uint32{0, 1, 4} {
				c.send(&wire.ReadNotify{DataType: rt, Count: count, SID: sid, IOID: 9})
				f := c.expect(wire.CmdReadNotify)
				st := pv.Snapshot()
				n := int(count)
				if count == 0 {
					n = st.Value.Len()
				}
				want, err := wire.AppendPaddedDBR(nil, rt, n, st)
				status := wire.ECANormal
				if err != nil {
					status = wire.ECAGetFail
					want = make([]byte, wire.Pad8(rt.Size(n)))
				}
				if wire.ECA(f.Header.P1) != status || f.Header.Count != uint32(n) || string(f.Payload) != string(want) {
					t.Errorf("%s read as %s count %d: status %d count %d payload % x, want status %d count %d % x",
						typ, rt, count, f.Header.P1, f.Header.Count, f.Payload, status, n, want)
				}
			}
		}
	}
	// A string PV that holds text which is not a number fails numeric reads.
	bad := mustPV(t, "E:text", PVOptions{Type: wire.DBRString, Count: 1, Value: wire.Value{Type: wire.DBRString, Strings: []string{"abc"}}})
	table.Add(bad)
	sid, _ := c.create(99, "E:text")
	if h, _ := c.read(sid, 10, wire.DBRDouble, 1); wire.ECA(h.P1) != wire.ECAGetFail {
		t.Errorf("numeric read of text: status %d", h.P1)
	}
	if _, d := c.read(sid, 11, wire.DBRTimeString, 1); d.Value.Strings[0] != "abc" {
		t.Errorf("string read of text: %q", d.Value.Strings)
	}
}

func TestMonitor(t *testing.T) {
	pv := aoPV(t)
	srv, _ := startServer(t, Config{}, pv)
	c := dial(t, srv)
	c.hello()
	sid, _ := c.create(1, "T:ao")
	c.send(&wire.EventAdd{DataType: wire.DBRTimeDouble, Count: 0, SID: sid, SubID: 5, Mask: wire.DBEValue | wire.DBEAlarm})
	next := func() *wire.DBR {
		t.Helper()
		f := c.expect(wire.CmdEventAdd)
		if wire.ECA(f.Header.P1) != wire.ECANormal || f.Header.P2 != 5 || f.Header.Count != 1 {
			t.Fatalf("update header %+v", f.Header)
		}
		d := &wire.DBR{}
		if err := wire.DecodeDBR(d, wire.DBRTimeDouble, 1, f.Payload); err != nil {
			t.Fatal(err)
		}
		return d
	}
	if d := next(); d.Value.Doubles[0] != 1.5 || d.Stamp != (wire.Timestamp{Sec: 1000, Nsec: 5}) {
		t.Errorf("first update %+v", d)
	}
	for i := range 5 {
		if err := pv.Post(doubles(float64(i)), Alarm{Status: wire.StatHigh, Severity: wire.SevMinor}, wire.Timestamp{Sec: 2000 + uint32(i)}); err != nil {
			t.Fatal(err)
		}
		if d := next(); d.Value.Doubles[0] != float64(i) || d.Severity != wire.SevMinor || d.Stamp.Sec != 2000+uint32(i) {
			t.Errorf("update %d: %+v", i, d)
		}
	}
	// A property change does not reach a VALUE|ALARM subscription.
	if err := pv.SetMeta(wire.Metadata{Units: "A"}); err != nil {
		t.Fatal(err)
	}
	c.quiet(100 * time.Millisecond)
	// An alarm-only subscription sees alarm changes only.
	c.send(&wire.EventAdd{DataType: wire.DBRStsDouble, Count: 1, SID: sid, SubID: 6, Mask: wire.DBEAlarm})
	if f := c.expect(wire.CmdEventAdd); f.Header.P2 != 6 {
		t.Fatalf("first update of the alarm subscription went to %d", f.Header.P2)
	}
	_ = pv.Post(doubles(10), Alarm{Status: wire.StatHigh, Severity: wire.SevMinor}, wire.Timestamp{})
	next()
	_ = pv.Post(doubles(11), NoAlarm, wire.Timestamp{})
	got := map[uint32]bool{}
	for range 2 {
		got[c.expect(wire.CmdEventAdd).Header.P2] = true
	}
	if !got[5] || !got[6] {
		t.Errorf("alarm change reached %v, want both subscriptions", got)
	}
	// Cancel: the confirmation is an EVENT_ADD without payload, then silence.
	c.send(&wire.EventCancel{DataType: wire.DBRTimeDouble, SID: sid, SubID: 5}, &wire.EventCancel{DataType: wire.DBRStsDouble, Count: 1, SID: sid, SubID: 6})
	for _, id := range []uint32{5, 6} {
		f := c.expect(wire.CmdEventAdd)
		if f.Header.PayloadSize != 0 || f.Header.P1 != sid || f.Header.P2 != id {
			t.Errorf("cancel confirmation %+v", f.Header)
		}
	}
	_ = pv.Post(doubles(12), Alarm{Status: wire.StatHiHi, Severity: wire.SevMajor}, wire.Timestamp{})
	c.quiet(100 * time.Millisecond)
}

// TestMonitorArrayCountZero checks that a count-0 subscription follows the
// current length of a variable-length array.
func TestMonitorArrayCountZero(t *testing.T) {
	pv := mustPV(t, "T:wf", PVOptions{Type: wire.DBRDouble, Count: 10})
	srv, _ := startServer(t, Config{}, pv)
	c := dial(t, srv)
	c.hello()
	sid, h := c.create(1, "T:wf")
	if h.Count != 10 {
		t.Fatalf("native count %d", h.Count)
	}
	c.send(&wire.EventAdd{DataType: wire.DBRTimeDouble, SID: sid, SubID: 1, Mask: wire.DBEValue})
	f := c.expect(wire.CmdEventAdd)
	d := &wire.DBR{}
	_ = wire.DecodeDBR(d, wire.DBRTimeDouble, int(f.Header.Count), f.Payload)
	if f.Header.Count != 0 || d.Severity != wire.SevInvalid || d.Status != wire.StatUDF {
		t.Errorf("first update of an empty PV: count %d %+v", f.Header.Count, d)
	}
	for _, n := range []int{3, 10, 1} {
		v := make([]float64, n)
		for i := range v {
			v[i] = float64(i + n)
		}
		_ = pv.Post(doubles(v...), NoAlarm, wire.Timestamp{})
		f := c.expect(wire.CmdEventAdd)
		if err := wire.DecodeDBR(d, wire.DBRTimeDouble, int(f.Header.Count), f.Payload); err != nil {
			t.Fatal(err)
		}
		if int(f.Header.Count) != n || d.Value.Doubles[n-1] != float64(2*n-1) {
			t.Errorf("update of %d elements: count %d values %v", n, f.Header.Count, d.Value.Doubles)
		}
	}
	// A fixed count gets zero-filled elements.
	_, rd := c.read(sid, 1, wire.DBRDouble, 4)
	if len(rd.Value.Doubles) != 4 || rd.Value.Doubles[0] != 1 || rd.Value.Doubles[3] != 0 {
		t.Errorf("read of 4 from 1: %v", rd.Value.Doubles)
	}
	if err := pv.Post(doubles(make([]float64, 11)...), NoAlarm, wire.Timestamp{}); err == nil {
		t.Error("post above the capacity accepted")
	}
}

// TestSlowClientKeepsLatest posts far more updates than a client that is not
// reading can take: the server's queue stays bounded, and when the client reads
// again it gets the last value.
func TestSlowClientKeepsLatest(t *testing.T) {
	pv := mustPV(t, "T:big", PVOptions{Type: wire.DBRDouble, Count: 2048, Value: doubles(make([]float64, 2048)...)})
	fast := mustPV(t, "T:fast", PVOptions{Type: wire.DBRLong, Count: 1})
	srv, _ := startServer(t, Config{}, pv, fast)
	slow := dial(t, srv)
	slow.hello()
	sid, _ := slow.create(1, "T:big")
	slow.send(&wire.EventAdd{DataType: wire.DBRDouble, Count: 2048, SID: sid, SubID: 1, Mask: wire.DBEValue})
	other := dial(t, srv)
	other.hello()
	osid, _ := other.create(1, "T:fast")
	other.send(&wire.EventAdd{DataType: wire.DBRLong, Count: 1, SID: osid, SubID: 1, Mask: wire.DBEValue})
	other.expect(wire.CmdEventAdd)

	v := make([]float64, 2048)
	const posts = 3000 // 16 KiB each: 48 MiB if nothing were dropped
	for i := 1; i <= posts; i++ {
		v[0] = float64(i)
		if err := pv.Post(doubles(v...), NoAlarm, wire.Timestamp{}); err != nil {
			t.Fatal(err)
		}
		if i%500 == 0 {
			// The other client is not held up by the slow one.
			_ = fast.Post(wire.Value{Type: wire.DBRLong, Longs: []int32{int32(i)}}, NoAlarm, wire.Timestamp{})
			f := other.expect(wire.CmdEventAdd)
			var d wire.DBR
			_ = wire.DecodeDBR(&d, wire.DBRLong, 1, f.Payload)
			if d.Value.Longs[0] != int32(i) {
				t.Fatalf("other client got %v, want %d", d.Value.Longs, i)
			}
		}
	}
	// Everything queued for the slow subscription is bounded by its queue.
	var queued int
	var dropped uint64
	var s *subscription
	for sub := range pv.subs {
		s = sub
	}
	s.circ.mu.Lock()
	queued, dropped = len(s.queue), s.dropped
	s.circ.mu.Unlock()
	if queued*2048*8 > subQueueBytes || dropped == 0 {
		t.Errorf("slow subscription: %d queued, %d dropped", queued, dropped)
	}
	// Drain: the last update carries the last value.
	var last float64
	for {
		f, err := slow.tryNext(500 * time.Millisecond)
		if err != nil {
			break
		}
		var d wire.DBR
		if err := wire.DecodeDBR(&d, wire.DBRDouble, 2048, f.Payload); err != nil {
			t.Fatal(err)
		}
		last = d.Value.Doubles[0]
	}
	if last != posts {
		t.Errorf("last value seen by the slow client %v, want %d", last, posts)
	}
}

// TestEventsOffOn checks flow control: while events are off nothing is sent and
// only the latest value is kept; EVENTS_ON delivers it.
func TestEventsOffOn(t *testing.T) {
	pv := aoPV(t)
	srv, _ := startServer(t, Config{}, pv)
	c := dial(t, srv)
	c.hello()
	sid, _ := c.create(1, "T:ao")
	c.send(&wire.EventAdd{DataType: wire.DBRDouble, Count: 1, SID: sid, SubID: 1, Mask: wire.DBEValue})
	c.expect(wire.CmdEventAdd)
	c.send(&wire.EventsOff{}, &wire.Echo{})
	c.expect(wire.CmdEcho) // the server has processed EVENTS_OFF
	for i := range 20 {
		_ = pv.Post(doubles(float64(i)), NoAlarm, wire.Timestamp{})
	}
	c.quiet(100 * time.Millisecond)
	c.send(&wire.EventsOn{})
	f := c.expect(wire.CmdEventAdd)
	var d wire.DBR
	_ = wire.DecodeDBR(&d, wire.DBRDouble, 1, f.Payload)
	if d.Value.Doubles[0] != 19 {
		t.Errorf("after EVENTS_ON got %v, want the latest value 19", d.Value.Doubles)
	}
	c.quiet(100 * time.Millisecond)
}

// TestBadInput sends every kind of bad request: each gets a specific error, the
// circuit keeps working, and another client is unaffected.
func TestBadInput(t *testing.T) {
	logs := &capLogger{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(strings.Join(logs.lines, ""))
		}
	})
	srv, _ := startServer(t, Config{Logger: slog.New(slog.NewTextHandler(logs, nil)), MaxArrayBytes: 1 << 16}, aoPV(t))
	other := dial(t, srv)
	other.hello()
	osid, _ := other.create(1, "T:ao")

	c := dial(t, srv)
	c.hello()
	sid, _ := c.create(1, "T:ao")
	cases := []struct {
		name   string
		send   []byte
		status wire.ECA
		text   string
	}{
		{"unknown SID", (&wire.ReadNotify{DataType: wire.DBRDouble, Count: 1, SID: 77, IOID: 1}).AppendTo(nil), wire.ECABadChID, "unknown channel id 77"},
		{"bad type", (&wire.ReadNotify{DataType: 55, Count: 1, SID: sid, IOID: 1}).AppendTo(nil), wire.ECABadType, "cannot be read"},
		{"count too big", (&wire.ReadNotify{DataType: wire.DBRDouble, Count: 5, SID: sid, IOID: 1}).AppendTo(nil), wire.ECABadCount, "exceeds the element count"},
		{"mask zero", (&wire.EventAdd{DataType: wire.DBRDouble, Count: 1, SID: sid, SubID: 1}).AppendTo(nil), wire.ECABadMask, "selects no event"},
		{"unknown subscription", (&wire.EventCancel{SID: sid, SubID: 42}).AppendTo(nil), wire.ECABadMonID, "unknown subscription id 42"},
		{"unknown command", wire.AppendHeader(nil, wire.Header{Command: 99}), wire.ECAInternal, "unknown command 99"},
		{"server command", (&wire.AccessRights{CID: 1, Rights: 3}).AppendTo(nil), wire.ECAInternal, "not a client request"},
		{"obsolete command", wire.AppendHeader(nil, wire.Header{Command: wire.CmdSnapshot}), wire.ECAAnachronism, "obsolete"},
		{"short payload", (&wire.Write{DataType: wire.DBRDouble, Count: 4, SID: sid, ID: 1, Data: make([]byte, 8)}).AppendTo(nil), wire.ECABadCount, "needs 32 bytes"},
		{"oversize", append(wire.AppendHeader(nil, wire.Header{Command: wire.CmdWrite, PayloadSize: 1 << 17, DataType: uint16(wire.DBRDouble), Count: 1 << 14, P1: sid}), make([]byte, 1<<17)...), wire.ECATooLarge, "exceeds the server's EPICS_CA_MAX_ARRAY_BYTES"},
		{"write ack type", (&wire.Write{DataType: wire.DBRPutAckT, Count: 1, SID: sid, ID: 1, Data: make([]byte, 8)}).AppendTo(nil), wire.ECAPutFail, "not supported"},
	}
	for _, tc := range cases {
		c.sendBytes(tc.send)
		e, text := errorText(t, c.expect(wire.CmdError))
		if e.Status != tc.status || !strings.Contains(text, tc.text) {
			t.Errorf("%s: got %q, want %s containing %q", tc.name, text, tc.status.Name(), tc.text)
		}
		// The circuit still works.
		if h, d := c.read(sid, 2, wire.DBRDouble, 1); wire.ECA(h.P1) != wire.ECANormal || d.Value.Doubles[0] != 1.5 {
			t.Fatalf("after %s the circuit no longer reads", tc.name)
		}
	}
	// A misaligned size cannot be resynchronised: ERROR, then the circuit closes.
	bad := wire.AppendHeader(nil, wire.Header{Command: wire.CmdWrite, PayloadSize: 3, P1: sid})
	c.sendBytes(append(bad, 1, 2, 3))
	if e, text := errorText(t, c.expect(wire.CmdError)); e.Status != wire.ECAInternal || !strings.Contains(text, "misaligned") {
		t.Errorf("misaligned: %s", text)
	}
	if _, err := c.tryNext(time.Second); err == nil {
		t.Error("circuit still open after a misaligned message")
	}
	// The other client never noticed.
	if h, _ := other.read(osid, 3, wire.DBRDouble, 1); wire.ECA(h.P1) != wire.ECANormal {
		t.Error("other client affected")
	}
	// One line per bad request, and never more than the per-circuit bound.
	if n := logs.count("bad request from client"); n != maxBadInputLogs {
		t.Errorf("%d log lines for the bad requests, want the bound %d", n, maxBadInputLogs)
	}
	if n := logs.count("not logged"); n != 1 {
		t.Errorf("%d suppression notices, want 1", n)
	}
}

// TestServerDisconn closes a PV with clients on it: they get SERVER_DISCONN and
// the name is gone.
func TestServerDisconn(t *testing.T) {
	srv, table := startServer(t, Config{}, aoPV(t))
	c := dial(t, srv)
	c.hello()
	sid, _ := c.create(7, "T:ao")
	c.send(&wire.EventAdd{DataType: wire.DBRDouble, Count: 1, SID: sid, SubID: 1, Mask: wire.DBEValue})
	c.expect(wire.CmdEventAdd)
	table.Remove("T:ao")
	if f := c.expect(wire.CmdServerDisconn); f.Header.P1 != 7 {
		t.Errorf("SERVER_DISCONN for cid %d", f.Header.P1)
	}
	c.send(&wire.CreateChan{CID: 8, Minor: 13, Name: "T:ao"})
	c.expect(wire.CmdCreateChFail)
	// A new PV under the same name serves new channels.
	table.Add(aoPV(t))
	if _, h := c.create(9, "T:ao"); h.Count != 1 {
		t.Error("re-created PV not served")
	}
}

// TestReadOnlyAndWriteHandler checks access rights and a custom write handler.
func TestReadOnlyAndWriteHandler(t *testing.T) {
	ro := mustPV(t, "T:ro", PVOptions{Type: wire.DBRDouble, Count: 1, Value: doubles(1), ReadOnly: true})
	var seen []float64
	limited := mustPV(t, "T:lim", PVOptions{Type: wire.DBRDouble, Count: 1, Value: doubles(1),
		OnWrite: func(_ context.Context, p *Put) error {
			if p.ConvErr != nil {
				return p.ConvErr
			}
			if p.Value.Doubles[0] > 10 {
				return wire.ECANoWtAccess
			}
			seen = append(seen, p.Value.Doubles[0])
			return p.PV.Post(p.Value, NoAlarm, wire.Timestamp{})
		}})
	srv, _ := startServer(t, Config{}, ro, limited)
	c := dial(t, srv)
	c.hello()
	c.send(&wire.CreateChan{CID: 1, Minor: 13, Name: "T:ro"})
	if f := c.expect(wire.CmdAccessRights); f.Header.P2 != wire.AccessRead {
		t.Errorf("rights %d, want read only", f.Header.P2)
	}
	rsid := c.expect(wire.CmdCreateChan).Header.P2
	c.send(&wire.WriteNotify{DataType: wire.DBRDouble, Count: 1, SID: rsid, IOID: 1, Data: make([]byte, 8)})
	if f := c.expect(wire.CmdWriteNotify); wire.ECA(f.Header.P1) != wire.ECANoWtAccess {
		t.Errorf("write to read-only PV: status %d", f.Header.P1)
	}
	lsid, _ := c.create(2, "T:lim")
	put := func(v float64) wire.ECA {
		data, _ := wire.AppendDBR(nil, wire.DBRDouble, 1, &wire.DBR{Value: doubles(v)})
		c.send(&wire.WriteNotify{DataType: wire.DBRDouble, Count: 1, SID: lsid, IOID: 2, Data: data})
		return wire.ECA(c.expect(wire.CmdWriteNotify).Header.P1)
	}
	if s := put(5); s != wire.ECANormal {
		t.Errorf("allowed put: %s", s)
	}
	if s := put(50); s != wire.ECANoWtAccess {
		t.Errorf("refused put: %s", s)
	}
	if len(seen) != 1 || seen[0] != 5 {
		t.Errorf("handler saw %v", seen)
	}
}

// TestBeacons listens on the beacon port: beacons start fast, carry the TCP port
// and increasing IDs, and slow down towards the beacon period.
func TestBeacons(t *testing.T) {
	l, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.LocalAddr().(*net.UDPAddr).Port
	srv, _ := startServer(t, Config{BeaconPort: port, BeaconPeriod: 200 * time.Millisecond})
	var times []time.Time
	var ids []uint32
	buf := make([]byte, 1024)
	for len(times) < 8 {
		_ = l.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, err := l.Read(buf)
		if err != nil {
			t.Fatalf("after %d beacons: %v", len(times), err)
		}
		h, _, err := wire.ParseHeader(buf[:n])
		if err != nil || h.Command != wire.CmdRsrvIsUp || h.DataType != 13 || int(h.Count) != srv.TCPPort() || h.P2 != 0 {
			t.Fatalf("beacon %+v %v", h, err)
		}
		times = append(times, time.Now())
		ids = append(ids, h.P1)
	}
	for i := 1; i < len(ids); i++ {
		if ids[i] != ids[i-1]+1 {
			t.Errorf("beacon IDs %v", ids)
			break
		}
	}
	// The first intervals are short (20, 40, 80 ms); later ones reach the period.
	if d := times[1].Sub(times[0]); d > 150*time.Millisecond {
		t.Errorf("second beacon after %v", d)
	}
	if d := times[7].Sub(times[6]); d < 150*time.Millisecond {
		t.Errorf("eighth beacon after %v, want about the 200 ms period", d)
	}
}

func TestConfigFromEnv(t *testing.T) {
	env := map[string]string{
		"EPICS_CAS_SERVER_PORT":      "6064",
		"EPICS_CA_SERVER_PORT":       "7064",
		"EPICS_CAS_INTF_ADDR_LIST":   "127.0.0.1",
		"EPICS_CAS_BEACON_ADDR_LIST": "127.0.0.1:7000 127.0.0.2",
		"EPICS_CA_REPEATER_PORT":     "6065",
		"EPICS_CAS_BEACON_PERIOD":    "2.5",
		"EPICS_CA_MAX_ARRAY_BYTES":   "100",
	}
	cfg, err := ConfigFromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Port != 6064 || len(cfg.Interfaces) != 1 || cfg.BeaconPort != 6065 || cfg.BeaconPeriod != 2500*time.Millisecond ||
		len(cfg.BeaconAddrs) != 2 || cfg.BeaconAddrs[0].Port() != 7000 || cfg.BeaconAddrs[1].Port() != 6065 ||
		cfg.MaxArrayBytes != wire.DefaultMaxArrayBytes || cfg.AutoBeaconAddrs {
		t.Errorf("config %+v", cfg)
	}
	// Defaults keep everything on loopback.
	def, err := ConfigFromEnv(func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := New(Config{Source: NewTable()})
	if def.Port != 5064 || def.AutoBeaconAddrs || len(srv.cfg.Interfaces) != 1 || srv.cfg.Interfaces[0] != Loopback {
		t.Errorf("defaults %+v / %+v", def, srv.cfg)
	}
	for k, v := range map[string]string{"EPICS_CAS_SERVER_PORT": "x", "EPICS_CAS_INTF_ADDR_LIST": "::1", "EPICS_CAS_BEACON_PERIOD": "-1"} {
		if _, err := ConfigFromEnv(func(key string) (string, bool) { return v, key == k }); err == nil || !strings.Contains(err.Error(), k) && k != "EPICS_CAS_INTF_ADDR_LIST" {
			t.Errorf("%s=%s: error %v", k, v, err)
		}
	}
}
