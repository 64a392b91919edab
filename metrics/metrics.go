// Package metrics holds pvhub's Prometheus metrics, in a registry of their own
// (nothing from libraries' global registries), and serves them with the health
// endpoints.
//
// Counters are incremented where things happen (actors, transports); values
// that already exist elsewhere (PV counts, CA circuits, the autosave's age) are
// read when Prometheus scrapes, through the functions given to Observe. Every
// method works on a nil *Metrics and then does nothing, so components take an
// optional *Metrics.
package metrics

import (
	"math"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics is pvhub's set of metrics.
type Metrics struct {
	reg *prometheus.Registry

	updatesIn      *prometheus.CounterVec
	updatesOut     *prometheus.CounterVec
	coalesced      *prometheus.CounterVec
	putErrors      *prometheus.CounterVec
	pluginRestarts *prometheus.CounterVec

	// resolved once: the update paths touch no label map
	relayIn, externalIn prometheus.Counter

	// external PVs by connection state, counted by their actors
	externalConnected    atomic.Int64
	externalDisconnected atomic.Int64

	mu         sync.Mutex
	transports map[string]*Transport
}

// Transport holds one transport's metrics, resolved once so that the paths of
// every update touch no label map. Its methods work on a nil *Transport.
type Transport struct {
	out, coalesced, putErrors prometheus.Counter
	subscriptions             atomic.Int64
}

// UpdatesOut counts n value events handed to the transport.
func (t *Transport) UpdatesOut(n int) {
	if t != nil && n > 0 {
		t.out.Add(float64(n))
	}
}

// Coalesced counts an event replaced by a newer one while the transport was behind.
func (t *Transport) Coalesced() {
	if t != nil {
		t.coalesced.Inc()
	}
}

// PutError counts a failed put.
func (t *Transport) PutError() {
	if t != nil {
		t.putErrors.Inc()
	}
}

// Subscribed adds d to the transport's subscriptions.
func (t *Transport) Subscribed(d int) {
	if t != nil {
		t.subscriptions.Add(int64(d))
	}
}

// New returns the metrics, registered in a new registry with the Go runtime's
// and the process's collectors.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), transports: map[string]*Transport{}}
	m.updatesIn = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "pvhub_updates_in_total",
		Help: "PV updates received: relay puts (source=relay) and monitor updates of external PVs (source=external).",
	}, []string{"source"})
	m.updatesOut = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "pvhub_updates_out_total",
		Help: "Value events handed to each transport.",
	}, []string{"transport"})
	m.coalesced = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "pvhub_updates_coalesced_total",
		Help: "Events replaced by a newer one of the same PV while a transport was behind.",
	}, []string{"transport"})
	m.putErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "pvhub_put_errors_total",
		Help: "Puts from transports that failed (denied by the write rules, refused by the PV, timed out...).",
	}, []string{"transport"})
	m.pluginRestarts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "pvhub_plugin_restarts_total",
		Help: "Transport plugin processes that exited and were restarted.",
	}, []string{"transport"})
	m.relayIn, m.externalIn = m.updatesIn.WithLabelValues("relay"), m.updatesIn.WithLabelValues("external")
	m.reg.MustRegister(m.updatesIn, m.updatesOut, m.coalesced, m.putErrors, m.pluginRestarts,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "pvhub_external_pvs", Help: "External PVs with an actor (a CA channel), by connection state.",
		ConstLabels: prometheus.Labels{"state": "connected"},
	}, func() float64 { return float64(m.externalConnected.Load()) }))
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "pvhub_external_pvs", Help: "External PVs with an actor (a CA channel), by connection state.",
		ConstLabels: prometheus.Labels{"state": "disconnected"},
	}, func() float64 { return float64(m.externalDisconnected.Load()) }))
	return m
}

// Registry returns the registry (nil for a nil *Metrics).
func (m *Metrics) Registry() *prometheus.Registry {
	if m == nil {
		return nil
	}
	return m.reg
}

// Observed are the values read at each scrape; a nil function is left out.
type Observed struct {
	RelayPVs       func() int     // relay PVs
	ServerCircuits func() int     // CA clients connected to the relay's server; < 0: not known now
	ClientCircuits func() int     // circuits of the CA client to external servers; < 0: not known now
	AutosaveAge    func() float64 // seconds since the autosave file was last written; < 0: never
}

// Observe registers the gauges read through o. Call it once.
func (m *Metrics) Observe(o Observed) {
	if m == nil {
		return
	}
	gauge := func(name, help string, labels prometheus.Labels, f func() float64) {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: labels}, f))
	}
	if o.RelayPVs != nil {
		gauge("pvhub_relay_pvs", "Relay PVs.", nil, func() float64 { return float64(o.RelayPVs()) })
	}
	if o.ServerCircuits != nil {
		gauge("pvhub_ca_circuits", "Open CA circuits: clients of the relay's server (side=server), connections to external servers (side=client).",
			prometheus.Labels{"side": "server"}, func() float64 { return known(o.ServerCircuits()) })
	}
	if o.ClientCircuits != nil {
		gauge("pvhub_ca_circuits", "Open CA circuits: clients of the relay's server (side=server), connections to external servers (side=client).",
			prometheus.Labels{"side": "client"}, func() float64 { return known(o.ClientCircuits()) })
	}
	if o.AutosaveAge != nil {
		gauge("pvhub_autosave_age_seconds", "Seconds since the relay's autosave file was last written (-1: not yet).", nil, o.AutosaveAge)
	}
}

// RelayUpdate counts a put to a relay PV.
func (m *Metrics) RelayUpdate() {
	if m != nil {
		m.relayIn.Inc()
	}
}

// ExternalUpdate counts a monitor update of an external PV.
func (m *Metrics) ExternalUpdate() {
	if m != nil {
		m.externalIn.Inc()
	}
}

// PluginRestart counts a restart of transport's plugin.
func (m *Metrics) PluginRestart(transport string) {
	if m != nil {
		m.pluginRestarts.WithLabelValues(transport).Inc()
	}
}

// ExternalPV records an external PV's change of connection state: from is its
// previous state (nil: the PV is new), to the new one (nil: the PV is gone).
func (m *Metrics) ExternalPV(from, to *bool) {
	if m == nil {
		return
	}
	add := func(state *bool, d int64) {
		switch {
		case state == nil:
		case *state:
			m.externalConnected.Add(d)
		default:
			m.externalDisconnected.Add(d)
		}
	}
	add(from, -1)
	add(to, 1)
}

// Transport returns the metrics of the transport name (registered on first
// use; nil for a nil *Metrics).
func (m *Metrics) Transport(name string) *Transport {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if t := m.transports[name]; t != nil {
		return t
	}
	t := &Transport{out: m.updatesOut.WithLabelValues(name), coalesced: m.coalesced.WithLabelValues(name),
		putErrors: m.putErrors.WithLabelValues(name)}
	m.transports[name] = t
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "pvhub_subscriptions", Help: "PVs each transport is subscribed to.",
		ConstLabels: prometheus.Labels{"transport": name},
	}, func() float64 { return float64(t.subscriptions.Load()) }))
	return t
}

// Count returns the value of the counter or gauge name whose one label has the
// value label ("" for a metric without labels), or -1 when there is none
// (tests).
func (m *Metrics) Count(name, label string) float64 {
	if m == nil {
		return -1
	}
	families, err := m.reg.Gather()
	if err != nil {
		return -1
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, mt := range f.GetMetric() {
			lv := ""
			if l := mt.GetLabel(); len(l) > 0 {
				lv = l[0].GetValue()
			}
			if lv != label {
				continue
			}
			switch {
			case mt.GetCounter() != nil:
				return mt.GetCounter().GetValue()
			case mt.GetGauge() != nil:
				return mt.GetGauge().GetValue()
			}
		}
	}
	return -1
}

// known is n as a gauge value, NaN (unknown) when n is negative.
func known(n int) float64 {
	if n < 0 {
		return math.NaN()
	}
	return float64(n)
}
