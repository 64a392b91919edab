package actors

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/pvhub/pvhub/ca/client"
	"github.com/pvhub/pvhub/metrics"
	"github.com/pvhub/pvhub/relay"
)

// WriteRules decide which PVs transports may write; the rule that decided is
// returned for error messages (config.WriteRules implements it).
type WriteRules interface {
	Allowed(pv string) (bool, string)
}

// RouterConfig configures the router.
type RouterConfig struct {
	Relay  *actor.PID // the relay supervisor; nil when the relay is disabled
	Prefix string     // the relay prefix
	Client *client.Client
	Rules  WriteRules
	// Linger is how long an external PV's actor (and its channel) outlives its
	// last subscriber, so that a quick resubscription finds it connected.
	Linger time.Duration
	Logger *slog.Logger
	// Dispatcher runs the router's and the external PV actors' mailboxes; nil: protoactor's default.
	Dispatcher actor.Dispatcher
	// Metrics counts updates; nil counts nothing.
	Metrics *metrics.Metrics
}

// NewRouter returns the props of the router: the one place that maps a name to
// its actor. Relay names go to the relay supervisor (no CA round trip to
// ourselves), all other names to an external PV actor, spawned on demand.
func NewRouter(cfg RouterConfig) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		return &router{cfg: cfg, pvs: map[string]*external{}, access: map[string]map[string]*subAccess{}}
	}, withDispatcher(cfg.Dispatcher)...)
}

type router struct {
	cfg RouterConfig
	pvs map[string]*external
	// access holds every subscription (by name, then subscriber id) with the
	// write access the rules gave it, to tell the PVs when a reload changes it.
	access map[string]map[string]*subAccess
}

type subAccess struct {
	pid   *actor.PID
	write bool
}

// rules returns the write access of the rules in force to name, and the
// reason when it is denied.
func (r *router) rules(name string) (bool, string) {
	ok, rule := r.cfg.Rules.Allowed(name)
	if ok {
		return true, ""
	}
	return false, "write denied by " + rule
}

// external is an external PV actor and its subscribers, counted here so that
// the router alone decides when the actor stops (nothing is ever sent to an
// actor that is stopping).
type external struct {
	pid   *actor.PID
	subs  map[string]bool // subscriber PID ids
	gen   int             // linger generation
	timer *time.Timer
}

type lingerTick struct {
	name string
	gen  int
}

func (r *router) isRelay(name string) bool {
	if r.cfg.Relay == nil {
		return false
	}
	if _, ok := relay.ParseService(r.cfg.Prefix, name); ok {
		return true
	}
	_, ok := relay.ParseName(r.cfg.Prefix, name)
	return ok || strings.HasPrefix(name, r.cfg.Prefix)
}

func (r *router) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Stopping:
		for _, e := range r.pvs {
			if e.timer != nil {
				e.timer.Stop()
			}
		}
	case *Subscribe:
		s := *m
		s.Write, s.Denied = r.rules(m.Name)
		subs := r.access[m.Name]
		if subs == nil {
			subs = map[string]*subAccess{}
			r.access[m.Name] = subs
		}
		subs[m.Subscriber.Id] = &subAccess{pid: m.Subscriber, write: s.Write}
		if r.isRelay(m.Name) {
			ctx.Send(r.cfg.Relay, &s)
			return
		}
		e := r.pvs[m.Name]
		if e == nil {
			e = &external{pid: ctx.Spawn(newPVActor(m.Name, r.cfg.Client, r.cfg.Logger, r.cfg.Dispatcher, r.cfg.Metrics)), subs: map[string]bool{}}
			r.pvs[m.Name] = e
		}
		e.subs[m.Subscriber.Id] = true
		e.gen++ // cancels a pending linger
		ctx.Send(e.pid, &s)
	case *Unsubscribe:
		if subs := r.access[m.Name]; subs != nil {
			delete(subs, m.Subscriber.Id)
			if len(subs) == 0 {
				delete(r.access, m.Name)
			}
		}
		if r.isRelay(m.Name) {
			ctx.Send(r.cfg.Relay, m)
			return
		}
		e := r.pvs[m.Name]
		if e == nil || !e.subs[m.Subscriber.Id] {
			return
		}
		delete(e.subs, m.Subscriber.Id)
		ctx.Send(e.pid, m)
		if len(e.subs) == 0 {
			e.gen++
			root, self, tick := ctx.ActorSystem().Root, ctx.Self(), &lingerTick{name: m.Name, gen: e.gen}
			e.timer = time.AfterFunc(r.cfg.Linger, func() { root.Send(self, tick) })
		}
	case *RulesChanged:
		r.rulesChanged(ctx)
	case *lingerTick:
		if e := r.pvs[m.name]; e != nil && e.gen == m.gen && len(e.subs) == 0 {
			delete(r.pvs, m.name)
			ctx.Stop(e.pid)
		}
	case *Put:
		if ok, rule := r.cfg.Rules.Allowed(m.Name); !ok {
			ctx.Respond(&PutResult{Name: m.Name, ID: m.ID, Err: fmt.Errorf("%s: write denied by %s", m.Name, rule)})
			return
		}
		if r.isRelay(m.Name) {
			ctx.Forward(r.cfg.Relay)
			return
		}
		e := r.pvs[m.Name]
		if e == nil {
			// A put to a PV nobody watches: an actor for it, lingering after.
			e = &external{pid: ctx.Spawn(newPVActor(m.Name, r.cfg.Client, r.cfg.Logger, r.cfg.Dispatcher, r.cfg.Metrics)), subs: map[string]bool{}}
			r.pvs[m.Name] = e
			e.gen++
			root, self, tick := ctx.ActorSystem().Root, ctx.Self(), &lingerTick{name: m.Name, gen: e.gen}
			e.timer = time.AfterFunc(r.cfg.Linger+putTimeout, func() { root.Send(self, tick) })
		}
		ctx.Forward(e.pid)
	}
}

// rulesChanged checks every subscription against the rules in force and tells
// the PVs of those whose write access changed.
func (r *router) rulesChanged(ctx actor.Context) {
	changed := 0
	for name, subs := range r.access {
		write, denied := r.rules(name)
		for _, sa := range subs {
			if sa.write == write {
				continue
			}
			sa.write = write
			changed++
			msg := &Access{Name: name, Subscriber: sa.pid, Write: write, Denied: denied}
			if r.isRelay(name) {
				ctx.Send(r.cfg.Relay, msg)
			} else if e := r.pvs[name]; e != nil {
				ctx.Send(e.pid, msg)
			}
		}
	}
	if changed > 0 {
		r.cfg.Logger.Info("write rules changed the access of subscriptions", "subscriptions", changed)
	}
}
