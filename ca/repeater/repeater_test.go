package repeater

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pvhub/pvhub/ca/wire"
)

// loopback4 is 127.0.0.1 as it appears in a header's P2 field.
const loopback4 = 0x7f000001

// timeout bounds every wait for a datagram that must arrive.
const timeout = 2 * time.Second

// logRecorder is a slog.Handler that keeps every record as a line
// "LEVEL message key=value ...".
type logRecorder struct {
	mu   sync.Mutex
	recs []string
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logRecorder) WithGroup(string) slog.Handler            { return h }
func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	line := r.Level.String() + " " + r.Message
	r.Attrs(func(a slog.Attr) bool {
		line += " " + a.String()
		return true
	})
	h.recs = append(h.recs, line)
	return nil
}

// count returns how many records contain substr.
func (h *logRecorder) count(substr string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, r := range h.recs {
		if strings.Contains(r, substr) {
			n++
		}
	}
	return n
}

// all returns a copy of the records so far.
func (h *logRecorder) all() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.recs...)
}

// len returns the number of records so far.
func (h *logRecorder) len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.recs)
}

// startRepeater starts a repeater on a free loopback port; setup, when not
// nil, runs between New and Start. The repeater is closed at cleanup.
func startRepeater(t *testing.T, setup func(*Repeater)) (*Repeater, *logRecorder) {
	t.Helper()
	rec := &logRecorder{}
	r, err := New(Config{Addr: netip.AddrPortFrom(Loopback, 0), Logger: slog.New(rec)})
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(r)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, rec
}

// peer is a UDP socket on 127.0.0.1 that talks to the repeater under test:
// a CA client when registered, a server sending beacons otherwise.
type peer struct {
	t    *testing.T
	r    *Repeater
	conn *net.UDPConn
}

func newPeer(t *testing.T, r *Repeater) *peer {
	t.Helper()
	conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(Loopback, 0)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &peer{t: t, r: r, conn: conn}
}

func (p *peer) addr() netip.AddrPort { return p.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

// send sends one datagram to the repeater.
func (p *peer) send(b []byte) {
	p.t.Helper()
	if _, err := p.conn.WriteToUDPAddrPort(b, p.r.Addr()); err != nil {
		p.t.Fatal(err)
	}
}

// recvWithin returns the next datagram, or false when none arrives within d.
func (p *peer) recvWithin(d time.Duration) ([]byte, bool) {
	p.t.Helper()
	buf := make([]byte, wire.MaxUDPRecv)
	if err := p.conn.SetReadDeadline(time.Now().Add(d)); err != nil {
		p.t.Fatal(err)
	}
	n, _, err := p.conn.ReadFromUDPAddrPort(buf)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil, false
		}
		p.t.Fatal(err)
	}
	return buf[:n], true
}

// recv returns the next datagram and fails the test when none arrives.
func (p *peer) recv() []byte {
	p.t.Helper()
	b, ok := p.recvWithin(timeout)
	if !ok {
		p.t.Fatalf("peer %s: no datagram within %v", p.addr(), timeout)
	}
	return b
}

// expect receives the next datagram and checks that it is want.
func (p *peer) expect(what string, want []byte) {
	p.t.Helper()
	if got := p.recv(); !bytes.Equal(got, want) {
		p.t.Fatalf("peer %s: %s:\n got % x\nwant % x", p.addr(), what, head(got), head(want))
	}
}

// head shortens a datagram for a failure message.
func head(b []byte) []byte {
	if len(b) > 48 {
		return b[:48]
	}
	return b
}

// confirmFor is the REPEATER_CONFIRM a client on 127.0.0.1 must receive.
func confirmFor() []byte { return (&wire.RepeaterConfirm{IP: loopback4}).AppendTo(nil) }

// register registers each peer in turn with a zero-length datagram and
// checks the confirm; every peer registered before a new one must receive
// exactly one no-op for it.
func register(t *testing.T, peers ...*peer) {
	t.Helper()
	for i, p := range peers {
		p.send(nil)
		p.expect("confirm", confirmFor())
		for _, q := range peers[:i] {
			q.expect("no-op", make([]byte, wire.HeaderSize))
		}
	}
}

// marker returns a distinct non-beacon datagram that a test sends to learn,
// when it arrives, that nothing else was queued before it.
func marker(id uint32) []byte {
	return (&wire.RawMessage{Header: wire.Header{Command: wire.CmdEcho, P1: id}}).AppendTo(nil)
}

// beacon returns an encoded beacon.
func beacon(id, ip uint32) []byte {
	return (&wire.Beacon{Minor: wire.MinorVersion, Port: 5064, ID: id, IP: ip}).AppendTo(nil)
}

func TestRegisterZeroLength(t *testing.T) {
	r, _ := startRepeater(t, nil)
	a := newPeer(t, r)
	a.send(nil)
	got := a.recv()
	h, n, err := wire.ParseHeader(got)
	if err != nil || n != len(got) || len(got) != wire.HeaderSize {
		t.Fatalf("confirm % x: %v", got, err)
	}
	want := wire.Header{Command: wire.CmdRepeaterConfirm, P2: loopback4}
	if h != want {
		t.Fatalf("confirm header %+v, want %+v", h, want)
	}
	if r.Clients() != 1 {
		t.Fatalf("Clients() = %d, want 1", r.Clients())
	}
}

func TestRegisterMessage(t *testing.T) {
	r, _ := startRepeater(t, nil)
	a, b, s := newPeer(t, r), newPeer(t, r), newPeer(t, r)
	a.send((&wire.RepeaterRegister{IP: loopback4}).AppendTo(nil))
	a.expect("confirm", confirmFor())

	// A P2 that is not the sender's address does not matter: the confirm
	// carries the address the datagram came from.
	b.send((&wire.RepeaterRegister{IP: 0}).AppendTo(nil))
	b.expect("confirm", confirmFor())
	a.expect("no-op", make([]byte, wire.HeaderSize))
	if r.Clients() != 2 {
		t.Fatalf("Clients() = %d, want 2", r.Clients())
	}

	// What follows the REPEATER_REGISTER header in the same datagram is
	// forwarded to the other clients, unmodified.
	s.send(nil)
	s.expect("confirm", confirmFor())
	a.expect("no-op", make([]byte, wire.HeaderSize))
	b.expect("no-op", make([]byte, wire.HeaderSize))
	rest := marker(7)
	s.send(append((&wire.RepeaterRegister{IP: loopback4}).AppendTo(nil), rest...))
	s.expect("second confirm", confirmFor())
	a.expect("no-op", make([]byte, wire.HeaderSize))
	a.expect("rest of the datagram", rest)
	b.expect("no-op", make([]byte, wire.HeaderSize))
	b.expect("rest of the datagram", rest)
	if r.Clients() != 3 {
		t.Fatalf("Clients() = %d, want 3", r.Clients())
	}

	// A datagram shorter than a header is not a registration, whatever its
	// first bytes: it is forwarded like any other.
	short := []byte{0, byte(wire.CmdRepeaterRegister), 0, 0, 0, 0, 0, 0, 0, 0}
	c := newPeer(t, r)
	c.send(short)
	a.expect("short datagram", short)
	if _, ok := c.recvWithin(50 * time.Millisecond); ok {
		t.Fatal("a short datagram was confirmed")
	}
	if r.Clients() != 3 {
		t.Fatalf("Clients() = %d after a short datagram, want 3", r.Clients())
	}
}

func TestRegisterTwice(t *testing.T) {
	r, rec := startRepeater(t, nil)
	a, b, s := newPeer(t, r), newPeer(t, r), newPeer(t, r)
	register(t, a, b)
	b.send(nil)
	b.expect("second confirm", confirmFor())
	a.expect("no-op for the second registration", make([]byte, wire.HeaderSize))
	if r.Clients() != 2 {
		t.Fatalf("Clients() = %d, want 2", r.Clients())
	}
	// b is still registered once: a beacon reaches it once.
	s.send(beacon(1, 0))
	b.expect("beacon", beacon(1, loopback4))
	s.send(marker(1))
	b.expect("marker after one beacon", marker(1))
	if n := rec.count("client registered"); n != 2 {
		t.Errorf("%d registration log lines, want 2", n)
	}
}

func TestBeaconForwarding(t *testing.T) {
	r, _ := startRepeater(t, nil)
	a, b, s := newPeer(t, r), newPeer(t, r), newPeer(t, r)
	register(t, a, b)

	// P2 == 0: the repeater fills in the sender's address.
	s.send(beacon(42, 0))
	a.expect("beacon with P2 filled in", beacon(42, loopback4))
	b.expect("beacon with P2 filled in", beacon(42, loopback4))

	// P2 != 0: forwarded as is.
	s.send(beacon(43, 0x0a010203))
	a.expect("beacon with its own P2", beacon(43, 0x0a010203))
	b.expect("beacon with its own P2", beacon(43, 0x0a010203))

	// Only the first header is looked at; the rest of the datagram follows.
	two := append(beacon(44, 0), beacon(45, 0)...)
	want := append(beacon(44, loopback4), beacon(45, 0)...)
	s.send(two)
	a.expect("two beacons", want)
	b.expect("two beacons", want)

	// Anything else is forwarded unmodified.
	other := (&wire.SearchResponse{Port: 5064, IP: wire.BeaconIPUnknown, SearchID: 9}).AppendTo(nil)
	s.send(other)
	a.expect("other datagram", other)
	b.expect("other datagram", other)

	// The sender, not registered, gets nothing back.
	if got, ok := s.recvWithin(50 * time.Millisecond); ok {
		t.Fatalf("unregistered sender received % x", head(got))
	}
}

func TestNoEchoToSender(t *testing.T) {
	r, _ := startRepeater(t, nil)
	a, b, s := newPeer(t, r), newPeer(t, r), newPeer(t, r)
	register(t, a, b)
	a.send(beacon(5, 0))
	b.expect("beacon from a", beacon(5, loopback4))
	s.send(marker(2))
	a.expect("marker, and not its own beacon", marker(2))
	b.expect("marker", marker(2))
}

func TestNoopToOtherClients(t *testing.T) {
	r, _ := startRepeater(t, nil)
	a, b, c, s := newPeer(t, r), newPeer(t, r), newPeer(t, r), newPeer(t, r)
	register(t, a, b) // checks a's no-op for b
	c.send(nil)
	c.expect("confirm", confirmFor())
	a.expect("no-op", make([]byte, wire.HeaderSize))
	b.expect("no-op", make([]byte, wire.HeaderSize))
	s.send(marker(3))
	c.expect("marker, and no no-op for itself", marker(3))
	a.expect("marker", marker(3))
	b.expect("marker", marker(3))
}

func TestDeadClientDroppedOnSend(t *testing.T) {
	r, rec := startRepeater(t, nil)
	a, b, s := newPeer(t, r), newPeer(t, r), newPeer(t, r)
	register(t, a, b)
	a.conn.Close()
	// The kernel reports the closed port as an error on a later send to it,
	// so it takes a beacon or two.
	deadline := time.Now().Add(timeout)
	id := uint32(0)
	for r.Clients() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("Clients() = %d after beacons to a closed client, want 1", r.Clients())
		}
		id++
		s.send(beacon(id, 0))
		b.expect("beacon", beacon(id, loopback4))
	}
	t.Logf("the closed client was dropped at beacon %d", id)
	if rec.count("client gone") != 1 {
		t.Errorf("log: %q", rec.all())
	}
	s.send(beacon(100, 0))
	b.expect("beacon to the remaining client", beacon(100, loopback4))
}

// TestPortReused checks a new client that registers on the port of a client
// that has gone, after a send to the old one failed: the stale error must not
// cost the new client its confirm.
func TestPortReused(t *testing.T) {
	r, _ := startRepeater(t, nil)
	a, b, s := newPeer(t, r), newPeer(t, r), newPeer(t, r)
	register(t, a, b)
	port := a.addr()
	a.conn.Close()
	// The beacon goes to a (registered first) before b: when b has it, the
	// kernel holds the error for a's socket.
	s.send(beacon(1, 0))
	b.expect("beacon", beacon(1, loopback4))
	conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(port))
	if err != nil {
		t.Skipf("port %s taken by someone else meanwhile: %v", port, err)
	}
	t.Cleanup(func() { conn.Close() })
	a2 := &peer{t: t, r: r, conn: conn}
	a2.send(nil)
	a2.expect("confirm on the reused port", confirmFor())
	b.expect("no-op", make([]byte, wire.HeaderSize))
	if r.Clients() != 2 {
		t.Fatalf("Clients() = %d, want 2", r.Clients())
	}
	s.send(beacon(2, 0))
	a2.expect("beacon", beacon(2, loopback4))
}

func TestDeadClientDroppedOnRegistration(t *testing.T) {
	r, _ := startRepeater(t, nil)
	a, b, c, s := newPeer(t, r), newPeer(t, r), newPeer(t, r), newPeer(t, r)
	register(t, a, b)
	a.conn.Close()
	c.send(nil)
	c.expect("confirm", confirmFor())
	b.expect("no-op", make([]byte, wire.HeaderSize))
	s.send(marker(4))
	b.expect("marker", marker(4)) // the registration has been handled
	if r.Clients() != 2 {
		t.Fatalf("Clients() = %d, want 2 (a is gone)", r.Clients())
	}
}

func TestClientLimit(t *testing.T) {
	r, rec := startRepeater(t, func(r *Repeater) { r.maxClients = 2 })
	a, b, c, d, s := newPeer(t, r), newPeer(t, r), newPeer(t, r), newPeer(t, r), newPeer(t, r)
	register(t, a, b)

	// At the limit the clients are verified first: a has gone, so c fits.
	a.conn.Close()
	c.send(nil)
	c.expect("confirm", confirmFor())
	b.expect("no-op", make([]byte, wire.HeaderSize))
	if r.Clients() != 2 {
		t.Fatalf("Clients() = %d, want 2", r.Clients())
	}

	// Nobody has gone now: d is refused, once logged however often it tries.
	for range 3 {
		d.send(nil)
	}
	s.send(marker(5))
	b.expect("marker", marker(5))
	if got, ok := d.recvWithin(50 * time.Millisecond); ok {
		t.Fatalf("client above the limit received % x", head(got))
	}
	if r.Clients() != 2 {
		t.Fatalf("Clients() = %d, want 2", r.Clients())
	}
	if n := rec.count("client limit reached"); n != 1 {
		t.Fatalf("%d limit log lines, want 1: %q", n, rec.all())
	}
}

func TestErrInUse(t *testing.T) {
	r1, _ := startRepeater(t, nil)
	r2, err := New(Config{Addr: r1.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if err := r2.Start(context.Background()); !errors.Is(err, ErrInUse) {
		t.Fatalf("second repeater on %s: %v, want ErrInUse", r1.Addr(), err)
	}
	if r2.Clients() != 0 {
		t.Fatal("a repeater that failed to start has clients")
	}
	// A failed Start may be retried: once the first repeater is gone, the
	// second one takes over.
	r1.Close()
	if err := r2.Start(context.Background()); err != nil {
		t.Fatalf("Start after the first repeater closed: %v", err)
	}
	if r2.Addr() != r1.Addr() {
		t.Fatalf("Addr() = %s, want %s", r2.Addr(), r1.Addr())
	}

	// Any socket bound without address reuse counts as "in use".
	p := newPeer(t, nil)
	r3, _ := New(Config{Addr: p.addr()})
	defer r3.Close()
	if err := r3.Start(context.Background()); !errors.Is(err, ErrInUse) {
		t.Fatalf("repeater on the port of a UDP socket: %v, want ErrInUse", err)
	}
}

func TestLifecycle(t *testing.T) {
	r, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if want := netip.MustParseAddrPort("127.0.0.1:5065"); r.Addr() != want {
		t.Errorf("default Addr() = %s, want %s", r.Addr(), want)
	}
	if err := r.Close(); err != nil {
		t.Errorf("Close before Start: %v", err)
	}
	if err := r.Start(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Start after Close: %v, want ErrClosed", err)
	}

	r, _ = startRepeater(t, nil)
	if r.Addr().Addr() != Loopback || r.Addr().Port() == 0 {
		t.Errorf("Addr() = %s after Start", r.Addr())
	}
	if err := r.Start(context.Background()); err == nil {
		t.Error("second Start succeeded")
	}
	a := newPeer(t, r)
	register(t, a)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if r.Clients() != 0 {
		t.Errorf("Clients() = %d after Close", r.Clients())
	}

	if _, err := New(Config{Addr: netip.MustParseAddrPort("[::1]:5065")}); err == nil {
		t.Error("New accepted an IPv6 address")
	}
	r, err = New(Config{Addr: netip.MustParseAddrPort("[::ffff:127.0.0.1]:5065")})
	if err != nil || r.Addr() != netip.MustParseAddrPort("127.0.0.1:5065") {
		t.Errorf("IPv4-mapped address: %v, %v", r.Addr(), err)
	}
}

func TestConfigFromEnv(t *testing.T) {
	env := func(m map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	for _, tc := range []struct {
		vars map[string]string
		want string
		err  bool
	}{
		{nil, "127.0.0.1:5065", false},
		{map[string]string{"EPICS_CA_REPEATER_PORT": ""}, "127.0.0.1:5065", false},
		{map[string]string{"EPICS_CA_REPEATER_PORT": " 25065 "}, "127.0.0.1:25065", false},
		{map[string]string{"EPICS_CA_REPEATER_PORT": "0"}, "", true},
		{map[string]string{"EPICS_CA_REPEATER_PORT": "70000"}, "", true},
		{map[string]string{"EPICS_CA_REPEATER_PORT": "abc"}, "", true},
	} {
		cfg, err := ConfigFromEnv(env(tc.vars))
		if tc.err {
			if err == nil {
				t.Errorf("%v: no error", tc.vars)
			}
			continue
		}
		if err != nil || cfg.Addr.String() != tc.want {
			t.Errorf("%v: %v, %v; want %s", tc.vars, cfg.Addr, err, tc.want)
		}
	}
}

func TestIsLocalAddr(t *testing.T) {
	ifaddrs := []netip.Addr{netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("192.168.7.8")}
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{"127.0.0.1", true},
		{"127.1.2.3", true},
		{"::ffff:127.0.0.1", true},
		{"10.1.2.3", true},
		{"::ffff:192.168.7.8", true},
		{"10.1.2.4", false},
		{"192.0.2.1", false},
		{"0.0.0.0", false},
		{"255.255.255.255", false},
		{"224.0.0.1", false},
		{"::1", false},
		{"fe80::1", false},
	} {
		if got := isLocalAddr(netip.MustParseAddr(tc.addr), ifaddrs); got != tc.want {
			t.Errorf("isLocalAddr(%s) = %v, want %v", tc.addr, got, tc.want)
		}
	}
	if isLocalAddr(netip.Addr{}, ifaddrs) {
		t.Error("the zero Addr is local")
	}

	// With this host's real interfaces.
	r, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range append(interfaceAddrs(), Loopback) {
		if !r.isLocal(a) {
			t.Errorf("interface address %s is not local", a)
		}
	}
	if r.isLocal(netip.MustParseAddr("192.0.2.1")) { // TEST-NET-1, never assigned
		t.Error("192.0.2.1 is local")
	}
}

func TestGarbage(t *testing.T) {
	r, rec := startRepeater(t, nil)
	a, b, s := newPeer(t, r), newPeer(t, r), newPeer(t, r)
	register(t, a, b)
	logged := rec.len()

	ext := make([]byte, wire.HeaderSize) // an extended header cut short
	binary.BigEndian.PutUint16(ext[0:], uint16(wire.CmdRsrvIsUp))
	binary.BigEndian.PutUint16(ext[2:], 0xFFFF)
	binary.BigEndian.PutUint32(ext[12:], 0x01020304)
	big := make([]byte, 65507) // the largest IPv4 UDP payload
	for i := range big {
		big[i] = byte(i * 7)
	}
	binary.BigEndian.PutUint16(big, 0x4321)
	cases := [][]byte{
		{0xFF},
		{0, byte(wire.CmdRsrvIsUp)},
		bytes.Repeat([]byte{0xFF}, wire.HeaderSize-1),
		bytes.Repeat([]byte{0xFF}, wire.HeaderSize),
		bytes.Repeat([]byte{0xA5}, wire.HeaderSize+1),
		ext,
		[]byte("GET / HTTP/1.0\r\n\r\n"),
		big,
	}
	for i, g := range cases {
		s.send(g)
		a.expect(fmt.Sprintf("garbage %d", i), g)
		b.expect(fmt.Sprintf("garbage %d", i), g)
	}
	// A truncated extended beacon header with P2 == 0 still gets P2 filled.
	binary.BigEndian.PutUint32(ext[12:], 0)
	s.send(ext)
	want := bytes.Clone(ext)
	binary.BigEndian.PutUint32(want[12:], loopback4)
	a.expect("short extended beacon", want)
	b.expect("short extended beacon", want)

	if n := rec.len(); n != logged {
		t.Errorf("forwarding logged %d lines: %q", n-logged, rec.all()[logged:])
	}
	// Still serving.
	c := newPeer(t, r)
	c.send(nil)
	c.expect("confirm after garbage", confirmFor())
}

// FuzzClassify checks that any datagram is classified without a panic and
// as the rules say.
func FuzzClassify(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0xFF})
	f.Add(beacon(1, 0))
	f.Add(beacon(1, loopback4))
	f.Add((&wire.RepeaterRegister{IP: loopback4}).AppendTo(nil))
	f.Add(append((&wire.RepeaterRegister{}).AppendTo(nil), beacon(2, 0)...))
	f.Add(bytes.Repeat([]byte{0xFF}, 24))
	f.Fuzz(func(t *testing.T, msg []byte) {
		register, fwd, fill := classify(msg)
		isCmd := func(c wire.Command) bool {
			return len(msg) >= wire.HeaderSize && wire.Command(binary.BigEndian.Uint16(msg)) == c
		}
		if register != (len(msg) == 0 || isCmd(wire.CmdRepeaterRegister)) {
			t.Fatalf("register = %v for % x", register, head(msg))
		}
		switch {
		case len(msg) == 0:
			if fwd != nil {
				t.Fatal("forwarding a zero-length datagram")
			}
		case register:
			if !bytes.Equal(fwd, msg[wire.HeaderSize:]) {
				t.Fatal("forwarding more than the rest of a registration")
			}
		default:
			if !bytes.Equal(fwd, msg) {
				t.Fatal("not forwarding the whole datagram")
			}
		}
		if fill != (isCmd(wire.CmdRsrvIsUp) && binary.BigEndian.Uint32(msg[12:]) == 0) {
			t.Fatalf("fillIP = %v for % x", fill, head(msg))
		}
	})
}
