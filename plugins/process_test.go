package plugins_test

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pvhub/pvhub/plugins"
	"github.com/pvhub/pvhub/plugins/plugintest/echotransport"
)

func sampleEvents() []plugins.Event {
	return []plugins.Event{
		plugins.Connection{Name: "A", Connected: true, Read: true, Write: true},
		plugins.Metadata{Name: "A", Type: plugins.TypeDouble, Count: 1, Units: "degC", Precision: 3,
			Display: plugins.Range{Low: -10, High: 50}, Alarm: plugins.Range{Low: -20, High: 60}, Description: "temperature"},
		plugins.Metadata{Name: "E", Type: plugins.TypeEnum, Count: 1, EnumLabels: []string{"Off", "On"}},
		plugins.Value{Name: "A", Data: plugins.Float64s(21.5), Seconds: 1_000_000_000, Nanos: 123456789, Status: "HIGH", Severity: "MINOR"},
		plugins.Value{Name: "E", Data: plugins.Int64s(1)},
		plugins.Value{Name: "S", Data: plugins.Strings("a", "b")},
		plugins.Value{Name: "C", Data: plugins.Bytes([]byte("beam on"))},
		plugins.PutResult{Name: "A", ID: 42},
		plugins.PutResult{Name: "B", ID: 43, Err: "write denied by rule write.deny[0]"},
		plugins.Connection{Name: "A"},
		plugins.Connection{Name: "B", Connected: true, Read: true, WriteDenied: `write denied by write.deny "B*"`},
	}
}

func TestProcessRoundTrip(t *testing.T) {
	host := newRecHost()
	logs := &logBuffer{}
	p := launch(t, "echo1", map[string]any{"subscribe": []any{"A", "B"}, "echo": true}, host, logs)
	defer p.Close()

	if r := host.next(t); r.op != "subscribe" || strings.Join(r.names, ",") != "A,B" {
		t.Fatalf("first request %+v, want subscribe A,B", r)
	}
	events := sampleEvents()
	if err := p.Events(events); err != nil {
		t.Fatal(err)
	}
	for i, e := range events {
		r := host.next(t)
		want := echotransport.Describe(e)
		if r.op != "put" || r.id != uint64(i+1) || len(r.value.Strings) != 1 || r.value.Strings[0] != want {
			t.Fatalf("echo %d: got %+v, want put id %d %q", i, r, i+1, want)
		}
	}

	// A big batch: every event arrives, in order.
	const n = 10000
	big := make([]plugins.Event, n)
	for i := range big {
		big[i] = plugins.Value{Name: fmt.Sprintf("PV%d", i%100), Data: plugins.Float64s(float64(i), 1, 2, 3)}
	}
	if err := p.Events(big); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		r := host.next(t)
		if r.id != uint64(len(events)+i+1) {
			t.Fatalf("big batch echo %d: id %d", i, r.id)
		}
		if i == n-1 && r.value.Strings[0] != echotransport.Describe(big[n-1]) {
			t.Fatalf("last echo %q", r.value.Strings[0])
		}
	}

	waitFor(t, 5*time.Second, "the plugin's log line", func() bool {
		return strings.Contains(logs.String(), "echo transport started")
	})
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "echo transport started") && (!strings.Contains(line, "plugin=echo1") || !strings.Contains(line, "level=INFO")) {
			t.Errorf("plugin log line not tagged: %s", line)
		}
		if strings.Contains(line, "echo transport started") && !strings.Contains(line, "relay_prefix=BL1:RELAY:") {
			t.Errorf("the plugin did not get the relay prefix: %s", line)
		}
	}

	pid := p.Pid()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	default:
		t.Fatal("Done not closed after Close")
	}
	if err := p.Err(); err != nil {
		t.Errorf("Err after Close = %v", err)
	}
	if err := p.Events(events); err == nil {
		t.Error("Events after Close succeeded")
	}
	if !processGone(pid) {
		t.Errorf("plugin process %d still exists after Close", pid)
	}
	p.Close() // idempotent
}

func TestProcessStartFails(t *testing.T) {
	logs := &logBuffer{}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p, err := plugins.Launch(ctx, exec.Command(testPlugin), plugins.Config{Name: "bad", Options: map[string]any{"fail": "no port"}, Logger: logs.logger()}, newRecHost())
	if err == nil {
		p.Close()
		t.Fatal("Launch succeeded")
	}
	if !strings.Contains(err.Error(), "no port") {
		t.Errorf("error %q does not carry the transport's reason", err)
	}
}

func TestProcessNotAPlugin(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := plugins.Launch(ctx, exec.Command("/bin/true"), plugins.Config{Name: "true"}, newRecHost())
	if err == nil {
		t.Fatal("Launch of /bin/true succeeded")
	}
}

func TestProcessKilled(t *testing.T) {
	host := newRecHost()
	p := launch(t, "victim", nil, host, &logBuffer{})
	defer p.Close()
	pid := p.Pid()
	start := time.Now()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("exit not noticed within 2 s")
	}
	t.Logf("exit noticed after %v: %v", time.Since(start), p.Err())
	if p.Err() == nil {
		t.Error("Err is nil after the plugin was killed")
	}
	if !processGone(pid) {
		t.Errorf("process %d not reaped", pid)
	}
}
