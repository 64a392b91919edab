package plugintest_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pvhub/pvhub/plugins"
	"github.com/pvhub/pvhub/plugins/plugintest"
	"github.com/pvhub/pvhub/plugins/plugintest/echotransport"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitEvents waits until tr has received at least n events.
func waitEvents(t *testing.T, tr *echotransport.Transport, n int) []plugins.Event {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		got, changed := tr.Received()
		if len(got) >= n {
			return got
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("received %d events, want %d", len(got), n)
		}
	}
}

func TestHarnessEcho(t *testing.T) {
	tr := echotransport.New()
	h := plugintest.NewHarness(tr)
	h.AddPV(plugins.Metadata{Name: "A", Type: plugins.TypeDouble, Count: 1, Units: "V"},
		plugins.Value{Data: plugins.Float64s(1.5), Severity: "NO_ALARM"}, true)
	h.AddPV(plugins.Metadata{Name: "RO", Type: plugins.TypeLong, Count: 1}, plugins.Value{Data: plugins.Int64s(7)}, false)
	if err := h.Start(context.Background(), plugins.Config{Name: "echo", Options: map[string]any{"subscribe": []any{"A"}}}); err != nil {
		t.Fatal(err)
	}
	defer h.Close()

	got := waitEvents(t, tr, 3)
	if _, ok := got[0].(plugins.Connection); !ok {
		t.Fatalf("first event %T, want Connection", got[0])
	}
	if m, ok := got[1].(plugins.Metadata); !ok || m.Units != "V" {
		t.Fatalf("second event %#v, want Metadata", got[1])
	}
	if v, ok := got[2].(plugins.Value); !ok || v.Data.Float64s[0] != 1.5 {
		t.Fatalf("third event %#v, want Value 1.5", got[2])
	}

	tr.Host().Put("A", plugins.Float64s(2.5), 7)
	got = waitEvents(t, tr, 5)
	if r, ok := got[3].(plugins.PutResult); !ok || !r.OK() || r.ID != 7 {
		t.Fatalf("put answer %#v", got[3])
	}
	if v, ok := got[4].(plugins.Value); !ok || v.Data.Float64s[0] != 2.5 {
		t.Fatalf("value after put %#v", got[4])
	}
	tr.Host().Put("RO", plugins.Int64s(1), 8)
	got = waitEvents(t, tr, 6)
	if r, ok := got[5].(plugins.PutResult); !ok || r.OK() || r.ID != 8 {
		t.Fatalf("read-only put answer %#v", got[5])
	}

	tr.Host().Unsubscribe("A")
	if h.Subscribed("A") {
		t.Fatal("still subscribed after Unsubscribe")
	}

	big := make([]plugins.Event, 10000)
	for i := range big {
		big[i] = plugins.Value{Name: "A", Data: plugins.Float64s(float64(i))}
	}
	h.Publish(big...)
	got = waitEvents(t, tr, 6+len(big))
	if v := got[len(got)-1].(plugins.Value); v.Data.Float64s[0] != 9999 {
		t.Fatalf("last value %v", v.Data.Float64s)
	}

	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if !tr.Closed() {
		t.Fatal("transport not closed")
	}
	h.Close()
}
