package sse

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/pvhub/pvhub/plugins"
)

func TestGet(t *testing.T) {
	f := start(t, map[string]any{"linger": "0"})
	r := f.do("GET", PVPath+"A", "")
	r.expect(t, 200, "")
	want := map[string]any{"pv": "A", "connected": true, "read": true, "write": true, "native_type": "DBF_DOUBLE",
		"count": 1, "units": "mm", "precision": 3, "display": map[string]any{"low": -10, "high": 10}, "value": 1.5,
		"status": "NO_ALARM", "severity": "NO_ALARM", "seconds": 631153000, "nanos": 5, "time": "1990-01-01T00:16:40.000000005Z"}
	for k, v := range want {
		if !equalJSON(r.json[k], v) {
			t.Errorf("%s: %v, want %v (%s)", k, r.json[k], v, r.body)
		}
	}
	if _, ok := r.json["type"]; ok {
		t.Errorf("a state has a type: %s", r.body)
	}
	if r.header.Get("Content-Type") != "application/json" || r.header.Get("Cache-Control") != "no-store" {
		t.Errorf("headers %v", r.header)
	}
	waitFor(t, "the GET's subscription is released", func() bool { return !f.h.Subscribed("A") && f.tr.hub.upstream() == 0 })

	for _, c := range []struct {
		name  string
		check map[string]any
	}{
		{"E", map[string]any{"value": 1, "text": "On", "enum_labels": []string{"Off", "On"}}},
		{"TXT", map[string]any{"value": "hello", "native_type": "DBF_CHAR", "count": 16}},
		{"ARR", map[string]any{"value": []float64{1, 2, 3}}},
		{"RO", map[string]any{"value": 7, "write": false}},
	} {
		r := f.do("GET", PVPath+c.name, "")
		r.expect(t, 200, "")
		for k, v := range c.check {
			if !equalJSON(r.json[k], v) {
				t.Errorf("GET %s: %s is %v, want %v", c.name, k, r.json[k], v)
			}
		}
	}
	// An escaped name.
	f.h.AddPV(plugins.Metadata{Name: "X:a b/c", Type: plugins.TypeString, Count: 1}, withData(plugins.Strings("s")), true)
	r = f.do("GET", PVPath+"X:a%20b%2Fc", "")
	r.expect(t, 200, "")
	if r.json["pv"] != "X:a b/c" || r.json["value"] != "s" {
		t.Errorf("GET of an escaped name: %s", r.body)
	}
	// The timeout is capped, not refused.
	f.do("GET", PVPath+"A?timeout=10m", "").expect(t, 200, "")
	f.do("GET", PVPath+"A?timeout=2.5", "").expect(t, 200, "")
}

func TestGetLinger(t *testing.T) {
	f := start(t, map[string]any{"linger": "1h"})
	f.do("GET", PVPath+"A", "").expect(t, 200, "")
	f.do("GET", PVPath+"A", "").expect(t, 200, "")
	c := f.stream("?pv=A")
	c.until("A's value from the cache", is("value", "value", 1.5))
	if n := f.tr.subCount("A"); n != 1 || !f.h.Subscribed("A") {
		t.Fatalf("%d upstream subscriptions of A, want 1 held by the linger", n)
	}

	g := start(t, map[string]any{"linger": "20ms"})
	g.do("GET", PVPath+"A", "").expect(t, 200, "")
	waitFor(t, "the linger ends", func() bool { return !g.h.Subscribed("A") && g.tr.hub.upstream() == 0 })
}

func TestGetErrors(t *testing.T) {
	f := start(t, map[string]any{"linger": "0"})
	f.do("GET", PVPath+"NOPE?timeout=100ms", "").expect(t, 504, "PV NOPE did not connect within 100ms")
	waitFor(t, "NOPE is released", func() bool { return !f.h.Subscribed("NOPE") })
	f.do("GET", PVPath+"A?timeout=abc", "").expect(t, 400, `timeout: want a duration such as "10s" or a number of seconds, got "abc"`)
	f.do("GET", PVPath+"A?timeout=-1s", "").expect(t, 400, `timeout: want a positive duration, got "-1s"`)
	f.do("GET", PVPath+"A?timeout=0", "").expect(t, 400, `timeout: want a positive duration, got "0"`)
	f.do("GET", PVPath, "").expect(t, 400, "no PV name: use /api/v1/pv/{name}")
	f.do("GET", "/api/v1/nothing", "").expect(t, 404, "no endpoint /api/v1/nothing; see /api/v1/openapi.json")
	f.do("GET", "/", "").expect(t, 404, "no endpoint /")
	r := f.do("DELETE", PVPath+"A", "")
	r.expect(t, 405, "method DELETE not allowed on /api/v1/pv/A; allowed: GET, PUT, OPTIONS")
	if r.header.Get("Allow") != "GET, PUT, OPTIONS" {
		t.Errorf("Allow: %q", r.header.Get("Allow"))
	}
	r = f.do("OPTIONS", PVPath+"A", "")
	if r.status != 204 || r.header.Get("Allow") != "GET, PUT, OPTIONS" {
		t.Errorf("OPTIONS: %d %v", r.status, r.header)
	}
	r = f.do("POST", OpenAPIPath, "{}")
	r.expect(t, 405, "")
	if r.header.Get("Allow") != "GET, OPTIONS" {
		t.Errorf("Allow: %q", r.header.Get("Allow"))
	}
}

func TestPut(t *testing.T) {
	f := start(t, map[string]any{"linger": "0"})
	for _, c := range []struct {
		name, body string
		want       plugins.Data
	}{
		{"A", `{"value":4.25}`, plugins.Float64s(4.25)},
		{"A", `{"value":"5"}`, plugins.Float64s(5)},
		{"A", ` {"value": [6]} `, plugins.Float64s(6)},
		{"E", `{"value":"Off"}`, plugins.Int64s(0)},
		{"E", `{"value":1}`, plugins.Int64s(1)},
		{"TXT", `{"value":"hi there"}`, plugins.Bytes([]byte("hi there"))},
		{"ARR", `{"value":[4,5]}`, plugins.Float64s(4, 5)},
		// Names that do not connect get the value as the JSON gives it.
		{"CREATE:x_f2?timeout=200ms", `{"value":[1.5,2]}`, plugins.Float64s(1.5, 2)},
		{"CREATE:y_i1?timeout=200ms", `{"value":3}`, plugins.Int64s(3)},
		{"CREATE:z_c40?timeout=200ms", `{"value":"text"}`, plugins.Strings("text")},
	} {
		r := f.do("PUT", PVPath+c.name, c.body)
		r.expect(t, 200, "")
		name, _, _ := strings.Cut(c.name, "?")
		if r.json["type"] != "put_result" || r.json["pv"] != name || r.json["ok"] != true || r.json["error"] != nil {
			t.Errorf("PUT %s %s: %s", c.name, c.body, r.body)
		}
		if p := f.tr.lastPut(); p.name != name || !sameData(p.value, c.want) {
			t.Errorf("PUT %s %s: the host got %+v, want %+v", c.name, c.body, p, c.want)
		}
	}
	r := f.do("GET", PVPath+"A", "")
	if r.json["value"] != 6.0 {
		t.Errorf("A after the puts: %s", r.body)
	}
	waitFor(t, "every PV is released", func() bool { return f.tr.hub.upstream() == 0 })
}

func sameData(a, b plugins.Data) bool {
	return a.Kind == b.Kind && slices.Equal(a.Float64s, b.Float64s) && slices.Equal(a.Int64s, b.Int64s) &&
		slices.Equal(a.Strings, b.Strings) && slices.Equal(a.Bytes, b.Bytes)
}

func TestPutErrors(t *testing.T) {
	f := start(t, map[string]any{"linger": "0", "max_body_bytes": 64})
	const want = `; send {"value": <number, text or array>}`
	for _, c := range []struct {
		name, body string
		status     int
		err        string
	}{
		{"A", ``, 400, "the body is empty" + want},
		{"A", `{`, 400, "the body is not valid JSON: unexpected EOF" + want},
		{"A", `[1]`, 400, "the body is not a JSON object" + want},
		{"A", `3`, 400, "the body is not a JSON object" + want},
		{"A", `{"value":1,"x":2}`, 400, `the body has an unknown field "x"` + want},
		{"A", `{}`, 400, `the body has no "value"` + want},
		{"A", `{"value":1} {"value":2}`, 400, "the body has more after its JSON object" + want},
		{"A", `{"value":"abc"}`, 400, `cannot write PV A: "abc" cannot be written to a DBF_DOUBLE PV: not a number`},
		{"A", `{"value":null}`, 400, `cannot write PV A: null cannot be written to a DBF_DOUBLE PV: null is not a value`},
		{"RO", `{"value":1.5}`, 400, "cannot write PV RO: 1.5 is not a whole number, and the PV is DBF_LONG"},
		{"ARR", `{"value":[1,2,3,4]}`, 400, "cannot write PV ARR: the value has 4 elements, the PV holds at most 3"},
		{"E", `{"value":"Maybe"}`, 400, `cannot write PV E: "Maybe" is neither a state (Off, On) nor a number`},
		{"CREATE:b?timeout=200ms", `{"value":true}`, 400, "cannot write PV CREATE:b: true is not a number or text"},
		{"A", `{"value":"` + strings.Repeat("x", 64) + `"}`, 413, "the body is larger than 64 bytes (max_body_bytes)"},
		{"A?timeout=x", `{"value":1}`, 400, `timeout: want a duration such as "10s" or a number of seconds, got "x"`},
		{"", `{"value":1}`, 400, "no PV name: use /api/v1/pv/{name}"},
		// The host's refusals.
		{"RO", `{"value":1}`, 403, "PV RO is read-only"},
		{"DENIED", `{"value":1}`, 403, deniedReason},
		{"BROKEN", `{"value":1}`, 502, "BROKEN: put: ECA_PUTFAIL: put failed"},
		{"NOPE?timeout=200ms", `{"value":1}`, 404, "PV NOPE not found"},
		{"SILENT?timeout=200ms", `{"value":1}`, 504, "no answer to the put to PV SILENT within 200ms"},
	} {
		r := f.do("PUT", PVPath+c.name, c.body, "Content-Type", "application/json")
		if r.status != c.status || r.json["error"] != c.err {
			t.Errorf("PUT %s %s: %d %s, want %d with error %q", c.name, c.body, r.status, r.body, c.status, c.err)
		}
		if c.status == 403 || c.status == 404 || c.status == 502 {
			if r.json["type"] != "put_result" || r.json["ok"] != false {
				t.Errorf("PUT %s %s: %s, want a put_result", c.name, c.body, r.body)
			}
		}
	}
	// Nothing stays subscribed, and no put waits.
	waitFor(t, "every PV is released", func() bool { return f.tr.hub.upstream() == 0 })
	f.tr.hub.mu.Lock()
	pending := len(f.tr.hub.puts)
	f.tr.hub.mu.Unlock()
	if pending != 0 {
		t.Errorf("%d puts still pending", pending)
	}
}

func TestPutStatus(t *testing.T) {
	on := plugins.Connection{Connected: true, Read: true, Write: true}
	for _, c := range []struct {
		reason    string
		connected bool
		conn      plugins.Connection
		want      int
	}{
		{`X: write denied by no write.allow pattern matches`, false, plugins.Connection{}, http.StatusForbidden},
		{`X: put: ECA_NOWTACCESS: write access denied`, true, on, http.StatusForbidden},
		{`RELAY:pvlist is read-only`, true, on, http.StatusForbidden},
		{`anything`, true, plugins.Connection{Connected: true}, http.StatusForbidden},
		{`"RELAY:bad name" is not a relay name (RELAY:<name>_<f|i|c|F|I|C><count>)`, false, plugins.Connection{}, http.StatusNotFound},
		{`X: no channel`, false, plugins.Connection{}, http.StatusGatewayTimeout},
		{`X: put: ECA_PUTFAIL: put failed`, true, on, http.StatusBadGateway},
	} {
		if got := putStatus(c.reason, c.connected, c.conn); got != c.want {
			t.Errorf("putStatus(%q, %t): %d, want %d", c.reason, c.connected, got, c.want)
		}
	}
}

func TestToken(t *testing.T) {
	f := start(t, map[string]any{"token": "s3cret"})
	r := f.do("GET", PVPath+"A", "")
	r.expect(t, 401, "missing or wrong token: send Authorization: Bearer <token> or ?token=<token>")
	if r.header.Get("WWW-Authenticate") != `Bearer realm="pvhub"` {
		t.Errorf("WWW-Authenticate: %q", r.header.Get("WWW-Authenticate"))
	}
	f.do("GET", PVPath+"A", "", "Authorization", "Bearer wrong").expect(t, 401, "")
	f.do("GET", PVPath+"A?token=wrong", "").expect(t, 401, "")
	f.do("GET", PVPath+"A", "", "Authorization", "Bearer s3cret").expect(t, 200, "")
	f.do("GET", PVPath+"A?token=s3cret", "").expect(t, 200, "")
	f.do("PUT", PVPath+"A", `{"value":2}`).expect(t, 401, "")
	f.do("PUT", PVPath+"A", `{"value":2}`, "Authorization", "Bearer s3cret").expect(t, 200, "")
	f.do("GET", EventsPath+"?pv=A", "").expect(t, 401, "")
	c := f.stream("?pv=A&token=s3cret")
	c.until("the value", is("value", "pv", "A"))
	// The description is public.
	f.do("GET", OpenAPIPath, "").expect(t, 200, "")
}

func TestCORS(t *testing.T) {
	f := start(t, nil)
	// Same-origin only by default.
	f.do("GET", PVPath+"A", "", "Origin", "http://evil.example").
		expect(t, 403, `requests from origin "http://evil.example" are not allowed; add it to transports.sse.allowed_origins`)
	f.do("GET", EventsPath+"?pv=A", "", "Origin", "http://evil.example").expect(t, 403, "")
	f.do("GET", PVPath+"A", "", "Origin", "null").expect(t, 403, "")
	r := f.do("GET", PVPath+"A", "", "Origin", f.base)
	r.expect(t, 200, "")
	if r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("CORS headers on a same-origin request: %v", r.header)
	}
	c := f.stream("?pv=A", "Origin", f.base)
	c.until("the value", is("value", "pv", "A"))

	g := start(t, map[string]any{"allowed_origins": "http://app.example, *.lab.example", "token": "tok"})
	r = g.do("GET", PVPath+"A?token=tok", "", "Origin", "http://app.example")
	r.expect(t, 200, "")
	if r.header.Get("Access-Control-Allow-Origin") != "http://app.example" || r.header.Get("Vary") != "Origin" {
		t.Errorf("CORS headers: %v", r.header)
	}
	g.do("GET", PVPath+"A?token=tok", "", "Origin", "https://app.example").expect(t, 403, "")
	g.do("GET", PVPath+"A?token=tok", "", "Origin", "http://x.lab.example").expect(t, 200, "")
	g.do("GET", PVPath+"A?token=tok", "", "Origin", "http://x.lab.example.evil").expect(t, 403, "")
	// A preflight needs no token.
	r = g.do("OPTIONS", PVPath+"A", "", "Origin", "http://app.example", "Access-Control-Request-Method", "PUT",
		"Access-Control-Request-Headers", "authorization,content-type")
	if r.status != 204 || r.header.Get("Access-Control-Allow-Origin") != "http://app.example" ||
		r.header.Get("Access-Control-Allow-Methods") != "GET, PUT, OPTIONS" ||
		!strings.Contains(r.header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Errorf("preflight: %d %v", r.status, r.header)
	}
	g.do("OPTIONS", PVPath+"A", "", "Origin", "http://evil.example", "Access-Control-Request-Method", "PUT").expect(t, 403, "")

	h := start(t, map[string]any{"allowed_origins": []any{"*"}})
	r = h.do("PUT", PVPath+"A", `{"value":1}`, "Origin", "http://anything.example")
	r.expect(t, 200, "")
	if r.header.Get("Access-Control-Allow-Origin") != "http://anything.example" {
		t.Errorf("CORS headers: %v", r.header)
	}
}
