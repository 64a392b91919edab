package catest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Env describes the CA environment of a client process pointed at a loopback
// server. The zero RepeaterPort is never what a test wants (libca would then
// use the host's port 5065): build an Env with [NewEnv].
type Env struct {
	// ServerPort is EPICS_CA_SERVER_PORT, the server's UDP search port and
	// its default TCP port.
	ServerPort int
	// AddrList is EPICS_CA_ADDR_LIST; empty means "127.0.0.1:ServerPort".
	AddrList string
	// RepeaterPort is EPICS_CA_REPEATER_PORT (and the servers' beacon port).
	RepeaterPort int
	// MaxArrayBytes sets EPICS_CA_MAX_ARRAY_BYTES when positive.
	MaxArrayBytes int
	// ConnTmo sets EPICS_CA_CONN_TMO (seconds) when positive.
	ConnTmo float64
	// Extra holds further KEY=VALUE entries, applied last (they override).
	Extra []string
}

// NewEnv returns the environment for clients of a server on
// 127.0.0.1:serverPort. It starts a [StubRepeater] for the test, so that
// libca neither spawns caRepeater nor touches port 5065.
func NewEnv(t testing.TB, serverPort int) *Env {
	t.Helper()
	return &Env{ServerPort: serverPort, RepeaterPort: StubRepeater(t)}
}

// Environ returns the process environment for a CA client: the current
// process's environment without any EPICS_* variable, plus the CA
// variables of e. Searches go to the address list only
// (EPICS_CA_AUTO_ADDR_LIST=NO), so nothing is broadcast.
func (e *Env) Environ() []string {
	return build(e.clientVars(), e.Extra)
}

// ServerEnviron returns the environment for a CA server process (an IOC, or
// a server that is also a client) on 127.0.0.1:ServerPort: the variables of
// [Env.Environ] plus EPICS_CAS_SERVER_PORT, EPICS_CAS_INTF_ADDR_LIST=127.0.0.1,
// and beacons to 127.0.0.1 only (EPICS_CAS_BEACON_ADDR_LIST=127.0.0.1,
// EPICS_CAS_AUTO_BEACON_ADDR_LIST=NO) at the repeater port.
func (e *Env) ServerEnviron() []string {
	vars := e.clientVars()
	vars["EPICS_CAS_INTF_ADDR_LIST"] = "127.0.0.1"
	vars["EPICS_CAS_BEACON_ADDR_LIST"] = "127.0.0.1"
	vars["EPICS_CAS_AUTO_BEACON_ADDR_LIST"] = "NO"
	if e.ServerPort > 0 {
		vars["EPICS_CAS_SERVER_PORT"] = strconv.Itoa(e.ServerPort)
	}
	if e.RepeaterPort > 0 {
		vars["EPICS_CAS_BEACON_PORT"] = strconv.Itoa(e.RepeaterPort)
	}
	return build(vars, e.Extra)
}

func (e *Env) clientVars() map[string]string {
	vars := map[string]string{"EPICS_CA_AUTO_ADDR_LIST": "NO"}
	addr := e.AddrList
	if addr == "" && e.ServerPort > 0 {
		addr = fmt.Sprintf("127.0.0.1:%d", e.ServerPort)
	}
	if addr != "" {
		vars["EPICS_CA_ADDR_LIST"] = addr
	}
	if e.ServerPort > 0 {
		vars["EPICS_CA_SERVER_PORT"] = strconv.Itoa(e.ServerPort)
	}
	if e.RepeaterPort > 0 {
		vars["EPICS_CA_REPEATER_PORT"] = strconv.Itoa(e.RepeaterPort)
	}
	if e.MaxArrayBytes > 0 {
		vars["EPICS_CA_MAX_ARRAY_BYTES"] = strconv.Itoa(e.MaxArrayBytes)
	}
	if e.ConnTmo > 0 {
		vars["EPICS_CA_CONN_TMO"] = strconv.FormatFloat(e.ConnTmo, 'f', -1, 64)
	}
	return vars
}

// build returns the current process's environment without EPICS_*
// variables, overlaid with vars (in key order) and then with the KEY=VALUE
// entries of extra.
func build(vars map[string]string, extra []string) []string {
	var out []string
	index := map[string]int{}
	set := func(kv string) {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := index[k]; ok {
			out[i] = kv
			return
		}
		index[k] = len(out)
		out = append(out, kv)
	}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "EPICS_") {
			set(kv)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		set(k + "=" + vars[k])
	}
	for _, kv := range extra {
		set(kv)
	}
	return out
}

// Lookup returns the value of key in a KEY=VALUE list such as the result of
// [Env.Environ], and whether it is present.
func Lookup(env []string, key string) (string, bool) {
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}

// CA message codes the stub repeater handles.
const (
	cmdBeacon           = 13
	cmdRepeaterConfirm  = 17
	cmdRepeaterRegister = 24
	headerSize          = 16
)

// StubRepeater starts a minimal CA repeater on a free UDP port of 127.0.0.1
// and returns the port; it stops at the cleanup of t. Like caRepeater it
// confirms registrations (a zero-length datagram or REPEATER_REGISTER) with
// REPEATER_CONFIRM and forwards every other datagram, such as beacons, to
// the registered clients except the sender, filling in the source address
// of beacons that carry none. Because it holds the port, libca's probe
// finds the repeater "installed" and spawns no caRepeater process.
func StubRepeater(t testing.TB) int {
	t.Helper()
	var conn *net.UDPConn
	for range 200 {
		port := FreePort(t)
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: LoopbackIP, Port: port})
		if err == nil {
			conn = c
			break
		}
	}
	if conn == nil {
		t.Fatalf("catest: no port for the stub repeater")
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		serveRepeater(conn)
	}()
	t.Cleanup(func() {
		conn.Close()
		wg.Wait()
	})
	return conn.LocalAddr().(*net.UDPAddr).Port
}

// serveRepeater runs until conn is closed.
func serveRepeater(conn *net.UDPConn) {
	buf := make([]byte, 0xFFFF+16)
	var clients []*net.UDPAddr
	for {
		n, src, err := conn.ReadFromUDP(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		msg := buf[:n]
		if n == 0 || (n >= headerSize && binary.BigEndian.Uint16(msg) == cmdRepeaterRegister) {
			known := false
			for _, c := range clients {
				if c.IP.Equal(src.IP) && c.Port == src.Port {
					known = true
				}
			}
			if !known {
				clients = append(clients, src)
			}
			confirm := make([]byte, headerSize)
			binary.BigEndian.PutUint16(confirm, cmdRepeaterConfirm)
			copy(confirm[12:16], src.IP.To4())
			_, _ = conn.WriteToUDP(confirm, src)
			continue
		}
		if n >= headerSize && binary.BigEndian.Uint16(msg) == cmdBeacon && binary.BigEndian.Uint32(msg[12:16]) == 0 {
			copy(msg[12:16], src.IP.To4())
		}
		for _, c := range clients {
			if c.IP.Equal(src.IP) && c.Port == src.Port {
				continue
			}
			_, _ = conn.WriteToUDP(msg, c)
		}
	}
}
