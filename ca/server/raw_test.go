package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/pvhub/pvhub/ca/wire"
)

// startServer starts a server on a free loopback port with the given PVs. Beacons
// go to a port nobody listens on unless beaconPort is given.
func startServer(t testing.TB, cfg Config, pvs ...*PV) (*Server, *Table) {
	t.Helper()
	table := NewTable(pvs...)
	if cfg.Source == nil {
		cfg.Source = table
	}
	cfg.Port = -1
	if cfg.BeaconPort == 0 {
		cfg.BeaconPort = freeUDPPort(t)
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv, table
}

func freeUDPPort(t testing.TB) int {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// rawClient speaks CA at the message level, to test exactly what the server sends.
type rawClient struct {
	t    testing.TB
	conn net.Conn
	dec  *wire.Decoder
	buf  []byte
	q    []wire.Frame
}

func dial(t testing.TB, srv *Server) *rawClient {
	t.Helper()
	conn, err := net.Dial("tcp4", "127.0.0.1:"+strconv.Itoa(srv.TCPPort()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &rawClient{t: t, conn: conn, dec: wire.NewDecoder(64 << 20), buf: make([]byte, 1<<16)}
	v := c.next(time.Second)
	if v.Header.Command != wire.CmdVersion || v.Header.Count != wire.MinorVersion {
		t.Fatalf("first message %+v, want VERSION 13", v.Header)
	}
	return c
}

// hello sends the opening messages libca sends.
func (c *rawClient) hello() {
	c.send(&wire.Version{Minor: 13}, &wire.ClientName{Name: "tester"}, &wire.HostName{Name: "testhost"})
}

func (c *rawClient) send(ms ...wire.Message) {
	c.t.Helper()
	var b []byte
	for _, m := range ms {
		b = m.AppendTo(b)
	}
	c.sendBytes(b)
}

func (c *rawClient) sendBytes(b []byte) {
	c.t.Helper()
	if _, err := c.conn.Write(b); err != nil {
		c.t.Fatal(err)
	}
}

// next returns the next frame, failing the test after d.
func (c *rawClient) next(d time.Duration) wire.Frame {
	c.t.Helper()
	f, err := c.tryNext(d)
	if err != nil {
		c.t.Fatalf("waiting for a message: %v", err)
	}
	return f
}

func (c *rawClient) tryNext(d time.Duration) (wire.Frame, error) {
	if len(c.q) > 0 {
		f := c.q[0]
		c.q = c.q[1:]
		return f, nil
	}
	deadline := time.Now().Add(d)
	for {
		f, err := c.dec.Next()
		if err == nil {
			f.Payload = append([]byte(nil), f.Payload...)
			return f, nil
		}
		if !errors.Is(err, wire.ErrNeedMore) {
			return f, err
		}
		_ = c.conn.SetReadDeadline(deadline)
		n, err := c.conn.Read(c.buf)
		if n > 0 {
			c.dec.Feed(append([]byte(nil), c.buf[:n]...))
		}
		if err != nil {
			return wire.Frame{}, err
		}
	}
}

// expect returns the next frame and checks its command.
func (c *rawClient) expect(cmd wire.Command) wire.Frame {
	c.t.Helper()
	f := c.next(2 * time.Second)
	if f.Header.Command != cmd {
		c.t.Fatalf("got %s %+v, want %s", f.Header.Command, f.Header, cmd)
	}
	return f
}

// quiet checks that nothing arrives within d.
func (c *rawClient) quiet(d time.Duration) {
	c.t.Helper()
	if f, err := c.tryNext(d); err == nil {
		c.t.Fatalf("unexpected %s %+v", f.Header.Command, f.Header)
	}
}

// create opens a channel and returns its SID, native type and count.
func (c *rawClient) create(cid uint32, name string) (sid uint32, h wire.Header) {
	c.t.Helper()
	c.send(&wire.CreateChan{CID: cid, Minor: 13, Name: name})
	ar := c.expect(wire.CmdAccessRights)
	if ar.Header.P1 != cid {
		c.t.Fatalf("access rights for cid %d, want %d", ar.Header.P1, cid)
	}
	r := c.expect(wire.CmdCreateChan)
	if r.Header.P1 != cid {
		c.t.Fatalf("create reply for cid %d, want %d", r.Header.P1, cid)
	}
	return r.Header.P2, r.Header
}

func (c *rawClient) read(sid, ioid uint32, t wire.DBRType, count uint32) (wire.Header, *wire.DBR) {
	c.t.Helper()
	c.send(&wire.ReadNotify{DataType: t, Count: count, SID: sid, IOID: ioid})
	f := c.expect(wire.CmdReadNotify)
	if f.Header.P2 != ioid {
		c.t.Fatalf("read reply ioid %d, want %d", f.Header.P2, ioid)
	}
	d := &wire.DBR{}
	if wire.ECA(f.Header.P1) == wire.ECANormal {
		if err := wire.DecodeDBR(d, wire.DBRType(f.Header.DataType), int(f.Header.Count), f.Payload); err != nil {
			c.t.Fatal(err)
		}
	}
	return f.Header, d
}

func doubles(v ...float64) wire.Value { return wire.Value{Type: wire.DBRDouble, Doubles: v} }

func mustPV(t testing.TB, name string, o PVOptions) *PV {
	t.Helper()
	pv, err := NewPV(name, o)
	if err != nil {
		t.Fatal(err)
	}
	return pv
}

func errorText(t testing.TB, f wire.Frame) (*wire.Error, string) {
	t.Helper()
	m, err := wire.Decode(f, wire.ToClient)
	if err != nil {
		t.Fatal(err)
	}
	e := m.(*wire.Error)
	return e, fmt.Sprintf("%s: %s", e.Status.Name(), e.Text)
}
