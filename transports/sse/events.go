package sse

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// streamNames returns the PV names a stream asks for: every pv parameter and the
// comma-separated names of every pvs parameter, in order, without repeats.
func streamNames(q url.Values) ([]string, error) {
	var names []string
	seen := map[string]bool{}
	add := func(n string) error {
		if n == "" {
			return fmt.Errorf("empty PV name")
		}
		if !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
		return nil
	}
	for _, n := range q["pv"] {
		if err := add(n); err != nil {
			return nil, fmt.Errorf("%v in pv=", err)
		}
	}
	for _, list := range q["pvs"] {
		for n := range strings.SplitSeq(list, ",") {
			if err := add(strings.TrimSpace(n)); err != nil {
				return nil, fmt.Errorf("%v in pvs=%q", err, list)
			}
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no PV given: use %s?pv=NAME (repeatable) or ?pvs=A,B", EventsPath)
	}
	return names, nil
}

// serveEvents is GET /api/v1/events: a text/event-stream of the named PVs, their current
// state at once, then every change, until the client leaves or the server ends the stream.
func (t *Transport) serveEvents(w http.ResponseWriter, r *http.Request) {
	names, err := streamNames(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s := newStream(t.opts.queueLimit)
	if !t.track(s) {
		writeError(w, http.StatusServiceUnavailable, errClosing.Error())
		return
	}
	defer t.untrack(s)
	log := t.log.With("remote", r.RemoteAddr)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // no buffering in nginx and the like
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	if err := rc.Flush(); err != nil {
		log.Debug("sse stream not started", "err", err)
		return
	}
	if !t.hub.addStream(s, names) {
		return
	}
	log.Debug("sse stream opened", "pvs", len(names))
	why, slow := s.run(r.Context(), rcWriter{w, rc}, t.opts.keepalive, t.opts.stallTimeout)
	t.hub.removeStream(s, names)
	if slow {
		log.Warn("ended a stream that does not keep up", "pvs", len(names), "reason", why)
		return
	}
	log.Debug("sse stream closed", "pvs", len(names), "reason", why)
}
