// Package mqtt is pvhub's MQTT transport. It publishes the state of PVs as retained JSON
// messages on <topic_prefix>/<pv name> and writes PVs from messages on
// <topic_prefix>/<pv name>/set, answering on <topic_prefix>/<pv name>/set/result.
//
// It runs an embedded broker (mochi-mqtt, on the listen address) or connects to an external
// one (the broker option, through paho's autopaho, reconnecting with back-off). Which PVs it
// publishes: those named in the publish option (literal names, and patterns matched against
// the relay's PV list), and, with the embedded broker, any PV an MQTT client subscribes to by
// its exact topic, for as long as a client is subscribed.
//
// Every message on a PV topic is the PV's whole state (connection, metadata and value, see
// eventjson.AppendState), so a retained message is self-contained. One goroutine publishes;
// the newest state of each PV waits in a table with a dirty mark, so a slow broker or a
// disconnected one coalesces updates instead of queueing them, and after a reconnection the
// newest state of every PV is published again.
//
// See README.md for the topics, payloads and options.
package mqtt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/pvhub/pvhub/plugins"
	"github.com/pvhub/pvhub/transports/internal/eventjson"
)

// Status payloads of the status topic.
var (
	statusOnline  = []byte(`{"status":"online"}`)
	statusOffline = []byte(`{"status":"offline"}`)
)

const (
	// batchMax is the most messages the publisher takes from the table at once.
	batchMax = 256
	// maxPendingPuts bounds the writes waiting for their result; more are refused at once.
	maxPendingPuts = 1024
	// resendDelay is how long the publisher waits before it publishes again the state of a
	// PV whose message a subscriber's full queue dropped.
	resendDelay = 50 * time.Millisecond
	// retryDelay is how long the publisher waits after a failed publication to the external
	// broker before it tries again.
	retryDelay = 500 * time.Millisecond
	// eventsSlice is how many events of a batch Events applies before it lets the
	// publisher take the table's lock.
	eventsSlice = 512
	// maxWarned bounds the set of unpublishable names already logged.
	maxWarned = 1000
)

// Transport is the MQTT transport. Create it with New.
type Transport struct {
	opts   options
	log    *slog.Logger
	host   plugins.Host
	prefix string // topic_prefix + "/"
	pvlist string // the relay's PV list, subscribed for the publish patterns; "" for none

	emb *embedded // the embedded broker, or nil
	ext *external // the external broker's client, or nil

	ctx    context.Context // cancelled by Close: bounds the publisher's waits
	cancel context.CancelFunc
	wake   chan struct{} // capacity 1: work for the publisher
	stop   chan struct{} // closed by Close
	wg     sync.WaitGroup

	mu      sync.Mutex
	pvs     map[string]*pvState
	dirty   []*pvState // PVs to publish, each at most once (pvState.dirty), in order
	results []job      // put results to publish, in order
	status  bool       // the status topic's "online" is due
	dropped []*pvState // PVs whose message a subscriber's queue dropped: published again after resendDelay
	puts    map[uint64]*pendingPut
	nextID  uint64
	clients map[string]map[string]bool // embedded: MQTT client id -> PV names it subscribed to
	listed  map[string]bool            // relay PVs listed in the PV list that a publish pattern matches
	warned  map[string]bool            // names not publishable, logged once
	started bool
	closed  bool
	upGen   uint64 // external: incremented on each connection to the broker
	up      bool   // external: connected to the broker
	everUp  bool   // external: was connected at least once
	// external: a failed connection attempt was logged; the loss of the connection was logged
	connectFailing, lostLogged bool
	lastList                   string // the last PV list text processed

	published atomic.Uint64 // PV state messages published
	coalesced atomic.Uint64 // PV updates merged into a state not yet published
	resent    atomic.Uint64 // state messages published again after a subscriber dropped one

	droppedResults atomic.Uint64 // answers to set messages dropped (queue full)
}

// pvState is what the transport knows and wants of one PV.
type pvState struct {
	name, topic string
	conn        *plugins.Connection
	meta        *plugins.Metadata
	value       *plugins.Value

	literal  bool // named in publish
	listed   bool // in the relay's PV list, matched by a publish pattern
	clients  int  // MQTT clients subscribed to its exact topic (embedded broker)
	list     bool // the relay's PV list, subscribed for discovery
	upstream bool // subscribed upstream (Host.Subscribe)
	dirty    bool // queued in Transport.dirty
	retained bool // a retained state may be on the broker (cleared when no longer published)
}

// publish reports whether the PV's state goes to MQTT.
func (p *pvState) publish() bool { return p.literal || p.listed || p.clients > 0 }

// wanted reports whether the PV is subscribed upstream.
func (p *pvState) wanted() bool { return p.publish() || p.list }

type pendingPut struct {
	name     string
	clientID uint64 // the id the result carries: the client's, or this put's number
	reply    string // the result's topic
	corr     []byte // MQTT 5 correlation data, echoed
	timer    *time.Timer
}

type jobKind uint8

const (
	jobState  jobKind = iota // a PV's state
	jobClear                 // delete a PV's retained state (an empty retained message)
	jobResult                // a put's result
	jobStatus                // the status topic's "online"
)

// job is one message for the publisher.
type job struct {
	kind    jobKind
	p       *pvState
	conn    plugins.Connection
	meta    *plugins.Metadata
	value   *plugins.Value
	topic   string
	payload []byte
	corr    []byte
}

var _ plugins.Transport = (*Transport)(nil)

// New returns the MQTT transport, not started; it does no I/O.
func New() plugins.Transport { return newTransport() }

func newTransport() *Transport {
	ctx, cancel := context.WithCancel(context.Background())
	return &Transport{ctx: ctx, cancel: cancel, wake: make(chan struct{}, 1), stop: make(chan struct{}),
		pvs: map[string]*pvState{}, puts: map[uint64]*pendingPut{}, clients: map[string]map[string]bool{},
		listed: map[string]bool{}, warned: map[string]bool{}}
}

// Start implements plugins.Transport: it parses the options, then starts the embedded
// broker (listening before it returns) or the connection to the external broker (which
// Start does not wait for: it is retried with back-off, and the status topic says when
// pvhub is online), and subscribes the PVs named in publish.
func (t *Transport) Start(ctx context.Context, cfg plugins.Config, host plugins.Host) error {
	opts, unknown, err := parseOptions(cfg.Options)
	if err != nil {
		return fmt.Errorf("mqtt: %w", err)
	}
	t.log = cfg.Logger
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	for _, k := range unknown {
		t.log.Warn("unknown mqtt option ignored", "key", k)
	}
	t.mu.Lock()
	if t.closed || t.started {
		t.mu.Unlock()
		return errors.New("mqtt: Start called twice or after Close")
	}
	t.started = true
	t.mu.Unlock()
	t.opts, t.host = opts, host
	t.prefix = opts.prefix + "/"
	if len(opts.patterns) > 0 {
		if cfg.RelayPrefix == "" {
			t.log.Warn("publish patterns with wildcards match relay PV names, and the relay is disabled: they match nothing",
				"patterns", opts.patterns)
		} else {
			t.pvlist = cfg.RelayPrefix + "pvlist"
		}
	}
	if opts.broker != nil && len(opts.literal)+len(opts.patterns) == 0 {
		t.log.Warn("mqtt transport with an external broker and no publish option: it publishes no PV (clients' subscriptions are the broker's, which pvhub does not see)")
	}
	if opts.broker == nil {
		t.emb, err = startEmbedded(ctx, t)
	} else {
		t.ext, err = startExternal(t)
	}
	if err != nil {
		return fmt.Errorf("mqtt: %w", err)
	}
	t.mu.Lock()
	t.status = opts.statusTopic != ""
	var subs []string
	for _, n := range opts.literal {
		if p := t.entry(n); p != nil {
			p.literal = true
			t.reconcile(p, &subs, nil)
		}
	}
	if t.pvlist != "" {
		p := t.pvs[t.pvlist]
		if p == nil {
			p = &pvState{name: t.pvlist, topic: t.prefix + t.pvlist}
			t.pvs[t.pvlist] = p
		}
		p.list = true
		t.reconcile(p, &subs, nil)
	}
	if len(subs) > 0 {
		host.Subscribe(subs...)
	}
	t.mu.Unlock()
	t.wg.Add(1)
	go t.run()
	t.signal()
	if t.emb != nil {
		t.log.Info("mqtt transport serving its embedded broker", "addr", t.emb.addr(), "topic_prefix", opts.prefix,
			"qos", opts.qos, "retain", opts.retain, "publish", len(opts.literal)+len(opts.patterns))
	} else {
		t.log.Info("mqtt transport connecting to its broker", "broker", opts.broker.String(), "client_id", opts.clientID,
			"topic_prefix", opts.prefix, "qos", opts.qos, "retain", opts.retain)
	}
	return nil
}

// Addr returns the address of the embedded broker, or "" with an external broker or before
// Start.
func (t *Transport) Addr() string {
	if t.emb == nil {
		return ""
	}
	return t.emb.addr()
}

// Events implements plugins.Transport: it updates the PV table and marks the PVs to publish.
// It never waits for the broker.
func (t *Transport) Events(batch []plugins.Event) {
	t.mu.Lock()
	if t.closed || !t.started {
		t.mu.Unlock()
		return
	}
	work := false
	for i, ev := range batch {
		if i > 0 && i%eventsSlice == 0 {
			// A long batch lets the publisher in between slices: it publishes what is
			// due meanwhile instead of waiting for the whole batch.
			t.mu.Unlock()
			if work {
				t.signal()
				work = false
			}
			t.mu.Lock()
			if t.closed {
				t.mu.Unlock()
				return
			}
		}
		switch e := ev.(type) {
		case plugins.Connection:
			p := t.pvs[e.Name]
			if p == nil || !p.upstream {
				continue
			}
			c := e
			p.conn = &c
			if !e.Connected {
				// The metadata and the value are no longer current: a disconnected PV's
				// state is its connection alone. A reconnection sends them again.
				p.meta, p.value = nil, nil
			}
			work = t.touch(p) || work
		case plugins.Metadata:
			p := t.pvs[e.Name]
			if p == nil || !p.upstream {
				continue
			}
			m := e
			p.meta = &m
			work = t.touch(p) || work
		case plugins.Value:
			p := t.pvs[e.Name]
			if p == nil || !p.upstream {
				continue
			}
			v := e
			p.value = &v
			if p.list {
				t.listChanged(p, &v)
			}
			work = t.touch(p) || work
		case plugins.PutResult:
			pp := t.puts[e.ID]
			if pp == nil {
				continue
			}
			delete(t.puts, e.ID)
			pp.timer.Stop()
			t.queueResult(pp, e.Err)
			work = true
		}
	}
	// The PV list may have queued PVs to clear.
	work = work || len(t.dirty) > 0
	t.mu.Unlock()
	if work {
		t.signal()
	}
}

// touch marks p to be published, if it is; t.mu is held. It reports whether p was newly
// queued.
func (t *Transport) touch(p *pvState) bool {
	if !p.publish() {
		return false
	}
	if p.dirty {
		t.coalesced.Add(1)
		return false
	}
	p.dirty = true
	t.dirty = append(t.dirty, p)
	return true
}

// markDirty queues p for the publisher whatever it holds (a state, or a retained message to
// clear); t.mu is held.
func (t *Transport) markDirty(p *pvState) {
	if !p.dirty {
		p.dirty = true
		t.dirty = append(t.dirty, p)
	}
}

func (t *Transport) signal() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// entry returns the table entry of a PV to publish, creating it; nil when the name cannot be
// a topic level (logged once). t.mu is held.
func (t *Transport) entry(name string) *pvState {
	if p := t.pvs[name]; p != nil {
		return p
	}
	if why := unpublishable(name); why != "" {
		if !t.warned[name] && len(t.warned) < maxWarned {
			t.warned[name] = true
			t.log.Warn("PV not published to MQTT: its name cannot be part of a topic", "pv", name, "reason", why)
		}
		return nil
	}
	p := &pvState{name: name, topic: t.prefix + name}
	t.pvs[name] = p
	return p
}

// unpublishable says why a PV name cannot be a topic's last levels, or "".
func unpublishable(name string) string {
	switch {
	case name == "":
		return "the name is empty"
	case strings.ContainsAny(name, "+#"):
		return "the name contains an MQTT wildcard (+ or #)"
	case strings.ContainsRune(name, 0):
		return "the name contains a NUL character"
	case !utf8.ValidString(name):
		return "the name is not valid UTF-8"
	case len(name) > 32000:
		return "the name is too long"
	}
	return ""
}

// reconcile subscribes or unsubscribes p upstream after its wishes changed, and queues the
// clearing of its retained state when it is no longer published; the names to subscribe
// and unsubscribe are appended (unsub nil: none expected). t.mu is held.
func (t *Transport) reconcile(p *pvState, sub, unsub *[]string) {
	switch {
	case p.wanted() && !p.upstream:
		p.upstream = true
		*sub = append(*sub, p.name)
	case !p.wanted() && p.upstream:
		p.upstream = false
		p.conn, p.meta, p.value = nil, nil, nil
		if unsub != nil {
			*unsub = append(*unsub, p.name)
		}
	}
	if !p.publish() && p.retained {
		t.markDirty(p)
	}
	if !p.wanted() && !p.dirty && !p.retained && t.pvs[p.name] == p {
		delete(t.pvs, p.name)
	}
}

// listChanged applies a new value of the relay's PV list: the listed names that a publish
// pattern matches are published, those no longer listed are released. t.mu is held.
func (t *Transport) listChanged(p *pvState, v *plugins.Value) {
	text := dataText(v.Data)
	if text == t.lastList {
		return
	}
	t.lastList = text
	names := strings.Split(text, ",")
	if p.meta != nil && p.meta.Count > 1 && len(text) >= p.meta.Count-1 {
		// The relay cut a list longer than its PV: the last name may be cut short, and
		// subscribing to it would create a relay PV of that name.
		names = names[:len(names)-1]
		t.log.Warn("the relay PV list is full; its last name is ignored", "pv", p.name, "bytes", len(text))
	}
	now := map[string]bool{}
	for _, n := range names {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		for _, pat := range t.opts.patterns {
			if matchName(pat, n) {
				now[n] = true
				break
			}
		}
	}
	var subs, unsubs []string
	for n := range t.listed {
		if now[n] {
			continue
		}
		delete(t.listed, n)
		if p := t.pvs[n]; p != nil {
			p.listed = false
			t.reconcile(p, &subs, &unsubs)
		}
	}
	for _, n := range slices.Sorted(mapKeys(now)) {
		if t.listed[n] {
			continue
		}
		p := t.entry(n)
		if p == nil {
			continue
		}
		t.listed[n] = true
		p.listed = true
		t.reconcile(p, &subs, &unsubs)
	}
	if len(unsubs) > 0 {
		t.host.Unsubscribe(unsubs...)
	}
	if len(subs) > 0 {
		t.host.Subscribe(subs...)
	}
	if len(subs)+len(unsubs) > 0 {
		t.log.Debug("relay PV list applied to the publish patterns", "published", len(t.listed), "added", len(subs), "removed", len(unsubs))
	}
}

func mapKeys(m map[string]bool) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// dataText returns the text of a char array (up to its first NUL) or of a string.
func dataText(d plugins.Data) string {
	switch d.Kind {
	case plugins.KindBytes:
		b := d.Bytes
		if i := slices.Index(b, 0); i >= 0 {
			b = b[:i]
		}
		return string(b)
	case plugins.KindString:
		return strings.Join(d.Strings, ",")
	}
	return ""
}

// clientSubscribed records that an MQTT client subscribed to the exact topic of a PV.
func (t *Transport) clientSubscribed(client, name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	set := t.clients[client]
	if set[name] {
		if !t.opts.retain {
			// Without retained messages a new subscription gets the state only when it
			// is published again.
			if p := t.pvs[name]; p != nil && p.conn != nil {
				t.markDirty(p)
				t.signal()
			}
		}
		return
	}
	p := t.entry(name)
	if p == nil {
		return
	}
	if set == nil {
		set = map[string]bool{}
		t.clients[client] = set
	}
	set[name] = true
	p.clients++
	var subs []string
	t.reconcile(p, &subs, nil)
	if len(subs) > 0 {
		t.host.Subscribe(subs...)
	} else if !t.opts.retain && p.conn != nil {
		t.markDirty(p)
		t.signal()
	}
}

// clientUnsubscribed records that an MQTT client dropped its subscription to a PV's topic;
// names nil means all of them (the client's session ended).
func (t *Transport) clientUnsubscribed(client string, names []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	set := t.clients[client]
	if set == nil {
		return
	}
	if names == nil {
		names = slices.Collect(mapKeys(set))
	}
	var subs, unsubs []string
	for _, n := range names {
		if !set[n] {
			continue
		}
		delete(set, n)
		if p := t.pvs[n]; p != nil && p.clients > 0 {
			p.clients--
			t.reconcile(p, &subs, &unsubs)
		}
	}
	if len(set) == 0 {
		delete(t.clients, client)
	}
	if t.closed {
		return
	}
	if len(unsubs) > 0 {
		t.host.Unsubscribe(unsubs...)
	}
	if len(subs) > 0 {
		t.host.Subscribe(subs...)
	}
	t.signal()
}

// pvTopic returns the PV of an exact PV topic (a subscription's filter), or false for any
// other topic: wildcards, the status topic, set and result topics, topics outside the prefix.
func (t *Transport) pvTopic(topic string) (string, bool) {
	name, ok := strings.CutPrefix(topic, t.prefix)
	if !ok || name == "" || topic == t.opts.statusTopic || strings.ContainsAny(name, "+#") ||
		strings.HasSuffix(name, "/set") || strings.HasSuffix(name, "/set/result") {
		return "", false
	}
	return name, true
}

// setTopic returns the PV a message on <prefix>/<pv>/set writes, or false.
func (t *Transport) setTopic(topic string) (string, bool) {
	rest, ok := strings.CutPrefix(topic, t.prefix)
	if !ok {
		return "", false
	}
	name, ok := strings.CutSuffix(rest, "/set")
	if !ok || name == "" {
		return "", false
	}
	return name, true
}

// run is the publisher: it takes what is due from the table and publishes it, until Close.
func (t *Transport) run() {
	defer t.wg.Done()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	armed := false
	jobs := make([]job, 0, batchMax)
	for {
		select {
		case <-t.stop:
			retry.Stop()
			return
		case <-t.wake:
		case <-retry.C:
			// Resend the states that subscribers dropped; after a failed publication,
			// just try again.
			armed = false
			t.mu.Lock()
			for _, p := range t.dropped {
				if t.pvs[p.name] == p && p.publish() {
					t.markDirty(p)
					t.resent.Add(1)
				}
			}
			t.dropped = t.dropped[:0]
			t.mu.Unlock()
		}
		failed := false
		for {
			jobs = t.take(jobs[:0])
			if len(jobs) == 0 {
				break
			}
			ok := t.publishJobs(jobs)
			clear(jobs) // drop the references to states and payloads
			if !ok {
				failed = true
				break
			}
			select {
			case <-t.stop:
				retry.Stop()
				return
			default:
			}
		}
		t.mu.Lock()
		pending := len(t.dropped) > 0
		t.mu.Unlock()
		if (pending || failed) && !armed {
			armed = true
			delay := resendDelay
			if failed {
				delay = retryDelay
			}
			retry.Reset(delay)
		}
	}
}

// take moves up to batchMax due messages from the table into jobs: the status first, then put
// results, then PV states in the order they became due.
func (t *Transport) take(jobs []job) []job {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed || t.ext != nil && !t.up {
		return jobs
	}
	if t.status {
		t.status = false
		jobs = append(jobs, job{kind: jobStatus, topic: t.opts.statusTopic, payload: statusOnline})
	}
	n := min(len(t.results), batchMax-len(jobs))
	jobs = append(jobs, t.results[:n]...)
	clear(t.results[:n])
	t.results = t.results[n:]
	if len(t.results) == 0 {
		t.results = nil
	}
	i := 0
	for ; i < len(t.dirty) && len(jobs) < batchMax; i++ {
		p := t.dirty[i]
		t.dirty[i] = nil
		p.dirty = false
		switch {
		case p.publish():
			if p.conn == nil {
				continue // nothing known yet: the connection event comes first
			}
			p.retained = p.retained || t.opts.retain
			jobs = append(jobs, job{kind: jobState, p: p, conn: *p.conn, meta: p.meta, value: p.value, topic: p.topic})
		case p.retained:
			jobs = append(jobs, job{kind: jobClear, p: p, topic: p.topic})
		default:
			if !p.wanted() && t.pvs[p.name] == p {
				delete(t.pvs, p.name)
			}
		}
	}
	t.dirty = t.dirty[i:]
	if len(t.dirty) == 0 {
		t.dirty = nil
	}
	return jobs
}

// encode returns the payload of a job: a state or a clearing encoded into buf, or the
// payload the job carries.
func (j *job) encode(buf []byte) []byte {
	switch j.kind {
	case jobState:
		return eventjson.AppendState(buf[:0], eventjson.State{Name: j.p.name, Conn: &j.conn, Meta: j.meta, Value: j.value})
	case jobClear:
		return buf[:0]
	}
	return j.payload
}

// publishJobs publishes jobs in order. It reports false when a publication to the external
// broker failed; the jobs not published are then queued again, to be retried after
// retryDelay or, when the connection is down, once it is up again.
func (t *Transport) publishJobs(jobs []job) bool {
	if t.emb != nil {
		t.emb.publishJobs(jobs)
		return true
	}
	return t.ext.publishJobs(jobs)
}

// cleared records that the retained state of p was deleted on the broker.
func (t *Transport) cleared(ps []*pvState) {
	if len(ps) == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, p := range ps {
		if p.publish() || p.dirty {
			continue
		}
		p.retained = false
		if !p.wanted() && t.pvs[p.name] == p {
			delete(t.pvs, p.name)
		}
	}
}

// requeue puts back the jobs the external broker did not take: states are due again,
// results go back to the front of their queue. down says the connection is down: unless a
// new connection came up since the jobs were taken (gen), the publisher then waits for it.
func (t *Transport) requeue(jobs []job, gen uint64, down bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if down && gen == t.upGen {
		t.up = false
	}
	var results []job
	for _, j := range jobs {
		switch j.kind {
		case jobState, jobClear:
			if t.pvs[j.p.name] == j.p {
				t.markDirty(j.p)
			}
		case jobResult:
			results = append(results, j)
		case jobStatus:
			t.status = true
		}
	}
	if len(results) > 0 {
		t.results = append(results, t.results...)
	}
}

// Close implements plugins.Transport: it stops the publisher, says offline on the status
// topic, closes the broker (embedded) or disconnects from it (external), and returns when
// the transport's goroutines have exited.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	started := t.started
	for id, pp := range t.puts {
		pp.timer.Stop()
		delete(t.puts, id)
	}
	t.mu.Unlock()
	close(t.stop)
	t.cancel()
	if !started {
		return nil
	}
	done := make(chan struct{})
	go func() { t.wg.Wait(); close(done) }()
	if t.emb != nil {
		<-done
		t.emb.close()
		return nil
	}
	if t.ext != nil {
		t.ext.close(done)
	}
	<-done
	return nil
}

// stats returns the number of PV state messages published, the PV updates merged into a
// state not yet published, and the states published again after a subscriber's queue
// dropped one (tests and benchmarks).
func (t *Transport) stats() (published, coalesced, resent uint64) {
	return t.published.Load(), t.coalesced.Load(), t.resent.Load()
}
