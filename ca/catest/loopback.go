package catest

import (
	"math/rand/v2"
	"net"
	"sync"
	"testing"
)

// LoopbackIP is the only address the helpers of this package bind or send to.
var LoopbackIP = net.IPv4(127, 0, 0, 1)

// Ports are drawn below Linux's default ephemeral range (32768-60999), where
// the kernel places client sockets, so that a port handed out is unlikely to
// be taken by some client's socket before the server binds it.
const (
	portLow  = 20000
	portHigh = 32000
)

var ports struct {
	mu    sync.Mutex
	given map[int]bool
}

// FreePort returns a port number that is free on 127.0.0.1 for both TCP and
// UDP at the time of the call, as a CA server needs (it listens on the same
// number for both). A number is handed out at most once per test process.
// The port is released before FreePort returns, so another process could
// still take it; prefer [ListenLoopback] when the server can take listeners.
func FreePort(t testing.TB) int {
	t.Helper()
	for range 200 {
		port := rand.IntN(portHigh-portLow) + portLow
		if !claim(port) {
			continue
		}
		tl, ul, err := listenBoth(port)
		if err != nil {
			continue
		}
		tl.Close()
		ul.Close()
		return port
	}
	t.Fatalf("catest: no free loopback port for TCP and UDP in %d..%d", portLow, portHigh)
	return 0
}

// claim records port as handed out; it reports false when it already was.
func claim(port int) bool {
	ports.mu.Lock()
	defer ports.mu.Unlock()
	if ports.given == nil {
		ports.given = make(map[int]bool)
	}
	if ports.given[port] {
		return false
	}
	ports.given[port] = true
	return true
}

func listenBoth(port int) (*net.TCPListener, *net.UDPConn, error) {
	tl, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: LoopbackIP, Port: port})
	if err != nil {
		return nil, nil, err
	}
	ul, err := net.ListenUDP("udp4", &net.UDPAddr{IP: LoopbackIP, Port: port})
	if err != nil {
		tl.Close()
		return nil, nil, err
	}
	return tl, ul, nil
}

// ListenLoopback returns a TCP listener and a UDP socket bound to the same
// port on 127.0.0.1, without the race of [FreePort]. Both are closed at the
// cleanup of t.
func ListenLoopback(t testing.TB) (*net.TCPListener, *net.UDPConn) {
	t.Helper()
	for range 200 {
		port := rand.IntN(portHigh-portLow) + portLow
		if !claim(port) {
			continue
		}
		tl, ul, err := listenBoth(port)
		if err != nil {
			continue
		}
		t.Cleanup(func() {
			tl.Close()
			ul.Close()
		})
		return tl, ul
	}
	t.Fatalf("catest: no free loopback port for TCP and UDP in %d..%d", portLow, portHigh)
	return nil, nil
}

// Loopback returns two different free loopback ports, for a server whose TCP
// port differs from its UDP search port (as rsrv does when the TCP port is
// busy: it must then advertise the TCP port in its search replies and
// beacons). Each is free for both protocols; the same caveat as for
// [FreePort] applies.
func Loopback(t testing.TB) (tcpPort, udpPort int) {
	t.Helper()
	return FreePort(t), FreePort(t)
}
