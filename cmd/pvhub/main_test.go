package main

import (
	"bytes"
	"context"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pvhub/pvhub/ca/catest"
	"github.com/pvhub/pvhub/ca/server"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(nil, &out, &errb); code != 2 || !strings.Contains(errb.String(), "Usage") {
		t.Errorf("no arguments: %d %q", code, errb.String())
	}
	if code := run([]string{"frobnicate"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), `unknown command "frobnicate"`) {
		t.Errorf("unknown command: %d %q", code, errb.String())
	}
	if code := run([]string{"version"}, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "pvhub ") {
		t.Errorf("version: %d %q", code, out.String())
	}
	errb.Reset()
	if code := run([]string{"serve", "-log-level", "loud"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "-log-level") {
		t.Errorf("bad log level: %d %q", code, errb.String())
	}
}

// TestIntegrationServeDemo starts the demo server as `pvhub serve` does, on a
// free loopback port, and reads and writes its PVs with pyepics.
func TestIntegrationServeDemo(t *testing.T) {
	py := catest.Pyepics(t)
	port := catest.FreePort(t)
	env := catest.NewEnv(t, port)
	vars := map[string]string{
		"EPICS_CAS_SERVER_PORT": strconv.Itoa(port),
		"EPICS_CAS_BEACON_PORT": strconv.Itoa(env.RepeaterPort),
	}
	ctx, cancel := context.WithCancel(context.Background())
	up := make(chan *server.Server, 1)
	done := make(chan error, 1)
	go func() {
		done <- runDemo(ctx, slog.New(slog.DiscardHandler), func(k string) (string, bool) { v, ok := vars[k]; return v, ok },
			func(s *server.Server) { up <- s })
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	select {
	case <-up:
	case err := <-done:
		t.Fatal(err)
	case <-time.After(5 * time.Second):
		t.Fatal("demo server did not start")
	}
	rctx, rcancel := context.WithTimeout(ctx, time.Minute)
	defer rcancel()
	lines, err := py.Run(rctx, env, "get", "--form", "ctrl", "demo:sine", "demo:mode", "demo:message", "demo:waveform")
	if err != nil {
		t.Fatal(err)
	}
	if l := catest.Find(lines, "value", "demo:sine"); len(l) != 1 || l[0].Str("units") != "V" {
		t.Errorf("demo:sine %v", l)
	}
	if l := catest.Find(lines, "value", "demo:waveform"); len(l) != 1 || l[0].Int("nelm") != 1000 {
		t.Errorf("demo:waveform %v", l)
	}
	if _, err := py.Run(rctx, env, "put", "--wait", "demo:setpoint", "12.5"); err != nil {
		t.Fatal(err)
	}
	lines, err = py.Run(rctx, env, "get", "demo:setpoint")
	if err != nil {
		t.Fatal(err)
	}
	if l := catest.Find(lines, "value", "demo:setpoint"); len(l) != 1 || l[0].Float("value") != 12.5 {
		t.Errorf("demo:setpoint after put: %v", l)
	}
}
