package websocket

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/pvhub/pvhub/plugins"
)

func TestNativeDialect(t *testing.T) {
	f := start(t, nil)
	c := f.dial(NativePath, nil)
	c.send(`{"type":"subscribe","pvs":["A","E","RO"]}`)
	conn := c.until("A connection", and(has("type", "connection"), has("pv", "A")))
	if conn["connected"] != true || conn["write"] != true {
		t.Fatalf("connection: %v", conn)
	}
	meta := c.until("A metadata", and(has("type", "metadata"), has("pv", "A")))
	if meta["units"] != "mm" || meta["precision"] != 3.0 || meta["native_type"] != "DBF_DOUBLE" {
		t.Fatalf("metadata: %v", meta)
	}
	if v := c.until("A value", and(has("type", "value"), has("pv", "A"))); v["value"] != 1.5 || v["severity"] != "NO_ALARM" {
		t.Fatalf("value: %v", v)
	}
	if v := c.until("E value", and(has("type", "value"), has("pv", "E"))); v["value"] != 1.0 || v["text"] != "On" {
		t.Fatalf("enum value: %v", v)
	}
	c.until("RO read-only", and(has("type", "connection"), has("pv", "RO"), has("write", false)))

	c.send(`{"type":"put","pv":"A","value":4.5,"id":3}`)
	c.until("put ok", and(has("type", "put_result"), has("id", 3), has("ok", true)))
	c.until("new value", and(has("type", "value"), has("value", 4.5)))
	c.send(`{"type":"put","pv":"E","value":"Off","id":4}`)
	c.until("enum put", and(has("type", "put_result"), has("id", 4), has("ok", true)))
	c.send(`{"type":"put","pv":"RO","value":1,"id":5}`)
	c.until("read-only", and(has("id", 5), has("ok", false), has("error", "it is read-only")))
	f.h.Publish(plugins.Connection{Name: "RO", Connected: true, Read: true, WriteDenied: `write denied by write.deny "R*"`})
	c.until("denied connection", and(has("type", "connection"), has("pv", "RO"), has("write_denied", `write denied by write.deny "R*"`)))
	c.send(`{"type":"put","pv":"RO","value":1,"id":6}`)
	c.until("rule", and(has("id", 6), has("ok", false), has("error", `write denied by write.deny "R*"`)))
	c.send(`{"type":"put","pv":"A","value":"warm","id":7}`)
	c.until("bad value", and(has("id", 7), has("error", `"warm" cannot be written to a DBF_DOUBLE PV: not a number`)))
	c.send(`{"type":"put","pv":"Z","value":1,"id":8}`)
	c.until("not subscribed", and(has("id", 8), has("error", "subscribe to Z before writing it")))
	c.send(`{"type":"list"}`)
	if l := c.until("list", has("type", "list")); strings.Join(strs(l["pvs"]), ",") != "A,E,RO" {
		t.Fatalf("list: %v", l)
	}
	for _, tc := range []struct{ in, want string }{
		{`nonsense`, "invalid JSON"},
		{`[1]`, `expected a JSON object such as {"type":"subscribe","pvs":["IOC:m1"]}`},
		{`{"pvs":["A"]}`, `missing "type": expected subscribe, unsubscribe, put or list`},
		{`{"type":"jump"}`, `unknown type "jump": expected subscribe, unsubscribe, put or list`},
		{`{"type":"subscribe"}`, `subscribe needs "pvs": a list of PV names (or "pv": one name)`},
		{`{"type":"subscribe","pvs":[""]}`, "subscribe: empty PV name"},
		{`{"type":"put","value":1}`, `put needs "pv": a PV name`},
		{`{"type":"put","pv":"A","value":1,"id":-1}`, `"id" must be a whole number from 0 to 18446744073709551615`},
	} {
		c.send(tc.in)
		if m := c.until(tc.in, has("type", "error")); m["error"] != tc.want {
			t.Errorf("%s: %v, want %q", tc.in, m, tc.want)
		}
	}
	c.send(`{"type":"unsubscribe","pvs":["A","E","RO"]}`)
	waitFor(t, "released", func() bool { return !f.h.Subscribed("A") && !f.h.Subscribed("RO") })
}

func strs(v any) []string {
	var out []string
	list, _ := v.([]any)
	for _, x := range list {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

func TestPageAndInfo(t *testing.T) {
	f := start(t, map[string]any{"token": "s3cret"})
	get := func(method, path string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(context.Background(), method, "http://"+f.tr.Addr()+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, body := get("GET", "/")
	if resp.StatusCode != 200 || !strings.Contains(body, `<script src="app.js">`) || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %d %s", resp.StatusCode, body)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("no CSP: %q", csp)
	}
	for _, asset := range []string{"/app.js", "/style.css"} {
		if resp, body := get("GET", asset); resp.StatusCode != 200 || len(body) < 500 {
			t.Errorf("GET %s: %d, %d bytes", asset, resp.StatusCode, len(body))
		}
	}
	// Nothing on the page comes from another host.
	for _, asset := range []string{"/", "/app.js", "/style.css"} {
		_, body := get("GET", asset)
		if strings.Contains(body, "http://") || strings.Contains(body, "https://") {
			t.Errorf("%s refers to another host", asset)
		}
	}
	if resp, _ := get("POST", "/"); resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /: %d %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
	if resp, _ := get("GET", "/nope.js"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /nope.js: %d", resp.StatusCode)
	}
	if resp, _ := get("GET", InfoPath); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("info without the token: %d", resp.StatusCode)
	}
	resp, body = get("GET", InfoPath+"?token=s3cret")
	var info map[string]string
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &info) != nil || info["relay_prefix"] != "RELAY:" {
		t.Errorf("info: %d %s", resp.StatusCode, body)
	}
}
