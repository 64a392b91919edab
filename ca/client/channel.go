package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/pvhub/pvhub/ca/wire"
)

// State is the connection state of a channel.
type State int

// The channel states.
const (
	Searching    State = iota // not yet found, or lost and searching again
	Connected                 // the server created the channel
	Disconnected              // its circuit died; searching again
	Closed                    // closed by the user
)

func (s State) String() string {
	switch s {
	case Searching:
		return "searching"
	case Connected:
		return "connected"
	case Disconnected:
		return "disconnected"
	case Closed:
		return "closed"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Connection describes a channel's connection, as reported to OnConnection.
type Connection struct {
	State  State
	Type   wire.DBRType // native type (when connected)
	Count  int          // native element count (when connected)
	Server string       // host:port of the server (when connected)
	Read   bool         // read access
	Write  bool         // write access
	Err    error        // why the channel disconnected, when it did
}

// ChannelOptions configure a channel.
type ChannelOptions struct {
	// OnConnection is called on every connection, disconnection and change of
	// access rights. It runs on a client goroutine and must not block.
	OnConnection func(Connection)
	// OnError receives errors that belong to no call: a failed plain write
	// (PutNoWait) reported later by the server, for instance. Nil logs them.
	OnError func(error)
}

// Error is a failure reported by a server (or by the client for a request it
// refuses to send), with the CA status code.
type Error struct {
	PV     string
	Op     string
	Status wire.ECA
	Text   string // the server's explanation, when it gave one
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("%s: %s: %s", e.PV, e.Op, e.Status.String())
	if e.Text != "" {
		msg += " (" + e.Text + ")"
	}
	return msg
}

// Is makes errors.Is(err, wire.ECAxxx) work.
func (e *Error) Is(target error) bool {
	s, ok := target.(wire.ECA)
	return ok && s == e.Status
}

// Errors of channel operations.
var (
	ErrClosed       = errors.New("ca/client: channel closed")
	ErrDisconnected = errors.New("ca/client: channel disconnected")
)

// Channel is a named PV channel. It reconnects by itself until closed. Its
// methods are safe for concurrent use.
type Channel struct {
	c    *Client
	name string
	cid  uint32
	opts ChannelOptions

	mu        sync.Mutex
	state     State
	circ      *circuit
	sid       uint32
	typ       wire.DBRType
	count     int
	rights    uint32
	ready     chan struct{} // closed when connected; replaced on disconnect
	subs      map[uint32]*Subscription
	lastErr   error
	searchIdx int       // guarded by c.mu (search state)
	nextSrch  time.Time // guarded by c.mu
	sentAt    time.Time // guarded by c.mu
	searching bool      // guarded by c.mu
}

// Name returns the PV name.
func (ch *Channel) Name() string { return ch.name }

// State returns the current state.
func (ch *Channel) State() State {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return ch.state
}

// Info returns the current connection details.
func (ch *Channel) Info() Connection {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return ch.connectionLocked()
}

func (ch *Channel) connectionLocked() Connection {
	c := Connection{State: ch.state, Err: ch.lastErr}
	if ch.state == Connected {
		c.Type, c.Count = ch.typ, ch.count
		c.Server = ch.circ.addr.String()
		c.Read, c.Write = ch.rights&wire.AccessRead != 0, ch.rights&wire.AccessWrite != 0
	}
	return c
}

// WaitConnected waits until the channel is connected or ctx ends.
func (ch *Channel) WaitConnected(ctx context.Context) error {
	_, _, err := ch.waitConnected(ctx)
	return err
}

// waitConnected returns the circuit and SID of the connected channel.
func (ch *Channel) waitConnected(ctx context.Context) (*circuit, uint32, error) {
	for {
		ch.mu.Lock()
		state, ready, circ, sid := ch.state, ch.ready, ch.circ, ch.sid
		ch.mu.Unlock()
		switch state {
		case Connected:
			return circ, sid, nil
		case Closed:
			return nil, 0, ErrClosed
		}
		select {
		case <-ready:
		case <-ctx.Done():
			return nil, 0, fmt.Errorf("%s: not connected: %w", ch.name, ctx.Err())
		}
	}
}

// Get reads the PV in DBR type t with count elements (0: the current length,
// from servers of protocol 4.13 or later). It waits for the connection.
func (ch *Channel) Get(ctx context.Context, t wire.DBRType, count int) (*wire.DBR, error) {
	if !t.Readable() {
		return nil, &Error{PV: ch.name, Op: "get", Status: wire.ECABadType, Text: fmt.Sprintf("%s cannot be read", t)}
	}
	circ, sid, err := ch.waitConnected(ctx)
	if err != nil {
		return nil, err
	}
	ch.mu.Lock()
	native, rights := ch.count, ch.rights
	ch.mu.Unlock()
	if rights&wire.AccessRead == 0 {
		return nil, &Error{PV: ch.name, Op: "get", Status: wire.ECANoRdAccess}
	}
	if count < 0 || count > native {
		return nil, &Error{PV: ch.name, Op: "get", Status: wire.ECABadCount, Text: fmt.Sprintf("count %d, the channel has %d elements", count, native)}
	}
	if count == 0 && circ.serverMinor() < 13 {
		count = native
	}
	if t.Size(count) > ch.c.cfg.MaxArrayBytes {
		return nil, &Error{PV: ch.name, Op: "get", Status: wire.ECATooLarge,
			Text: fmt.Sprintf("%d bytes exceed EPICS_CA_MAX_ARRAY_BYTES (%d)", t.Size(count), ch.c.cfg.MaxArrayBytes)}
	}
	op := circ.newOp(ch, "get")
	defer circ.dropOp(op)
	circ.send((&wire.ReadNotify{DataType: t, Count: uint32(count), SID: sid, IOID: op.id}).AppendTo(nil))
	res, err := op.wait(ctx)
	if err != nil {
		return nil, err
	}
	return res.dbr, nil
}

// Put writes v and waits for the server's completion (WRITE_NOTIFY). The value
// is sent in its own type and the server converts it.
func (ch *Channel) Put(ctx context.Context, v wire.Value) error {
	circ, sid, data, err := ch.preparePut(ctx, v)
	if err != nil {
		return err
	}
	op := circ.newOp(ch, "put")
	defer circ.dropOp(op)
	circ.send((&wire.WriteNotify{DataType: v.Type, Count: uint32(v.Len()), SID: sid, IOID: op.id, Data: data}).AppendTo(nil))
	_, err = op.wait(ctx)
	return err
}

// PutNoWait writes v without waiting for completion (WRITE). A failure the
// server reports later goes to ChannelOptions.OnError.
func (ch *Channel) PutNoWait(ctx context.Context, v wire.Value) error {
	circ, sid, data, err := ch.preparePut(ctx, v)
	if err != nil {
		return err
	}
	circ.send((&wire.Write{DataType: v.Type, Count: uint32(v.Len()), SID: sid, ID: ch.cid, Data: data}).AppendTo(nil))
	return nil
}

func (ch *Channel) preparePut(ctx context.Context, v wire.Value) (*circuit, uint32, []byte, error) {
	if v.Type > wire.DBRDouble || v.Len() == 0 {
		return nil, 0, nil, &Error{PV: ch.name, Op: "put", Status: wire.ECABadCount, Text: "a put needs at least one element of a plain type"}
	}
	circ, sid, err := ch.waitConnected(ctx)
	if err != nil {
		return nil, 0, nil, err
	}
	ch.mu.Lock()
	native, rights := ch.count, ch.rights
	ch.mu.Unlock()
	if rights&wire.AccessWrite == 0 {
		return nil, 0, nil, &Error{PV: ch.name, Op: "put", Status: wire.ECANoWtAccess}
	}
	if v.Len() > native {
		return nil, 0, nil, &Error{PV: ch.name, Op: "put", Status: wire.ECABadCount, Text: fmt.Sprintf("%d elements, the channel has %d", v.Len(), native)}
	}
	if v.Type == wire.DBRString {
		for i, str := range v.Strings {
			if len(str) >= wire.MaxStringSize {
				return nil, 0, nil, &Error{PV: ch.name, Op: "put", Status: wire.ECAStrTooBig,
					Text: fmt.Sprintf("element %d has %d bytes; a DBR_STRING holds at most %d (use a char array for longer text)", i, len(str), wire.MaxStringSize-1)}
			}
		}
	}
	data, err := wire.AppendDBR(nil, v.Type, v.Len(), &wire.DBR{Value: v})
	if err != nil {
		return nil, 0, nil, err
	}
	return circ, sid, data, nil
}

// Update is a monitor update. DBR is valid only during the callback (it is
// reused for the next update); copy what you keep.
type Update struct {
	DBR    *wire.DBR
	Status wire.ECA // ECANormal, or the server's failure status (DBR then zero)
	Err    error    // a server error about the subscription (type, size), if any
}

// SubscribeOptions describe a monitor.
type SubscribeOptions struct {
	// Type is the DBR type of the updates. With Native set, only its family
	// counts: DBRTimeDouble then means DBR_TIME_ of whatever the native type is.
	Type   wire.DBRType
	Native bool
	// Count is the number of elements; 0 asks for the current length with each
	// update (servers of protocol 4.13 or later).
	Count int
	// Mask selects the events (wire.DBEValue, DBELog, DBEAlarm, DBEProperty);
	// 0 means DBEValue|DBEAlarm, as camonitor.
	Mask uint16
}

// Subscription is a monitor on a channel. It survives reconnections.
type Subscription struct {
	ch   *Channel
	id   uint32
	opts SubscribeOptions
	fn   func(*Update)

	// Reused for every update, on the circuit's reader goroutine, so that
	// ingesting updates does not allocate.
	dbr wire.DBR
	upd Update
}

// Subscribe starts a monitor; fn receives every update (the first one is the
// current value) on a client goroutine and must not block. The monitor is
// re-established after every reconnection.
func (ch *Channel) Subscribe(opts SubscribeOptions, fn func(*Update)) (*Subscription, error) {
	if !opts.Type.Readable() {
		return nil, &Error{PV: ch.name, Op: "subscribe", Status: wire.ECABadType, Text: fmt.Sprintf("%s cannot be subscribed", opts.Type)}
	}
	if opts.Count < 0 {
		return nil, &Error{PV: ch.name, Op: "subscribe", Status: wire.ECABadCount}
	}
	if opts.Mask == 0 {
		opts.Mask = wire.DBEValue | wire.DBEAlarm
	}
	s := &Subscription{ch: ch, id: ch.c.nextID(), opts: opts, fn: fn}
	ch.mu.Lock()
	if ch.state == Closed {
		ch.mu.Unlock()
		return nil, ErrClosed
	}
	ch.subs[s.id] = s
	circ, sid, connected := ch.circ, ch.sid, ch.state == Connected
	typ, count := ch.typ, ch.count
	ch.mu.Unlock()
	if connected {
		circ.startSub(s, sid, typ, count)
	}
	return s, nil
}

// Cancel stops the monitor. No callback starts after Cancel returns, except one
// already running.
func (s *Subscription) Cancel() {
	ch := s.ch
	ch.mu.Lock()
	_, ok := ch.subs[s.id]
	delete(ch.subs, s.id)
	circ, sid, connected := ch.circ, ch.sid, ch.state == Connected
	ch.mu.Unlock()
	if ok && connected {
		circ.stopSub(s, sid)
	}
}

// resolveType returns the DBR type and count to request for a channel of
// native type typ and count n.
func (s *Subscription) resolve(typ wire.DBRType, n int, serverMinor uint16) (wire.DBRType, uint32) {
	t := s.opts.Type
	if s.opts.Native {
		switch t.Family() {
		case wire.FamilySts:
			t = typ.Sts()
		case wire.FamilyTime:
			t = typ.Time()
		case wire.FamilyGr:
			t = typ.Gr()
		case wire.FamilyCtrl:
			t = typ.Ctrl()
		default:
			t = typ
		}
	}
	count := min(s.opts.Count, n)
	if count == 0 && serverMinor < 13 {
		count = n
	}
	return t, uint32(count)
}

// Close closes the channel: its monitors stop and the server is told.
func (ch *Channel) Close() {
	ch.c.forget(ch)
	ch.mu.Lock()
	if ch.state == Closed {
		ch.mu.Unlock()
		return
	}
	prev, circ, sid := ch.state, ch.circ, ch.sid
	ch.state = Closed
	ch.subs = map[uint32]*Subscription{}
	ch.circ = nil
	if prev != Connected {
		close(ch.ready) // wake WaitConnected, which then sees Closed
	}
	ch.mu.Unlock()
	if circ != nil {
		circ.removeChannel(ch, sid, prev == Connected)
	}
}

// notify reports the connection state to the user.
func (ch *Channel) notify(conn Connection) {
	if ch.opts.OnConnection != nil {
		ch.opts.OnConnection(conn)
	}
}

func (ch *Channel) reportError(err error) {
	if ch.opts.OnError != nil {
		ch.opts.OnError(err)
		return
	}
	ch.c.log.Warn("channel error", "pv", ch.name, "error", err)
}

// connected handles the server's CREATE_CHAN reply: the channel is up, the
// user is told, and every monitor is (re-)established.
func (ch *Channel) connected(circ *circuit, sid uint32, typ wire.DBRType, count int) {
	ch.mu.Lock()
	if ch.state == Closed || ch.circ != circ {
		ch.mu.Unlock()
		return
	}
	ch.state, ch.sid, ch.typ, ch.count, ch.lastErr = Connected, sid, typ, count, nil
	close(ch.ready)
	subs := make([]*Subscription, 0, len(ch.subs))
	for _, s := range ch.subs {
		subs = append(subs, s)
	}
	conn := ch.connectionLocked()
	ch.mu.Unlock()
	ch.notify(conn)
	for _, s := range subs {
		circ.startSub(s, sid, typ, count)
	}
}

// setRights records the access rights the server granted; a change on a
// connected channel is reported.
func (ch *Channel) setRights(circ *circuit, rights uint32) {
	ch.mu.Lock()
	if ch.circ != circ || ch.state == Closed {
		ch.mu.Unlock()
		return
	}
	changed := ch.rights != rights
	ch.rights = rights
	conn := ch.connectionLocked()
	report := changed && ch.state == Connected
	ch.mu.Unlock()
	if report {
		ch.notify(conn)
	}
}

// lost handles the loss of the channel's circuit: it reports the disconnection
// and searches again.
func (ch *Channel) lost(circ *circuit, reason error) {
	if ch.detach(circ, reason) {
		ch.c.research(ch)
	}
}

// detach unbinds the channel from circ, reporting a disconnection if it was
// connected. It returns false when the channel is closed or elsewhere.
func (ch *Channel) detach(circ *circuit, reason error) bool {
	ch.mu.Lock()
	if ch.state == Closed || ch.circ != circ {
		ch.mu.Unlock()
		return false
	}
	ch.circ = nil
	if ch.state != Connected {
		ch.mu.Unlock()
		return true
	}
	ch.state, ch.lastErr, ch.rights = Disconnected, reason, 0
	ch.ready = make(chan struct{})
	conn := ch.connectionLocked()
	ch.mu.Unlock()
	ch.notify(conn)
	return true
}
