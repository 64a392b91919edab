package mqtt

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

const (
	// sessionExpiry is the longest a disconnected client's persistent session (MQTT 3 clean
	// session off, or an MQTT 5 session expiry) keeps its subscriptions, and so the PVs it
	// subscribed to, on the embedded broker.
	sessionExpiry = 3600
	// closeWriteTimeout bounds each write to a client during Close.
	closeWriteTimeout = time.Second
)

// embedded is the embedded broker: a mochi-mqtt server on the listen address, whose hook
// feeds the transport with clients' subscriptions and set messages, and into which the
// publisher injects messages as an inline client.
type embedded struct {
	t      *Transport
	srv    *mochi.Server
	inline *mochi.Client
	ln     *listener
	buf    []byte // the publisher's encoding buffer

	// pubMu orders publications against subscriptions in progress. While a client's
	// SUBSCRIBE to a PV topic is processed (from before the broker records it until the
	// retained message is queued), that PV is not published, so that the retained state a
	// new subscriber gets is never older than a message it already received. While a
	// SUBSCRIBE with a wildcard filter is processed, no retained message is published at
	// all: mochi reads its topic tree's retained paths without a lock when it gathers the
	// retained messages of a wildcard filter.
	pubMu         sync.Mutex
	holds         map[string]int  // PV name -> subscriptions in progress
	wildHolds     int             // wildcard subscriptions in progress
	skipped       map[string]bool // PVs not published because of a hold: due again after it
	skippedStatus bool            // the status was not published because of a hold
}

func startEmbedded(ctx context.Context, t *Transport) (*embedded, error) {
	var tlsCfg *tls.Config
	if t.opts.certFile != "" {
		var err error
		if tlsCfg, err = serverTLS(t.opts); err != nil {
			return nil, err
		}
	}
	var lc net.ListenConfig
	raw, err := lc.Listen(ctx, "tcp", t.opts.listen)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on %q: %w", t.opts.listen, err)
	}
	var nl net.Listener = raw
	if tlsCfg != nil {
		nl = tls.NewListener(raw, tlsCfg)
	}
	caps := mochi.NewDefaultServerCapabilities()
	// A PV's retained state stays until replaced, however long the PV is quiet.
	caps.MaximumMessageExpiryInterval = 0
	caps.MaximumSessionExpiryInterval = sessionExpiry
	srv := mochi.New(&mochi.Options{
		Capabilities:             caps,
		Logger:                   slog.New(brokerLogHandler{t.log.With("component", "broker").Handler()}),
		ClientNetWriteBufferSize: 64 << 10,
		SysTopicResendInterval:   10,
	})
	e := &embedded{t: t, srv: srv, holds: map[string]int{}, skipped: map[string]bool{}}
	e.inline = srv.NewClient(nil, mochi.LocalListener, mochi.InlineClientId, true)
	e.ln = &listener{id: "pvhub", ln: nl, log: t.log, conns: map[net.Conn]struct{}{}}
	if err := srv.AddHook(&hook{e: e}, nil); err != nil {
		_ = nl.Close()
		return nil, fmt.Errorf("embedded broker: %w", err)
	}
	if err := srv.AddListener(e.ln); err != nil {
		_ = nl.Close()
		return nil, fmt.Errorf("embedded broker: %w", err)
	}
	if err := srv.Serve(); err != nil {
		e.close()
		return nil, fmt.Errorf("embedded broker: %w", err)
	}
	return e, nil
}

func (e *embedded) addr() string { return e.ln.ln.Addr().String() }

// drops returns the broker's count of messages it could not queue for a subscriber.
func (e *embedded) drops() int64 {
	return atomic.LoadInt64(&e.srv.Info.MessagesDropped) + atomic.LoadInt64(&e.srv.Info.InflightDropped)
}

// inject publishes a message as the inline client.
func (e *embedded) inject(topic string, payload []byte, retain bool, corr []byte) error {
	qos := e.t.opts.qos
	pk := packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: qos, Retain: retain},
		TopicName:   topic,
		Payload:     payload,
		PacketID:    uint16(qos), // the broker checks that a QoS 1 publish has an id; inline ones are not acknowledged
	}
	if corr != nil {
		pk.Properties.CorrelationData = corr
	}
	return e.srv.InjectPacket(e.inline, pk)
}

// publishJobs publishes jobs in order through the broker (which copies the payloads).
func (e *embedded) publishJobs(jobs []job) {
	t := e.t
	var cleared, dropped []*pvState
	for i := range jobs {
		j := &jobs[i]
		if j.kind == jobResult {
			if err := e.inject(j.topic, j.payload, false, j.corr); err != nil {
				t.log.Debug("publish failed", "topic", j.topic, "error", err)
			}
			continue
		}
		if j.kind == jobStatus {
			e.pubMu.Lock()
			if e.wildHolds > 0 {
				e.skippedStatus = true
			} else if err := e.inject(j.topic, j.payload, true, nil); err != nil {
				t.log.Debug("publish failed", "topic", j.topic, "error", err)
			}
			e.pubMu.Unlock()
			continue
		}
		e.buf = j.encode(e.buf)
		retain := j.kind == jobClear || t.opts.retain
		e.pubMu.Lock()
		if e.holds[j.p.name] > 0 || e.wildHolds > 0 && retain {
			e.skipped[j.p.name] = true
			e.pubMu.Unlock()
			continue
		}
		before := e.drops()
		err := e.inject(j.topic, e.buf, retain, nil)
		lost := e.drops() != before
		e.pubMu.Unlock()
		if err != nil {
			t.log.Debug("publish failed", "topic", j.topic, "error", err)
			continue
		}
		if j.kind == jobClear {
			cleared = append(cleared, j.p)
			continue
		}
		t.published.Add(1)
		if lost {
			dropped = append(dropped, j.p)
		}
	}
	t.cleared(cleared)
	if len(dropped) > 0 {
		t.mu.Lock()
		t.dropped = append(t.dropped, dropped...)
		t.mu.Unlock()
	}
}

// subscriptionHolds returns the PVs whose exact topics a SUBSCRIBE names, and whether it
// has a wildcard filter.
func (e *embedded) subscriptionHolds(pk packets.Packet) (names []string, wild bool) {
	for _, f := range pk.Filters {
		if name, ok := e.t.pvTopic(f.Filter); ok {
			names = append(names, name)
		} else if strings.ContainsAny(f.Filter, "+#") {
			wild = true
		}
	}
	return names, wild
}

// hold suspends publications while a subscription is processed: of the PVs named, and of
// every retained message for a wildcard subscription.
func (e *embedded) hold(names []string, wild bool) {
	e.pubMu.Lock()
	for _, n := range names {
		e.holds[n]++
	}
	if wild {
		e.wildHolds++
	}
	e.pubMu.Unlock()
}

// release ends the holds of a subscription; what they held back is due again.
func (e *embedded) release(names []string, wild bool) {
	e.pubMu.Lock()
	var again []string
	for _, n := range names {
		if c := e.holds[n] - 1; c > 0 {
			e.holds[n] = c
		} else {
			delete(e.holds, n)
		}
	}
	if wild {
		e.wildHolds--
	}
	status := false
	if e.wildHolds == 0 {
		for n := range e.skipped {
			if e.holds[n] == 0 {
				again = append(again, n)
				delete(e.skipped, n)
			}
		}
		status, e.skippedStatus = e.skippedStatus, false
	}
	e.pubMu.Unlock()
	if len(again) == 0 && !status {
		return
	}
	t := e.t
	t.mu.Lock()
	for _, n := range again {
		if p := t.pvs[n]; p != nil {
			t.markDirty(p)
		}
	}
	if status {
		t.status = true
	}
	t.mu.Unlock()
	t.signal()
}

// writable reports whether MQTT clients may publish to topic: anything but pvhub's own
// topics, except the set topics.
func (e *embedded) writable(topic string) bool {
	t := e.t
	if topic == t.opts.statusTopic {
		return false
	}
	if _, ok := t.setTopic(topic); ok {
		return true
	}
	return len(topic) < len(t.prefix) || topic[:len(t.prefix)] != t.prefix
}

// close says offline to the status topic's subscribers, closes the broker and its clients,
// and waits for the listener's goroutines.
func (e *embedded) close() {
	deadline := time.Now().Add(closeWriteTimeout)
	for _, cl := range e.srv.Clients.GetAll() {
		if cl.Net.Conn != nil {
			_ = cl.Net.Conn.SetWriteDeadline(deadline)
		}
	}
	if topic := e.t.opts.statusTopic; topic != "" {
		// Written straight to each subscriber, ahead of the DISCONNECT that follows: a
		// retained message would die with the broker anyway.
		subs := e.srv.Topics.Subscribers(topic)
		for id := range subs.Subscriptions {
			if cl, ok := e.srv.Clients.Get(id); ok && !cl.Closed() && cl.Net.Conn != nil {
				_ = cl.WritePacket(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish},
					TopicName: topic, Payload: statusOffline})
			}
		}
	}
	_ = e.srv.Close()
	e.ln.wait()
}

// hook is the transport's mochi hook. A client's subscriptions to PV topics are counted
// per client id from OnSubscribed, and released from OnUnsubscribed, which the broker also
// calls with all the filters of a session that ends with its connection (clean session, or
// MQTT 5 session expiry 0) or that a new connection with a clean start takes over, and from
// OnClientExpired for a persistent session. OnDisconnect is not used: a session taken over
// (same client id) outlives the connection it reports.
type hook struct {
	mochi.HookBase
	e *embedded
}

func (h *hook) ID() string { return "pvhub" }

func (h *hook) Provides(b byte) bool {
	switch b {
	case mochi.OnConnectAuthenticate, mochi.OnACLCheck, mochi.OnConnect, mochi.OnSubscribe, mochi.OnSubscribed,
		mochi.OnUnsubscribed, mochi.OnPacketProcessed, mochi.OnClientExpired, mochi.OnPublish:
		return true
	}
	return false
}

// OnConnectAuthenticate checks username and password when the options set them.
func (h *hook) OnConnectAuthenticate(cl *mochi.Client, pk packets.Packet) bool {
	o := &h.e.t.opts
	if o.username == "" && o.password == "" {
		return true
	}
	ok := subtle.ConstantTimeCompare(pk.Connect.Username, []byte(o.username)) == 1
	ok = subtle.ConstantTimeCompare(pk.Connect.Password, []byte(o.password)) == 1 && ok
	if !ok {
		h.e.t.log.Info("MQTT client refused: wrong username or password", "client", cl.ID, "remote", cl.Net.Remote)
	}
	return ok
}

// OnConnect refuses a client whose will would publish to one of pvhub's topics.
func (h *hook) OnConnect(cl *mochi.Client, pk packets.Packet) error {
	if pk.Connect.WillFlag && !h.e.writable(pk.Connect.WillTopic) {
		h.e.t.log.Info("MQTT client refused: its will message would publish to a pvhub topic", "client", cl.ID,
			"remote", cl.Net.Remote, "will_topic", pk.Connect.WillTopic)
		_ = h.e.srv.SendConnack(cl, packets.ErrNotAuthorized, false, nil)
		return packets.ErrNotAuthorized
	}
	return nil
}

// OnACLCheck lets clients subscribe to anything, and publish anywhere but to pvhub's
// topics (PV states, results, status), the set topics excepted.
func (h *hook) OnACLCheck(cl *mochi.Client, topic string, write bool) bool {
	return !write || h.e.writable(topic)
}

func (h *hook) OnSubscribe(cl *mochi.Client, pk packets.Packet) packets.Packet {
	if names, wild := h.e.subscriptionHolds(pk); len(names) > 0 || wild {
		h.e.hold(names, wild)
	}
	return pk
}

func (h *hook) OnSubscribed(cl *mochi.Client, pk packets.Packet, reasonCodes []byte) {
	for i, f := range pk.Filters {
		if i >= len(reasonCodes) || reasonCodes[i] >= packets.ErrUnspecifiedError.Code {
			continue
		}
		if name, ok := h.e.t.pvTopic(f.Filter); ok {
			h.e.t.clientSubscribed(cl.ID, name)
		}
	}
}

// OnPacketProcessed ends the holds of a SUBSCRIBE once its retained messages are queued.
func (h *hook) OnPacketProcessed(cl *mochi.Client, pk packets.Packet, err error) {
	if pk.FixedHeader.Type != packets.Subscribe {
		return
	}
	if names, wild := h.e.subscriptionHolds(pk); len(names) > 0 || wild {
		h.e.release(names, wild)
	}
}

// OnUnsubscribed releases the PVs of the filters dropped, by an UNSUBSCRIBE or at the end of
// a session.
func (h *hook) OnUnsubscribed(cl *mochi.Client, pk packets.Packet) {
	var names []string
	for _, f := range pk.Filters {
		if name, ok := h.e.t.pvTopic(f.Filter); ok {
			names = append(names, name)
		}
	}
	if len(names) > 0 {
		h.e.t.clientUnsubscribed(cl.ID, names)
	}
}

// OnClientExpired releases the PVs of a persistent session that expired.
func (h *hook) OnClientExpired(cl *mochi.Client) { h.e.t.clientUnsubscribed(cl.ID, nil) }

// OnPublish turns a client's message on a set topic into a write; the message is never
// retained.
func (h *hook) OnPublish(cl *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline {
		return pk, nil
	}
	name, ok := h.e.t.setTopic(pk.TopicName)
	if !ok {
		return pk, nil
	}
	pk.FixedHeader.Retain = false
	h.e.t.handleSet(name, pk.Payload, pk.Properties.ResponseTopic, pk.Properties.CorrelationData)
	return pk, nil
}

// listener serves the broker's connections on a net.Listener; unlike mochi's, its Close
// waits for every goroutine it started.
type listener struct {
	id  string
	ln  net.Listener
	log *slog.Logger
	wg  sync.WaitGroup // Serve and one per connection

	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]struct{}
}

func (l *listener) ID() string       { return l.id }
func (l *listener) Address() string  { return l.ln.Addr().String() }
func (l *listener) Protocol() string { return "tcp" }

// Init is called once, before Serve runs in the broker's goroutine.
func (l *listener) Init(*slog.Logger) error {
	l.wg.Add(1) // Serve's
	return nil
}

func (l *listener) Serve(establish listeners.EstablishFn) {
	defer l.wg.Done()
	for {
		conn, err := l.ln.Accept()
		if err != nil {
			l.mu.Lock()
			closed := l.closed
			l.mu.Unlock()
			if closed || errors.Is(err, net.ErrClosed) {
				return
			}
			l.log.Warn("MQTT listener cannot accept a connection", "error", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			_ = conn.Close()
			return
		}
		l.conns[conn] = struct{}{}
		l.wg.Add(1)
		l.mu.Unlock()
		go func() {
			defer l.wg.Done()
			err := establish(l.id, conn)
			_ = conn.Close()
			l.mu.Lock()
			delete(l.conns, conn)
			l.mu.Unlock()
			if err != nil {
				l.log.Debug("MQTT client connection ended", "remote", conn.RemoteAddr().String(), "reason", err)
			}
		}()
	}
}

// Close stops accepting, has the broker disconnect its clients, and closes the connections
// that are still starting.
func (l *listener) Close(closeClients listeners.CloseFn) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	l.mu.Unlock()
	_ = l.ln.Close()
	closeClients(l.id)
	l.mu.Lock()
	conns := make([]net.Conn, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

// wait returns when Serve and the connections' goroutines have returned.
func (l *listener) wait() { l.wg.Wait() }

// serverTLS is the embedded broker's TLS configuration: its certificate, and with ca_file,
// client certificates required and verified.
func serverTLS(o options) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(o.certFile, o.keyFile)
	if err != nil {
		return nil, fmt.Errorf("cert_file and key_file: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if o.caFile != "" {
		pool, err := loadPool(o.caFile)
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// loadPool reads the PEM certificates of ca_file.
func loadPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("ca_file: %s holds no PEM certificate", file)
	}
	return pool, nil
}

// brokerLogHandler lowers the broker's records by one level (its Info is our Debug, its
// Error our Warn): they are about clients, not about pvhub.
type brokerLogHandler struct{ h slog.Handler }

func lower(l slog.Level) slog.Level {
	switch {
	case l >= slog.LevelError:
		return slog.LevelWarn
	case l >= slog.LevelWarn:
		return slog.LevelInfo
	}
	return slog.LevelDebug
}

func (b brokerLogHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return b.h.Enabled(ctx, lower(l))
}

func (b brokerLogHandler) Handle(ctx context.Context, r slog.Record) error {
	r.Level = lower(r.Level)
	return b.h.Handle(ctx, r)
}

func (b brokerLogHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return brokerLogHandler{b.h.WithAttrs(as)}
}

func (b brokerLogHandler) WithGroup(g string) slog.Handler { return brokerLogHandler{b.h.WithGroup(g)} }
