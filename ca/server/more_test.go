package server

import (
	"strings"
	"testing"
	"time"

	"github.com/pvhub/pvhub/ca/wire"
)

// TestTCPSearch checks name resolution over a circuit (EPICS_CA_NAME_SERVERS):
// a hosted name gets a payload-less SEARCH reply; an unknown one gets NOT_FOUND
// only when the client asked for a reply.
func TestTCPSearch(t *testing.T) {
	srv, _ := startServer(t, Config{}, aoPV(t))
	c := dial(t, srv)
	c.send(&wire.Version{Minor: 13},
		&wire.Version{DataType: 1, Minor: 13, Seq: 1}, // a search batch starts with a sequence VERSION
		&wire.SearchRequest{Reply: wire.SearchDontReply, Minor: 13, SearchID: 5, Name: "T:ao"},
		&wire.SearchRequest{Reply: wire.SearchDontReply, Minor: 13, SearchID: 6, Name: "nope"},
		&wire.SearchRequest{Reply: wire.SearchDoReply, Minor: 13, SearchID: 7, Name: "nope"})
	f := c.expect(wire.CmdSearch)
	if f.Header.PayloadSize != 0 || int(f.Header.DataType) != srv.TCPPort() || f.Header.P1 != wire.BeaconIPUnknown || f.Header.P2 != 5 {
		t.Errorf("TCP search reply %+v", f.Header)
	}
	if f := c.expect(wire.CmdNotFound); f.Header.P2 != 7 || f.Header.DataType != wire.SearchDoReply {
		t.Errorf("NOT_FOUND %+v", f.Header)
	}
	c.quiet(50 * time.Millisecond)
}

// TestClientVanishes checks that a client that disappears mid-subscription leaves
// nothing behind in the PV.
func TestClientVanishes(t *testing.T) {
	pv := aoPV(t)
	srv, _ := startServer(t, Config{}, pv)
	c := dial(t, srv)
	c.hello()
	sid, _ := c.create(1, "T:ao")
	c.send(&wire.EventAdd{DataType: wire.DBRTimeDouble, Count: 1, SID: sid, SubID: 1, Mask: wire.DBEValue})
	c.expect(wire.CmdEventAdd)
	c.conn.Close()
	deadline := time.Now().Add(2 * time.Second)
	for {
		pv.mu.Lock()
		n, m := len(pv.subs), len(pv.chans)
		pv.mu.Unlock()
		if n == 0 && m == 0 && srv.Clients() == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the client left: %d subscriptions, %d channels, %d circuits", n, m, srv.Clients())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := pv.Post(doubles(3), NoAlarm, wire.Timestamp{}); err != nil {
		t.Fatal(err)
	}
}

// TestLargeArray reads and monitors a 1,000,000-element array (extended headers
// both ways) and checks that a limit below its size gives ECA_TOLARGE.
func TestLargeArray(t *testing.T) {
	const n = 1_000_000
	v := make([]float64, n)
	for i := range v {
		v[i] = float64(i)
	}
	big := mustPV(t, "T:big", PVOptions{Type: wire.DBRDouble, Count: n, Value: doubles(v...)})
	srv, _ := startServer(t, Config{MaxArrayBytes: 8*n + 64}, big)
	c := dial(t, srv)
	c.hello()
	sid, h := c.create(1, "T:big")
	if h.Count != n {
		t.Fatalf("native count %d", h.Count)
	}
	rh, d := c.read(sid, 1, wire.DBRTimeDouble, 0)
	if rh.Count != n || rh.PayloadSize != uint32(wire.Pad8(wire.DBRTimeDouble.Size(n))) || d.Value.Doubles[n-1] != n-1 {
		t.Fatalf("read of %d doubles: header %+v", n, rh)
	}
	// A full-array write through an extended header.
	v[12345] = -1
	data, err := wire.AppendDBR(nil, wire.DBRDouble, n, &wire.DBR{Value: doubles(v...)})
	if err != nil {
		t.Fatal(err)
	}
	c.send(&wire.WriteNotify{DataType: wire.DBRDouble, Count: n, SID: sid, IOID: 2, Data: data})
	if f := c.expect(wire.CmdWriteNotify); wire.ECA(f.Header.P1) != wire.ECANormal {
		t.Fatalf("write of %d doubles: %s", n, wire.ECA(f.Header.P1))
	}
	if got := big.Snapshot().Value.Doubles[12345]; got != -1 {
		t.Errorf("element written as -1 reads %v", got)
	}

	// The same array on a server with the default EPICS limit is too large.
	small := mustPV(t, "T:big", PVOptions{Type: wire.DBRDouble, Count: n, Value: doubles(v...)})
	srv2, _ := startServer(t, Config{MaxArrayBytes: wire.DefaultMaxArrayBytes}, small)
	c2 := dial(t, srv2)
	c2.hello()
	sid2, _ := c2.create(1, "T:big")
	c2.send(&wire.ReadNotify{DataType: wire.DBRDouble, Count: n, SID: sid2, IOID: 1})
	if e, text := errorText(t, c2.expect(wire.CmdError)); e.Status != wire.ECATooLarge || !strings.Contains(text, "EPICS_CA_MAX_ARRAY_BYTES") {
		t.Errorf("oversize read: %s", text)
	}
	c2.send(&wire.EventAdd{DataType: wire.DBRDouble, Count: n, SID: sid2, SubID: 1, Mask: wire.DBEValue})
	if e, _ := errorText(t, c2.expect(wire.CmdError)); e.Status != wire.ECATooLarge {
		t.Errorf("oversize subscription: %s", e.Status)
	}
	// A count-0 subscription learns at each update that it is too large.
	c2.send(&wire.EventAdd{DataType: wire.DBRDouble, Count: 0, SID: sid2, SubID: 2, Mask: wire.DBEValue})
	if e, _ := errorText(t, c2.expect(wire.CmdError)); e.Status != wire.ECATooLarge || e.Request.P2 != 2 {
		t.Errorf("oversize count-0 update: %+v", e)
	}
	// And a small read still works on that circuit.
	if rh, d := c2.read(sid2, 3, wire.DBRDouble, 10); wire.ECA(rh.P1) != wire.ECANormal || d.Value.Doubles[9] != 9 {
		t.Errorf("small read after the errors: %+v", rh)
	}
}

// TestCloseWithStalledClient checks that closing a PV never waits for a client:
// one that never reads has its circuit backed up with replies, and another
// channel on it is cleared, while the PV's owner removes the PV.
func TestCloseWithStalledClient(t *testing.T) {
	const n = 100_000
	big := mustPV(t, "T:big", PVOptions{Type: wire.DBRDouble, Count: n, Value: doubles(make([]float64, n)...)})
	srv, table := startServer(t, Config{}, big, aoPV(t))
	c := dial(t, srv)
	c.hello()
	sid, _ := c.create(1, "T:big")
	aoSID, _ := c.create(2, "T:ao")
	// 40 reads of 800 KB: far beyond the socket buffers and the circuit's limit.
	var reqs []wire.Message
	for i := range 40 {
		reqs = append(reqs, &wire.ReadNotify{DataType: wire.DBRDouble, Count: n, SID: sid, IOID: uint32(i)})
	}
	reqs = append(reqs, &wire.ClearChannel{SID: aoSID, CID: 2})
	c.send(reqs...)
	time.Sleep(200 * time.Millisecond)
	done := make(chan struct{})
	go func() {
		table.Remove("T:big")
		table.Remove("T:ao")
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("removing PVs waited for a client that does not read")
	}
	// The server still closes cleanly (Cleanup), and the client's circuit with it.
}

// TestTextPV reads a char array marked Text as strings (its text, as one
// string whatever the count) and as chars (its bytes).
func TestTextPV(t *testing.T) {
	pv := mustPV(t, "T:text", PVOptions{Type: wire.DBRChar, Count: 64, Text: true, Value: wire.Value{Type: wire.DBRChar, Chars: []byte("hello world\x00")}})
	srv, _ := startServer(t, Config{}, pv)
	c := dial(t, srv)
	c.hello()
	sid, _ := c.create(1, "T:text")
	for _, count := range []uint32{0, 1, 64} {
		if h, d := c.read(sid, 1, wire.DBRTimeString, count); h.Count != 1 || d.Value.Strings[0] != "hello world" {
			t.Errorf("count %d as DBR_TIME_STRING: count %d %q", count, h.Count, d.Value.Strings)
		}
	}
	if _, d := c.read(sid, 2, wire.DBRChar, 0); string(d.Value.Chars) != "hello world\x00" {
		t.Errorf("as DBR_CHAR: %q", d.Value.Chars)
	}
	c.send(&wire.EventAdd{DataType: wire.DBRString, Count: 64, SID: sid, SubID: 1, Mask: wire.DBEValue})
	f := c.expect(wire.CmdEventAdd)
	var d wire.DBR
	if err := wire.DecodeDBR(&d, wire.DBRString, int(f.Header.Count), f.Payload); err != nil || f.Header.Count != 1 || d.Value.Strings[0] != "hello world" {
		t.Errorf("monitor as DBR_STRING: count %d %q %v", f.Header.Count, d.Value.Strings, err)
	}
}
