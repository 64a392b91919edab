package plugins_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pvhub/pvhub/plugins"
)

// testPlugin is the path of the test plugin binary, built once by TestMain.
var testPlugin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pvhub-plugins-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testPlugin = filepath.Join(dir, "testplugin")
	build := exec.Command("go", "build", "-o", testPlugin, "./internal/testplugin")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the test plugin:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// request is one call the plugin made to the host.
type request struct {
	op    string // "subscribe", "unsubscribe", "put"
	names []string
	value plugins.Data
	id    uint64
}

// recHost records the plugin's requests on a channel.
type recHost struct{ ch chan request }

func newRecHost() *recHost { return &recHost{ch: make(chan request, 100000)} }

func (h *recHost) Subscribe(names ...string)   { h.ch <- request{op: "subscribe", names: names} }
func (h *recHost) Unsubscribe(names ...string) { h.ch <- request{op: "unsubscribe", names: names} }
func (h *recHost) Put(name string, v plugins.Data, id uint64) {
	h.ch <- request{op: "put", names: []string{name}, value: v, id: id}
}

func (h *recHost) next(t *testing.T) request {
	t.Helper()
	select {
	case r := <-h.ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no request from the plugin within 10 s")
		return request{}
	}
}

// logBuffer is a slog handler's output, safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// waitFor polls cond for up to d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// processGone reports whether pid no longer exists (or is a zombie nobody will reap).
func processGone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// The state follows the command name in parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] == 'Z'
}

func launch(t *testing.T, name string, opts map[string]any, host plugins.Host, logs *logBuffer) *plugins.Process {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p, err := plugins.Launch(ctx, exec.Command(testPlugin), plugins.Config{Name: name, Options: opts, Logger: logs.logger(), RelayPrefix: "BL1:RELAY:"}, host)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
