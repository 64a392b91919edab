package main

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pvhub/pvhub/ca/catest"
)

// TestBenchCommand runs every scenario of `pvhub bench` briefly, the plugin
// hop included (so through the built binary), and checks the table.
func TestBenchCommand(t *testing.T) {
	catest.Libca(t) // the libca side of relay-fanout (skips, or fails under CI=true, without libca)
	bin := pvhubBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "bench", "-duration", "300ms", "-fanout-pvs", "10", "-fanout-clients", "2",
		"-ingest-pvs", "10", "-browsers", "2", "-ws-pvs", "10", "-ws-rate", "1000", "-memory-pvs", "1000")
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("pvhub bench: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errb.String())
	}
	for _, want := range []string{"machine: ", "relay-fanout   10 PVs at 100 Hz, 2 pvhub CA clients", "updates delivered",
		"10 PVs at 100 Hz, 2 libca clients (the C driver)", "CPU of the libca clients", "client-ingest", "CPU per update", "transport in process", "transport plugin process", "latency p99",
		"hop ", "CPU, plugin / in process", "memory         1000 relay PVs", "resident memory per PV"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the table lacks %q:\n%s", want, out.String())
		}
	}
}

func TestBenchUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := benchCmd([]string{"-scenario", "nope"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), `unknown scenario "nope"`) {
		t.Errorf("unknown scenario: exit %d, %q", code, errb.String())
	}
	errb.Reset()
	if code := benchCmd([]string{"extra"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), `unexpected argument "extra"`) {
		t.Errorf("extra argument: exit %d, %q", code, errb.String())
	}
}
