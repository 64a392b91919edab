package client

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pvhub/pvhub/ca/catest"
	"github.com/pvhub/pvhub/ca/wire"
)

// mute is a CA server that answers searches and creates channels, and then
// never answers anything again: a hung IOC behind an open TCP connection.
type mute struct {
	port  int
	udp   *net.UDPConn
	tcp   *net.TCPListener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []net.Conn
}

func startMute(t *testing.T) *mute {
	tcp, udp := catest.ListenLoopback(t)
	m := &mute{port: tcp.Addr().(*net.TCPAddr).Port, udp: udp, tcp: tcp}
	m.wg.Add(2)
	go m.search()
	go m.accept()
	t.Cleanup(func() {
		_ = m.udp.Close()
		_ = m.tcp.Close()
		m.mu.Lock()
		for _, c := range m.conns {
			_ = c.Close()
		}
		m.mu.Unlock()
		m.wg.Wait()
	})
	return m
}

func (m *mute) search() {
	defer m.wg.Done()
	buf := make([]byte, wire.MaxUDPRecv)
	for {
		n, from, err := m.udp.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		dec := wire.NewDecoder(0)
		dec.Feed(buf[:n])
		reply := (&wire.Version{DataType: 1, Minor: 13}).AppendTo(nil)
		for {
			f, err := dec.Next()
			if err != nil {
				break
			}
			if f.Header.Command == wire.CmdSearch {
				reply = (&wire.SearchResponse{Port: uint16(m.port), IP: wire.BeaconIPUnknown, SearchID: f.Header.P2, Minor: 13}).AppendTo(reply)
			}
		}
		_, _ = m.udp.WriteToUDPAddrPort(reply, from)
	}
}

func (m *mute) accept() {
	defer m.wg.Done()
	for {
		conn, err := m.tcp.Accept()
		if err != nil {
			return
		}
		m.mu.Lock()
		m.conns = append(m.conns, conn)
		m.mu.Unlock()
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			_, _ = conn.Write((&wire.Version{Minor: 13}).AppendTo(nil))
			dec := wire.NewDecoder(0)
			buf := make([]byte, 4096)
			for {
				n, err := conn.Read(buf)
				if err != nil {
					return
				}
				dec.Feed(buf[:n])
				for {
					f, err := dec.Next()
					if err != nil {
						break
					}
					if f.Header.Command == wire.CmdCreateChan {
						b := (&wire.AccessRights{CID: f.Header.P1, Rights: 3}).AppendTo(nil)
						b = (&wire.CreateChanResponse{DataType: wire.DBRDouble, Count: 1, CID: f.Header.P1, SID: 1}).AppendTo(b)
						_, _ = conn.Write(b)
					}
					// Everything else, ECHO included, goes unanswered.
				}
			}
		}()
	}
}

// TestEchoTimeout checks that a circuit whose server stops answering is
// declared dead after the connection timeout plus the echo timeout, that its
// channel reports the disconnection with the reason, and that it reconnects.
func TestEchoTimeout(t *testing.T) {
	m := startMute(t)
	c, err := New(Config{AddrList: []netip.AddrPort{netip.AddrPortFrom(Loopback, uint16(m.port))}, NoRepeater: true,
		ConnTimeout: 200 * time.Millisecond, EchoTimeout: 200 * time.Millisecond, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ev := newEvents()
	if _, err := c.Channel("hung:pv", ChannelOptions{OnConnection: ev.onConn}); err != nil {
		t.Fatal(err)
	}
	ev.wait(t, 5*time.Second, "connect, echo timeout, reconnect", func() bool { return len(ev.conns) >= 3 })
	ev.mu.Lock()
	defer ev.mu.Unlock()
	d := ev.conns[1]
	if ev.conns[0].State != Connected || d.State != Disconnected || ev.conns[2].State != Connected {
		t.Errorf("connection events %v", ev.conns)
	}
	if !errors.Is(d.Err, wire.ECAUnrespTmo) || !strings.Contains(d.Err.Error(), "echo") {
		t.Errorf("disconnect reason %v", d.Err)
	}
}

// TestBeaconAnomaly checks the beacon rules: the first beacon of a server and a
// beacon ID that starts again from 0 make waiting searches go out at once;
// regular beacons do not.
func TestBeaconAnomaly(t *testing.T) {
	ts := newTestServer(t, 0)
	c := newClient(t, ts, func(c *Config) { c.AddrList = []netip.AddrPort{netip.AddrPortFrom(Loopback, 9)} })
	ch, _ := c.Channel("nobody:here", ChannelOptions{})
	far := time.Now().Add(time.Hour)
	park := func() {
		c.mu.Lock()
		ch.nextSrch, ch.searchIdx = far, 10
		c.lastBoost = time.Time{}
		c.mu.Unlock()
	}
	boosted := func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return ch.nextSrch.Before(far) && ch.searchIdx <= 1
	}
	srv := netip.MustParseAddrPort("127.0.0.1:7777")
	park()
	c.beacon(srv, 5, 13)
	if !boosted() {
		t.Error("the first beacon of a server did not boost the search")
	}
	park()
	for id := uint32(6); id < 9; id++ {
		time.Sleep(20 * time.Millisecond)
		c.beacon(srv, id, 13)
	}
	if boosted() {
		t.Error("regular beacons boosted the search")
	}
	park()
	c.beacon(srv, 0, 13)
	if !boosted() {
		t.Error("a beacon ID back at 0 (a restarted server) did not boost the search")
	}
	park()
	c.beacon(srv, 0, 13)
	if boosted() {
		t.Error("a duplicate beacon boosted the search")
	}
}

// TestReconnectWithBeacons stops a server long enough for the search interval
// to grow, then restarts it: its beacons, forwarded by a repeater, bring the
// channel back quickly.
func TestReconnectWithBeacons(t *testing.T) {
	rep := catest.StubRepeater(t)
	pvs := clientPVs(t)
	ts := newTestServer(t, rep, pvs...)
	c := newClient(t, ts, func(c *Config) { c.NoRepeater = false })
	ev := newEvents()
	ch, _ := c.Channel("C:double", ChannelOptions{OnConnection: ev.onConn})
	if _, err := ch.Subscribe(SubscribeOptions{Type: wire.DBRTimeDouble}, ev.onUpdate); err != nil {
		t.Fatal(err)
	}
	ev.wait(t, 5*time.Second, "first value", func() bool { return len(ev.updates) == 1 })
	select {
	case <-c.confirmed:
	case <-time.After(5 * time.Second):
		t.Fatal("the repeater never confirmed the registration")
	}
	ts.stop()
	ev.wait(t, 5*time.Second, "disconnect", func() bool { return len(ev.conns) == 2 })
	time.Sleep(3 * time.Second) // the search interval grows to seconds
	c.mu.Lock()
	wait := time.Until(ch.nextSrch)
	c.mu.Unlock()
	start := time.Now()
	ts.start()
	ev.wait(t, 20*time.Second, "reconnect", func() bool { return len(ev.conns) == 3 && len(ev.updates) == 2 })
	t.Logf("reconnected %v after the restart; the next scheduled search was %v away", time.Since(start), wait)
}

// TestEmbeddedRepeater checks that a client with no repeater on the host runs
// one, registers with it, and receives a server's beacons through it.
func TestEmbeddedRepeater(t *testing.T) {
	rport := catest.FreePort(t)
	ts := newTestServer(t, rport, clientPVs(t)...)
	c := newClient(t, ts, func(c *Config) { c.NoRepeater = false })
	select {
	case <-c.confirmed:
	case <-time.After(5 * time.Second):
		t.Fatal("the embedded repeater never confirmed the registration")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		c.mu.Lock()
		n := len(c.beacons)
		c.mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no beacon arrived through the embedded repeater")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A second client finds the port taken and registers with the first one's repeater.
	c2 := newClient(t, ts, func(c *Config) { c.NoRepeater = false })
	select {
	case <-c2.confirmed:
	case <-time.After(5 * time.Second):
		t.Fatal("the second client was not confirmed by the first client's repeater")
	}
}
