package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pvhub/pvhub/ca/catest"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func waitLog(t *testing.T, b *syncBuf, substr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(b.String(), substr) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the log:\n%s", substr, b.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestServeReload runs serve in-process: SIGHUP applies the write rules, reports
// a prefix change as needing a restart, keeps running on an invalid file, and
// SIGTERM stops it cleanly with no error in the log.
func TestServeReload(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "pvhub.yaml")
	write := func(s string) {
		if err := os.WriteFile(file, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("write:\n  deny: [\"RELAY:secret*\"]\n")
	environ := []string{
		"PVHUB_CA__SERVER_PORT=" + strconv.Itoa(catest.FreePort(t)),
		"PVHUB_CA__BEACON_PORT=" + strconv.Itoa(catest.FreePort(t)),
		"PVHUB_CA__REPEATER_PORT=" + strconv.Itoa(catest.FreePort(t)), // never the host's 5065
		"PVHUB_CA__SEARCH_PORT=" + strconv.Itoa(catest.FreePort(t)),
		// In-process, this executable is the test binary: it cannot run the
		// built-in transports as plugins (the out-of-process tests do).
		"PVHUB_TRANSPORTS__WEBSOCKET__ENABLED=false",
		"PVHUB_TRANSPORTS__SSE__ENABLED=false",
		"PVHUB_TRANSPORTS__MQTT__ENABLED=false",
		"PVHUB_METRICS__ENABLED=false",
	}
	logs := &syncBuf{}
	sigs := make(chan os.Signal, 1)
	done := make(chan int, 1)
	go func() { done <- serve([]string{"-config", file, "-log-level", "debug"}, environ, logs, sigs) }()
	waitLog(t, logs, "relay ready")

	write("write:\n  deny: [\"RELAY:other*\"]\nrelay:\n  prefix: \"BL1:\"\n")
	sigs <- syscall.SIGHUP
	waitLog(t, logs, "reload: needs a restart")
	if !strings.Contains(logs.String(), "reload: applied") || !strings.Contains(logs.String(), "write.deny") {
		t.Errorf("write.deny change not applied:\n%s", logs.String())
	}
	write("relay: {max_pvs: ten}\n")
	sigs <- syscall.SIGHUP
	waitLog(t, logs, "reload refused")
	sigs <- syscall.SIGTERM
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop")
	}
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "level=ERROR") && !strings.Contains(l, "reload refused") {
			t.Errorf("error in a normal run: %s", l)
		}
	}
}

func TestConfigCommands(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	_ = os.WriteFile(good, []byte("relay:\n  prefix: \"BL1:\"\n"), 0o644)
	_ = os.WriteFile(bad, []byte("relay:\n  prefx: \"BL1:\"\n  max_pvs: -3\n"), 0o644)
	var out, errb bytes.Buffer
	if code := configCmd([]string{"check", good}, nil, &out, &errb); code != 0 || !strings.Contains(out.String(), "ok") {
		t.Errorf("check of a good file: %d %q %q", code, out.String(), errb.String())
	}
	out.Reset()
	errb.Reset()
	code := configCmd([]string{"check", bad}, nil, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "relay.prefx: unknown key (did you mean relay.prefix?)") ||
		!strings.Contains(errb.String(), "relay.max_pvs") {
		t.Errorf("check of a bad file: %d %q", code, errb.String())
	}
	out.Reset()
	if code := configCmd([]string{"print", "-config", good, "-set", "relay.max_pvs=7"}, []string{"PVHUB_RELAY__MAX_ELEMENTS=9"}, &out, &errb); code != 0 {
		t.Fatalf("print: %d %q", code, errb.String())
	}
	for _, want := range []string{"prefix: 'BL1:'", "max_pvs: 7", "max_elements: 9", "127.0.0.1"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("config print lacks %q:\n%s", want, out.String())
		}
	}
	if code := configCmd([]string{"frob"}, nil, &out, &errb); code != 2 {
		t.Errorf("unknown subcommand: %d", code)
	}
}
