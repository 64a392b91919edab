package server

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/pvhub/pvhub/ca/wire"
)

// Alarm is an alarm status and severity.
type Alarm struct {
	Status   wire.AlarmStatus
	Severity wire.AlarmSeverity
}

// NoAlarm is the alarm of a value in its normal state.
var NoAlarm = Alarm{}

// UDFAlarm is the alarm of a PV that has never received a value.
var UDFAlarm = Alarm{Status: wire.StatUDF, Severity: wire.SevInvalid}

// Client identifies the peer of a circuit.
type Client struct {
	Addr string // remote address, host:port
	User string // from CLIENT_NAME
	Host string // from HOST_NAME
}

// Put is a write from a client. Raw is the value as the client sent it (in the
// client's type, every element); Value is Raw converted to the PV's native type
// and cut to its capacity, as an IOC ignores extra elements, valid when ConvErr
// is nil.
type Put struct {
	PV      *PV
	Client  Client
	Raw     wire.Value
	Value   wire.Value
	ConvErr error
	Notify  bool // the client asked for completion (WRITE_NOTIFY)
}

// WriteFunc handles a client write. It runs on the circuit's reader goroutine, so
// requests from that client stay in order; it should return promptly. A nil
// error completes the put with ECA_NORMAL. A wire.ECA error is returned to the
// client as that status; any other error as ECA_PUTFAIL, with the error's text
// in the CA_PROTO_ERROR message that a plain WRITE receives.
type WriteFunc func(ctx context.Context, p *Put) error

// PVOptions describe a PV.
type PVOptions struct {
	// Type is the native type: one of the plain types wire.DBRString to wire.DBRDouble.
	Type wire.DBRType
	// Count is the capacity: the element count reported to clients. At least 1.
	Count int
	// Value is the initial value (converted to Type). Empty means no value yet:
	// the PV then has the UDF alarm until its first post.
	Value wire.Value
	// Alarm and Stamp of the initial value. A zero Stamp with a Value means now.
	Alarm Alarm
	Stamp wire.Timestamp
	// Meta is the metadata reported in DBR_GR_ and DBR_CTRL_ replies.
	Meta wire.Metadata
	// ReadOnly denies writes (clients see no write access).
	ReadOnly bool
	// OnWrite handles writes; nil stores the converted value and posts it with
	// no alarm and the current time.
	OnWrite WriteFunc
	// Text makes a DBRChar PV answer requests for a string type (DBR_STRING,
	// DBR_TIME_STRING, ...) with its text, up to the first NUL, as one string,
	// instead of one number per element as an IOC does.
	Text bool
}

// PV is a process variable served by a Server. Its methods are safe for
// concurrent use.
type PV struct {
	name     string
	typ      wire.DBRType
	capacity int
	readOnly bool
	text     bool
	onWrite  WriteFunc

	mu     sync.Mutex
	state  *wire.DBR // immutable snapshot, replaced by every post
	subs   map[*subscription]struct{}
	chans  map[*channel]struct{}
	closed bool
}

// ErrPVClosed is returned when posting to a PV that was closed.
var ErrPVClosed = errors.New("ca/server: PV closed")

// NewPV returns a PV. It fails for a non-plain type, a capacity below 1, or an
// initial value that does not convert or does not fit.
func NewPV(name string, o PVOptions) (*PV, error) {
	if name == "" {
		return nil, errors.New("ca/server: empty PV name")
	}
	if len(name) >= wire.MaxNameSize {
		return nil, fmt.Errorf("ca/server: PV name of %d bytes is too long", len(name))
	}
	if o.Type > wire.DBRDouble {
		return nil, fmt.Errorf("ca/server: PV %s: native type %s is not a plain type", name, o.Type)
	}
	if o.Count < 1 {
		return nil, fmt.Errorf("ca/server: PV %s: element count %d below 1", name, o.Count)
	}
	if len(o.Meta.EnumStrings) > wire.MaxEnumStates {
		return nil, fmt.Errorf("ca/server: PV %s: %d enum states, at most %d", name, len(o.Meta.EnumStrings), wire.MaxEnumStates)
	}
	pv := &PV{name: name, typ: o.Type, capacity: o.Count, readOnly: o.ReadOnly, onWrite: o.OnWrite,
		text: o.Text && o.Type == wire.DBRChar} // the maps are made on first use: most PVs of a large relay have no client
	st := &wire.DBR{Type: o.Type, Meta: cloneMeta(o.Meta)}
	if o.Value.Len() == 0 {
		st.Value = wire.Value{Type: o.Type}
		st.Status, st.Severity = UDFAlarm.Status, UDFAlarm.Severity
	} else {
		if err := pv.convertIn(&st.Value, &o.Value, &st.Meta); err != nil {
			return nil, err
		}
		st.Status, st.Severity = o.Alarm.Status, o.Alarm.Severity
		st.Stamp = o.Stamp
		if st.Stamp.IsZero() {
			st.Stamp = wire.TimestampOf(time.Now())
		}
	}
	pv.state = st
	return pv, nil
}

func cloneMeta(m wire.Metadata) wire.Metadata {
	m.EnumStrings = append([]string(nil), m.EnumStrings...)
	return m
}

// convertIn converts v to the native type into dst and checks the capacity.
func (pv *PV) convertIn(dst, v *wire.Value, m *wire.Metadata) error {
	if v.Len() > pv.capacity {
		return fmt.Errorf("%s: %d elements exceed the capacity of %d", pv.name, v.Len(), pv.capacity)
	}
	if err := wire.Convert(dst, pv.typ, v, m.Precision, m.EnumStrings); err != nil {
		return fmt.Errorf("%s: %w", pv.name, err)
	}
	return nil
}

// Name returns the PV's name.
func (pv *PV) Name() string { return pv.name }

// Type returns the native type.
func (pv *PV) Type() wire.DBRType { return pv.typ }

// Count returns the capacity (the native element count).
func (pv *PV) Count() int { return pv.capacity }

// ReadOnly reports whether clients are denied writes.
func (pv *PV) ReadOnly() bool { return pv.readOnly }

// Snapshot returns the current state. The returned DBR must not be modified.
func (pv *PV) Snapshot() *wire.DBR {
	pv.mu.Lock()
	defer pv.mu.Unlock()
	return pv.state
}

// Post publishes a new value with its alarm and time stamp (the current time
// when stamp is zero). The value is converted to the native type; more elements
// than the capacity is an error. Subscribers with DBE_VALUE or DBE_LOG receive
// it, and those with DBE_ALARM too when the alarm changed.
func (pv *PV) Post(v wire.Value, a Alarm, stamp wire.Timestamp) error {
	if stamp.IsZero() {
		stamp = wire.TimestampOf(time.Now())
	}
	pv.mu.Lock()
	defer pv.mu.Unlock()
	if pv.closed {
		return ErrPVClosed
	}
	old := pv.state
	st := &wire.DBR{Type: pv.typ, Status: a.Status, Severity: a.Severity, Stamp: stamp, Meta: old.Meta}
	if err := pv.convertIn(&st.Value, &v, &st.Meta); err != nil {
		return err
	}
	mask := uint16(wire.DBEValue | wire.DBELog)
	if old.Status != st.Status || old.Severity != st.Severity {
		mask |= wire.DBEAlarm
	}
	pv.state = st
	pv.postLocked(st, mask)
	return nil
}

// SetMeta replaces the metadata and notifies DBE_PROPERTY subscribers. The
// native type and capacity cannot change.
func (pv *PV) SetMeta(m wire.Metadata) error {
	if len(m.EnumStrings) > wire.MaxEnumStates {
		return fmt.Errorf("%s: %d enum states, at most %d", pv.name, len(m.EnumStrings), wire.MaxEnumStates)
	}
	pv.mu.Lock()
	defer pv.mu.Unlock()
	if pv.closed {
		return ErrPVClosed
	}
	st := *pv.state
	st.Meta = cloneMeta(m)
	pv.state = &st
	pv.postLocked(&st, wire.DBEProperty)
	return nil
}

// SetAlarm changes the alarm of the current value, keeping value and time stamp
// unless stamp is non-zero, and notifies DBE_ALARM subscribers when it changed.
func (pv *PV) SetAlarm(a Alarm, stamp wire.Timestamp) error {
	pv.mu.Lock()
	defer pv.mu.Unlock()
	if pv.closed {
		return ErrPVClosed
	}
	if pv.state.Status == a.Status && pv.state.Severity == a.Severity {
		return nil
	}
	st := *pv.state
	st.Status, st.Severity = a.Status, a.Severity
	if !stamp.IsZero() {
		st.Stamp = stamp
	}
	pv.state = &st
	pv.postLocked(&st, wire.DBEAlarm)
	return nil
}

func (pv *PV) postLocked(st *wire.DBR, mask uint16) {
	for s := range pv.subs {
		if s.mask&mask != 0 {
			s.circ.enqueue(s, st)
		}
	}
}

// Close removes the PV from service: every client channel on it receives
// CA_PROTO_SERVER_DISCONN and later posts fail with ErrPVClosed. A Source
// should stop claiming the name first. Close is idempotent.
func (pv *PV) Close() {
	pv.mu.Lock()
	if pv.closed {
		pv.mu.Unlock()
		return
	}
	pv.closed = true
	chans := make([]*channel, 0, len(pv.chans))
	for ch := range pv.chans {
		chans = append(chans, ch)
	}
	pv.mu.Unlock()
	for _, ch := range chans {
		ch.circ.serverDisconn(ch)
	}
}

// attach registers a channel; it fails when the PV is closed.
func (pv *PV) attach(ch *channel) bool {
	pv.mu.Lock()
	defer pv.mu.Unlock()
	if pv.closed {
		return false
	}
	if pv.chans == nil {
		pv.chans = map[*channel]struct{}{}
	}
	pv.chans[ch] = struct{}{}
	return true
}

// detach forgets a channel and its subscriptions.
func (pv *PV) detach(ch *channel) {
	pv.mu.Lock()
	defer pv.mu.Unlock()
	delete(pv.chans, ch)
	for _, s := range ch.subs {
		delete(pv.subs, s)
	}
}

// subscribe registers s and queues the current state as its first update,
// atomically with respect to posts, so nothing is missed or doubled.
func (pv *PV) subscribe(s *subscription) {
	pv.mu.Lock()
	defer pv.mu.Unlock()
	if !pv.closed {
		if pv.subs == nil {
			pv.subs = map[*subscription]struct{}{}
		}
		pv.subs[s] = struct{}{}
	}
	s.circ.enqueue(s, pv.state)
}

func (pv *PV) unsubscribe(s *subscription) {
	pv.mu.Lock()
	defer pv.mu.Unlock()
	delete(pv.subs, s)
}

// Source decides which names the server hosts.
type Source interface {
	// Claim reports whether the source hosts name or will create it on demand. It
	// is called for every search request and must not block.
	Claim(name string) bool
	// Open returns the PV for name, creating it if the source creates PVs on
	// demand. An error (or a nil PV) makes the channel creation fail.
	Open(ctx context.Context, name string) (*PV, error)
}

// Table is a Source holding a fixed set of PVs. It is safe for concurrent use.
type Table struct {
	mu  sync.RWMutex
	pvs map[string]*PV
}

var _ Source = (*Table)(nil)

// NewTable returns a table holding pvs.
func NewTable(pvs ...*PV) *Table {
	t := &Table{pvs: map[string]*PV{}}
	for _, pv := range pvs {
		t.pvs[pv.name] = pv
	}
	return t
}

// Add adds pv, replacing (and closing) any PV of the same name.
func (t *Table) Add(pv *PV) {
	t.mu.Lock()
	old := t.pvs[pv.name]
	t.pvs[pv.name] = pv
	t.mu.Unlock()
	if old != nil && old != pv {
		old.Close()
	}
}

// Remove removes and closes the PV called name; its clients are disconnected.
func (t *Table) Remove(name string) bool {
	t.mu.Lock()
	pv := t.pvs[name]
	delete(t.pvs, name)
	t.mu.Unlock()
	if pv != nil {
		pv.Close()
	}
	return pv != nil
}

// Get returns the PV called name, or nil.
func (t *Table) Get(name string) *PV {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.pvs[name]
}

// Claim implements Source.
func (t *Table) Claim(name string) bool { return t.Get(name) != nil }

// Open implements Source.
func (t *Table) Open(_ context.Context, name string) (*PV, error) {
	if pv := t.Get(name); pv != nil {
		return pv, nil
	}
	return nil, fmt.Errorf("no PV named %q", name)
}

// view returns the state to encode for a request of type t, and the element
// count a count-0 request means: a text PV read as a string is one string.
func (pv *PV) view(st *wire.DBR, t wire.DBRType) (*wire.DBR, int) {
	if !pv.isText(t) {
		return st, min(st.Value.Len(), pv.capacity)
	}
	txt := cstringOf(st.Value.Chars)
	v := *st
	v.Value = wire.Value{Type: wire.DBRString, Strings: []string{txt}}
	return &v, 1
}

// isText reports whether a request of type t gets the text of a Text PV.
func (pv *PV) isText(t wire.DBRType) bool {
	return pv.text && t.Base() == wire.DBRString && t.Family() != wire.FamilyClassName
}

func cstringOf(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
