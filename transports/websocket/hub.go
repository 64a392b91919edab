package websocket

import (
	"sync"
	"time"

	"github.com/pvhub/pvhub/plugins"
)

// hub is the PV table shared by every socket: one upstream subscription per PV, a reference
// per interested socket, and the latest connection, metadata and value of each PV.
type hub struct {
	mu     sync.Mutex
	host   plugins.Host
	pvs    map[string]*pvState
	puts   map[uint64]*pendingPut
	nextID uint64
	closed bool
}

type pvState struct {
	clients  map[*client]*sub
	conn     plugins.Connection
	haveConn bool
	meta     *plugins.Metadata
	value    *plugins.Value
}

// sub is one socket's subscription to one PV.
type sub struct {
	readOnly bool
	// safe, while not nil, is the timer of a pending subscribeSafely: the ack waits for the
	// PV to connect, and the subscription is dropped if it does not in time.
	safe     *time.Timer
	safeDone func(ok bool) []byte
}

type pendingPut struct {
	c     *client
	name  string
	timer *time.Timer
	reply func(errText string) []byte
}

func newHub(host plugins.Host) *hub {
	return &hub{host: host, pvs: map[string]*pvState{}, puts: map[uint64]*pendingPut{}}
}

// subResult says, for each requested name, whether the socket was already subscribed.
type subResult struct {
	subscribed, already []string
}

// subscribe subscribes c to names. ack, called under the lock with the results, returns the
// message queued before the PVs' cached state; safe, when not nil, makes each new
// subscription wait for its PV to connect (subscribeSafely) and returns the message to send
// when it did (true) or did not in time (false).
func (h *hub) subscribe(c *client, names []string, readOnly bool, ack func(subResult) []byte,
	safe func(name string, ok bool) []byte, connectTimeout time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	var r subResult
	seen := make(map[string]bool, len(names))
	for _, n := range names {
		if seen[n] {
			continue
		}
		seen[n] = true
		if c.subs[n] != nil {
			r.already = append(r.already, n)
		} else {
			r.subscribed = append(r.subscribed, n)
		}
	}
	if ack != nil {
		if msg := ack(r); msg != nil {
			c.enqueue(entry{kind: entRaw, raw: msg})
		}
	}
	var upstream []string
	for _, n := range r.subscribed {
		s := &sub{readOnly: readOnly}
		c.subs[n] = s
		p := h.pvs[n]
		if p == nil {
			p = &pvState{clients: map[*client]*sub{}}
			h.pvs[n] = p
			upstream = append(upstream, n)
		}
		p.clients[c] = s
		c.enqueue(entry{kind: entSubStart, name: n, readOnly: readOnly})
		if p.haveConn {
			c.enqueue(entry{kind: entConn, name: n, conn: p.conn})
		}
		if p.meta != nil {
			c.enqueue(entry{kind: entMeta, name: n, meta: p.meta})
		}
		if p.value != nil {
			c.enqueue(entry{kind: entValue, name: n, value: p.value})
		}
		if safe != nil {
			name := n
			if p.haveConn && p.conn.Connected {
				c.enqueue(entry{kind: entRaw, raw: safe(name, true)})
				continue
			}
			s.safeDone = func(ok bool) []byte { return safe(name, ok) }
			s.safe = time.AfterFunc(connectTimeout, func() { h.safeExpired(c, name, s) })
		}
	}
	if len(upstream) > 0 {
		h.host.Subscribe(upstream...)
	}
}

func (h *hub) safeExpired(c *client, name string, s *sub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || c.subs[name] != s || s.safe == nil {
		return
	}
	s.safe = nil
	c.enqueue(entry{kind: entRaw, raw: s.safeDone(false)})
	h.unsubscribeLocked(c, []string{name})
}

// unsubscribe removes c's subscriptions to names and returns those it had and those it did
// not.
func (h *hub) unsubscribe(c *client, names []string) (done, missing []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, names
	}
	for _, n := range names {
		if c.subs[n] == nil {
			missing = append(missing, n)
		} else {
			done = append(done, n)
		}
	}
	h.unsubscribeLocked(c, done)
	return done, missing
}

func (h *hub) unsubscribeLocked(c *client, names []string) {
	var upstream []string
	for _, n := range names {
		s := c.subs[n]
		if s == nil {
			continue
		}
		if s.safe != nil {
			s.safe.Stop()
			s.safe = nil
		}
		delete(c.subs, n)
		c.enqueue(entry{kind: entSubEnd, name: n})
		p := h.pvs[n]
		if p == nil {
			continue
		}
		delete(p.clients, c)
		if len(p.clients) == 0 {
			delete(h.pvs, n)
			upstream = append(upstream, n)
		}
	}
	if len(upstream) > 0 {
		h.host.Unsubscribe(upstream...)
	}
}

// subscribed returns c's subscriptions, unordered.
func (h *hub) subscribed(c *client) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]string, 0, len(c.subs))
	for n := range c.subs {
		out = append(out, n)
	}
	return out
}

// writeTarget is what a write needs to know about a PV on a socket.
type writeTarget struct {
	subscribed bool
	readOnly   bool
	conn       plugins.Connection
	haveConn   bool
	meta       *plugins.Metadata
}

func (h *hub) target(c *client, name string) writeTarget {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := c.subs[name]
	if s == nil {
		return writeTarget{}
	}
	t := writeTarget{subscribed: true, readOnly: s.readOnly}
	if p := h.pvs[name]; p != nil {
		t.conn, t.haveConn, t.meta = p.conn, p.haveConn, p.meta
	}
	return t
}

// refresh queues the cached state of every PV c is subscribed to again.
func (h *hub) refresh(c *client) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for n := range c.subs {
		p := h.pvs[n]
		if p == nil {
			continue
		}
		if p.haveConn {
			c.enqueue(entry{kind: entConn, name: n, conn: p.conn})
		}
		if p.meta != nil {
			c.enqueue(entry{kind: entMeta, name: n, meta: p.meta})
		}
		if p.value != nil {
			c.enqueue(entry{kind: entValue, name: n, value: p.value})
		}
	}
}

// put asks the host to write value to name for c; reply builds the message sent when the
// result (errText empty on success) or the timeout arrives.
func (h *hub) put(c *client, name string, value plugins.Data, timeout time.Duration, reply func(errText string) []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.nextID++
	id := h.nextID
	pp := &pendingPut{c: c, name: name, reply: reply}
	pp.timer = time.AfterFunc(timeout, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.puts[id] != pp {
			return
		}
		delete(h.puts, id)
		c.enqueue(entry{kind: entRaw, raw: reply("no answer within " + timeout.String())})
	})
	h.puts[id] = pp
	h.host.Put(name, value, id)
}

// remove releases everything c holds: its subscriptions and its pending puts.
func (h *hub) remove(c *client) {
	h.mu.Lock()
	defer h.mu.Unlock()
	names := make([]string, 0, len(c.subs))
	for n := range c.subs {
		names = append(names, n)
	}
	h.unsubscribeLocked(c, names)
	for id, pp := range h.puts {
		if pp.c == c {
			pp.timer.Stop()
			delete(h.puts, id)
		}
	}
}

// close stops every timer; later calls do nothing.
func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for id, pp := range h.puts {
		pp.timer.Stop()
		delete(h.puts, id)
	}
	for _, p := range h.pvs {
		for _, s := range p.clients {
			if s.safe != nil {
				s.safe.Stop()
				s.safe = nil
			}
		}
	}
}

// dispatch updates the table with batch and queues each event to the interested sockets.
// It never blocks on a socket.
func (h *hub) dispatch(batch []plugins.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, ev := range batch {
		switch e := ev.(type) {
		case plugins.Connection:
			p := h.pvs[e.Name]
			if p == nil {
				continue
			}
			p.conn, p.haveConn = e, true
			for c, s := range p.clients {
				c.enqueue(entry{kind: entConn, name: e.Name, conn: e})
				if e.Connected && s.safe != nil {
					s.safe.Stop()
					s.safe = nil
					c.enqueue(entry{kind: entRaw, raw: s.safeDone(true)})
				}
			}
		case plugins.Metadata:
			p := h.pvs[e.Name]
			if p == nil {
				continue
			}
			m := e
			p.meta = &m
			for c := range p.clients {
				c.enqueue(entry{kind: entMeta, name: e.Name, meta: &m})
			}
		case plugins.Value:
			p := h.pvs[e.Name]
			if p == nil {
				continue
			}
			v := e
			p.value = &v
			for c := range p.clients {
				c.enqueue(entry{kind: entValue, name: e.Name, value: &v})
			}
		case plugins.PutResult:
			pp := h.puts[e.ID]
			if pp == nil {
				continue
			}
			delete(h.puts, e.ID)
			pp.timer.Stop()
			pp.c.enqueue(entry{kind: entRaw, raw: pp.reply(e.Err)})
		}
	}
}

// upstream reports how many PVs are subscribed upstream (for tests).
func (h *hub) upstream() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.pvs)
}
