package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/pvhub/pvhub/ca/server"
	"github.com/pvhub/pvhub/ca/wire"
	"github.com/pvhub/pvhub/metrics"
	"github.com/pvhub/pvhub/relay"
)

// askTimeout bounds how long a CA write waits for its relay PV actor.
const askTimeout = 5 * time.Second

// pvlistDelay is how long changes to the PV list are gathered before
// <prefix>pvlist is posted again (so creating many PVs costs one post).
const pvlistDelay = 100 * time.Millisecond

// RelayConfig configures the relay supervisor.
type RelayConfig struct {
	Prefix      string
	MaxPVs      int
	MaxElements int
	Index       *Index
	Autosave    *actor.PID // nil: no autosave
	Logger      *slog.Logger
	// Dispatcher runs the supervisor's and the relay PV actors' mailboxes; nil: protoactor's default.
	Dispatcher actor.Dispatcher
	// Metrics counts updates; nil counts nothing.
	Metrics *metrics.Metrics
}

// NewRelaySupervisor returns the props of the relay supervisor. Its children are
// restarted with their state intact when they fail.
func NewRelaySupervisor(cfg RelayConfig) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		return &supervisor{cfg: cfg, log: cfg.Logger, children: map[string]*relayBox{}}
	}, append(withDispatcher(cfg.Dispatcher),
		actor.WithSupervisor(actor.NewOneForOneStrategy(10, time.Minute, actor.DefaultDecider)))...)
}

type supervisor struct {
	cfg      RelayConfig
	props    *actor.Props // shared by every relay PV actor
	boxes    *boxTable
	log      *slog.Logger
	children map[string]*relayBox // by PV name
	pvlist   *server.PV
	delpv    *server.PV
	timer    *time.Timer
	dirty    bool
	listSubs actor.PIDSet // subscribers of <prefix>pvlist
	self     *actor.PID
	system   *actor.ActorSystem
}

// relayBox is a relay PV's state; it outlives restarts of its actor.
type relayBox struct {
	mu      sync.Mutex // guards st and fields against the CA write path's reads
	name    relay.Name
	st      *relay.State
	main    *server.PV
	fields  map[string]*server.PV // opened attribute PVs; nil until the first
	pid     *actor.PID
	system  *actor.ActorSystem
	idx     *Index
	subs    map[string]*actor.PIDSet // subscribers by field ("" for the value); the actor's alone
	save    *actor.PID
	log     *slog.Logger
	metrics *metrics.Metrics
}

func (s *supervisor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		s.self, s.system = ctx.Self(), ctx.ActorSystem()
		s.boxes = &boxTable{m: map[string]*relayBox{}}
		boxes := s.boxes
		// One Props for all relay PV actors (a Props per PV would cost more
		// than the PV's own state); an actor finds its box by its PID, also
		// after a restart. The lock-free mailbox allocates nothing up front.
		s.props = actor.PropsFromProducer(func() actor.Actor { return &relayActor{boxes: boxes} },
			append(withDispatcher(s.cfg.Dispatcher), actor.WithMailbox(actor.UnboundedLockfree()))...)
		s.startServicePVs()
	case *actor.Stopping:
		if s.timer != nil {
			s.timer.Stop()
		}
	case *OpenRelay:
		s.open(ctx, m.Name)
	case *DeleteRelay:
		ctx.Respond(&Result{Err: s.delete(ctx, m.Name)})
	case *RestoreRelay:
		ctx.Respond(s.restore(ctx, m.Saved))
	case *ListRelay:
		ctx.Respond(&Names{Names: s.names()})
	case *listBoxes:
		out := make([]*relayBox, 0, len(s.children))
		for _, b := range s.children {
			out = append(out, b)
		}
		ctx.Respond(out)
	case *Subscribe:
		s.subscribe(ctx, m)
	case *Access:
		if svc, ok := relay.ParseService(s.cfg.Prefix, m.Name); ok {
			if svc == relay.DelPV || s.listSubs.Contains(m.Subscriber) {
				ctx.Send(m.Subscriber, serviceConn(m.Name, svc, m.Write, m.Denied))
			}
		} else if n, ok := relay.ParseName(s.cfg.Prefix, m.Name); ok {
			if b := s.children[n.PVName()]; b != nil {
				ctx.Forward(b.pid)
			}
		}
	case *Unsubscribe:
		if m.Name == s.cfg.Prefix+"pvlist" {
			s.listSubs.Remove(m.Subscriber)
		} else if n, ok := relay.ParseName(s.cfg.Prefix, m.Name); ok {
			if b := s.children[n.PVName()]; b != nil {
				ctx.Forward(b.pid)
			}
		}
	case *Put:
		if svc, ok := relay.ParseService(s.cfg.Prefix, m.Name); ok {
			err := fmt.Errorf("%s is read-only", m.Name)
			if svc == relay.DelPV {
				err = s.delete(ctx, textOf(&m.Value))
			}
			ctx.Respond(&PutResult{Name: m.Name, ID: m.ID, Err: err})
			return
		}
		b, _, err := s.lookup(ctx, m.Name)
		if err != nil {
			ctx.Respond(&PutResult{Name: m.Name, ID: m.ID, Err: err})
			return
		}
		ctx.Forward(b.pid)
	case *pvlistTick:
		s.dirty = false
		s.postPVList()
	}
}

// startServicePVs creates <prefix>pvlist and <prefix>delpv.
func (s *supervisor) startServicePVs() {
	capacity := min(max(s.cfg.MaxPVs*64, 16384), 8<<20)
	var err error
	s.pvlist, err = server.NewPV(s.cfg.Prefix+"pvlist", server.PVOptions{Type: wire.DBRChar, Count: capacity, Text: true, ReadOnly: true,
		Value: wire.Value{Type: wire.DBRChar, Chars: []byte{0}}, Meta: wire.Metadata{ClassName: "waveform"}})
	if err != nil {
		s.log.Error("cannot create the PV list", "error", err)
	}
	root := s.system.Root
	self := s.self
	s.delpv, err = server.NewPV(s.cfg.Prefix+"delpv", server.PVOptions{Type: wire.DBRChar, Count: 256, Text: true,
		Value: wire.Value{Type: wire.DBRChar, Chars: []byte{0}}, Meta: wire.Metadata{ClassName: "waveform"},
		OnWrite: func(_ context.Context, p *server.Put) error {
			name := textOf(&p.Raw)
			if name == "" {
				return errors.New("write the name of the relay PV to delete")
			}
			r, err := root.RequestFuture(self, &DeleteRelay{Name: name}, askTimeout).Result()
			if err != nil {
				return fmt.Errorf("delete %s: %w", name, err)
			}
			if err := r.(*Result).Err; err != nil {
				return err
			}
			return p.PV.Post(wire.Value{Type: wire.DBRChar, Chars: append([]byte(name), 0)}, server.NoAlarm, wire.Timestamp{})
		}})
	if err != nil {
		s.log.Error("cannot create the delete PV", "error", err)
	}
	if s.pvlist != nil {
		s.cfg.Index.add(s.pvlist.Name(), s.pvlist, false)
	}
	if s.delpv != nil {
		s.cfg.Index.add(s.delpv.Name(), s.delpv, false)
	}
}

// textOf returns a written value as text: a string's text or a char array's
// bytes up to the first NUL.
func textOf(v *wire.Value) string {
	switch v.Type {
	case wire.DBRString:
		if len(v.Strings) > 0 {
			return strings.TrimSpace(v.Strings[0])
		}
	case wire.DBRChar:
		b := v.Chars
		if i := slices.Index(b, 0); i >= 0 {
			b = b[:i]
		}
		return strings.TrimSpace(string(b))
	}
	return ""
}

func (s *supervisor) names() []string {
	out := make([]string, 0, len(s.children))
	for n := range s.children {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// markDirty schedules a post of the PV list.
func (s *supervisor) markDirty() {
	if s.dirty {
		return
	}
	s.dirty = true
	root, self := s.system.Root, s.self
	s.timer = time.AfterFunc(pvlistDelay, func() { root.Send(self, &pvlistTick{}) })
}

func (s *supervisor) postPVList() {
	if s.pvlist == nil {
		return
	}
	text := strings.Join(s.names(), ",")
	if len(text) >= s.pvlist.Count() {
		s.log.Warn("the relay PV list is longer than its PV; it is cut", "bytes", len(text), "capacity", s.pvlist.Count())
		text = text[:s.pvlist.Count()-1]
	}
	v := wire.Value{Type: wire.DBRChar, Chars: append([]byte(text), 0)}
	_ = s.pvlist.Post(v, server.NoAlarm, wire.Timestamp{})
	if s.listSubs.Len() > 0 {
		e := &ValueEvent{Name: s.pvlist.Name(), Value: v, Stamp: s.pvlist.Snapshot().Stamp}
		s.listSubs.ForEach(func(_ int, pid *actor.PID) { s.system.Root.Send(pid, e) })
	}
}

// subscribe handles a transport's subscription to a relay name, creating the
// PV as a channel creation would.
func (s *supervisor) subscribe(ctx actor.Context, m *Subscribe) {
	if svc, ok := relay.ParseService(s.cfg.Prefix, m.Name); ok {
		pv := s.pvlist
		if svc == relay.DelPV {
			pv = s.delpv
		} else {
			s.listSubs.Add(m.Subscriber)
		}
		st := pv.Snapshot()
		ctx.Send(m.Subscriber, serviceConn(m.Name, svc, m.Write, m.Denied))
		ctx.Send(m.Subscriber, &MetadataEvent{Name: m.Name, Type: pv.Type(), Count: pv.Count(), Meta: st.Meta})
		ctx.Send(m.Subscriber, &ValueEvent{Name: m.Name, Value: st.Value.Clone(), Status: st.Status, Severity: st.Severity, Stamp: st.Stamp})
		return
	}
	b, _, err := s.lookup(ctx, m.Name)
	if err != nil {
		s.log.Info("subscription to a name the relay does not serve", "pv", m.Name, "error", err)
		ctx.Send(m.Subscriber, &ConnectionEvent{Name: m.Name})
		return
	}
	ctx.Forward(b.pid)
}

// lookup parses a name and finds or creates its relay PV.
func (s *supervisor) lookup(ctx actor.Context, full string) (*relayBox, relay.Name, error) {
	n, ok := relay.ParseName(s.cfg.Prefix, full)
	if !ok {
		return nil, n, fmt.Errorf("%q is not a relay name (%s<name>_<f|i|c|F|I|C><count>)", full, s.cfg.Prefix)
	}
	if b := s.children[n.PVName()]; b != nil {
		return b, n, nil
	}
	if err := n.Check(s.cfg.MaxElements); err != nil {
		return nil, n, err
	}
	if len(s.children) >= s.cfg.MaxPVs {
		return nil, n, fmt.Errorf("%s: relay.max_pvs (%d) reached; delete PVs through %sdelpv or raise the limit", n.PVName(), s.cfg.MaxPVs, s.cfg.Prefix)
	}
	b, err := s.spawn(ctx, n, relay.New(n))
	return b, n, err
}

// spawn starts the actor of a relay PV with state st.
func (s *supervisor) spawn(ctx actor.Context, n relay.Name, st *relay.State) (*relayBox, error) {
	b := &relayBox{name: n, st: st, system: s.system, idx: s.cfg.Index, save: s.cfg.Autosave, log: s.log, metrics: s.cfg.Metrics}
	v := st.Value()
	status, sev := st.Alarm()
	pv, err := server.NewPV(n.PVName(), server.PVOptions{Type: n.NativeType(), Count: n.Count, Text: n.Kind == relay.Char,
		Value: v, Alarm: server.Alarm{Status: status, Severity: sev}, Stamp: st.Stamp(), Meta: st.Metadata(),
		OnWrite: func(_ context.Context, p *server.Put) error { return b.ask(&putValue{raw: p.Raw}) }})
	if err != nil {
		return nil, err
	}
	if v.Len() == 0 && !st.Stamp().IsZero() {
		// A restored empty buffer keeps its alarm and time stamp.
		_ = pv.SetAlarm(server.Alarm{Status: status, Severity: sev}, st.Stamp())
	}
	b.main = pv
	b.pid = ctx.Spawn(s.props)
	s.boxes.put(b.pid.Id, b)
	s.children[n.PVName()] = b
	s.cfg.Index.add(n.PVName(), pv, true)
	s.markDirty()
	b.saved()
	return b, nil
}

func (s *supervisor) open(ctx actor.Context, full string) {
	switch full {
	case s.cfg.Prefix + "pvlist":
		ctx.Respond(&Opened{PV: s.pvlist})
		return
	case s.cfg.Prefix + "delpv":
		ctx.Respond(&Opened{PV: s.delpv})
		return
	}
	b, n, err := s.lookup(ctx, full)
	if err != nil {
		ctx.Respond(&Opened{Err: err})
		return
	}
	if n.Field == "" || n.Field == "VAL" {
		ctx.Respond(&Opened{PV: b.main})
		return
	}
	ctx.RequestWithCustomSender(b.pid, &openField{field: n.Field}, ctx.Sender())
}

func (s *supervisor) delete(ctx actor.Context, name string) error {
	full := name
	if !strings.HasPrefix(full, s.cfg.Prefix) {
		full = s.cfg.Prefix + full
	}
	n, ok := relay.ParseName(s.cfg.Prefix, full)
	if !ok {
		return fmt.Errorf("%q is not a relay name", name)
	}
	b := s.children[n.PVName()]
	if b == nil {
		return fmt.Errorf("no relay PV named %s", n.PVName())
	}
	delete(s.children, n.PVName())
	ctx.Stop(b.pid)
	s.boxes.remove(b.pid.Id)
	s.cfg.Index.remove(n.PVName(), true)
	b.mu.Lock()
	fields := b.fields
	b.mu.Unlock()
	for f, pv := range fields {
		s.cfg.Index.remove(n.PVName()+"."+f, false)
		pv.Close()
	}
	b.main.Close()
	if s.cfg.Autosave != nil {
		ctx.Send(s.cfg.Autosave, &deletedState{name: strings.TrimPrefix(n.PVName(), s.cfg.Prefix)})
	}
	s.markDirty()
	s.log.Info("relay PV deleted", "pv", n.PVName())
	return nil
}

func (s *supervisor) restore(ctx actor.Context, saved []relay.Saved) *Restored {
	r := &Restored{}
	for _, sv := range saved {
		st, err := relay.Restore(sv, s.cfg.Prefix)
		if err != nil {
			r.Errs = append(r.Errs, err)
			continue
		}
		n := st.Name()
		if s.children[n.PVName()] != nil {
			continue
		}
		if _, err := s.spawn(ctx, n, st); err != nil {
			r.Errs = append(r.Errs, err)
			continue
		}
		r.Count++
	}
	return r
}

// ask sends a write to the relay PV actor and waits for its result.
func (b *relayBox) ask(msg any) error {
	r, err := b.system.Root.RequestFuture(b.pid, msg, askTimeout).Result()
	if err != nil {
		return fmt.Errorf("%s: %w", b.name.PVName(), err)
	}
	return r.(*Result).Err
}

// saved hands the current state to the autosave actor.
func (b *relayBox) saved() {
	if b.save != nil {
		b.system.Root.Send(b.save, &savedState{s: b.st.Save()})
	}
}

// boxTable maps a relay PV actor's PID to its box.
type boxTable struct {
	mu sync.Mutex
	m  map[string]*relayBox
}

func (t *boxTable) put(id string, b *relayBox) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.m[id] = b
}

func (t *boxTable) get(id string) *relayBox {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.m[id]
}

func (t *boxTable) remove(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.m, id)
}

// relayActor applies writes to one relay PV. Its box is looked up on the
// first message: a restarted actor finds the same box, with its state.
type relayActor struct {
	boxes *boxTable
	b     *relayBox
}

func (a *relayActor) Receive(ctx actor.Context) {
	if a.b == nil {
		a.b = a.boxes.get(ctx.Self().Id)
	}
	if a.b == nil { // deleted: answer requests, ignore lifecycle messages
		switch ctx.Message().(type) {
		case *putValue, *putField:
			ctx.Respond(&Result{Err: errors.New("the relay PV was deleted")})
		case *openField:
			ctx.Respond(&Opened{Err: errors.New("the relay PV was deleted")})
		}
		return
	}
	b := a.b
	switch m := ctx.Message().(type) {
	case *putValue:
		ctx.Respond(&Result{Err: b.putValue(m.raw)})
	case *Put:
		ctx.Respond(&PutResult{Name: m.Name, ID: m.ID, Err: b.putAny(m.Name, m.Value)})
	case *putField:
		ctx.Respond(&Result{Err: b.putField(m.field, m.raw)})
	case *crash:
		panic("relay PV actor: crash requested by a test")
	case *Subscribe:
		b.subscribe(ctx, m)
	case *Access:
		if set := b.subs[b.fieldOf(m.Name)]; set != nil && set.Contains(m.Subscriber) {
			ctx.Send(m.Subscriber, &ConnectionEvent{Name: m.Name, Connected: true, Read: true, Write: m.Write, WriteDenied: m.Denied})
		}
	case *Unsubscribe:
		if set := b.subs[b.fieldOf(m.Name)]; set != nil {
			set.Remove(m.Subscriber)
		}
	case *openField:
		pv, err := b.openField(m.field)
		ctx.Respond(&Opened{PV: pv, Err: err})
	}
}

// fieldOf returns the field a name selects ("" for the value).
func (b *relayBox) fieldOf(name string) string {
	if i := strings.LastIndexByte(name, '.'); i > 0 && name[:i] == b.name.PVName() {
		if f := name[i+1:]; f != "VAL" {
			return f
		}
	}
	return ""
}

// putAny applies a transport's write to the value or to the field the name selects.
func (b *relayBox) putAny(name string, v wire.Value) error {
	if f := b.fieldOf(name); f != "" {
		return b.putField(f, v)
	}
	return b.putValue(v)
}

// subscribe sends a new subscriber the PV's (or field's) state and keeps it.
func (b *relayBox) subscribe(ctx actor.Context, m *Subscribe) {
	field := b.fieldOf(m.Name)
	if b.subs == nil {
		b.subs = map[string]*actor.PIDSet{}
	}
	if b.subs[field] == nil {
		b.subs[field] = &actor.PIDSet{}
	}
	b.subs[field].Add(m.Subscriber)
	ctx.Send(m.Subscriber, &ConnectionEvent{Name: m.Name, Connected: true, Read: true, Write: m.Write, WriteDenied: m.Denied})
	for _, e := range b.events(m.Name, field, true) {
		ctx.Send(m.Subscriber, e)
	}
}

// events returns the metadata (when meta) and value events of the value or a field.
func (b *relayBox) events(name, field string, meta bool) []any {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []any
	if field == "" {
		if meta {
			out = append(out, &MetadataEvent{Name: name, Type: b.name.NativeType(), Count: b.name.Count, Meta: b.st.Metadata(), Description: b.st.Description()})
		}
		status, sev := b.st.Alarm()
		return append(out, &ValueEvent{Name: name, Value: b.st.Value(), Status: status, Severity: sev, Stamp: b.st.Stamp()})
	}
	v, err := b.st.Field(field)
	if err != nil {
		return out
	}
	if meta {
		out = append(out, &MetadataEvent{Name: name, Type: b.st.FieldType(field), Count: b.st.FieldCount(field),
			Meta: wire.Metadata{EnumStrings: b.st.FieldStates(field)}})
	}
	return append(out, &ValueEvent{Name: name, Value: v, Stamp: b.st.Stamp()})
}

// notify sends the subscribers of field (and of the value, when the change
// touched it) the new state.
func (b *relayBox) notify(field string, meta bool) {
	for f, set := range b.subs {
		if set.Len() == 0 || (f != field && !(f == "" && meta)) {
			continue
		}
		name := b.name.PVName()
		if f != "" {
			name += "." + f
		}
		evs := b.events(name, f, meta && f == "")
		set.ForEach(func(_ int, pid *actor.PID) {
			for _, e := range evs {
				b.system.Root.Send(pid, e)
			}
		})
	}
}

func (b *relayBox) putValue(raw wire.Value) error {
	b.mu.Lock()
	err := b.st.Put(raw, time.Now())
	v := b.st.Value()
	status, sev := b.st.Alarm()
	stamp := b.st.Stamp()
	b.mu.Unlock()
	if err != nil {
		return err
	}
	if err := b.main.Post(v, server.Alarm{Status: status, Severity: sev}, stamp); err != nil {
		return err
	}
	b.metrics.RelayUpdate()
	b.notify("", false)
	b.saved()
	return nil
}

func (b *relayBox) putField(field string, raw wire.Value) error {
	b.mu.Lock()
	err := b.st.PutField(field, raw)
	meta := b.st.Metadata()
	status, sev := b.st.Alarm()
	fv, ferr := b.st.Field(field)
	fpv := b.fields[field]
	b.mu.Unlock()
	if err != nil {
		return err
	}
	if err := b.main.SetMeta(meta); err != nil {
		return err
	}
	_ = b.main.SetAlarm(server.Alarm{Status: status, Severity: sev}, wire.Timestamp{})
	if fpv != nil && ferr == nil {
		_ = fpv.Post(fv, server.NoAlarm, wire.Timestamp{})
	}
	b.notify(field, true)
	b.saved()
	return nil
}

// openField returns the server PV of an attribute, creating it on first use.
func (b *relayBox) openField(field string) (*server.PV, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if pv := b.fields[field]; pv != nil {
		return pv, nil
	}
	v, err := b.st.Field(field)
	if err != nil {
		return nil, err
	}
	name := b.name.PVName() + "." + field
	pv, err := server.NewPV(name, server.PVOptions{Type: b.st.FieldType(field), Count: b.st.FieldCount(field), Value: v,
		Text: b.st.FieldType(field) == wire.DBRChar, Meta: wire.Metadata{EnumStrings: b.st.FieldStates(field)},
		OnWrite: func(_ context.Context, p *server.Put) error {
			return b.ask(&putField{field: field, raw: p.Raw})
		}})
	if err != nil {
		return nil, err
	}
	if b.fields == nil {
		b.fields = map[string]*server.PV{}
	}
	b.fields[field] = pv
	b.idx.add(name, pv, false)
	return pv, nil
}

// serviceConn is the connection event of the service PV name: pvlist is
// read-only; delpv is writable when the rules allow.
func serviceConn(name string, svc relay.Service, write bool, denied string) *ConnectionEvent {
	e := &ConnectionEvent{Name: name, Connected: true, Read: true, Write: write && svc == relay.DelPV}
	switch {
	case !write:
		e.WriteDenied = denied
	case svc != relay.DelPV:
		e.WriteDenied = name + " is read-only"
	}
	return e
}
