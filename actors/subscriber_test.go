package actors

import (
	"log/slog"
	"testing"
	"time"

	"github.com/pvhub/pvhub/ca/wire"
	"github.com/pvhub/pvhub/metrics"
	"github.com/pvhub/pvhub/plugins"
)

// TestOutboxCoalesces blocks the plugin while 10,000 values of one PV and 100
// put results arrive: the next batch holds the newest value once, every put
// result, and the connection event, in first-seen order.
func TestOutboxCoalesces(t *testing.T) {
	release := make(chan struct{})
	got := make(chan []plugins.Event, 10)
	first := true
	m := metrics.New()
	o := newOutbox(func(b []plugins.Event) error {
		if first {
			first = false
			<-release // the plugin is busy with the first batch
		}
		got <- append([]plugins.Event(nil), b...)
		return nil
	}, slog.New(slog.DiscardHandler), m.Transport("ws"))
	defer o.close()
	o.add(outKey{"A", 'v', 0}, plugins.Value{Name: "A", Data: plugins.Float64s(-1)})
	time.Sleep(20 * time.Millisecond) // the sender is now blocked in deliver
	o.add(outKey{"A", 'c', 0}, plugins.Connection{Name: "A", Connected: true})
	for i := range 10000 {
		o.add(outKey{"A", 'v', 0}, toPluginValue(&ValueEvent{Name: "A", Value: wire.Value{Type: wire.DBRDouble, Doubles: []float64{float64(i)}}}))
	}
	for i := range 100 {
		o.add(outKey{"A", 'p', uint64(i + 1)}, plugins.PutResult{Name: "A", ID: uint64(i + 1)})
	}
	close(release)
	<-got // the first batch
	var batch []plugins.Event
	select {
	case batch = <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("no second batch")
	}
	if len(batch) != 102 {
		t.Fatalf("batch of %d events, want 1 connection + 1 value + 100 put results", len(batch))
	}
	if c, ok := batch[0].(plugins.Connection); !ok || !c.Connected {
		t.Errorf("first event %#v", batch[0])
	}
	if v, ok := batch[1].(plugins.Value); !ok || v.Data.Float64s[0] != 9999 {
		t.Errorf("value %#v, want the newest (9999)", batch[1])
	}
	for i, e := range batch[2:] {
		if r, ok := e.(plugins.PutResult); !ok || r.ID != uint64(i+1) {
			t.Fatalf("put result %d: %#v", i, e)
		}
	}
	if n := o.coalescedCount(); n != 9999 {
		t.Errorf("%d coalesced, want 9999", n)
	}
	if n := m.Count("pvhub_updates_coalesced_total", "ws"); n != 9999 {
		t.Errorf("pvhub_updates_coalesced_total{transport=ws} = %v, want 9999", n)
	}
	if n := m.Count("pvhub_updates_out_total", "ws"); n != 2 {
		t.Errorf("pvhub_updates_out_total{transport=ws} = %v, want 2 (one per batch)", n)
	}
}
