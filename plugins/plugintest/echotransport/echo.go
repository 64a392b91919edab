// Package echotransport is a tiny transport for testing the plugin machinery. It has no network
// side: its "clients" are Go calls (Subscribe, Unsubscribe, Put, Received), and, driven by its
// options, it can echo every event it receives back to the host as a put, which lets a test see
// from the host what a plugin process received.
//
// Options: "subscribe" (a list of names) is subscribed at Start; "echo" (true) turns every
// received event into Put("echo", Strings(Describe(event)), n) with n counting from 1;
// "fail" (a string) makes Start fail with that text.
package echotransport

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/pvhub/pvhub/plugins"
)

// Transport is the echo transport. The zero value is not usable; call New.
type Transport struct {
	mu       sync.Mutex
	host     plugins.Host
	echo     bool
	seq      uint64
	received []plugins.Event
	changed  chan struct{} // closed and replaced on every batch
	started  bool
	closed   bool
}

var _ plugins.Transport = (*Transport)(nil)

// New returns an echo transport, not started.
func New() *Transport { return &Transport{changed: make(chan struct{})} }

// Start implements plugins.Transport.
func (t *Transport) Start(_ context.Context, cfg plugins.Config, host plugins.Host) error {
	if msg, ok := cfg.Options["fail"].(string); ok {
		return errors.New(msg)
	}
	t.mu.Lock()
	t.host = host
	t.echo, _ = cfg.Options["echo"].(bool)
	t.started = true
	t.mu.Unlock()
	var names []string
	if list, ok := cfg.Options["subscribe"].([]any); ok {
		for _, n := range list {
			if s, ok := n.(string); ok {
				names = append(names, s)
			}
		}
	}
	if cfg.Logger != nil {
		cfg.Logger.Info("echo transport started", "name", cfg.Name, "subscribe", len(names), "relay_prefix", cfg.RelayPrefix)
	}
	if len(names) > 0 {
		host.Subscribe(names...)
	}
	return nil
}

// Events implements plugins.Transport.
func (t *Transport) Events(batch []plugins.Event) {
	t.mu.Lock()
	t.received = append(t.received, batch...)
	echo, host := t.echo, t.host
	first := t.seq
	t.seq += uint64(len(batch))
	close(t.changed)
	t.changed = make(chan struct{})
	t.mu.Unlock()
	if echo {
		for i, e := range batch {
			host.Put("echo", plugins.Strings(Describe(e)), first+uint64(i)+1)
		}
	}
}

// Close implements plugins.Transport.
func (t *Transport) Close() error {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	return nil
}

// Closed reports whether Close was called.
func (t *Transport) Closed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closed
}

// Host returns the host given to Start, or nil.
func (t *Transport) Host() plugins.Host {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.host
}

// Received returns a copy of every event received so far, and a channel closed at the next
// batch.
func (t *Transport) Received() ([]plugins.Event, <-chan struct{}) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]plugins.Event(nil), t.received...), t.changed
}

// Describe returns a one-line description of e, the text the echo option sends.
func Describe(e plugins.Event) string {
	switch e := e.(type) {
	case plugins.Connection:
		return fmt.Sprintf("connection %s connected=%t read=%t write=%t denied=%q", e.Name, e.Connected, e.Read, e.Write, e.WriteDenied)
	case plugins.Metadata:
		return fmt.Sprintf("metadata %s %v count=%d units=%q prec=%d display=%v labels=%q", e.Name, e.Type, e.Count, e.Units, e.Precision, e.Display, e.EnumLabels)
	case plugins.Value:
		var v any
		switch e.Data.Kind {
		case plugins.KindFloat64:
			v = e.Data.Float64s
		case plugins.KindInt64:
			v = e.Data.Int64s
		case plugins.KindString:
			v = e.Data.Strings
		case plugins.KindBytes:
			v = string(e.Data.Bytes)
		}
		return fmt.Sprintf("value %s %v %v %d.%09d %s %s", e.Name, e.Data.Kind, v, e.Seconds, e.Nanos, e.Status, e.Severity)
	case plugins.PutResult:
		return fmt.Sprintf("put-result %s id=%d err=%q", e.Name, e.ID, e.Err)
	}
	return fmt.Sprintf("%T", e)
}
