// Package websocket is pvhub's WebSocket transport. It serves two browser protocols on one
// HTTP listener: the ophyd-websocket dialect at /api/v1/pv-socket and the PVWS dialect at
// /pvws/pv, so that existing clients of either gateway can switch to pvhub unchanged.
//
// Every socket shares one upstream subscription per PV (a reference-counted table); each
// socket has a bounded send queue that keeps only the newest value per PV and never drops
// connection changes, metadata or put results. A socket whose queue overflows, or whose
// messages wait longer than stall_timeout to be written, is closed with code 1008 and a
// reason. NaN and the infinities are sent as the strings "NaN", "Infinity" and "-Infinity".
//
// See README.md for the options and the exact message formats.
package websocket

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/pvhub/pvhub/plugins"
)

// Paths of the two dialects.
const (
	OphydPath = "/api/v1/pv-socket"
	PVWSPath  = "/pvws/pv"
)

// shutdownGrace is how long Close lets sockets finish their close handshake before it cuts
// their connections.
const shutdownGrace = time.Second

// Transport is the WebSocket transport. Create it with New.
type Transport struct {
	opts        options
	relayPrefix string
	log         *slog.Logger
	hub         *hub

	ln  net.Listener
	srv *http.Server

	mu      sync.Mutex
	clients map[*client]struct{}
	started bool
	closed  bool
	wg      sync.WaitGroup // the server goroutine and every socket's handler
}

var _ plugins.Transport = (*Transport)(nil)

// New returns the WebSocket transport, not started; it does no I/O.
func New() plugins.Transport { return newTransport() }

func newTransport() *Transport { return &Transport{clients: map[*client]struct{}{}} }

type netConnKey struct{}

// Start implements plugins.Transport: it parses the options and listens. It returns once
// the listener is bound (so a listen address with port 0 is resolved, see Addr).
func (t *Transport) Start(ctx context.Context, cfg plugins.Config, host plugins.Host) error {
	opts, unknown, err := parseOptions(cfg.Options)
	if err != nil {
		return fmt.Errorf("websocket: %w", err)
	}
	t.log = cfg.Logger
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	for _, k := range unknown {
		t.log.Warn("unknown websocket option ignored", "key", k)
	}
	t.mu.Lock()
	if t.closed || t.started {
		t.mu.Unlock()
		return errors.New("websocket: Start called twice or after Close")
	}
	t.started = true
	t.mu.Unlock()
	t.opts = opts
	t.relayPrefix = cfg.RelayPrefix
	t.hub = newHub(host)

	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", opts.listen)
	if err != nil {
		return fmt.Errorf("websocket: cannot listen on %q: %w", opts.listen, err)
	}
	t.ln = ln
	mux := http.NewServeMux()
	mux.HandleFunc(OphydPath, func(w http.ResponseWriter, r *http.Request) { t.serveSocket(w, r, &ophydDialect{}) })
	mux.HandleFunc(PVWSPath, func(w http.ResponseWriter, r *http.Request) { t.serveSocket(w, r, &pvwsDialect{}) })
	mux.HandleFunc(NativePath, func(w http.ResponseWriter, r *http.Request) { t.serveSocket(w, r, &nativeDialect{}) })
	mux.HandleFunc(InfoPath, t.serveInfo)
	mux.Handle("/", pageHandler())
	t.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(t.log.Handler(), slog.LevelDebug),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, netConnKey{}, c)
		},
	}
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		if err := t.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.log.Error("websocket server stopped", "err", err)
		}
	}()
	t.log.Info("websocket transport listening", "addr", ln.Addr().String(), "page", "/", "native", NativePath, "ophyd", OphydPath, "pvws", PVWSPath)
	return nil
}

// Addr returns the address the transport listens on, or "" before Start.
func (t *Transport) Addr() string {
	if t.ln == nil {
		return ""
	}
	return t.ln.Addr().String()
}

// Events implements plugins.Transport: it updates the PV table and queues the events to the
// interested sockets, never waiting for a socket.
func (t *Transport) Events(batch []plugins.Event) {
	if t.hub != nil {
		t.hub.dispatch(batch)
	}
}

// Close implements plugins.Transport: it stops the listener, closes every socket (code 1001)
// and returns when every goroutine of the transport has exited.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	started := t.started
	clients := make([]*client, 0, len(t.clients))
	for c := range t.clients {
		clients = append(clients, c)
	}
	t.mu.Unlock()
	if !started || t.srv == nil {
		return nil
	}
	err := t.srv.Close()
	for _, c := range clients {
		c.close(websocket.StatusGoingAway, "server shutting down")
	}
	done := make(chan struct{})
	go func() { t.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(shutdownGrace):
		for _, c := range clients {
			if c.netConn != nil {
				_ = c.netConn.Close()
			}
		}
		<-done
	}
	t.hub.close()
	return err
}

// serveSocket authenticates the request, upgrades it and runs the socket until it ends.
func (t *Transport) serveSocket(w http.ResponseWriter, r *http.Request, d dialect) {
	if t.opts.token != "" && !t.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="pvhub"`)
		http.Error(w, "missing or wrong token: send Authorization: Bearer <token> or ?token=<token>", http.StatusUnauthorized)
		return
	}
	bw := &batchResponseWriter{ResponseWriter: w}
	conn, err := websocket.Accept(bw, r, &websocket.AcceptOptions{
		OriginPatterns:     t.opts.origins,
		InsecureSkipVerify: t.opts.anyOrigin,
	})
	if err != nil {
		t.log.Info("websocket upgrade refused", "remote", r.RemoteAddr, "origin", r.Header.Get("Origin"), "err", err)
		return
	}
	conn.SetReadLimit(-1) // readLoop enforces max_message_bytes itself, without closing
	c := &client{t: t, conn: conn, d: d, subs: map[string]*sub{}, valueAt: map[string]int{},
		wake: make(chan struct{}, 1), stop: make(chan struct{}),
		log: t.log.With("remote", r.RemoteAddr, "path", r.URL.Path)}
	c.batch = bw.conn
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.netConn, _ = r.Context().Value(netConnKey{}).(net.Conn)

	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		_ = conn.Close(websocket.StatusGoingAway, "server shutting down")
		c.cancel()
		return
	}
	t.clients[c] = struct{}{}
	t.wg.Add(1)
	t.mu.Unlock()
	defer t.wg.Done()
	c.log.Debug("websocket client connected")

	c.wg.Add(1)
	go c.runWriter()
	c.readLoop()

	c.close(websocket.StatusNormalClosure, "")
	t.hub.remove(c)
	c.wg.Wait()
	_ = conn.CloseNow()
	c.mu.Lock()
	c.dead = true
	c.queue, c.spare, c.valueAt = nil, nil, nil
	c.mu.Unlock()
	t.mu.Lock()
	delete(t.clients, c)
	t.mu.Unlock()
	c.log.Debug("websocket client gone", "code", int(c.code), "reason", c.reason)
}

func (t *Transport) authorized(r *http.Request) bool {
	given := r.URL.Query().Get("token")
	if h := r.Header.Get("Authorization"); h != "" {
		if s, ok := strings.CutPrefix(h, "Bearer "); ok {
			given = strings.TrimSpace(s)
		}
	}
	return subtle.ConstantTimeCompare([]byte(given), []byte(t.opts.token)) == 1
}

// clientCount returns the number of open sockets (tests).
func (t *Transport) clientCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.clients)
}
