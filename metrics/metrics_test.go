package metrics

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestNilMetrics(t *testing.T) {
	var m *Metrics
	m.RelayUpdate()
	m.ExternalUpdate()
	tr := m.Transport("ws")
	tr.UpdatesOut(3)
	tr.Coalesced()
	tr.PutError()
	tr.Subscribed(1)
	m.PluginRestart("ws")
	on := true
	m.ExternalPV(nil, &on)
	m.Observe(Observed{RelayPVs: func() int { return 1 }})
	if m.Registry() != nil || m.Count("pvhub_relay_pvs", "") != -1 {
		t.Fatal("a nil Metrics has values")
	}
}

func TestMetricsAndHealth(t *testing.T) {
	m := New()
	m.RelayUpdate()
	m.RelayUpdate()
	m.ExternalUpdate()
	ws := m.Transport("websocket")
	ws.UpdatesOut(5)
	ws.Coalesced()
	ws.Coalesced()
	m.Transport("sse").PutError()
	m.PluginRestart("mqtt")
	on, off := true, false
	m.ExternalPV(nil, &off)
	m.ExternalPV(nil, &off)
	m.ExternalPV(&off, &on)
	ws.Subscribed(7)
	if m.Transport("websocket") != ws {
		t.Error("a second Transport call gave other metrics")
	}
	m.Observe(Observed{RelayPVs: func() int { return 12 }, ServerCircuits: func() int { return 3 },
		ClientCircuits: func() int { return 1 }, AutosaveAge: func() float64 { return 2.5 }})
	for _, tc := range []struct {
		name, label string
		want        float64
	}{
		{"pvhub_updates_in_total", "relay", 2},
		{"pvhub_updates_in_total", "external", 1},
		{"pvhub_updates_out_total", "websocket", 5},
		{"pvhub_updates_coalesced_total", "websocket", 2},
		{"pvhub_put_errors_total", "sse", 1},
		{"pvhub_plugin_restarts_total", "mqtt", 1},
		{"pvhub_external_pvs", "connected", 1},
		{"pvhub_external_pvs", "disconnected", 1},
		{"pvhub_subscriptions", "websocket", 7},
		{"pvhub_relay_pvs", "", 12},
		{"pvhub_ca_circuits", "server", 3},
		{"pvhub_ca_circuits", "client", 1},
		{"pvhub_autosave_age_seconds", "", 2.5},
	} {
		if got := m.Count(tc.name, tc.label); got != tc.want {
			t.Errorf("%s{%s} = %v, want %v", tc.name, tc.label, got, tc.want)
		}
	}

	ready := errors.New("transport plugins not running: mqtt")
	srv := httptest.NewServer(m.Handler(func() error { return ready }))
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, `pvhub_updates_in_total{source="relay"} 2`) ||
		!strings.Contains(body, "go_goroutines") || !strings.Contains(body, `pvhub_ca_circuits{side="client"} 1`) {
		t.Errorf("/metrics: %d\n%s", code, body)
	}
	if code, body := get("/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if code, body := get("/readyz"); code != 503 || body != "not ready: transport plugins not running: mqtt\n" {
		t.Errorf("/readyz: %d %q", code, body)
	}
	ready = nil
	if code, body := get("/readyz"); code != 200 || body != "ready\n" {
		t.Errorf("/readyz when ready: %d %q", code, body)
	}
}
