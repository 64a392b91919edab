//go:build linux

package plugins_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestPluginDiesWithHost kills a host process with SIGKILL, so that it can
// clean nothing up: the parent-death signal must end its plugin.
func TestPluginDiesWithHost(t *testing.T) {
	host := filepath.Join(t.TempDir(), "testhost")
	if out, err := exec.Command("go", "build", "-o", host, "./internal/testhost").CombinedOutput(); err != nil {
		t.Fatalf("building the test host: %v\n%s", err, out)
	}
	cmd := exec.Command(host, testPlugin)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("the host printed no plugin pid: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "PLUGIN_PID=")))
	if err != nil {
		t.Fatalf("bad line %q", line)
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err != nil {
		t.Fatalf("plugin %d not running", pid)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil || strings.Contains(string(b), ") Z ") {
			return // gone (or a zombie waiting for init to reap it)
		}
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("plugin %d outlived its host", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
