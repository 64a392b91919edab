package actors

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/pvhub/pvhub/ca/client"
	"github.com/pvhub/pvhub/ca/wire"
	"github.com/pvhub/pvhub/metrics"
)

// putTimeout bounds a put to an external PV.
const putTimeout = 10 * time.Second

// newPVActor returns the props of the actor of one external PV: it owns a
// ca/client channel, keeps the latest connection state, metadata and value,
// and sends them to its subscribers.
func newPVActor(name string, c *client.Client, log *slog.Logger, d actor.Dispatcher, m *metrics.Metrics) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		return &pvActor{name: name, c: c, log: log, metrics: m, subs: &actor.PIDSet{}, canWrite: map[string]bool{}, denied: map[string]string{}}
	}, append(withDispatcher(d), actor.WithMailbox(actor.UnboundedLockfree()))...)
}

type pvActor struct {
	name    string
	c       *client.Client
	log     *slog.Logger
	metrics *metrics.Metrics
	ch      *client.Channel
	subs    *actor.PIDSet
	// canWrite records, per subscriber, whether the write rules let its
	// transport write this PV; its connection events say so.
	canWrite map[string]bool
	denied   map[string]string // per subscriber: the rule, when canWrite is false
	puts     sync.WaitGroup

	conn    *ConnectionEvent
	meta    *MetadataEvent
	val     *ValueEvent
	pending *ValueEvent // a value that arrived before the metadata
}

// Messages from the channel's callbacks to the actor.
type chanConn struct{ c client.Connection }

type chanMeta struct{ e *MetadataEvent }

type chanValue struct{ e *ValueEvent }

func (a *pvActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		a.start(ctx)
		a.metrics.ExternalPV(nil, &a.conn.Connected)
	case *actor.Stopping:
		if a.ch != nil {
			a.ch.Close()
		}
		a.puts.Wait()
		a.metrics.ExternalPV(&a.conn.Connected, nil)
	case *chanConn:
		a.onConn(ctx, m.c)
	case *chanMeta:
		a.meta = m.e
		a.broadcast(ctx, m.e)
		if a.pending != nil {
			a.val, a.pending = a.pending, nil
			a.broadcast(ctx, a.val)
		}
	case *chanValue:
		a.metrics.ExternalUpdate()
		if a.meta == nil {
			a.pending = m.e // metadata first, after every (re)connection
			return
		}
		a.val = m.e
		a.broadcast(ctx, m.e)
	case *Subscribe:
		a.subs.Add(m.Subscriber)
		a.canWrite[m.Subscriber.Id] = m.Write
		a.denied[m.Subscriber.Id] = m.Denied
		a.sendState(ctx, m.Subscriber)
	case *Access:
		if a.subs.Contains(m.Subscriber) {
			a.canWrite[m.Subscriber.Id] = m.Write
			a.denied[m.Subscriber.Id] = m.Denied
			if a.conn.Connected {
				ctx.Send(m.Subscriber, a.connFor(m.Subscriber))
			}
		}
	case *Unsubscribe:
		a.subs.Remove(m.Subscriber)
		delete(a.canWrite, m.Subscriber.Id)
		delete(a.denied, m.Subscriber.Id)
	case *Put:
		a.put(ctx, m)
	}
}

func (a *pvActor) start(ctx actor.Context) {
	root, self := ctx.ActorSystem().Root, ctx.Self()
	name := a.name
	a.conn = &ConnectionEvent{Name: name}
	ch, err := a.c.Channel(name, client.ChannelOptions{
		OnConnection: func(c client.Connection) { root.Send(self, &chanConn{c: c}) },
		OnError:      func(err error) { a.log.Warn("external PV error", "pv", name, "error", err) },
	})
	if err != nil {
		a.log.Error("cannot open a channel", "pv", name, "error", err)
		return
	}
	a.ch = ch
	_, _ = ch.Subscribe(client.SubscribeOptions{Type: wire.DBRTimeDouble, Native: true, Mask: wire.DBEValue | wire.DBEAlarm}, func(u *client.Update) {
		if u.DBR == nil {
			return
		}
		root.Send(self, &chanValue{e: &ValueEvent{Name: name, Value: u.DBR.Value.Clone(), Status: u.DBR.Status, Severity: u.DBR.Severity, Stamp: u.DBR.Stamp}})
	})
	_, _ = ch.Subscribe(client.SubscribeOptions{Type: wire.DBRCtrlDouble, Native: true, Mask: wire.DBEProperty}, func(u *client.Update) {
		if u.DBR == nil {
			return
		}
		info := ch.Info()
		meta := u.DBR.Meta
		meta.EnumStrings = append([]string(nil), meta.EnumStrings...)
		root.Send(self, &chanMeta{e: &MetadataEvent{Name: name, Type: info.Type, Count: info.Count, Meta: meta}})
	})
}

func (a *pvActor) onConn(ctx actor.Context, c client.Connection) {
	e := &ConnectionEvent{Name: a.name, Connected: c.State == client.Connected, Read: c.Read, Write: c.Write}
	if e.Connected != a.conn.Connected {
		a.meta, a.val, a.pending = nil, nil, nil // fresh metadata and value follow
		a.metrics.ExternalPV(&a.conn.Connected, &e.Connected)
	}
	a.conn = e
	a.subs.ForEach(func(_ int, pid *actor.PID) { ctx.Send(pid, a.connFor(pid)) })
}

// connFor returns the connection event as the subscriber sees it.
func (a *pvActor) connFor(pid *actor.PID) *ConnectionEvent {
	c := *a.conn
	switch {
	case !c.Connected:
	case !a.canWrite[pid.Id]:
		c.Write, c.WriteDenied = false, a.denied[pid.Id]
	case !c.Write:
		c.WriteDenied = "the IOC grants no write access (CA access security)"
	}
	return &c
}

// sendState gives a new subscriber what is known.
func (a *pvActor) sendState(ctx actor.Context, to *actor.PID) {
	ctx.Send(to, a.connFor(to))
	if a.meta != nil {
		ctx.Send(to, a.meta)
	}
	if a.val != nil {
		ctx.Send(to, a.val)
	}
}

func (a *pvActor) broadcast(ctx actor.Context, msg any) {
	a.subs.ForEach(func(_ int, pid *actor.PID) { ctx.Send(pid, msg) })
}

// put writes without blocking the actor: the put runs on its own goroutine,
// which the actor waits for when it stops, and answers the requester directly.
func (a *pvActor) put(ctx actor.Context, m *Put) {
	sender, root, ch := ctx.Sender(), ctx.ActorSystem().Root, a.ch
	if ch == nil {
		ctx.Respond(&PutResult{Name: m.Name, ID: m.ID, Err: fmt.Errorf("%s: no channel", m.Name)})
		return
	}
	a.puts.Add(1)
	go func() {
		defer a.puts.Done()
		pctx, cancel := context.WithTimeout(context.Background(), putTimeout)
		defer cancel()
		err := ch.Put(pctx, m.Value)
		if sender != nil {
			root.Send(sender, &PutResult{Name: m.Name, ID: m.ID, Err: err})
		}
	}()
}
