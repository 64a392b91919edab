// Package sse is pvhub's Server-Sent Events and REST transport. On one HTTP listener it
// serves
//
//   - GET /api/v1/events?pv=A&pv=B: a text/event-stream of the PVs' connection, metadata and
//     value events (event names connection, metadata, value; the data is one line of JSON);
//   - GET /api/v1/pv/{name}: the PV's state (connection, metadata and value) as one JSON
//     object, waiting for the PV to connect up to a timeout;
//   - PUT /api/v1/pv/{name} with {"value": ...}: a write through the host, which applies the
//     write rules; a put to a relay name creates the relay PV;
//   - GET /api/v1/openapi.json: the OpenAPI 3 description of these endpoints.
//
// Streams and requests share one upstream subscription per PV (a reference-counted table that
// keeps the latest state of each PV). Each stream has a bounded queue that keeps only the
// newest value per PV and never drops connection or metadata events; a stream whose queue
// overflows, or whose writes wait longer than stall_timeout, is ended, with a final
// "event: error" when it can still be written. Errors are JSON objects {"error": "..."} with
// a specific text and the matching HTTP status.
//
// See README.md for the options, the event formats and the error statuses.
package sse

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pvhub/pvhub/plugins"
)

// Paths of the endpoints.
const (
	EventsPath  = "/api/v1/events"
	PVPath      = "/api/v1/pv/"
	OpenAPIPath = "/api/v1/openapi.json"
)

// shutdownGrace is how long Close lets streams write their final event before it cuts their
// connections.
const shutdownGrace = time.Second

// route is one endpoint: its ServeMux pattern, its path as the OpenAPI description spells
// it, the methods it serves and whether it needs the token.
type route struct {
	pattern string
	openapi string
	methods []string
	public  bool
	serve   func(t *Transport, w http.ResponseWriter, r *http.Request)
}

// routes are every endpoint the transport serves; openapi_test.go checks that the OpenAPI
// description has each of them.
var routes = []route{
	{pattern: EventsPath, openapi: EventsPath, methods: []string{http.MethodGet}, serve: (*Transport).serveEvents},
	{pattern: PVPath + "{name...}", openapi: PVPath + "{name}", methods: []string{http.MethodGet, http.MethodPut}, serve: (*Transport).servePV},
	{pattern: OpenAPIPath, openapi: OpenAPIPath, methods: []string{http.MethodGet}, public: true, serve: (*Transport).serveOpenAPI},
}

// Transport is the SSE and REST transport. Create it with New.
type Transport struct {
	opts options
	log  *slog.Logger
	hub  *hub

	ln        net.Listener
	srv       *http.Server
	serveDone chan struct{}

	mu      sync.Mutex
	streams map[*stream]struct{}
	started bool
	closed  bool
	wg      sync.WaitGroup // every request's handler
}

var _ plugins.Transport = (*Transport)(nil)

// New returns the SSE transport, not started; it does no I/O.
func New() plugins.Transport { return newTransport() }

func newTransport() *Transport { return &Transport{streams: map[*stream]struct{}{}} }

// Start implements plugins.Transport: it parses the options and listens. It returns once the
// listener is bound (so a listen address with port 0 is resolved, see Addr).
func (t *Transport) Start(ctx context.Context, cfg plugins.Config, host plugins.Host) error {
	t.mu.Lock()
	if t.closed || t.started {
		t.mu.Unlock()
		return errors.New("sse: Start called twice or after Close")
	}
	t.started = true
	t.mu.Unlock()
	opts, unknown, err := parseOptions(cfg.Options)
	if err != nil {
		return fmt.Errorf("sse: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	for _, k := range unknown {
		log.Warn("unknown sse option ignored", "key", k)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", opts.listen)
	if err != nil {
		return fmt.Errorf("sse: cannot listen on %q: %w", opts.listen, err)
	}
	t.opts, t.log = opts, log
	t.hub = newHub(host, opts.linger)
	mux := http.NewServeMux()
	for _, rt := range routes {
		mux.HandleFunc(rt.pattern, t.handler(rt))
	}
	mux.HandleFunc("/", t.handler(route{serve: (*Transport).serveNotFound, public: true}))
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		_ = ln.Close()
		return errors.New("sse: closed during Start")
	}
	t.ln, t.srv = ln, srv
	t.serveDone = make(chan struct{})
	t.mu.Unlock()
	go func() {
		defer close(t.serveDone)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("sse server stopped", "err", err)
		}
	}()
	log.Info("sse transport listening", "addr", ln.Addr().String(), "events", EventsPath, "pv", PVPath+"{name}")
	return nil
}

// Addr returns the address the transport listens on, or "" before Start.
func (t *Transport) Addr() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ln == nil {
		return ""
	}
	return t.ln.Addr().String()
}

// Events implements plugins.Transport: it updates the PV table and queues the events to the
// interested streams, never waiting for one.
func (t *Transport) Events(batch []plugins.Event) {
	if t.hub != nil {
		t.hub.dispatch(batch)
	}
}

// Close implements plugins.Transport: it ends every stream (with a final error event "the
// server is shutting down"), wakes the waiting requests, stops the listener and returns when
// every goroutine of the transport has exited.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	srv := t.srv
	streams := make([]*stream, 0, len(t.streams))
	for s := range t.streams {
		streams = append(streams, s)
	}
	t.mu.Unlock()
	if srv == nil {
		return nil // not started, or Start failed
	}
	t.hub.stop()
	for _, s := range streams {
		s.end(errClosing.Error())
	}
	handlers := make(chan struct{})
	go func() { t.wg.Wait(); close(handlers) }()
	select {
	case <-handlers:
	case <-time.After(shutdownGrace):
	}
	// Close cuts the connections that remain (a stream whose client does not read).
	err := srv.Close()
	<-handlers
	<-t.serveDone
	t.hub.wait()
	return err
}

// enter registers a request's handler; false when the transport is closing.
func (t *Transport) enter() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.wg.Add(1)
	return true
}

// handler wraps a route's function with what every request goes through: the shutdown
// check, the origin check (CORS), OPTIONS, the method and the token.
func (t *Transport) handler(rt route) http.HandlerFunc {
	allow := strings.Join(append(slices.Clone(rt.methods), http.MethodOptions), ", ")
	return func(w http.ResponseWriter, r *http.Request) {
		if !t.enter() {
			writeError(w, http.StatusServiceUnavailable, errClosing.Error())
			return
		}
		defer t.wg.Done()
		if !t.checkOrigin(w, r, allow) {
			return
		}
		if rt.methods != nil {
			if r.Method == http.MethodOptions {
				w.Header().Set("Allow", allow)
				w.WriteHeader(http.StatusNoContent)
				return
			}
			if !slices.Contains(rt.methods, r.Method) {
				w.Header().Set("Allow", allow)
				writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed on %s; allowed: %s", r.Method, r.URL.Path, allow))
				return
			}
		}
		if !rt.public && t.opts.token != "" && !t.authorized(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="pvhub"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong token: send Authorization: Bearer <token> or ?token=<token>")
			return
		}
		rt.serve(t, w, r)
	}
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

// checkOrigin applies the origin rules to a request with an Origin header: the page's own
// origin is always allowed, others only when allowed_origins lists them (they then get the
// CORS headers, and a preflight request its answer). It answers 403 itself and returns false
// for an origin not allowed.
func (t *Transport) checkOrigin(w http.ResponseWriter, r *http.Request, allow string) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true // not a browser's cross-origin request
	}
	h := w.Header()
	h.Add("Vary", "Origin")
	u, err := url.Parse(origin)
	if err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host) {
		return true // same origin
	}
	if err != nil || !t.originAllowed(origin, u) {
		writeError(w, http.StatusForbidden, fmt.Sprintf("requests from origin %q are not allowed; add it to transports.sse.allowed_origins", origin))
		return false
	}
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Expose-Headers", "Content-Type")
	if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
		h.Set("Access-Control-Allow-Methods", allow)
		h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Cache-Control, Last-Event-ID")
		h.Set("Access-Control-Max-Age", "600")
		w.WriteHeader(http.StatusNoContent)
		return false
	}
	return true
}

// originAllowed matches origin against allowed_origins: a pattern with "://" matches the
// whole origin (scheme://host[:port]), another one its host[:port].
func (t *Transport) originAllowed(origin string, u *url.URL) bool {
	if t.opts.anyOrigin {
		return true
	}
	for _, p := range t.opts.origins {
		target := u.Host
		if strings.Contains(p, "://") {
			target = origin
		}
		if ok, _ := path.Match(strings.ToLower(p), strings.ToLower(target)); ok {
			return true
		}
	}
	return false
}

func (t *Transport) serveNotFound(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotFound, fmt.Sprintf("no endpoint %s; see %s", r.URL.Path, OpenAPIPath))
}

// writeError answers {"error": msg} with status.
func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, append(appendErrorJSON(nil, msg), '\n'))
}

// writeJSON answers body with status. The answer is flushed before the handler returns, so
// that it is on its way even when Close cuts the connection right after.
func writeJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(body)
	_ = http.NewResponseController(w).Flush()
}

// track registers a stream so that Close can end it; false when the transport is closing.
func (t *Transport) track(s *stream) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.streams[s] = struct{}{}
	return true
}

func (t *Transport) untrack(s *stream) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.streams, s)
}

// streamCount returns the number of open streams (tests).
func (t *Transport) streamCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.streams)
}
