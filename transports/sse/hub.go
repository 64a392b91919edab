package sse

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/pvhub/pvhub/plugins"
)

// errClosing is what a wait returns when the transport closes under it.
var errClosing = errors.New("the server is shutting down")

// hub is the PV table shared by every stream and REST request: one upstream subscription per
// PV, a reference per stream or request that holds it, and the latest connection, metadata
// and value of each PV, so that a new stream or a GET has them at once.
type hub struct {
	host   plugins.Host
	linger time.Duration

	mu      sync.Mutex
	pvs     map[string]*pvState
	puts    map[uint64]chan plugins.PutResult
	nextID  uint64
	closed  bool
	closing chan struct{} // closed by stop
	// timers counts the linger timers that may still run their function: Add when one is
	// set, Done when Stop prevents it or when its function returns.
	timers sync.WaitGroup
}

type pvState struct {
	streams map[*stream]struct{}
	refs    int // streams plus REST requests holding the PV
	// gen counts acquisitions; a linger timer expires only the generation it was set for.
	gen      uint64
	linger   *time.Timer
	conn     plugins.Connection
	haveConn bool
	meta     *plugins.Metadata
	value    *plugins.Value
	// changed is closed at the PV's next change; nil until a request waits for one.
	changed chan struct{}
}

// snapshot is what a REST request sees of a PV at one moment.
type snapshot struct {
	conn     plugins.Connection
	haveConn bool
	meta     *plugins.Metadata
	value    *plugins.Value
}

func (s snapshot) connected() bool { return s.haveConn && s.conn.Connected }

func newHub(host plugins.Host, linger time.Duration) *hub {
	return &hub{host: host, linger: linger, pvs: map[string]*pvState{},
		puts: map[uint64]chan plugins.PutResult{}, closing: make(chan struct{})}
}

// acquireLocked takes a reference to name; it reports whether the PV must be subscribed
// upstream (no one held it, and it was not lingering).
func (h *hub) acquireLocked(name string) (*pvState, bool) {
	p := h.pvs[name]
	isNew := p == nil
	if isNew {
		p = &pvState{streams: map[*stream]struct{}{}}
		h.pvs[name] = p
	}
	p.refs++
	p.gen++
	h.stopLingerLocked(p)
	return p, isNew
}

// stopLingerLocked stops p's linger timer, if any.
func (h *hub) stopLingerLocked(p *pvState) {
	if p.linger != nil {
		if p.linger.Stop() {
			h.timers.Done()
		}
		p.linger = nil
	}
}

// releaseLocked drops a reference to name. The last one unsubscribes upstream at once, or,
// when linger is set, after h.linger unless the PV is acquired again meanwhile. It reports
// whether the PV must be unsubscribed now.
func (h *hub) releaseLocked(name string, linger bool) bool {
	p := h.pvs[name]
	if p == nil {
		return false
	}
	p.refs--
	if p.refs > 0 {
		return false
	}
	if linger && h.linger > 0 && !h.closed {
		gen := p.gen
		h.timers.Add(1)
		p.linger = time.AfterFunc(h.linger, func() {
			defer h.timers.Done()
			h.expire(name, p, gen)
		})
		return false
	}
	delete(h.pvs, name)
	return true
}

// expire ends the linger of a PV no one acquired since.
func (h *hub) expire(name string, p *pvState, gen uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || h.pvs[name] != p || p.refs > 0 || p.gen != gen {
		return
	}
	p.linger = nil
	delete(h.pvs, name)
	h.host.Unsubscribe(name)
}

// addStream subscribes s to names (distinct) and queues the state known of each. It reports
// false when the transport is closing.
func (h *hub) addStream(s *stream, names []string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	var upstream []string
	for _, n := range names {
		p, isNew := h.acquireLocked(n)
		if isNew {
			upstream = append(upstream, n)
		}
		p.streams[s] = struct{}{}
		if p.haveConn {
			s.enqueue(entry{kind: entConn, name: n, conn: p.conn})
		}
		if p.meta != nil {
			s.enqueue(entry{kind: entMeta, name: n, meta: p.meta})
		}
		if p.value != nil {
			s.enqueue(entry{kind: entValue, name: n, value: p.value, meta: p.meta})
		}
	}
	if len(upstream) > 0 {
		h.host.Subscribe(upstream...)
	}
	return true
}

// removeStream drops the subscriptions of s to names; the PVs no one else holds are
// unsubscribed upstream at once.
func (h *hub) removeStream(s *stream, names []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var upstream []string
	for _, n := range names {
		p := h.pvs[n]
		if p == nil {
			continue
		}
		if _, ok := p.streams[s]; !ok {
			continue
		}
		delete(p.streams, s)
		if h.releaseLocked(n, false) {
			upstream = append(upstream, n)
		}
	}
	if len(upstream) > 0 {
		h.host.Unsubscribe(upstream...)
	}
}

// acquire takes a reference to name for a REST request; false when the transport is
// closing. Release it with release.
func (h *hub) acquire(name string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	if _, isNew := h.acquireLocked(name); isNew {
		h.host.Subscribe(name)
	}
	return true
}

// release drops a REST request's reference; the PV lingers (h.linger) before it is
// unsubscribed, so that a script's next request finds it at once.
func (h *hub) release(name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.releaseLocked(name, true) {
		h.host.Unsubscribe(name)
	}
}

// await waits until cond holds for name's state (which the caller holds a reference to), ctx
// is done, or the transport closes; it returns the last state seen, and ctx's error or
// errClosing when cond did not hold.
func (h *hub) await(ctx context.Context, name string, cond func(snapshot) bool) (snapshot, error) {
	for {
		h.mu.Lock()
		var s snapshot
		p := h.pvs[name]
		if p != nil {
			s = snapshot{conn: p.conn, haveConn: p.haveConn, meta: p.meta, value: p.value}
		}
		if cond(s) {
			h.mu.Unlock()
			return s, nil
		}
		if p == nil || h.closed {
			h.mu.Unlock()
			return s, errClosing
		}
		if p.changed == nil {
			p.changed = make(chan struct{})
		}
		ch := p.changed
		h.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return s, ctx.Err()
		case <-h.closing:
			return s, errClosing
		}
	}
}

// put asks the host to write value to name; the result arrives on the channel returned.
// ok is false when the transport is closing.
func (h *hub) put(name string, value plugins.Data) (id uint64, result <-chan plugins.PutResult, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return 0, nil, false
	}
	h.nextID++
	id = h.nextID
	ch := make(chan plugins.PutResult, 1)
	h.puts[id] = ch
	h.host.Put(name, value, id)
	return id, ch, true
}

// forgetPut drops a put whose answer no one waits for any more.
func (h *hub) forgetPut(id uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.puts, id)
}

// stop makes the hub refuse new subscriptions and puts, wakes every waiting request and
// stops the linger timers. Streams still release their subscriptions afterwards.
func (h *hub) stop() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	close(h.closing)
	clear(h.puts)
	for _, p := range h.pvs {
		h.stopLingerLocked(p)
	}
}

// wait returns once no linger timer's function runs or can run (after stop).
func (h *hub) wait() { h.timers.Wait() }

// dispatch updates the table with batch and queues each event to the streams of its PV. It
// never blocks on a stream.
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
			p.notify()
			for s := range p.streams {
				s.enqueue(entry{kind: entConn, name: e.Name, conn: e})
			}
		case plugins.Metadata:
			p := h.pvs[e.Name]
			if p == nil {
				continue
			}
			m := e
			p.meta = &m
			p.notify()
			for s := range p.streams {
				s.enqueue(entry{kind: entMeta, name: e.Name, meta: &m})
			}
		case plugins.Value:
			p := h.pvs[e.Name]
			if p == nil {
				continue
			}
			v := e
			p.value = &v
			p.notify()
			for s := range p.streams {
				s.enqueue(entry{kind: entValue, name: e.Name, value: &v, meta: p.meta})
			}
		case plugins.PutResult:
			if ch := h.puts[e.ID]; ch != nil {
				delete(h.puts, e.ID)
				ch <- e // buffered: never blocks
			}
		}
	}
}

// notify wakes the requests waiting for a change of p; h.mu must be held.
func (p *pvState) notify() {
	if p.changed != nil {
		close(p.changed)
		p.changed = nil
	}
}

// upstream returns the number of PVs held (subscribed upstream), for tests.
func (h *hub) upstream() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.pvs)
}
