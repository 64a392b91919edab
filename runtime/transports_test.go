package runtime

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	testPluginOnce sync.Once
	testPluginPath string
	testPluginErr  error
)

// testPlugin builds the echo test plugin once per test process.
func testPlugin(t *testing.T) string {
	t.Helper()
	testPluginOnce.Do(func() {
		dir, err := os.MkdirTemp("", "pvhub-testplugin")
		if err != nil {
			testPluginErr = err
			return
		}
		testPluginPath = filepath.Join(dir, "testplugin")
		out, err := exec.Command("go", "build", "-o", testPluginPath, "github.com/pvhub/pvhub/plugins/internal/testplugin").CombinedOutput()
		if err != nil {
			testPluginErr = err
			t.Log(string(out))
		}
	})
	if testPluginErr != nil {
		t.Fatalf("building the test plugin: %v", testPluginErr)
	}
	return testPluginPath
}

func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	return err == nil && !strings.Contains(string(b), ") Z ")
}

// TestTransportPlugin runs a transport plugin process under the runtime: its
// subscription creates a relay PV, a kill -9 is followed by a restart within
// a second with the subscriptions replayed, and Close leaves no process.
func TestTransportPlugin(t *testing.T) {
	bin := testPlugin(t)
	f := start(t, func(o *Options) {
		o.Transports = []TransportOptions{{Name: "echo", Command: func() *exec.Cmd { return exec.Command(bin) },
			Options: map[string]any{"subscribe": []any{"RELAY:fromplugin_f1"}}}}
	})
	waitNames := func() {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			names, _ := f.rt.RelayNames()
			if slices.Contains(names, "RELAY:fromplugin_f1") {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the plugin's subscription did not reach the relay: %v", names)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitNames()
	first := f.rt.TransportPID("echo")
	if first == 0 || !alive(first) {
		t.Fatalf("plugin pid %d", first)
	}
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	var second int
	for {
		second = f.rt.TransportPID("echo")
		if second != 0 && second != first {
			break
		}
		if time.Since(killed) > 5*time.Second {
			t.Fatal("the plugin was not restarted")
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("plugin restarted %v after kill -9", time.Since(killed))
	if strings.Count(f.logs.String(), "transport plugin running") < 2 {
		t.Errorf("no second start in the log:\n%s", f.logs.String())
	}
	// The relay PV it subscribed to is still there and the CA side is unaffected.
	if err := f.put("RELAY:fromplugin_f1", dbl(3)); err != nil {
		t.Fatal(err)
	}
	_ = f.c.Close()
	f.c = nil
	if err := f.rt.Close(); err != nil {
		t.Fatal(err)
	}
	for _, pid := range []int{first, second} {
		deadline := time.Now().Add(5 * time.Second)
		for alive(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("plugin process %d left running", pid)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// TestSetTransports enables and disables transports on a running runtime, as
// a reload does: a new one starts (its subscription creates a relay PV), a
// removed one stops with its process, one that stays keeps its process.
func TestSetTransports(t *testing.T) {
	bin := testPlugin(t)
	echo := func(name, pv string) TransportOptions {
		return TransportOptions{Name: name, Command: func() *exec.Cmd { return exec.Command(bin) },
			Options: map[string]any{"subscribe": []any{pv}}}
	}
	a, b := echo("a", "RELAY:froma_f1"), echo("b", "RELAY:fromb_f1")
	f := start(t, func(o *Options) { o.Transports = []TransportOptions{a} })
	pidA := f.rt.TransportPID("a")
	if pidA == 0 {
		t.Fatal("transport a is not running")
	}
	if err := f.rt.SetTransports(f.ctx, []TransportOptions{a, b}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		names, _ := f.rt.RelayNames()
		if slices.Contains(names, "RELAY:fromb_f1") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("transport b's subscription did not reach the relay: %v", names)
		}
		time.Sleep(10 * time.Millisecond)
	}
	pidB := f.rt.TransportPID("b")
	if f.rt.TransportPID("a") != pidA || pidB == 0 {
		t.Fatalf("pids after enabling b: a %d (was %d), b %d", f.rt.TransportPID("a"), pidA, pidB)
	}
	if err := f.rt.Ready(); err != nil {
		t.Errorf("Ready: %v", err)
	}
	if err := f.rt.SetTransports(f.ctx, []TransportOptions{b}); err != nil {
		t.Fatal(err)
	}
	if f.rt.TransportPID("a") != 0 || f.rt.TransportPID("b") != pidB {
		t.Fatalf("pids after disabling a: a %d, b %d (was %d)", f.rt.TransportPID("a"), f.rt.TransportPID("b"), pidB)
	}
	for deadline := time.Now().Add(10 * time.Second); alive(pidA); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the process of transport a (%d) still runs", pidA)
		}
	}
	bad := TransportOptions{Name: "c", Command: func() *exec.Cmd { return exec.Command(bin) }, Options: map[string]any{"fail": "no port for c"}}
	if err := f.rt.SetTransports(f.ctx, []TransportOptions{b, bad}); err == nil || err.Error() != "transport plugin c: no port for c" {
		t.Errorf("a transport that fails to start: %v", err)
	}
}
