package sse

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/pvhub/pvhub/transports/internal/option"

	"github.com/pvhub/pvhub/plugins"
	"github.com/pvhub/pvhub/transports/internal/eventjson"
)

// servePV is GET and PUT /api/v1/pv/{name}.
func (t *Transport) servePV(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if name == "" {
		writeError(w, http.StatusBadRequest, "no PV name: use "+PVPath+"{name}")
		return
	}
	def := t.opts.getTimeout
	if r.Method == http.MethodPut {
		def = t.opts.putTimeout
	}
	timeout, err := requestTimeout(r, def)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if r.Method == http.MethodPut {
		t.put(w, r, name, timeout)
		return
	}
	t.get(w, r, name, timeout)
}

// requestTimeout reads the timeout query parameter: a Go duration ("1.5s") or a number of
// seconds, positive, at most MaxTimeout (larger values are capped).
func requestTimeout(r *http.Request, def time.Duration) (time.Duration, error) {
	q := r.URL.Query()
	if !q.Has("timeout") {
		return def, nil
	}
	v := q.Get("timeout")
	d, err := option.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("timeout: %v", err)
	}
	if d <= 0 {
		return 0, fmt.Errorf("timeout: want a positive duration, got %q", v)
	}
	return min(d, MaxTimeout), nil
}

// complete is the state a GET answers with: connected, with metadata and a value.
func complete(s snapshot) bool { return s.connected() && s.meta != nil && s.value != nil }

// get answers the PV's state once it is connected and has metadata and a value, or 504 when
// it does not within timeout.
func (t *Transport) get(w http.ResponseWriter, r *http.Request, name string, timeout time.Duration) {
	if !t.hub.acquire(name) {
		writeError(w, http.StatusServiceUnavailable, errClosing.Error())
		return
	}
	defer t.hub.release(name)
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	s, err := t.hub.await(ctx, name, complete)
	switch {
	case errors.Is(err, errClosing):
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	case r.Context().Err() != nil:
		return // the client left
	case err != nil:
		writeError(w, http.StatusGatewayTimeout, notReady(name, s, timeout))
		return
	}
	b := eventjson.AppendState(nil, eventjson.State{Name: name, Conn: &s.conn, Meta: s.meta, Value: s.value})
	writeJSON(w, http.StatusOK, append(b, '\n'))
}

// notReady says what a PV lacked when a wait for it ended.
func notReady(name string, s snapshot, timeout time.Duration) string {
	switch {
	case !s.connected():
		return fmt.Sprintf("PV %s did not connect within %v", name, timeout)
	case s.meta == nil:
		return fmt.Sprintf("PV %s connected but sent no metadata within %v", name, timeout)
	}
	return fmt.Sprintf("PV %s connected but sent no value within %v", name, timeout)
}

// putBody is the body of a PUT.
type putBody struct {
	Value json.RawMessage `json:"value"`
}

// readPutBody reads and checks {"value": ...}; it answers the error itself and returns nil.
func (t *Transport) readPutBody(w http.ResponseWriter, r *http.Request) json.RawMessage {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(t.opts.maxBodyBytes)))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge,
			fmt.Sprintf("the body is larger than %d bytes (max_body_bytes)", t.opts.maxBodyBytes))
		return nil
	case err != nil:
		writeError(w, http.StatusBadRequest, "cannot read the body: "+err.Error())
		return nil
	}
	const want = `; send {"value": <number, text or array>}`
	if len(bytes.TrimSpace(raw)) == 0 {
		writeError(w, http.StatusBadRequest, "the body is empty"+want)
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var body putBody
	if err := dec.Decode(&body); err != nil {
		msg := "the body is not valid JSON: " + err.Error()
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &typeErr):
			msg = "the body is not a JSON object"
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			msg = "the body has an unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")
		}
		writeError(w, http.StatusBadRequest, msg+want)
		return nil
	}
	if _, err := dec.Token(); err != io.EOF {
		writeError(w, http.StatusBadRequest, "the body has more after its JSON object"+want)
		return nil
	}
	if body.Value == nil {
		writeError(w, http.StatusBadRequest, `the body has no "value"`+want)
		return nil
	}
	return body.Value
}

// put writes the body's value to the PV. It first waits for the PV's metadata, so as to
// convert the value to the PV's type; a PV that does not connect in time (a name the write
// itself would create, an IOC that is down) gets the value as the JSON gave it, and the
// host's answer says whether that worked.
func (t *Transport) put(w http.ResponseWriter, r *http.Request, name string, timeout time.Duration) {
	raw := t.readPutBody(w, r)
	if raw == nil {
		return
	}
	if !t.hub.acquire(name) {
		writeError(w, http.StatusServiceUnavailable, errClosing.Error())
		return
	}
	defer t.hub.release(name)
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	// The wait for the connection leaves time for the host's answer to a put made without
	// the PV's type: a refusal (write rule, not a relay name) is immediate.
	reserve := min(timeout/2, time.Second)
	connCtx, connCancel := context.WithTimeout(ctx, timeout-reserve)
	s, err := t.hub.await(connCtx, name, func(s snapshot) bool { return s.connected() && s.meta != nil })
	connCancel()
	switch {
	case errors.Is(err, errClosing):
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	case r.Context().Err() != nil:
		return
	}
	connected := err == nil
	var data plugins.Data
	if connected {
		data, err = eventjson.ParseValue(s.meta, raw)
	} else {
		data, err = eventjson.ParseUntyped(raw)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("cannot write PV %s: %v", name, err))
		return
	}
	id, result, ok := t.hub.put(name, data)
	if !ok {
		writeError(w, http.StatusServiceUnavailable, errClosing.Error())
		return
	}
	var res plugins.PutResult
	select {
	case res = <-result:
	case <-ctx.Done():
		t.hub.forgetPut(id)
		if r.Context().Err() != nil {
			return
		}
		msg := fmt.Sprintf("no answer to the put to PV %s within %v", name, timeout)
		if !connected {
			msg = notReady(name, s, timeout-reserve) + ", and " + msg
		}
		writeError(w, http.StatusGatewayTimeout, msg)
		return
	case <-t.hub.closing:
		t.hub.forgetPut(id)
		writeError(w, http.StatusServiceUnavailable, errClosing.Error())
		return
	}
	status := http.StatusOK
	if !res.OK() {
		status = putStatus(res.Err, connected, s.conn)
	}
	writeJSON(w, status, append(eventjson.AppendPutResult(nil, res), '\n'))
}

// putStatus maps the host's reason for refusing a put to an HTTP status: 403 for a write
// rule or missing write access, 404 for a name that is no PV, 504 for a PV that never
// connected, 502 for any other failure of the PV or its IOC.
func putStatus(reason string, connected bool, conn plugins.Connection) int {
	r := strings.ToLower(reason)
	switch {
	case strings.Contains(r, "write denied by"), strings.Contains(r, "write access denied"),
		strings.Contains(r, "read-only"), connected && !conn.Write:
		return http.StatusForbidden
	case strings.Contains(r, "is not a relay name"), strings.Contains(r, "not found"):
		return http.StatusNotFound
	case !connected:
		return http.StatusGatewayTimeout
	}
	return http.StatusBadGateway
}
