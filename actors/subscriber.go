package actors

import (
	"log/slog"
	"sync"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/pvhub/pvhub/ca/wire"
	"github.com/pvhub/pvhub/metrics"
	"github.com/pvhub/pvhub/plugins"
)

// SubscriberConfig configures the subscriber actor of one transport plugin.
type SubscriberConfig struct {
	Name   string     // the transport's name, for the log
	Router *actor.PID // where subscriptions and puts go
	// Deliver hands a batch to the plugin. It may block while the plugin is
	// behind; it runs on the actor's sender goroutine, never on the actor.
	Deliver func([]plugins.Event) error
	Logger  *slog.Logger
	// Dispatcher runs the actor's mailbox; nil: protoactor's default.
	Dispatcher actor.Dispatcher
	// Metrics counts the transport's updates, coalescing, put errors and
	// subscriptions; nil counts nothing.
	Metrics *metrics.Metrics
}

// The requests a plugin makes, as messages to its subscriber actor.
type (
	// PluginSubscribe subscribes the plugin to Names.
	PluginSubscribe struct{ Names []string }
	// PluginUnsubscribe ends the plugin's subscriptions to Names.
	PluginUnsubscribe struct{ Names []string }
	// PluginPut writes Value to Name; the result reaches the plugin as a PutResult.
	PluginPut struct {
		Name  string
		Value wire.Value
		ID    uint64
	}
	// Replay sends the plugin the current state of every PV it is subscribed
	// to, after the plugin process restarted.
	Replay struct{}
)

// NewSubscriber returns the props of a plugin's subscriber actor. It keeps
// the plugin's subscription set, batches events to it, and when the plugin
// falls behind keeps only the newest event of each kind per PV: memory stays
// bounded by the subscriptions, and the last value is never lost.
func NewSubscriber(cfg SubscriberConfig) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		return &subscriber{cfg: cfg, names: map[string]bool{}}
	}, withDispatcher(cfg.Dispatcher)...)
}

type subscriber struct {
	cfg   SubscriberConfig
	names map[string]bool
	out   *outbox
	m     *metrics.Transport
}

func (s *subscriber) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		s.m = s.cfg.Metrics.Transport(s.cfg.Name)
		s.out = newOutbox(s.cfg.Deliver, s.cfg.Logger.With("transport", s.cfg.Name), s.m)
	case *actor.Stopping:
		for n := range s.names {
			ctx.Send(s.cfg.Router, &Unsubscribe{Name: n, Subscriber: ctx.Self()})
		}
		s.m.Subscribed(-len(s.names))
		s.out.close()
	case *PluginSubscribe:
		// Always forwarded: a subscription is idempotent down the line, and the
		// PV answers with its current state, which the plugin asks for (a
		// restarted plugin subscribes again to names this actor still holds).
		for _, n := range m.Names {
			if !s.names[n] {
				s.names[n] = true
				s.m.Subscribed(1)
			}
			ctx.Send(s.cfg.Router, &Subscribe{Name: n, Subscriber: ctx.Self()})
		}
	case *PluginUnsubscribe:
		for _, n := range m.Names {
			if s.names[n] {
				delete(s.names, n)
				s.m.Subscribed(-1)
				ctx.Send(s.cfg.Router, &Unsubscribe{Name: n, Subscriber: ctx.Self()})
			}
		}
	case *PluginPut:
		ctx.Request(s.cfg.Router, &Put{Name: m.Name, Value: m.Value, ID: m.ID})
	case *Replay:
		// Subscribing again is idempotent and makes every PV send its state.
		for n := range s.names {
			ctx.Send(s.cfg.Router, &Subscribe{Name: n, Subscriber: ctx.Self()})
		}
	case *ConnectionEvent:
		s.out.add(outKey{m.Name, 'c', 0}, plugins.Connection{Name: m.Name, Connected: m.Connected, Read: m.Read, Write: m.Write, WriteDenied: m.WriteDenied})
	case *MetadataEvent:
		s.out.add(outKey{m.Name, 'm', 0}, toPluginMeta(m))
	case *ValueEvent:
		s.out.add(outKey{m.Name, 'v', 0}, toPluginValue(m))
	case *PutResult:
		r := plugins.PutResult{Name: m.Name, ID: m.ID}
		if m.Err != nil {
			r.Err = m.Err.Error()
			s.m.PutError()
		}
		s.out.add(outKey{m.Name, 'p', m.ID}, r)
	}
}

// coalescedCount returns how many events were replaced under backpressure
// since start (for metrics and tests).
func (o *outbox) coalescedCount() uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.coalesced
}

type outKey struct {
	name string
	kind byte
	id   uint64 // put results are never coalesced
}

// outbox holds the events not yet handed to the plugin: the newest per key,
// in the order their keys first appeared. A sender goroutine, owned by the
// subscriber actor and ended by close, delivers them in batches.
type outbox struct {
	mu        sync.Mutex
	order     []outKey
	pending   map[outKey]plugins.Event
	coalesced uint64
	metrics   *metrics.Transport
	closed    bool
	wake      chan struct{}
	done      chan struct{}
}

func newOutbox(deliver func([]plugins.Event) error, log *slog.Logger, m *metrics.Transport) *outbox {
	o := &outbox{pending: map[outKey]plugins.Event{}, wake: make(chan struct{}, 1), done: make(chan struct{}), metrics: m}
	go o.send(deliver, log)
	return o
}

func (o *outbox) add(k outKey, e plugins.Event) {
	o.mu.Lock()
	if _, ok := o.pending[k]; ok {
		o.coalesced++
		o.metrics.Coalesced()
	} else {
		o.order = append(o.order, k)
	}
	o.pending[k] = e
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

func (o *outbox) send(deliver func([]plugins.Event) error, log *slog.Logger) {
	defer close(o.done)
	var batch []plugins.Event
	failing := false
	for {
		o.mu.Lock()
		for !o.closed && len(o.order) == 0 {
			o.mu.Unlock()
			<-o.wake
			o.mu.Lock()
		}
		if o.closed {
			o.mu.Unlock()
			return
		}
		batch = batch[:0]
		for _, k := range o.order {
			batch = append(batch, o.pending[k])
		}
		o.order = o.order[:0]
		clear(o.pending)
		o.mu.Unlock()
		// While the plugin is down its events are dropped; a restarted plugin
		// gets the current state again (Replay).
		if err := deliver(batch); err != nil && !failing {
			log.Warn("events not delivered to the transport", "error", err)
			failing = true
		} else if err == nil {
			failing = false
			values := 0
			for _, e := range batch {
				if _, ok := e.(plugins.Value); ok {
					values++
				}
			}
			o.metrics.UpdatesOut(values)
		}
		clear(batch)
	}
}

func (o *outbox) close() {
	o.mu.Lock()
	o.closed = true
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
	<-o.done
}

// toPluginValue converts a value event to the plugin contract.
func toPluginValue(m *ValueEvent) plugins.Value {
	return plugins.Value{Name: m.Name, Data: ToPluginData(&m.Value), Seconds: m.Stamp.Sec, Nanos: m.Stamp.Nsec,
		Status: m.Status.String(), Severity: m.Severity.String()}
}

func toPluginMeta(m *MetadataEvent) plugins.Metadata {
	l := m.Meta.Limits
	return plugins.Metadata{Name: m.Name, Type: plugins.Type(m.Type), Count: m.Count, Units: m.Meta.Units,
		Precision:  int(m.Meta.Precision),
		Display:    plugins.Range{Low: l.LowerDisp, High: l.UpperDisp},
		Control:    plugins.Range{Low: l.LowerCtrl, High: l.UpperCtrl},
		Warning:    plugins.Range{Low: l.LowerWarning, High: l.UpperWarning},
		Alarm:      plugins.Range{Low: l.LowerAlarm, High: l.UpperAlarm},
		EnumLabels: append([]string(nil), m.Meta.EnumStrings...), Description: m.Description}
}

// ToPluginData converts a CA value to the plugin contract's typed data.
func ToPluginData(v *wire.Value) plugins.Data {
	switch v.Type {
	case wire.DBRString:
		return plugins.Strings(append([]string(nil), v.Strings...)...)
	case wire.DBRChar:
		return plugins.Bytes(append([]byte(nil), v.Chars...))
	case wire.DBRFloat, wire.DBRDouble:
		var d wire.Value
		_ = wire.Convert(&d, wire.DBRDouble, v, 0, nil)
		return plugins.Float64s(d.Doubles...)
	}
	out := make([]int64, v.Len())
	for i := range out {
		switch v.Type {
		case wire.DBRShort:
			out[i] = int64(v.Shorts[i])
		case wire.DBREnum:
			out[i] = int64(v.Enums[i])
		case wire.DBRLong:
			out[i] = int64(v.Longs[i])
		}
	}
	return plugins.Int64s(out...)
}

// FromPluginData converts a transport's put value to a CA value.
func FromPluginData(d plugins.Data) wire.Value {
	switch d.Kind {
	case plugins.KindFloat64:
		return wire.Value{Type: wire.DBRDouble, Doubles: d.Float64s}
	case plugins.KindString:
		return wire.Value{Type: wire.DBRString, Strings: d.Strings}
	case plugins.KindBytes:
		return wire.Value{Type: wire.DBRChar, Chars: d.Bytes}
	}
	// Integers go as doubles: exact up to 2^53, and every CA integer type fits.
	f := make([]float64, len(d.Int64s))
	for i, x := range d.Int64s {
		f[i] = float64(x)
	}
	return wire.Value{Type: wire.DBRDouble, Doubles: f}
}
