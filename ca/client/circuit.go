package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pvhub/pvhub/ca/wire"
)

const (
	outLimit      = 4 << 20 // bytes of requests a circuit buffers before callers wait
	dialTimeout   = 5 * time.Second
	createRetry   = 5 // search index after CREATE_CH_FAIL (about 1 s)
	nsRetryMax    = 30 * time.Second
	circReadBytes = 64 << 10
)

// errIdle closes a circuit whose last channel was closed.
var errIdle = errors.New("no channels left")

// circuit is one TCP connection to a server, shared by all channels to it.
type circuit struct {
	c          *Client
	addr       netip.AddrPort
	nameServer bool
	log        *slog.Logger

	minor    atomic.Uint32 // the server's minor version
	lastRecv atomic.Int64  // unix nanoseconds of the last received bytes

	mu     sync.Mutex
	conn   net.Conn
	ready  bool // handshake sent; requests may be queued
	idle   bool // the last channel was closed: close once the queue is written
	closed bool
	err    error
	out    []byte
	space  *sync.Cond
	wake   chan struct{}
	chans  map[uint32]*Channel      // by CID
	subs   map[uint32]*Subscription // by subscription ID
	ops    map[uint32]*op           // by IOID
	done   chan struct{}            // closed when the connection is gone
}

func (c *Client) newCircuit(addr netip.AddrPort, nameServer bool) *circuit {
	circ := &circuit{c: c, addr: addr, nameServer: nameServer,
		log:  c.log.With("server", addr.String()),
		wake: make(chan struct{}, 1), chans: map[uint32]*Channel{}, subs: map[uint32]*Subscription{}, ops: map[uint32]*op{},
		done: make(chan struct{})}
	circ.space = sync.NewCond(&circ.mu)
	return circ
}

func (circ *circuit) serverMinor() uint16 { return uint16(circ.minor.Load()) }

// run connects and serves the circuit; a name-server circuit reconnects with
// back-off until the client closes.
func (circ *circuit) run() {
	defer circ.c.wg.Done()
	if !circ.nameServer {
		circ.serve()
		return
	}
	backoff := time.Second
	for {
		start := time.Now()
		circ.serve()
		if circ.c.ctx.Err() != nil {
			return
		}
		if time.Since(start) > nsRetryMax {
			backoff = time.Second
		}
		select {
		case <-time.After(backoff):
		case <-circ.c.ctx.Done():
			return
		}
		backoff = min(2*backoff, nsRetryMax)
		circ.reset()
	}
}

// reset prepares a name-server circuit for its next connection.
func (circ *circuit) reset() {
	circ.mu.Lock()
	defer circ.mu.Unlock()
	circ.conn, circ.ready, circ.closed, circ.err, circ.out = nil, false, false, nil, nil
	circ.done = make(chan struct{})
}

// serve dials, performs the handshake and reads until the connection ends,
// then hands every channel back to the search.
func (circ *circuit) serve() {
	d := net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	conn, err := d.DialContext(circ.c.ctx, "tcp4", circ.addr.String())
	if err != nil {
		if circ.c.ctx.Err() == nil {
			circ.log.Warn("cannot connect to CA server", "error", err)
		}
		circ.fail(err)
		circ.cleanup()
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	circ.lastRecv.Store(time.Now().UnixNano())
	circ.minor.Store(11) // assumed until the server's VERSION arrives
	b := (&wire.Version{Minor: wire.MinorVersion}).AppendTo(nil)
	b = (&wire.ClientName{Name: circ.c.cfg.User}).AppendTo(b)
	b = (&wire.HostName{Name: circ.c.cfg.Host}).AppendTo(b)
	circ.mu.Lock()
	if circ.closed {
		circ.mu.Unlock()
		_ = conn.Close()
		circ.cleanup()
		return
	}
	circ.conn = conn
	for _, ch := range circ.chans {
		b = (&wire.CreateChan{CID: ch.cid, Minor: wire.MinorVersion, Name: ch.name}).AppendTo(b)
	}
	circ.out = append(circ.out, b...)
	circ.ready = true
	circ.mu.Unlock()
	circ.log.Debug("circuit connected")

	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); circ.writeLoop() }()
	go func() { defer wg.Done(); circ.watchdog() }()
	circ.signal()
	err = circ.readLoop(conn)
	circ.fail(err)
	wg.Wait()
	circ.cleanup()
}

func (circ *circuit) signal() {
	select {
	case circ.wake <- struct{}{}:
	default:
	}
}

// fail closes the connection once; the reader then cleans up.
func (circ *circuit) fail(err error) {
	circ.mu.Lock()
	if circ.closed {
		circ.mu.Unlock()
		return
	}
	circ.closed, circ.err = true, err
	conn := circ.conn
	circ.space.Broadcast()
	close(circ.done)
	circ.mu.Unlock()
	if conn != nil {
		_ = conn.Close()
	}
	circ.signal()
	if err != errIdle && circ.c.ctx.Err() == nil {
		circ.log.Info("circuit closed", "reason", err)
	}
}

// cleanup runs on the circuit's goroutine after the connection ended: pending
// operations fail, and every channel reports the disconnection and searches again.
func (circ *circuit) cleanup() {
	if !circ.nameServer {
		circ.c.circuitGone(circ)
	}
	circ.mu.Lock()
	chans, ops, reason := circ.chans, circ.ops, circ.err
	circ.chans, circ.ops, circ.subs = map[uint32]*Channel{}, map[uint32]*op{}, map[uint32]*Subscription{}
	circ.mu.Unlock()
	for _, o := range ops {
		o.finish(nil, fmt.Errorf("%s: %w (%v)", o.ch.name, ErrDisconnected, reason))
	}
	for _, ch := range chans {
		ch.lost(circ, reason)
	}
}

// send queues a request, waiting while too many bytes are queued.
func (circ *circuit) send(msg []byte) { circ.push(msg, true) }

// push queues a request; with wait false it never waits (for the reader's own
// requests, such as re-established subscriptions).
func (circ *circuit) push(msg []byte, wait bool) {
	circ.mu.Lock()
	for wait && !circ.closed && len(circ.out) > 0 && len(circ.out)+len(msg) > outLimit {
		circ.space.Wait()
	}
	if circ.closed {
		circ.mu.Unlock()
		return
	}
	circ.out = append(circ.out, msg...)
	ready := circ.ready
	circ.mu.Unlock()
	if ready {
		circ.signal()
	}
}

func (circ *circuit) writeLoop() {
	var buf []byte
	for {
		circ.mu.Lock()
		for !circ.closed && len(circ.out) == 0 && !circ.idleLocked() {
			circ.mu.Unlock()
			<-circ.wake
			circ.mu.Lock()
		}
		if circ.closed {
			circ.mu.Unlock()
			return
		}
		if len(circ.out) == 0 { // idle, with everything written
			circ.mu.Unlock()
			circ.fail(errIdle)
			return
		}
		buf, circ.out = circ.out, buf[:0]
		conn := circ.conn
		circ.space.Broadcast()
		circ.mu.Unlock()
		_ = conn.SetWriteDeadline(time.Now().Add(circ.c.cfg.ConnTimeout))
		if _, err := conn.Write(buf); err != nil {
			circ.fail(fmt.Errorf("send: %w", err))
			return
		}
		if cap(buf) > 1<<20 {
			buf = nil
		}
	}
}

// watchdog probes a silent circuit with ECHO and declares it dead when the echo
// stays unanswered.
func (circ *circuit) watchdog() {
	tmo, echoTmo := circ.c.cfg.ConnTimeout, circ.c.cfg.EchoTimeout
	t := time.NewTimer(tmo)
	defer t.Stop()
	for {
		select {
		case <-circ.done:
			return
		case <-t.C:
		}
		idle := time.Since(time.Unix(0, circ.lastRecv.Load()))
		if idle < tmo {
			t.Reset(tmo - idle)
			continue
		}
		sent := time.Now().UnixNano()
		circ.push((&wire.Echo{}).AppendTo(nil), false)
		t.Reset(echoTmo)
		select {
		case <-circ.done:
			return
		case <-t.C:
		}
		if circ.lastRecv.Load() < sent {
			circ.fail(fmt.Errorf("%w: no reply to an echo within %v", wire.ECAUnrespTmo, echoTmo))
			return
		}
		t.Reset(tmo)
	}
}

func (circ *circuit) readLoop(conn net.Conn) error {
	dec := wire.NewDecoder(circ.c.cfg.MaxArrayBytes + wire.ExtHeaderSize)
	buf := make([]byte, circReadBytes)
	for {
		n, err := conn.Read(buf)
		if n > 0 {
			circ.lastRecv.Store(time.Now().UnixNano())
			dec.Feed(buf[:n])
			for {
				f, derr := dec.Next()
				if derr == nil {
					circ.dispatch(f)
					continue
				}
				if errors.Is(derr, wire.ErrNeedMore) {
					break
				}
				var over *wire.OversizeError
				if errors.As(derr, &over) {
					circ.oversize(over)
					continue
				}
				return derr
			}
		}
		if err != nil {
			return err
		}
	}
}

// oversize reports a reply above EPICS_CA_MAX_ARRAY_BYTES to whoever waits for it.
func (circ *circuit) oversize(e *wire.OversizeError) {
	h := e.Header
	text := fmt.Sprintf("reply of %d bytes exceeds EPICS_CA_MAX_ARRAY_BYTES (%d)", h.PayloadSize, circ.c.cfg.MaxArrayBytes)
	switch h.Command {
	case wire.CmdReadNotify:
		if o := circ.takeOp(h.P2); o != nil {
			o.finish(nil, &Error{PV: o.ch.name, Op: o.kind, Status: wire.ECATooLarge, Text: text})
		}
	case wire.CmdEventAdd:
		if s := circ.sub(h.P2); s != nil {
			s.upd = Update{Status: wire.ECATooLarge, Err: &Error{PV: s.ch.name, Op: "monitor", Status: wire.ECATooLarge, Text: text}}
			s.fn(&s.upd)
		}
	default:
		circ.log.Warn("oversize message ignored", "command", h.Command.String(), "bytes", h.PayloadSize)
	}
}

func (circ *circuit) channel(cid uint32) *Channel {
	circ.mu.Lock()
	defer circ.mu.Unlock()
	return circ.chans[cid]
}

func (circ *circuit) sub(id uint32) *Subscription {
	circ.mu.Lock()
	defer circ.mu.Unlock()
	return circ.subs[id]
}

// dispatch handles one message from the server, on the reader goroutine.
func (circ *circuit) dispatch(f wire.Frame) {
	h := f.Header
	switch h.Command {
	case wire.CmdEventAdd:
		s := circ.sub(h.P2)
		if s == nil {
			// A cancel confirmation (no payload), or an update that crossed the
			// cancel. libca treats every payload-less EVENT_ADD as a confirmation;
			// a live subscription here is an update of zero elements instead (a
			// count-0 monitor of an empty array in a plain type).
			return
		}
		s.upd = Update{DBR: &s.dbr, Status: wire.ECA(h.P1)}
		if s.upd.Status != wire.ECANormal {
			s.upd.DBR = nil
			s.upd.Err = &Error{PV: s.ch.name, Op: "monitor", Status: s.upd.Status}
		} else if err := wire.DecodeDBR(&s.dbr, wire.DBRType(h.DataType), int(h.Count), f.Payload); err != nil {
			s.upd = Update{Status: wire.ECABadType, Err: fmt.Errorf("%s: monitor update: %w", s.ch.name, err)}
		}
		s.fn(&s.upd)
	case wire.CmdReadNotify:
		o := circ.takeOp(h.P2)
		if o == nil {
			return
		}
		if st := wire.ECA(h.P1); st != wire.ECANormal {
			o.finish(nil, &Error{PV: o.ch.name, Op: o.kind, Status: st})
			return
		}
		d := &wire.DBR{}
		if err := wire.DecodeDBR(d, wire.DBRType(h.DataType), int(h.Count), f.Payload); err != nil {
			o.finish(nil, fmt.Errorf("%s: get: %w", o.ch.name, err))
			return
		}
		o.finish(d, nil)
	case wire.CmdWriteNotify:
		if o := circ.takeOp(h.P2); o != nil {
			if st := wire.ECA(h.P1); st != wire.ECANormal {
				o.finish(nil, &Error{PV: o.ch.name, Op: o.kind, Status: st})
			} else {
				o.finish(nil, nil)
			}
		}
	case wire.CmdVersion:
		if h.Count != 0 {
			circ.minor.Store(h.Count)
		}
	case wire.CmdAccessRights:
		if ch := circ.channel(h.P1); ch != nil {
			ch.setRights(circ, h.P2)
		}
	case wire.CmdCreateChan:
		if ch := circ.channel(h.P1); ch != nil {
			ch.connected(circ, h.P2, wire.DBRType(h.DataType), int(h.Count))
		}
	case wire.CmdCreateChFail:
		circ.dropChannel(h.P1, errors.New("the server refused to create the channel"), createRetry)
	case wire.CmdServerDisconn:
		circ.dropChannel(h.P1, errors.New("the server removed the channel"), 0)
	case wire.CmdError:
		circ.onError(f)
	case wire.CmdSearch:
		ip := circ.addr.Addr()
		if h.P1 != wire.BeaconIPUnknown {
			ip = netip.AddrFrom4([4]byte{byte(h.P1 >> 24), byte(h.P1 >> 16), byte(h.P1 >> 8), byte(h.P1)})
		}
		circ.c.found(h.P2, netip.AddrPortFrom(ip, h.DataType), "tcp "+circ.addr.String())
	case wire.CmdEcho, wire.CmdReadSync, wire.CmdClearChannel, wire.CmdNotFound:
	default:
		circ.log.Debug("unexpected message ignored", "command", h.Command.String())
	}
}

// onError routes CA_PROTO_ERROR to the request it concerns.
func (circ *circuit) onError(f wire.Frame) {
	m, err := wire.Decode(f, wire.ToClient)
	if err != nil {
		circ.log.Warn("undecodable error message", "error", err)
		return
	}
	e := m.(*wire.Error)
	switch e.Request.Command {
	case wire.CmdReadNotify, wire.CmdWriteNotify:
		if o := circ.takeOp(e.Request.P2); o != nil {
			o.finish(nil, &Error{PV: o.ch.name, Op: o.kind, Status: e.Status, Text: e.Text})
		}
	case wire.CmdEventAdd:
		if s := circ.sub(e.Request.P2); s != nil {
			s.upd = Update{Status: e.Status, Err: &Error{PV: s.ch.name, Op: "monitor", Status: e.Status, Text: e.Text}}
			s.fn(&s.upd)
		}
	case wire.CmdWrite:
		if ch := circ.channel(e.CID); ch != nil {
			ch.reportError(&Error{PV: ch.name, Op: "put", Status: e.Status, Text: e.Text})
		}
	case wire.CmdCreateChan:
		circ.dropChannel(e.Request.P1, &Error{PV: "", Op: "create channel", Status: e.Status, Text: e.Text}, createRetry)
	default:
		circ.log.Warn("server reported an error", "request", e.Request.Command.String(), "status", e.Status.Name(), "text", e.Text)
	}
}

// addChannel asks the server for ch.
func (circ *circuit) addChannel(ch *Channel) {
	ch.mu.Lock()
	if ch.state == Closed {
		ch.mu.Unlock()
		return
	}
	ch.circ = circ
	ch.mu.Unlock()
	circ.mu.Lock()
	if circ.closed {
		circ.mu.Unlock()
		ch.lost(circ, circ.err)
		return
	}
	circ.chans[ch.cid] = ch
	circ.idle = false
	ready := circ.ready
	circ.mu.Unlock()
	if ready {
		circ.push((&wire.CreateChan{CID: ch.cid, Minor: wire.MinorVersion, Name: ch.name}).AppendTo(nil), false)
	}
}

// dropChannel handles a channel the server refused or removed.
func (circ *circuit) dropChannel(cid uint32, reason error, retryIdx int) {
	circ.mu.Lock()
	ch := circ.chans[cid]
	delete(circ.chans, cid)
	for id, s := range circ.subs {
		if s.ch == ch {
			delete(circ.subs, id)
		}
	}
	circ.mu.Unlock()
	if ch == nil {
		return
	}
	if !ch.detach(circ, reason) {
		return
	}
	circ.c.mu.Lock()
	if circ.c.chans[ch.cid] == ch {
		circ.c.searchLocked(ch, retryIdx, time.Now().Add(circ.c.period(retryIdx)))
	}
	circ.c.mu.Unlock()
}

// removeChannel forgets a channel its user closed, and closes the circuit
// when no channel is left.
func (circ *circuit) removeChannel(ch *Channel, sid uint32, connected bool) {
	circ.mu.Lock()
	delete(circ.chans, ch.cid)
	for id, s := range circ.subs {
		if s.ch == ch {
			delete(circ.subs, id)
		}
	}
	circ.idle = len(circ.chans) == 0 && !circ.nameServer
	circ.mu.Unlock()
	if connected {
		circ.push((&wire.ClearChannel{SID: sid, CID: ch.cid}).AppendTo(nil), false)
	}
	circ.signal()
}

// idleLocked reports whether the circuit should close because its last channel
// was closed and none was added since (libca closes such circuits too).
func (circ *circuit) idleLocked() bool {
	return circ.idle && circ.ready && len(circ.chans) == 0
}

// startSub sends EVENT_ADD for s on this circuit.
func (circ *circuit) startSub(s *Subscription, sid uint32, typ wire.DBRType, count int) {
	t, n := s.resolve(typ, count, circ.serverMinor())
	circ.mu.Lock()
	if circ.closed {
		circ.mu.Unlock()
		return
	}
	circ.subs[s.id] = s
	circ.mu.Unlock()
	circ.push((&wire.EventAdd{DataType: t, Count: n, SID: sid, SubID: s.id, Mask: s.opts.Mask}).AppendTo(nil), false)
}

// stopSub sends EVENT_CANCEL for s.
func (circ *circuit) stopSub(s *Subscription, sid uint32) {
	circ.mu.Lock()
	_, ok := circ.subs[s.id]
	delete(circ.subs, s.id)
	circ.mu.Unlock()
	if ok {
		t, n := s.resolve(s.ch.Info().Type, s.ch.Info().Count, circ.serverMinor())
		circ.push((&wire.EventCancel{DataType: t, Count: n, SID: sid, SubID: s.id}).AppendTo(nil), false)
	}
}

// sendSearch sends a search datagram's bytes over a name-server circuit.
func (circ *circuit) sendSearch(dgram []byte) {
	circ.mu.Lock()
	ok := circ.ready && !circ.closed
	circ.mu.Unlock()
	if ok {
		circ.push(dgram, false)
	}
}

// op is a pending get or put.
type op struct {
	id   uint32
	ch   *Channel
	kind string
	done chan opResult
}

type opResult struct {
	dbr *wire.DBR
	err error
}

func (circ *circuit) newOp(ch *Channel, kind string) *op {
	o := &op{id: circ.c.nextID(), ch: ch, kind: kind, done: make(chan opResult, 1)}
	circ.mu.Lock()
	defer circ.mu.Unlock()
	if circ.closed {
		o.finish(nil, fmt.Errorf("%s: %w", ch.name, ErrDisconnected))
		return o
	}
	circ.ops[o.id] = o
	return o
}

func (circ *circuit) takeOp(id uint32) *op {
	circ.mu.Lock()
	defer circ.mu.Unlock()
	o := circ.ops[id]
	delete(circ.ops, id)
	return o
}

func (circ *circuit) dropOp(o *op) {
	circ.mu.Lock()
	defer circ.mu.Unlock()
	delete(circ.ops, o.id)
}

func (o *op) finish(d *wire.DBR, err error) {
	select {
	case o.done <- opResult{d, err}:
	default:
	}
}

func (o *op) wait(ctx context.Context) (opResult, error) {
	select {
	case r := <-o.done:
		return r, r.err
	case <-ctx.Done():
		return opResult{}, fmt.Errorf("%s: %s: %w", o.ch.name, o.kind, ctx.Err())
	}
}
