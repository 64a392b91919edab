package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pvhub/pvhub/ca/wire"
)

const (
	// subQueueLen and subQueueBytes bound the updates one subscription may have
	// queued (by count, and by the size of their values) before a newer update
	// replaces the newest queued one. One update is always kept, however large.
	// With EVENTS_OFF in force the limit is 1: only the latest value is kept.
	subQueueLen   = 64
	subQueueBytes = 256 << 10
	// outLimit bounds the replies a circuit buffers for a client that does not
	// read them; beyond it the circuit stops reading requests until it drains.
	outLimit = 4 << 20
	// maxBadInputLogs bounds the log lines one circuit can cause.
	maxBadInputLogs = 10
	readBufSize     = 64 << 10
	// drainTimeout bounds how long a circuit closed for a protocol error waits
	// for the client to take the final ERROR message.
	drainTimeout = 5 * time.Second
)

// channel is one client channel on a circuit.
type channel struct {
	sid, cid uint32
	pv       *PV
	circ     *circuit
	subs     map[uint32]*subscription // guarded by circ.chMu
}

// subscription is one EVENT_ADD. Its queue is guarded by circ.mu.
type subscription struct {
	id    uint32
	ch    *channel
	circ  *circuit
	typ   wire.DBRType
	count uint32 // 0: the current length with every update
	mask  uint16

	queue     []*wire.DBR // pending updates, oldest first
	qbytes    int         // value bytes in queue
	queued    bool        // in circ.ready
	cancelled bool
	dropped   uint64
}

type pending struct {
	s  *subscription
	st *wire.DBR
}

// circuit is one TCP connection from a client.
type circuit struct {
	srv  *Server
	conn net.Conn
	log  *slog.Logger
	ctx  context.Context
	stop context.CancelFunc

	// Reader-owned state.
	dec      *wire.Decoder
	scratch  []byte
	dbr      wire.DBR
	badLogs  int
	minor    uint16
	priority uint16

	// Channel tables, guarded by chMu (the reader, and PV.Close from any goroutine).
	chMu    sync.Mutex
	client  Client
	chans   map[uint32]*channel
	subs    map[uint32]*subscription
	nextSID uint32

	// Writer hand-off, guarded by mu.
	mu        sync.Mutex
	out       []byte
	ready     []*subscription
	eventsOff bool
	closed    bool
	drainThen atomic.Bool // close once out is written; read per request without the lock
	space     *sync.Cond
	wake      chan struct{}
	done      chan struct{} // closed when both goroutines are gone
}

func newCircuit(s *Server, conn net.Conn) *circuit {
	ctx, stop := context.WithCancel(s.ctx)
	c := &circuit{
		srv: s, conn: conn, ctx: ctx, stop: stop,
		log:    s.log.With("client", conn.RemoteAddr().String()),
		dec:    wire.NewDecoder(s.cfg.MaxArrayBytes + wire.ExtHeaderSize),
		client: Client{Addr: conn.RemoteAddr().String()},
		chans:  map[uint32]*channel{}, subs: map[uint32]*subscription{},
		wake: make(chan struct{}, 1), done: make(chan struct{}),
	}
	c.space = sync.NewCond(&c.mu)
	return c
}

// run serves the circuit until the peer goes away or the server closes.
func (c *circuit) run() {
	if tc, ok := c.conn.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
		_ = tc.SetKeepAlive(true)
		_ = tc.SetKeepAlivePeriod(30 * time.Second)
	}
	// The server announces its version at once, as an IOC does.
	c.send((&wire.Version{Minor: wire.MinorVersion}).AppendTo(c.scratch[:0]))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.writeLoop()
	}()
	reason := c.readLoop()
	if !c.isDraining() || c.ctx.Err() != nil {
		c.shutdown(reason)
	}
	// After a fatal protocol error the writer sends the ERROR and then closes.
	wg.Wait()
	c.cleanup()
	close(c.done)
}

// shutdown closes the connection once; both loops then end.
func (c *circuit) shutdown(reason error) {
	c.mu.Lock()
	already := c.closed
	c.closed = true
	c.space.Broadcast()
	c.mu.Unlock()
	if !already {
		c.stop()
		_ = c.conn.Close()
		c.log.Debug("circuit closed", "reason", reason)
	}
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// cleanup drops every channel and subscription of the circuit.
func (c *circuit) cleanup() {
	c.chMu.Lock()
	defer c.chMu.Unlock()
	for _, ch := range c.chans {
		c.dropChannelLocked(ch)
	}
}

func (c *circuit) readLoop() error {
	buf := make([]byte, readBufSize)
	for {
		n, err := c.conn.Read(buf)
		if n > 0 {
			c.dec.Feed(buf[:n])
			for {
				f, derr := c.dec.Next()
				if derr == nil {
					c.handle(f)
					if c.isDraining() {
						return errors.New("closed after a protocol error")
					}
					continue
				}
				if errors.Is(derr, wire.ErrNeedMore) {
					break
				}
				var over *wire.OversizeError
				if errors.As(derr, &over) {
					c.badInput("oversize message", "command", over.Header.Command.String(), "bytes", over.Header.PayloadSize)
					c.sendError(over.Header, wire.ECATooLarge,
						fmt.Sprintf("payload of %d bytes exceeds the server's EPICS_CA_MAX_ARRAY_BYTES of %d", over.Header.PayloadSize, c.srv.cfg.MaxArrayBytes))
					continue
				}
				c.badInput("undecodable stream, closing the circuit", "error", derr.Error())
				c.fatal(f.Header, wire.ECAInternal, "misaligned protocol rejected: "+derr.Error())
				return derr
			}
		}
		if err != nil {
			return err
		}
	}
}

func (c *circuit) isDraining() bool { return c.drainThen.Load() }

// writeLoop sends queued replies and subscription updates in batches.
func (c *circuit) writeLoop() {
	var buf, spare []byte
	var batch []pending
	var ready []*subscription
	for {
		c.mu.Lock()
		for !c.closed && len(c.out) == 0 && (c.eventsOff || len(c.ready) == 0) {
			c.mu.Unlock()
			<-c.wake
			c.mu.Lock()
		}
		if c.closed {
			c.mu.Unlock()
			return
		}
		buf, c.out = c.out, spare[:0]
		if !c.eventsOff {
			ready, c.ready = c.ready, ready[:0]
			batch = batch[:0]
			for _, s := range ready {
				s.queued = false
				for _, st := range s.queue {
					batch = append(batch, pending{s, st})
				}
				s.clearQueue()
			}
			ready = ready[:0]
		} else {
			batch = batch[:0]
		}
		drain := c.drainThen.Load()
		c.space.Broadcast()
		c.mu.Unlock()

		for _, p := range batch {
			buf = c.encodeUpdate(buf, p.s, p.st)
		}
		clear(batch)
		if len(buf) > 0 {
			if _, err := c.conn.Write(buf); err != nil {
				c.shutdown(err)
				return
			}
		}
		if drain {
			c.shutdown(errors.New("closed after a protocol error"))
			return
		}
		if cap(buf) <= 1<<20 {
			spare = buf[:0]
		} else {
			spare = nil
		}
	}
}

// encodeUpdate appends one subscription update in the subscription's type.
func (c *circuit) encodeUpdate(b []byte, s *subscription, st *wire.DBR) []byte {
	st, cur := s.ch.pv.view(st, s.typ)
	n := int(s.count)
	if n == 0 || s.ch.pv.isText(s.typ) {
		n = cur
	}
	if s.typ.Size(n) > c.srv.cfg.MaxArrayBytes {
		req := wire.Header{Command: wire.CmdEventAdd, DataType: uint16(s.typ), Count: s.count, P1: s.ch.sid, P2: s.id}
		return (&wire.Error{CID: s.ch.cid, Status: wire.ECATooLarge, Request: req,
			Text: fmt.Sprintf("%s: update of %d bytes exceeds EPICS_CA_MAX_ARRAY_BYTES", s.ch.pv.name, s.typ.Size(n))}).AppendTo(b)
	}
	out, err := wire.AppendDBRMessage(b, wire.CmdEventAdd, s.typ, n, uint32(wire.ECANormal), s.id, st)
	if err != nil {
		return wire.AppendZeroDBRMessage(b, wire.CmdEventAdd, s.typ, n, uint32(wire.ECAGetFail), s.id)
	}
	return out
}

// enqueue queues an update for s. It never blocks on the client: when the
// subscription's queue is full (or events are off) the newest queued update is
// replaced.
func (c *circuit) enqueue(s *subscription, st *wire.DBR) {
	c.mu.Lock()
	if s.cancelled || c.closed {
		c.mu.Unlock()
		return
	}
	size := valueBytes(st)
	full := len(s.queue) > 0 && (c.eventsOff || len(s.queue) >= subQueueLen || s.qbytes+size > subQueueBytes)
	if full {
		last := len(s.queue) - 1
		s.qbytes += size - valueBytes(s.queue[last])
		s.queue[last] = st
		s.dropped++
	} else {
		s.queue = append(s.queue, st)
		s.qbytes += size
	}
	wake := false
	if !s.queued {
		s.queued = true
		c.ready = append(c.ready, s)
		wake = !c.eventsOff
	}
	c.mu.Unlock()
	if wake {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

// send hands an encoded message to the writer. The reader waits while the
// client has more than outLimit bytes of unread replies, so a client that never
// reads cannot grow the server's memory by sending requests.
func (c *circuit) send(msg []byte) { c.push(msg, true) }

// push is send for callers other than the reader, which must never wait for a
// client; their messages are few and small.
func (c *circuit) push(msg []byte, wait bool) {
	if len(msg) == 0 {
		return
	}
	c.mu.Lock()
	for wait && !c.closed && len(c.out) > 0 && len(c.out)+len(msg) > outLimit {
		c.space.Wait()
	}
	if !c.closed {
		c.out = append(c.out, msg...)
	}
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// sendError sends CA_PROTO_ERROR about the request h.
func (c *circuit) sendError(h wire.Header, status wire.ECA, text string) {
	cid := uint32(wire.BeaconIPUnknown)
	switch h.Command {
	case wire.CmdEventAdd, wire.CmdEventCancel, wire.CmdRead, wire.CmdWrite, wire.CmdReadNotify, wire.CmdWriteNotify:
		c.chMu.Lock()
		if ch := c.chans[h.P1]; ch != nil {
			cid = ch.cid
		}
		c.chMu.Unlock()
	case wire.CmdSearch:
		cid = h.P1
	}
	c.scratch = (&wire.Error{CID: cid, Status: status, Request: h, Text: text}).AppendTo(c.scratch[:0])
	c.send(c.scratch)
}

// fatal sends an error and closes the circuit once it is written.
func (c *circuit) fatal(h wire.Header, status wire.ECA, text string) {
	c.sendError(h, status, text)
	// A client that does not read gets a few seconds to take the error.
	_ = c.conn.SetWriteDeadline(time.Now().Add(drainTimeout))
	c.drainThen.Store(true)
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// badInput logs a client's protocol error, at most maxBadInputLogs times per circuit.
func (c *circuit) badInput(msg string, args ...any) {
	c.badLogs++
	switch {
	case c.badLogs < maxBadInputLogs:
		c.log.Warn("bad request from client: "+msg, args...)
	case c.badLogs == maxBadInputLogs:
		c.log.Warn("bad request from client: "+msg+" (further bad requests on this circuit are not logged)", args...)
	}
}

// handle processes one request. It runs on the reader goroutine.
func (c *circuit) handle(f wire.Frame) {
	h := f.Header
	switch h.Command {
	case wire.CmdVersion:
		c.onVersion(h)
	case wire.CmdEcho:
		c.send((&wire.Echo{}).AppendTo(c.scratch[:0]))
	case wire.CmdReadSync:
		c.send((&wire.ReadSync{Header: h}).AppendTo(c.scratch[:0]))
	case wire.CmdClientName, wire.CmdHostName:
		c.onName(f)
	case wire.CmdCreateChan:
		c.onCreateChan(f)
	case wire.CmdReadNotify, wire.CmdRead:
		c.onRead(h)
	case wire.CmdWrite, wire.CmdWriteNotify:
		c.onWrite(f)
	case wire.CmdEventAdd:
		c.onEventAdd(f)
	case wire.CmdEventCancel:
		c.onEventCancel(h)
	case wire.CmdEventsOff, wire.CmdEventsOn:
		c.mu.Lock()
		c.eventsOff = h.Command == wire.CmdEventsOff
		c.mu.Unlock()
		select {
		case c.wake <- struct{}{}:
		default:
		}
	case wire.CmdClearChannel:
		c.onClearChannel(h)
	case wire.CmdSearch:
		c.onTCPSearch(f)
	case wire.CmdSnapshot, wire.CmdBuild, wire.CmdReadBuild, wire.CmdSignal:
		c.badInput("obsolete command", "command", h.Command.String())
		c.sendError(h, wire.ECAAnachronism, fmt.Sprintf("command %s is obsolete and not served", h.Command))
	default:
		if h.Command <= wire.MaxCommand {
			c.badInput("command not valid from a client", "command", h.Command.String())
			c.sendError(h, wire.ECAInternal, fmt.Sprintf("command %s is not a client request", h.Command))
		} else {
			c.badInput("unknown command", "command", uint16(h.Command))
			c.sendError(h, wire.ECAInternal, fmt.Sprintf("unknown command %d", uint16(h.Command)))
		}
	}
}

func (c *circuit) onVersion(h wire.Header) {
	if h.Count != 0 {
		if h.Count < wire.MinSupportedMinor {
			c.badInput("client protocol too old", "minor", h.Count)
			c.fatal(h, wire.ECADefunct, fmt.Sprintf("CA protocol 4.%d is too old; 4.%d or later is required", h.Count, wire.MinSupportedMinor))
			return
		}
		c.minor = uint16(min(h.Count, 0xFFFF))
	}
	if h.DataType > wire.MaxPriority {
		// Inside a TCP name-server search batch the data type is the sequence flag,
		// never above 99; a larger value is a broken client.
		c.badInput("priority out of range", "priority", h.DataType)
		c.sendError(h, wire.ECABadPriority, fmt.Sprintf("priority %d out of range 0..%d", h.DataType, wire.MaxPriority))
		return
	}
	c.priority = h.DataType
}

func (c *circuit) onName(f wire.Frame) {
	m, err := wire.Decode(f, wire.ToServer)
	if err != nil {
		c.badInput(err.Error())
		c.sendError(f.Header, wire.ECAStrTooBig, err.Error())
		return
	}
	c.chMu.Lock()
	switch m := m.(type) {
	case *wire.ClientName:
		c.client.User = m.Name
	case *wire.HostName:
		c.client.Host = m.Name
	}
	c.chMu.Unlock()
}

func (c *circuit) onCreateChan(f wire.Frame) {
	h := f.Header
	m, err := wire.Decode(f, wire.ToServer)
	if err != nil {
		c.badInput("bad channel name", "error", err.Error())
		c.send((&wire.CreateChFail{CID: h.P1}).AppendTo(c.scratch[:0]))
		return
	}
	req := m.(*wire.CreateChan)
	if req.Minor < wire.MinSupportedMinor {
		c.badInput("client protocol too old", "minor", req.Minor)
		c.fatal(h, wire.ECADefunct, fmt.Sprintf("CA protocol 4.%d is too old", req.Minor))
		return
	}
	c.minor = uint16(min(req.Minor, 0xFFFF))
	pv, err := c.srv.cfg.Source.Open(c.ctx, req.Name)
	if err != nil || pv == nil {
		c.log.Debug("channel create failed", "pv", req.Name, "error", err)
		c.send((&wire.CreateChFail{CID: req.CID}).AppendTo(c.scratch[:0]))
		return
	}
	c.chMu.Lock()
	for c.chans[c.nextSID] != nil {
		c.nextSID++
	}
	ch := &channel{sid: c.nextSID, cid: req.CID, pv: pv, circ: c, subs: map[uint32]*subscription{}}
	c.nextSID++
	if !pv.attach(ch) {
		c.chMu.Unlock()
		c.send((&wire.CreateChFail{CID: req.CID}).AppendTo(c.scratch[:0]))
		return
	}
	c.chans[ch.sid] = ch
	count := uint32(pv.capacity)
	if c.minor < 9 && count >= 0xFFFF {
		count = 0xFFFE
	}
	b := (&wire.AccessRights{CID: req.CID, Rights: rights(pv)}).AppendTo(c.scratch[:0])
	b = (&wire.CreateChanResponse{DataType: pv.typ, Count: count, CID: req.CID, SID: ch.sid}).AppendTo(b)
	c.scratch = b
	c.chMu.Unlock()
	c.send(b)
}

func rights(pv *PV) uint32 {
	if pv.readOnly {
		return wire.AccessRead
	}
	return wire.AccessRead | wire.AccessWrite
}

// lookup returns the channel with the request's SID.
func (c *circuit) lookup(sid uint32) *channel {
	c.chMu.Lock()
	defer c.chMu.Unlock()
	return c.chans[sid]
}

// readCount resolves a requested element count: 0 means the current length for
// clients of protocol 4.13 and later.
func (c *circuit) readCount(req uint32, pv *PV, cur int) (int, error) {
	switch {
	case req == 0 && c.minor >= 13:
		return cur, nil
	case req == 0:
		return pv.capacity, nil
	case req > uint32(pv.capacity):
		return 0, fmt.Errorf("%s: count %d exceeds the element count %d", pv.name, req, pv.capacity)
	}
	return int(req), nil
}

func (c *circuit) onRead(h wire.Header) {
	ch := c.lookup(h.P1)
	if ch == nil {
		c.badInput("read of unknown channel", "sid", h.P1)
		c.sendError(h, wire.ECABadChID, fmt.Sprintf("unknown channel id %d", h.P1))
		return
	}
	t := wire.DBRType(h.DataType)
	if !t.Readable() {
		c.badInput("read of invalid type", "type", h.DataType)
		c.sendError(h, wire.ECABadType, fmt.Sprintf("%s: %s cannot be read", ch.pv.name, t))
		return
	}
	st, cur := ch.pv.view(ch.pv.Snapshot(), t)
	n, err := c.readCount(h.Count, ch.pv, cur)
	if err != nil {
		c.sendError(h, wire.ECABadCount, err.Error())
		return
	}
	if ch.pv.isText(t) {
		n = cur // the text is one string, whatever count was asked for
	}
	if t.Size(n) > c.srv.cfg.MaxArrayBytes {
		c.sendError(h, wire.ECATooLarge, fmt.Sprintf("%s: %d bytes exceed EPICS_CA_MAX_ARRAY_BYTES (%d)", ch.pv.name, t.Size(n), c.srv.cfg.MaxArrayBytes))
		return
	}
	p1 := uint32(wire.ECANormal)
	if h.Command == wire.CmdRead {
		p1 = ch.cid
	}
	b, err := wire.AppendDBRMessage(c.scratch[:0], h.Command, t, n, p1, h.P2, st)
	if err != nil {
		if h.Command == wire.CmdRead {
			c.sendError(h, wire.ECAGetFail, fmt.Sprintf("%s: %v", ch.pv.name, err))
			return
		}
		b = wire.AppendZeroDBRMessage(c.scratch[:0], h.Command, t, n, uint32(wire.ECAGetFail), h.P2)
	}
	c.scratch = b
	c.send(b)
}

func (c *circuit) onWrite(f wire.Frame) {
	h := f.Header
	notify := h.Command == wire.CmdWriteNotify
	fail := func(status wire.ECA, text string) {
		if notify {
			c.send((&wire.WriteNotifyResponse{DataType: wire.DBRType(h.DataType), Count: h.Count, Status: status, IOID: h.P2}).AppendTo(c.scratch[:0]))
			return
		}
		c.sendError(h, status, text)
	}
	ch := c.lookup(h.P1)
	if ch == nil {
		c.badInput("write to unknown channel", "sid", h.P1)
		fail(wire.ECABadChID, fmt.Sprintf("unknown channel id %d", h.P1))
		return
	}
	pv := ch.pv
	t := wire.DBRType(h.DataType)
	switch {
	case !t.Valid():
		c.badInput("write of invalid type", "type", h.DataType)
		fail(wire.ECABadType, fmt.Sprintf("%s: invalid DBR type %d", pv.name, h.DataType))
		return
	case t.Family() == wire.FamilyPutAck:
		fail(wire.ECAPutFail, fmt.Sprintf("%s: alarm acknowledgement (%s) is not supported", pv.name, t))
		return
	case t.Family() == wire.FamilyStsAck || t.Family() == wire.FamilyClassName:
		fail(wire.ECABadType, fmt.Sprintf("%s: %s cannot be written", pv.name, t))
		return
	case pv.readOnly:
		fail(wire.ECANoWtAccess, fmt.Sprintf("%s: write access denied", pv.name))
		return
	case h.Count == 0:
		fail(wire.ECABadCount, fmt.Sprintf("%s: write of zero elements", pv.name))
		return
	}
	if err := wire.DecodeDBR(&c.dbr, t, int(h.Count), f.Payload); err != nil {
		c.badInput("write payload does not match its header", "pv", pv.name, "error", err.Error())
		fail(wire.ECABadCount, fmt.Sprintf("%s: %v", pv.name, err))
		return
	}
	c.chMu.Lock()
	client := c.client
	c.chMu.Unlock()
	// Raw keeps every element sent; Value, like an IOC, ignores those beyond the
	// capacity. A WriteFunc may refuse an over-long write instead.
	put := &Put{PV: pv, Client: client, Raw: c.dbr.Value.Clone(), Notify: notify}
	fit := put.Raw
	fit.Truncate(pv.capacity)
	meta := pv.Snapshot().Meta
	put.ConvErr = wire.Convert(&put.Value, pv.typ, &fit, meta.Precision, meta.EnumStrings)
	var err error
	if pv.onWrite != nil {
		err = pv.onWrite(c.ctx, put)
	} else if put.ConvErr != nil {
		err = put.ConvErr
	} else {
		err = pv.Post(put.Value, NoAlarm, wire.Timestamp{})
	}
	if err == nil {
		if notify {
			c.send((&wire.WriteNotifyResponse{DataType: t, Count: h.Count, Status: wire.ECANormal, IOID: h.P2}).AppendTo(c.scratch[:0]))
		}
		return
	}
	status := wire.ECAPutFail
	var eca wire.ECA
	if errors.As(err, &eca) {
		status = eca
	}
	c.log.Debug("write failed", "pv", pv.name, "error", err)
	fail(status, fmt.Sprintf("%s: %v", pv.name, err))
}

func (c *circuit) onEventAdd(f wire.Frame) {
	h := f.Header
	m, err := wire.Decode(f, wire.ToServer)
	if err != nil {
		c.badInput("bad subscription request", "error", err.Error())
		c.sendError(h, wire.ECABadCount, err.Error())
		return
	}
	if status, text := c.subscribe(m.(*wire.EventAdd)); status != 0 {
		if status != wire.ECATooLarge {
			c.badInput("bad subscription request", "error", text)
		}
		c.sendError(h, status, text)
	}
}

// subscribe installs a subscription and queues its first update, or returns
// why it cannot.
func (c *circuit) subscribe(req *wire.EventAdd) (wire.ECA, string) {
	c.chMu.Lock()
	defer c.chMu.Unlock()
	ch := c.chans[req.SID]
	switch {
	case ch == nil:
		return wire.ECABadChID, fmt.Sprintf("unknown channel id %d", req.SID)
	case !req.DataType.Readable():
		return wire.ECABadType, fmt.Sprintf("%s: %s cannot be subscribed", ch.pv.name, req.DataType)
	case req.Mask&(wire.DBEValue|wire.DBELog|wire.DBEAlarm|wire.DBEProperty) == 0:
		return wire.ECABadMask, fmt.Sprintf("%s: event mask %#x selects no event", ch.pv.name, req.Mask)
	case c.subs[req.SubID] != nil:
		return wire.ECABadMonID, fmt.Sprintf("%s: subscription id %d already in use", ch.pv.name, req.SubID)
	}
	count := min(req.Count, uint32(ch.pv.capacity))
	if count == 0 && c.minor < 13 {
		count = uint32(ch.pv.capacity)
	}
	if size := req.DataType.Size(int(count)); count != 0 && size > c.srv.cfg.MaxArrayBytes {
		return wire.ECATooLarge, fmt.Sprintf("%s: updates of %d bytes exceed EPICS_CA_MAX_ARRAY_BYTES (%d)",
			ch.pv.name, size, c.srv.cfg.MaxArrayBytes)
	}
	s := &subscription{id: req.SubID, ch: ch, circ: c, typ: req.DataType, count: count, mask: req.Mask}
	c.subs[s.id] = s
	ch.subs[s.id] = s
	ch.pv.subscribe(s)
	return 0, ""
}

func (c *circuit) onEventCancel(h wire.Header) {
	c.chMu.Lock()
	s := c.subs[h.P2]
	if s == nil || s.ch.sid != h.P1 {
		c.chMu.Unlock()
		c.badInput("cancel of unknown subscription", "sid", h.P1, "subid", h.P2)
		c.sendError(h, wire.ECABadMonID, fmt.Sprintf("unknown subscription id %d on channel id %d", h.P2, h.P1))
		return
	}
	c.cancelLocked(s)
	delete(s.ch.subs, s.id)
	c.chMu.Unlock()
	// s is marked cancelled, so no update for it can be queued after this
	// confirmation; one the writer took earlier is written before it.
	c.send((&wire.EventCancelResponse{DataType: s.typ, Count: s.count, SID: s.ch.sid, SubID: s.id}).AppendTo(c.scratch[:0]))
}

// cancelLocked stops s; chMu must be held.
func (c *circuit) cancelLocked(s *subscription) {
	s.ch.pv.unsubscribe(s)
	c.mu.Lock()
	s.cancelled = true
	s.clearQueue()
	c.mu.Unlock()
	delete(c.subs, s.id)
}

// dropChannelLocked forgets ch and its subscriptions; chMu must be held.
func (c *circuit) dropChannelLocked(ch *channel) {
	for _, s := range ch.subs {
		c.cancelLocked(s)
	}
	clear(ch.subs)
	ch.pv.detach(ch)
	delete(c.chans, ch.sid)
}

func (c *circuit) onClearChannel(h wire.Header) {
	c.chMu.Lock()
	ch := c.chans[h.P1]
	if ch == nil {
		c.chMu.Unlock()
		c.badInput("clear of unknown channel", "sid", h.P1)
		c.sendError(h, wire.ECABadChID, fmt.Sprintf("unknown channel id %d", h.P1))
		return
	}
	c.dropChannelLocked(ch)
	c.chMu.Unlock()
	c.send((&wire.ClearChannelResponse{SID: ch.sid, CID: ch.cid}).AppendTo(c.scratch[:0]))
}

// serverDisconn tells the client that ch's PV is gone. It may run on any goroutine.
func (c *circuit) serverDisconn(ch *channel) {
	c.chMu.Lock()
	defer c.chMu.Unlock()
	if c.chans[ch.sid] != ch {
		return
	}
	c.dropChannelLocked(ch)
	c.push((&wire.ServerDisconn{CID: ch.cid}).AppendTo(nil), false)
}

func (c *circuit) onTCPSearch(f wire.Frame) {
	m, err := wire.Decode(f, wire.ToServer)
	if err != nil {
		c.badInput("bad search request", "error", err.Error())
		c.sendError(f.Header, wire.ECABadStr, err.Error())
		return
	}
	req := m.(*wire.SearchRequest)
	if c.srv.cfg.Source.Claim(req.Name) {
		c.send((&wire.SearchResponse{Port: uint16(c.srv.tcpPort), IP: wire.BeaconIPUnknown, SearchID: req.SearchID}).AppendTo(c.scratch[:0]))
	} else if req.Reply == wire.SearchDoReply {
		c.send((&wire.NotFound{Reply: req.Reply, Minor: req.Minor, SearchID: req.SearchID}).AppendTo(c.scratch[:0]))
	}
}

// clearQueue empties the queue, keeping a small backing array; circ.mu must be held.
func (s *subscription) clearQueue() {
	clear(s.queue)
	if cap(s.queue) > 8 {
		s.queue = nil
	} else {
		s.queue = s.queue[:0]
	}
	s.qbytes = 0
}

// valueBytes estimates the memory held by a snapshot's value.
func valueBytes(st *wire.DBR) int {
	return st.Value.Len() * st.Value.Type.ValueSize()
}
