//go:build linux

package repeater

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pvhub/pvhub/ca/catest"
	"github.com/pvhub/pvhub/ca/wire"
)

// TestIntegrationRepeaterWithLibca runs a real IOC (softIoc) and real libca
// clients from the EPICS base named by EPICS_BASE against our repeater, all
// on 127.0.0.1: the IOC's beacons must reach a Go client with P2 filled in,
// casw (which registers at once and prints every beacon with -i 2) must
// register and report the IOC (as localhost:port, the name of the address
// in P2), and camonitor (whose libca registers from its
// search socket ten seconds after start-up) must register too. The
// camonitor part, which takes those ten seconds, is skipped with -short.
// Without EPICS_BASE the test skips.
func TestIntegrationRepeaterWithLibca(t *testing.T) {
	base := os.Getenv("EPICS_BASE")
	if base == "" {
		t.Skip("EPICS_BASE is not set; this optional check needs a built EPICS base (softIoc, casw, camonitor)")
	}
	bin := epicsBin(t, base)
	ctx := context.Background()

	r, rec := startRepeater(t, nil)
	env := &catest.Env{ServerPort: catest.FreePort(t), RepeaterPort: int(r.Addr().Port())}
	if lib := filepath.Join(base, "lib", filepath.Base(bin)); dirExists(lib) {
		path := lib
		if old := os.Getenv("LD_LIBRARY_PATH"); old != "" {
			path += ":" + old
		}
		env.Extra = append(env.Extra, "LD_LIBRARY_PATH="+path)
	}

	// A Go client registers before the IOC starts.
	g := newPeer(t, r)
	register(t, g)

	db := filepath.Join(t.TempDir(), "rpt.db")
	if err := os.WriteFile(db, []byte(`record(ai, "RPT:x") { field(VAL, "1.5") }`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ioc, err := catest.StartProcess(t, ctx, env.ServerEnviron(), filepath.Join(bin, "softIoc"), "-S", "-d", db)
	if err != nil {
		t.Fatal(err)
	}
	if err := ioc.WaitForStderr(20*time.Second, "iocRun: All initialization complete"); err != nil {
		t.Fatal(err)
	}

	// camonitor first: its registration takes ten seconds, which the rest
	// of the test overlaps.
	var cam *catest.Proc
	if !testing.Short() {
		if cam, err = catest.StartProcess(t, ctx, env.Environ(), filepath.Join(bin, "camonitor"), "RPT:x"); err != nil {
			t.Fatal(err)
		}
	}

	// The IOC's beacons reach the Go client with the IOC's port and, in P2,
	// its address, which the repeater writes in: rsrv sends P2 = 0 even when
	// it serves one interface only.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if time.Now().After(deadline) {
			t.Fatal("no beacon from the IOC within 5 s")
		}
		msg := g.recv()
		h, _, err := wire.ParseHeader(msg)
		if err != nil || h.Command != wire.CmdRsrvIsUp {
			continue // no-ops for other registrations
		}
		if h.Count != uint32(env.ServerPort) || h.P2 != loopback4 || len(msg) != wire.HeaderSize {
			t.Fatalf("beacon % x: want port %d and P2 127.0.0.1", msg, env.ServerPort)
		}
		t.Logf("IOC beacon via our repeater: minor %d, port %d, ID %d, P2 %#x", h.DataType, h.Count, h.P1, h.P2)
		break
	}

	// casw registers at once and prints each beacon as "host:port date".
	casw, err := catest.StartProcess(t, ctx, env.Environ(), filepath.Join(bin, "casw"), "-i", "2")
	if err != nil {
		t.Fatal(err)
	}
	l, err := casw.WaitFor(10*time.Second, func(l catest.Line) bool {
		f := strings.Fields(strings.TrimPrefix(l.Str("raw"), "* "))
		if len(f) == 0 {
			return false
		}
		host, port, _ := strings.Cut(f[0], ":") // casw names 127.0.0.1 by its host name
		return (host == "127.0.0.1" || host == "localhost") && port == strconv.Itoa(env.ServerPort)
	})
	if err != nil {
		t.Fatalf("casw did not report the IOC's beacons: %v", err)
	}
	t.Logf("casw: %s", strings.TrimSpace(l.Str("raw")))
	if n := r.Clients(); n < 2 {
		t.Fatalf("Clients() = %d with the Go client and casw, want at least 2", n)
	}
	caswPorts := udpPorts(t, casw.Pid())
	if !registered(rec, caswPorts) {
		t.Errorf("casw's UDP ports %v are not among the registrations: %q", caswPorts, rec.all())
	}

	if cam == nil {
		t.Log("-short: camonitor's registration (ten seconds after its start) not checked")
		return
	}
	if _, err := cam.WaitFor(10*time.Second, func(l catest.Line) bool {
		return strings.HasPrefix(l.Str("raw"), "RPT:x")
	}); err != nil {
		t.Fatalf("camonitor got no value: %v", err)
	}
	camPorts := udpPorts(t, cam.Pid())
	deadline = time.Now().Add(15 * time.Second)
	for !registered(rec, camPorts) {
		if time.Now().After(deadline) {
			t.Fatalf("camonitor (UDP ports %v) did not register: %q", camPorts, rec.all())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := r.Clients(); n < 3 {
		t.Fatalf("Clients() = %d with the Go client, casw and camonitor, want at least 3", n)
	}
	t.Logf("registrations: %q", rec.all())
}

// epicsBin returns the directory of the EPICS base host tools:
// bin/$EPICS_HOST_ARCH, or the bin/* directory that holds softIoc.
func epicsBin(t *testing.T, base string) string {
	t.Helper()
	if arch := os.Getenv("EPICS_HOST_ARCH"); arch != "" {
		return filepath.Join(base, "bin", arch)
	}
	matches, _ := filepath.Glob(filepath.Join(base, "bin", "*", "softIoc"))
	if len(matches) == 0 {
		t.Fatalf("no bin/*/softIoc under EPICS_BASE=%s", base)
	}
	return filepath.Dir(matches[0])
}

func dirExists(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

// registered reports whether one of ports appears in a "client registered"
// log line.
func registered(rec *logRecorder, ports []int) bool {
	for _, line := range rec.all() {
		if !strings.Contains(line, "client registered") {
			continue
		}
		for _, p := range ports {
			if strings.Contains(line, fmt.Sprintf("client=127.0.0.1:%d ", p)) {
				return true
			}
		}
	}
	return false
}

// udpPorts returns the local ports of the IPv4 UDP sockets that process pid
// holds, read from /proc (Linux only; the test fails elsewhere).
func udpPorts(t *testing.T, pid int) []int {
	t.Helper()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(link, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	table, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/udp", pid))
	if err != nil {
		t.Fatal(err)
	}
	var ports []int
	for _, line := range strings.Split(string(table), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 10 || !inodes[f[9]] {
			continue
		}
		_, hexPort, ok := strings.Cut(f[1], ":") // local_address is ADDR:PORT in hex
		if !ok {
			continue
		}
		var b [2]byte
		if _, err := fmt.Sscanf(hexPort, "%02X%02X", &b[0], &b[1]); err == nil {
			ports = append(ports, int(binary.BigEndian.Uint16(b[:])))
		}
	}
	return ports
}
