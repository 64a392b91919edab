package catest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// iocReadyTimeout bounds the start of a softIoc, up to its "iocRun: All
// initialization complete" message.
const iocReadyTimeout = 30 * time.Second

// IOC is a real IOC, softIoc from a locally built EPICS base, serving a
// database on a loopback port; see [SoftIoc].
type IOC struct {
	t          testing.TB
	exe        string
	db         string // path of the database file
	port       int
	beaconPort int
	env        *Env

	mu   sync.Mutex
	proc *Proc // nil while stopped
}

// SoftIoc starts softIoc from the EPICS base named by the environment
// variable EPICS_BASE with the database db (the text of a .db file), and
// waits until it is ready. It skips the test when EPICS_BASE is unset: a real
// IOC is an optional local check, not a CI peer, and EPICS base is never part
// of this repository.
//
// The IOC serves 127.0.0.1 only, on a free port ([IOC.Port]) for both UDP
// searches and TCP, and sends its beacons to 127.0.0.1 only, to a
// [StubRepeater] of the test ([IOC.BeaconPort]); it never broadcasts. Its
// environment is [Env.ServerEnviron] of [IOC.Env]: EPICS_CAS_SERVER_PORT,
// EPICS_CAS_INTF_ADDR_LIST=127.0.0.1, EPICS_CAS_BEACON_ADDR_LIST=127.0.0.1,
// EPICS_CAS_AUTO_BEACON_ADDR_LIST=NO, EPICS_CAS_BEACON_PORT, and for its own
// CA links EPICS_CA_ADDR_LIST=127.0.0.1:port, EPICS_CA_AUTO_ADDR_LIST=NO and
// the stub's EPICS_CA_REPEATER_PORT. The IOC is stopped at the cleanup of t.
//
// The executable is bin/$EPICS_HOST_ARCH/softIoc when EPICS_HOST_ARCH is set,
// otherwise the first bin/*/softIoc.
func SoftIoc(t testing.TB, db string) *IOC {
	t.Helper()
	base := os.Getenv("EPICS_BASE")
	if base == "" {
		t.Skipf("EPICS_BASE is not set; this optional check needs a built EPICS base with softIoc")
		return nil
	}
	exe, err := softIocPath(base)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "softioc.db")
	if err := os.WriteFile(path, []byte(db), 0o644); err != nil {
		t.Fatal(err)
	}
	ioc := &IOC{t: t, exe: exe, db: path, port: FreePort(t)}
	ioc.env = NewEnv(t, ioc.port)
	ioc.beaconPort = ioc.env.RepeaterPort
	t.Cleanup(ioc.Stop)
	if err := ioc.start(); err != nil {
		t.Fatal(err)
	}
	return ioc
}

// softIocPath returns the softIoc executable of the EPICS base at base.
func softIocPath(base string) (string, error) {
	if arch := os.Getenv("EPICS_HOST_ARCH"); arch != "" {
		exe := filepath.Join(base, "bin", arch, "softIoc")
		if _, err := os.Stat(exe); err != nil {
			return "", fmt.Errorf("catest: EPICS_HOST_ARCH=%s: %w", arch, err)
		}
		return exe, nil
	}
	matches, _ := filepath.Glob(filepath.Join(base, "bin", "*", "softIoc"))
	if len(matches) == 0 {
		return "", fmt.Errorf("catest: no bin/*/softIoc under EPICS_BASE=%s", base)
	}
	return matches[0], nil
}

// start runs softIoc -S -d db and waits for it to be ready.
func (ioc *IOC) start() error {
	ioc.t.Helper()
	// The process belongs to the test that created the IOC, whatever test
	// restarts it, so that its cleanup runs after every use.
	p, err := StartProcess(ioc.t, context.Background(), ioc.env.ServerEnviron(), ioc.exe, "-S", "-d", ioc.db)
	if err != nil {
		return fmt.Errorf("catest: starting softIoc: %w", err)
	}
	ioc.mu.Lock()
	ioc.proc = p
	ioc.mu.Unlock()
	// softIoc reports through errlog, which writes to standard error.
	if err := p.WaitForStderr(iocReadyTimeout, "iocRun: All initialization complete"); err != nil {
		_ = p.Stop()
		ioc.mu.Lock()
		ioc.proc = nil
		ioc.mu.Unlock()
		return fmt.Errorf("catest: softIoc not ready: %w", err)
	}
	return nil
}

// Port returns the IOC's server port: UDP searches and TCP, on 127.0.0.1.
func (ioc *IOC) Port() int { return ioc.port }

// BeaconPort returns the port of the stub repeater that receives the IOC's
// beacons. A client that registers there (EPICS_CA_REPEATER_PORT) sees them.
func (ioc *IOC) BeaconPort() int { return ioc.beaconPort }

// Env returns the environment of a CA client process (the drivers of this
// package) that talks to the IOC: searches to 127.0.0.1:Port only and the
// IOC's stub repeater.
func (ioc *IOC) Env() *Env { return ioc.env }

// Proc returns the running softIoc process, or nil when it is stopped.
func (ioc *IOC) Proc() *Proc {
	ioc.mu.Lock()
	defer ioc.mu.Unlock()
	return ioc.proc
}

// Stop kills the IOC (its process group, by PID) and waits for it to be gone.
// It does nothing when the IOC is already stopped. An IOC that had exited by
// itself is reported as a test error. Stop is safe to call from any goroutine.
func (ioc *IOC) Stop() {
	ioc.mu.Lock()
	p := ioc.proc
	ioc.proc = nil
	ioc.mu.Unlock()
	if p == nil {
		return
	}
	if err := p.Stop(); err != nil {
		ioc.t.Errorf("catest: softIoc had exited by itself: %v", err)
	}
}

// Restart starts the IOC again on the same port, with the same beacon port
// and database, after stopping it if it is running, and waits until it is
// ready. The records start again from the database: nothing written before
// the restart is kept. Restart reports a failure as an error rather than by
// failing the test, so that a subtest may call it on an IOC of its parent.
// Calls of Restart must not overlap.
func (ioc *IOC) Restart() error {
	ioc.Stop()
	return ioc.start()
}
