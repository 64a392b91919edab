// Package runtime assembles pvhub: the actor system, the relay supervisor and
// its autosave, and the CA server that serves the relay PVs. It owns the start
// and stop order: autosaved PVs are restored before the CA server answers its
// first search, and saved once more after it stops.
package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	goruntime "runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/pvhub/pvhub/actors"
	"github.com/pvhub/pvhub/ca/client"
	"github.com/pvhub/pvhub/ca/server"
	"github.com/pvhub/pvhub/ca/wire"
	"github.com/pvhub/pvhub/metrics"
	"github.com/pvhub/pvhub/relay"
)

// RelayOptions configure the relay.
type RelayOptions struct {
	Enabled        bool
	Prefix         string
	MaxPVs         int
	MaxElements    int
	AutosavePath   string // empty: no autosave
	AutosavePeriod time.Duration
}

// Options configure a Runtime.
type Options struct {
	Relay  RelayOptions
	Server server.Config // the relay's CA server; its Source and Logger are set by the runtime
	Client client.Config // the CA client of external PVs; its Logger is set by the runtime
	// Write decides which PVs transports may write; nil allows the relay
	// prefix only.
	Write actors.WriteRules
	// Linger is how long an external PV stays connected after its last
	// subscriber leaves; 5 s by default.
	Linger time.Duration
	// Transports are the transport plugins to run.
	Transports []TransportOptions
	Logger     *slog.Logger
	// Metrics, when not nil, receives the runtime's metrics (updates, PVs,
	// subscriptions, circuits, plugin restarts, the autosave's age).
	Metrics *metrics.Metrics
}

// prefixRules allow writes to the relay prefix only: pvhub's default.
type prefixRules struct{ prefix string }

func (p prefixRules) Allowed(pv string) (bool, string) {
	if p.prefix != "" && strings.HasPrefix(pv, p.prefix) {
		return true, fmt.Sprintf("write.allow %q", p.prefix+"*")
	}
	return false, "no write.allow pattern matches"
}

// Runtime is a running pvhub.
type Runtime struct {
	opts       Options
	log        *slog.Logger
	system     *actor.ActorSystem
	dispatch   *actors.Dispatcher // runs the busy actors' mailboxes
	unsaved    atomic.Int64       // see actors.AutosaveConfig.Unsaved
	index      *actors.Index
	sup        *actor.PID
	save       *actor.PID
	router     *actor.PID
	client     *client.Client
	transports []*transport
	srv        *server.Server
	ids        atomic.Uint64

	mu      sync.Mutex
	started bool
	closed  bool
}

// New checks the options and returns a runtime. It does no I/O.
func New(opts Options) (*Runtime, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Write == nil {
		prefix := ""
		if opts.Relay.Enabled {
			prefix = opts.Relay.Prefix
		}
		opts.Write = prefixRules{prefix: prefix}
	}
	if opts.Linger <= 0 {
		opts.Linger = 5 * time.Second
	}
	r := &opts.Relay
	if r.Enabled {
		switch {
		case r.Prefix == "":
			return nil, errors.New("runtime: relay.prefix is empty")
		case r.MaxPVs < 1:
			return nil, fmt.Errorf("runtime: relay.max_pvs %d must be positive", r.MaxPVs)
		case r.MaxElements < 1:
			return nil, fmt.Errorf("runtime: relay.max_elements %d must be positive", r.MaxElements)
		case r.AutosavePath != "" && r.AutosavePeriod <= 0:
			return nil, fmt.Errorf("runtime: relay.autosave.period %v must be positive", r.AutosavePeriod)
		}
	}
	return &Runtime{opts: opts, log: opts.Logger, index: actors.NewIndex()}, nil
}

// Start starts the actors, restores the autosaved relay PVs and starts the CA
// server.
func (r *Runtime) Start(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started {
		return errors.New("runtime: already started")
	}
	r.started = true
	log := r.log
	r.system = actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return log.With("component", "actors")
	}))
	r.dispatch = actors.NewDispatcher(max(4, 2*goruntime.GOMAXPROCS(0)), 300)
	r.observe()
	ccfg := r.opts.Client
	ccfg.Logger = r.log.With("component", "ca-client")
	c, err := client.New(ccfg)
	if err == nil {
		err = c.Start(ctx)
	}
	if err != nil {
		r.system.Shutdown()
		r.dispatch.Close()
		return fmt.Errorf("CA client: %w", err)
	}
	r.client = c
	if !r.opts.Relay.Enabled {
		r.log.Info("relay disabled")
		r.startRouter()
		if err := r.startTransports(ctx); err != nil {
			r.stopActors()
			return err
		}
		return nil
	}
	ro := r.opts.Relay
	if ro.AutosavePath != "" {
		r.save = r.system.Root.Spawn(actors.NewAutosave(actors.AutosaveConfig{Path: ro.AutosavePath, Period: ro.AutosavePeriod, Logger: r.log, Unsaved: &r.unsaved}))
	}
	r.sup = r.system.Root.Spawn(actors.NewRelaySupervisor(actors.RelayConfig{Prefix: ro.Prefix, MaxPVs: ro.MaxPVs,
		MaxElements: ro.MaxElements, Index: r.index, Autosave: r.save, Logger: r.log, Dispatcher: r.dispatch, Metrics: r.opts.Metrics}))
	if ro.AutosavePath != "" {
		if err := r.restore(); err != nil {
			r.stopActors()
			return err
		}
	}
	r.startRouter()
	cfg := r.opts.Server
	cfg.Source = &source{r: r}
	cfg.Logger = r.log
	srv, err := server.New(cfg)
	if err == nil {
		err = srv.Start(ctx)
	}
	if err != nil {
		r.stopActors()
		return fmt.Errorf("relay CA server: %w", err)
	}
	r.srv = srv
	if err := r.startTransports(ctx); err != nil {
		_ = srv.Close()
		r.srv = nil
		r.stopActors()
		return err
	}
	r.log.Info("relay ready", "prefix", ro.Prefix, "pvs", r.index.Len(), "tcp_port", srv.TCPPort())
	return nil
}

// restore loads the autosave file and recreates its PVs. A corrupt file is
// moved aside and reported; pvhub then starts with no relay PVs.
func (r *Runtime) restore() error {
	path := r.opts.Relay.AutosavePath
	saved, err := relay.Load(path)
	var corrupt *relay.CorruptError
	switch {
	case errors.As(err, &corrupt):
		aside, kerr := relay.KeepAside(path, time.Now())
		if kerr != nil {
			return fmt.Errorf("autosave file %s is corrupt (%v) and cannot be moved aside: %w", path, err, kerr)
		}
		r.log.Error("autosave file is corrupt; it was kept aside and pvhub starts with no relay PVs",
			"path", path, "kept_as", aside, "error", err)
		return nil
	case err != nil:
		return fmt.Errorf("autosave file %s: %w", path, err)
	}
	res, err := r.system.Root.RequestFuture(r.sup, &actors.RestoreRelay{Saved: saved}, time.Minute).Result()
	if err != nil {
		return fmt.Errorf("restoring relay PVs: %w", err)
	}
	rr := res.(*actors.Restored)
	for _, e := range rr.Errs {
		r.log.Error("autosaved PV not restored", "error", e)
	}
	r.log.Info("relay PVs restored", "path", path, "pvs", rr.Count)
	return nil
}

func (r *Runtime) startRouter() {
	r.router = r.system.Root.Spawn(actors.NewRouter(actors.RouterConfig{Relay: r.sup, Prefix: r.opts.Relay.Prefix,
		Client: r.client, Rules: r.opts.Write, Linger: r.opts.Linger, Logger: r.log, Dispatcher: r.dispatch, Metrics: r.opts.Metrics}))
}

// System returns the actor system, in which transports spawn their subscriber
// actors.
func (r *Runtime) System() *actor.ActorSystem { return r.system }

// Subscribe makes the actor sub receive the events of the PV name (relay or
// external): connection, metadata and value, now and on every change.
func (r *Runtime) Subscribe(name string, sub *actor.PID) {
	r.system.Root.Send(r.router, &actors.Subscribe{Name: name, Subscriber: sub})
}

// Unsubscribe stops the events of name to sub.
func (r *Runtime) Unsubscribe(name string, sub *actor.PID) {
	r.system.Root.Send(r.router, &actors.Unsubscribe{Name: name, Subscriber: sub})
}

// RulesChanged tells the runtime that the write rules it was given changed (a
// reload): the subscriptions whose write access changed get a new connection
// event. Puts always check the rules in force.
func (r *Runtime) RulesChanged() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.router != nil {
		r.system.Root.Send(r.router, &actors.RulesChanged{})
	}
}

// Server returns the relay's CA server (nil when the relay is disabled).
func (r *Runtime) Server() *server.Server {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.srv
}

// Put writes v to the PV name as a transport's put does: the write rules
// apply; a relay name creates or updates the relay PV; an external PV is
// written through the CA client and the server's completion is awaited.
func (r *Runtime) Put(ctx context.Context, name string, v wire.Value) error {
	timeout := 15 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	res, err := r.system.Root.RequestFuture(r.router, &actors.Put{Name: name, Value: v, ID: r.ids.Add(1)}, timeout).Result()
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return res.(*actors.PutResult).Err
}

// RelayNames returns the names of the relay PVs.
func (r *Runtime) RelayNames() ([]string, error) {
	if r.sup == nil {
		return nil, nil
	}
	res, err := r.system.Root.RequestFuture(r.sup, &actors.ListRelay{}, 5*time.Second).Result()
	if err != nil {
		return nil, err
	}
	return res.(*actors.Names).Names, nil
}

// Close stops the CA server, saves the relay PVs one last time and stops the
// actors. It is idempotent.
func (r *Runtime) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.started || r.closed {
		r.closed = true
		return nil
	}
	r.closed = true
	var errs []error
	r.stopTransports()
	if r.srv != nil {
		errs = append(errs, r.srv.Close())
	}
	if r.save != nil {
		res, err := r.system.Root.RequestFuture(r.save, &actors.Flush{}, 30*time.Second).Result()
		if err == nil {
			err = res.(*actors.Result).Err
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("final autosave: %w", err))
		}
	}
	r.stopActors()
	return errors.Join(errs...)
}

func (r *Runtime) stopActors() {
	if r.router != nil {
		_ = r.system.Root.StopFuture(r.router).Wait()
	}
	if r.client != nil {
		_ = r.client.Close()
	}
	if r.sup != nil {
		_ = r.system.Root.StopFuture(r.sup).Wait()
	}
	if r.save != nil {
		_ = r.system.Root.StopFuture(r.save).Wait()
	}
	r.system.Shutdown()
	r.dispatch.Close()
}

// source is the relay's CA server Source: names it knows come from the index;
// new relay names are claimed when they parse and fit the caps.
type source struct {
	r    *Runtime
	mu   sync.Mutex
	last map[string]time.Time // when each refused name was last logged
}

func (s *source) Claim(name string) bool {
	if s.r.index.Get(name) != nil {
		return true
	}
	ro := s.r.opts.Relay
	n, ok := relay.ParseName(ro.Prefix, name)
	if !ok {
		return false
	}
	if s.r.index.Get(n.PVName()) != nil {
		return true // a field of an existing PV, not a new PV
	}
	if err := n.Check(ro.MaxElements); err != nil {
		s.warn(name, "relay name refused", "pv", name, "error", err)
		return false
	}
	if s.r.index.Len() >= ro.MaxPVs {
		s.warn(name, "relay.max_pvs reached; new relay PVs are not created", "pv", name, "max_pvs", ro.MaxPVs)
		return false
	}
	return true
}

// warn logs a refused name once a minute at most: clients repeat their
// searches, but every refused name is reported.
func (s *source) warn(name, msg string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if t, ok := s.last[name]; ok && now.Sub(t) < time.Minute {
		return
	}
	if s.last == nil || len(s.last) >= 10000 {
		s.last = map[string]time.Time{} // bounded: forget old names
	}
	s.last[name] = now
	s.r.log.Warn(msg, args...)
}

func (s *source) Open(ctx context.Context, name string) (*server.PV, error) {
	if pv := s.r.index.Get(name); pv != nil {
		return pv, nil
	}
	res, err := s.r.system.Root.RequestFuture(s.r.sup, &actors.OpenRelay{Name: name}, 5*time.Second).Result()
	if err != nil {
		return nil, err
	}
	o := res.(*actors.Opened)
	return o.PV, o.Err
}

// observe registers the gauges read at each scrape.
func (r *Runtime) observe() {
	o := metrics.Observed{
		RelayPVs: r.index.Len,
		// A scrape never waits for Start, Close or SetTransports.
		ServerCircuits: func() int {
			if !r.mu.TryLock() {
				return -1
			}
			srv := r.srv
			r.mu.Unlock()
			if srv == nil {
				return 0
			}
			return srv.Clients()
		},
		ClientCircuits: func() int {
			if !r.mu.TryLock() {
				return -1
			}
			c := r.client
			r.mu.Unlock()
			if c == nil {
				return 0
			}
			return c.Circuits()
		},
	}
	if r.opts.Relay.Enabled && r.opts.Relay.AutosavePath != "" {
		o.AutosaveAge = func() float64 { return actors.UnsavedAge(&r.unsaved, time.Now()).Seconds() }
	}
	r.opts.Metrics.Observe(o)
}

// Ready reports why the runtime does not serve yet (nil when it does): the
// relay's CA server is bound, and every transport plugin runs. It never waits:
// while the runtime starts, stops or changes its transports, it is not ready.
func (r *Runtime) Ready() error {
	if !r.mu.TryLock() {
		return errors.New("starting, stopping or changing its transports")
	}
	defer r.mu.Unlock()
	if !r.started || r.closed {
		return errors.New("not running")
	}
	if r.opts.Relay.Enabled && r.srv == nil {
		return errors.New("the relay's CA server is not bound")
	}
	var down []string
	for _, tr := range r.transports {
		if tr.sup != nil && tr.sup.Current() == nil {
			down = append(down, tr.name)
		}
	}
	if len(down) > 0 {
		return fmt.Errorf("transport plugins not running: %s", strings.Join(down, ", "))
	}
	return nil
}
