package catest

import (
	"bytes"
	_ "embed" // the driver sources are embedded
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/pvhub/pvhub/ca/catest/cadriver"
)

//go:embed pydriver.py
var pydriverSource []byte

// DepsHint tells how to install the real peers.
const DepsHint = "install them with `make test-deps` as root (Debian packages libca-dev, python3-pyepics, gcc, mosquitto, mosquitto-clients, chromium)"

// Python is the interpreter that runs the pyepics driver: Debian's, which
// sees the python3-pyepics package.
const Python = "/usr/bin/python3"

// Require stops the test when a real peer is missing (ok false): it fails it
// under CI=true, where every peer must be installed, and skips it otherwise.
// what names the missing peer and hint tells how to install it (empty means
// [DepsHint]).
func Require(t testing.TB, what string, ok bool, hint string) {
	t.Helper()
	if ok {
		return
	}
	if hint == "" {
		hint = DepsHint
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("real peer missing: %s; CI=true requires it: %s", what, hint)
		return
	}
	t.Skipf("real peer missing: %s; skipping: %s", what, hint)
}

// CDriver runs the C driver cadriver, built on the real libca. See the
// comment at the top of cadriver/c/cadriver.c for its subcommands and output.
type CDriver struct {
	// Path is the compiled driver.
	Path string
	t    testing.TB
}

// PyDriver runs pydriver.py with Debian's python3 and pyepics. See the
// docstring of pydriver.py for its subcommands and output.
type PyDriver struct {
	// Python is the interpreter and Script the driver script.
	Python, Script string
	t              testing.TB
}

var libcaBuild struct {
	once    sync.Once
	path    string
	missing string // a peer that is not installed
	err     error  // the build failed
}

// Libca returns the C driver, compiling it with gcc (-Wall -Wextra -Werror
// -O2, linked with libca) the first time a test process asks. The binary is
// cached in a directory named after a hash of its source and of the library,
// under the user's cache directory (or the temporary directory). A missing
// gcc or libca goes through [Require].
func Libca(t testing.TB) *CDriver {
	t.Helper()
	b := &libcaBuild
	b.once.Do(func() { b.path, b.missing, b.err = cadriver.Build() })
	if b.missing != "" {
		Require(t, b.missing, false, "")
		return nil
	}
	if b.err != nil {
		t.Fatalf("catest: building the C driver: %v", b.err)
		return nil
	}
	return &CDriver{Path: b.path, t: t}
}

var pyepicsCheck struct {
	once    sync.Once
	script  string
	missing string
	err     error
}

// Pyepics returns the pyepics driver after checking, once per test process,
// that /usr/bin/python3 can import epics and find libca. A missing
// interpreter or pyepics goes through [Require].
func Pyepics(t testing.TB) *PyDriver {
	t.Helper()
	c := &pyepicsCheck
	c.once.Do(func() { c.script, c.missing, c.err = preparePyDriver() })
	if c.missing != "" {
		Require(t, c.missing, false, "")
		return nil
	}
	if c.err != nil {
		t.Fatalf("catest: preparing the pyepics driver: %v", c.err)
		return nil
	}
	return &PyDriver{Python: Python, Script: c.script, t: t}
}

// writeAtomic writes data to path through a temporary file and a rename, so
// that concurrent test processes never see a partial file.
func writeAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := fmt.Sprintf("%s.tmp%d", path, os.Getpid())
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

func preparePyDriver() (script, missing string, err error) {
	if _, err := os.Stat(Python); err != nil {
		return "", Python + " (Debian python3)", nil
	}
	check := exec.Command(Python, "-c", "import epics.ca, sys; sys.exit(0 if epics.ca.find_libca() else 1)")
	check.Env = build(nil, nil)
	if out, err := check.CombinedOutput(); err != nil {
		return "", fmt.Sprintf("pyepics for %s (Debian python3-pyepics): %v %s", Python, err, strings.TrimSpace(string(out))), nil
	}
	dir, err := cadriver.CacheDir("pydriver", pydriverSource)
	if err != nil {
		return "", "", err
	}
	path := filepath.Join(dir, "pydriver.py")
	if data, err := os.ReadFile(path); err == nil && bytes.Equal(data, pydriverSource) {
		return path, "", nil
	}
	if err := writeAtomic(path, pydriverSource, 0o644); err != nil {
		return "", "", err
	}
	return path, "", nil
}
