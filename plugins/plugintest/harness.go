// Package plugintest runs a transport in-process against a fake host, and checks it with a
// conformance suite (Run) that every transport must pass.
package plugintest

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/pvhub/pvhub/plugins"
)

// Harness is an in-process host for one Transport: it implements plugins.Host with a small
// store of fake PVs, and delivers events to the transport in batches, in order, from one
// goroutine, as the plugin host does. A subscription gets the connection, metadata and value
// of a known PV at once; an unknown PV is reported disconnected. A put to a known writable PV
// updates it (a PutResult, then a Value); otherwise the PutResult carries an error.
type Harness struct {
	t plugins.Transport

	mu      sync.Mutex
	pvs     map[string]*pv
	subs    map[string]bool
	queue   []plugins.Event
	wake    chan struct{}
	stop    chan struct{}
	done    chan struct{}
	started bool
	once    sync.Once
}

type pv struct {
	meta  plugins.Metadata
	value plugins.Value
	write bool
}

var _ plugins.Host = (*Harness)(nil)

// NewHarness returns a harness around t; it does no I/O and starts nothing.
func NewHarness(t plugins.Transport) *Harness {
	return &Harness{t: t, pvs: map[string]*pv{}, subs: map[string]bool{},
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
}

// AddPV adds (or replaces) a fake PV with its metadata and value; write says whether puts
// are allowed.
func (h *Harness) AddPV(m plugins.Metadata, v plugins.Value, write bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	v.Name = m.Name
	h.pvs[m.Name] = &pv{meta: m, value: v, write: write}
}

// Start starts the transport with cfg (a nil Logger becomes a discarding one) and the
// delivery goroutine.
func (h *Harness) Start(ctx context.Context, cfg plugins.Config) error {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	h.mu.Lock()
	h.started = true
	h.mu.Unlock()
	go h.deliver()
	if err := h.t.Start(ctx, cfg, h); err != nil {
		h.Close()
		return err
	}
	return nil
}

// Publish queues events for the transport, as the host's PV actors would (events about PVs
// the transport did not subscribe are delivered too).
func (h *Harness) Publish(events ...plugins.Event) {
	h.mu.Lock()
	h.queue = append(h.queue, events...)
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// Subscribed reports whether the transport is subscribed to name.
func (h *Harness) Subscribed(name string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.subs[name]
}

// Subscribe implements plugins.Host.
func (h *Harness) Subscribe(names ...string) {
	var out []plugins.Event
	h.mu.Lock()
	for _, n := range names {
		h.subs[n] = true
		p := h.pvs[n]
		if p == nil {
			out = append(out, plugins.Connection{Name: n})
			continue
		}
		out = append(out, plugins.Connection{Name: n, Connected: true, Read: true, Write: p.write}, p.meta, p.value)
	}
	h.mu.Unlock()
	h.Publish(out...)
}

// Unsubscribe implements plugins.Host.
func (h *Harness) Unsubscribe(names ...string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, n := range names {
		delete(h.subs, n)
	}
}

// Put implements plugins.Host.
func (h *Harness) Put(name string, value plugins.Data, id uint64) {
	h.mu.Lock()
	p := h.pvs[name]
	var out []plugins.Event
	switch {
	case p == nil:
		out = append(out, plugins.PutResult{Name: name, ID: id, Err: fmt.Sprintf("PV %s not found", name)})
	case !p.write:
		out = append(out, plugins.PutResult{Name: name, ID: id, Err: fmt.Sprintf("PV %s is read-only", name)})
	default:
		p.value.Data = value
		out = append(out, plugins.PutResult{Name: name, ID: id})
		if h.subs[name] {
			out = append(out, p.value)
		}
	}
	h.mu.Unlock()
	h.Publish(out...)
}

func (h *Harness) deliver() {
	defer close(h.done)
	for {
		select {
		case <-h.stop:
			return
		case <-h.wake:
		}
		h.mu.Lock()
		batch := h.queue
		h.queue = nil
		h.mu.Unlock()
		if len(batch) > 0 {
			h.t.Events(batch)
		}
	}
}

// Close stops delivery, closes the transport and waits for the delivery goroutine. It is
// idempotent.
func (h *Harness) Close() error {
	var err error
	h.once.Do(func() {
		close(h.stop)
		h.mu.Lock()
		started := h.started
		h.mu.Unlock()
		if started {
			<-h.done
		}
		err = h.t.Close()
	})
	return err
}
