package repeater

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pvhub/pvhub/ca/internal/caenv"
	"github.com/pvhub/pvhub/ca/wire"
)

// Loopback is 127.0.0.1, the default address of a Repeater.
var Loopback = netip.AddrFrom4([4]byte{127, 0, 0, 1})

// MaxClients is the most clients a Repeater serves at once. Each client costs
// one socket; registrations beyond the limit are ignored (and logged) until
// clients go away.
const MaxClients = 4096

// ErrInUse is returned by Start when the repeater port is already bound on
// this host, which means another CA repeater is running there.
var ErrInUse = errors.New("ca/repeater: port in use: another CA repeater is running")

// ErrClosed is returned by Start after Close.
var ErrClosed = errors.New("ca/repeater: repeater closed")

// Log rate limits for events that a peer can repeat at will.
const (
	ignoredLogEvery  = time.Minute // registrations from non-local addresses
	capLogEvery      = time.Minute // registrations refused at MaxClients
	ifaceCacheMaxAge = time.Second // how stale the list of local addresses may be
	capVerifyEvery   = time.Second // re-verification of all clients when full
)

// Config configures a Repeater.
type Config struct {
	// Addr is the local address and UDP port to bind. The zero value means
	// 127.0.0.1:5065, which receives the beacons sent to this host's
	// loopback address only; 0.0.0.0:5065 also receives beacons from the
	// network, as caRepeater does. Port 0 binds a free port, which Addr
	// reports after Start (for tests). Only IPv4 is supported.
	Addr netip.AddrPort
	// Logger receives one line per significant event; nil discards.
	Logger *slog.Logger
}

// ConfigFromEnv returns the configuration of a loopback repeater on the port
// named by EPICS_CA_REPEATER_PORT (5065 when unset or empty), as found by
// lookup (os.LookupEnv when nil). The Logger is left empty.
func ConfigFromEnv(lookup func(string) (string, bool)) (Config, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	port, err := caenv.Lookup(lookup).Port(wire.DefaultRepeaterPort, "EPICS_CA_REPEATER_PORT")
	if err != nil {
		return Config{}, fmt.Errorf("ca/repeater: %w", err)
	}
	return Config{Addr: netip.AddrPortFrom(Loopback, uint16(port))}, nil
}

// Repeater is a CA repeater. Create it with New, start it with Start, stop it
// with Close. Its methods are safe for concurrent use.
type Repeater struct {
	log        *slog.Logger
	maxClients int // MaxClients; tests lower it before Start

	mu      sync.Mutex
	addr    netip.AddrPort // the configured address, then the bound one
	started bool
	closed  bool
	conn    *net.UDPConn // nil before Start and after Close
	wg      sync.WaitGroup

	nclients atomic.Int64

	// The fields below belong to the serve goroutine.
	self        netip.AddrPort // the bound address, fixed before serve starts
	clients     []*client      // in registration order
	ifaddrs     []netip.Addr   // this host's IPv4 interface addresses
	ifaddrsAt   time.Time      // when ifaddrs was read
	capVerifyAt time.Time      // last verification of all clients at the limit
	capLogAt    time.Time      // last log line about the limit
	ignoredAt   time.Time      // last log line about a non-local registration
	dialErr     bool           // a failure to open a client socket was logged
	scratch     [wire.HeaderSize]byte
}

// client is a registered CA client: the address it registered from and a
// socket connected to that address, which carries everything sent to it.
type client struct {
	addr netip.AddrPort
	conn *net.UDPConn
}

// New checks the configuration and returns a repeater. It does no I/O.
func New(cfg Config) (*Repeater, error) {
	addr := cfg.Addr
	if !addr.IsValid() {
		addr = netip.AddrPortFrom(Loopback, wire.DefaultRepeaterPort)
	}
	a := addr.Addr().Unmap()
	if !a.Is4() {
		return nil, fmt.Errorf("ca/repeater: %s is not an IPv4 address", addr.Addr())
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Repeater{
		log:        log,
		maxClients: MaxClients,
		addr:       netip.AddrPortFrom(a, addr.Port()),
	}, nil
}

// Start binds the repeater's UDP port and starts forwarding. It binds without
// address reuse, so it fails with an error matching ErrInUse when another
// socket (normally another repeater) holds the port; a failed Start may be
// retried later. The context bounds only the start-up: the repeater runs
// until Close.
func (r *Repeater) Start(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	if r.started {
		return errors.New("ca/repeater: already started")
	}
	var lc net.ListenConfig // no SO_REUSEADDR: a second repeater must fail here
	pc, err := lc.ListenPacket(ctx, "udp4", r.addr.String())
	if err != nil {
		if isAddrInUse(err) {
			return fmt.Errorf("%w (%s): %v", ErrInUse, r.addr, err)
		}
		return fmt.Errorf("ca/repeater: %w", err)
	}
	conn := pc.(*net.UDPConn)
	bound := conn.LocalAddr().(*net.UDPAddr).AddrPort()
	r.addr = netip.AddrPortFrom(bound.Addr().Unmap(), bound.Port())
	r.self = r.addr
	r.conn = conn
	r.started = true
	r.wg.Add(1)
	go r.serve(conn)
	r.log.Info("CA repeater listening", "addr", r.addr.String())
	return nil
}

// Close stops the repeater and waits for its goroutine; the registered
// clients are forgotten. It is idempotent and may be called before Start.
func (r *Repeater) Close() error {
	r.mu.Lock()
	r.closed = true
	conn := r.conn
	r.conn = nil
	r.mu.Unlock()
	if conn != nil {
		conn.Close()
		r.log.Info("CA repeater stopped", "addr", r.Addr().String())
	}
	r.wg.Wait()
	return nil
}

// Addr returns the address the repeater is bound to after Start, or the
// configured address before.
func (r *Repeater) Addr() netip.AddrPort {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.addr
}

// Clients returns the number of registered clients.
func (r *Repeater) Clients() int { return int(r.nclients.Load()) }

// serve receives datagrams until conn is closed.
func (r *Repeater) serve(conn *net.UDPConn) {
	defer r.wg.Done()
	defer r.dropAll()
	buf := make([]byte, wire.MaxUDPRecv)
	readErrLogged := false
	for {
		n, src, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if isRefused(err) {
				continue // a late ICMP report; nothing to do with this socket
			}
			if !readErrLogged {
				r.log.Warn("CA repeater: receive failed", "err", err)
				readErrLogged = true
			}
			time.Sleep(10 * time.Millisecond) // do not spin on a persistent error
			continue
		}
		r.handle(buf[:n], netip.AddrPortFrom(src.Addr().Unmap(), src.Port()))
	}
}

// handle acts on one datagram from src; msg may be modified.
func (r *Repeater) handle(msg []byte, src netip.AddrPort) {
	register, fwd, fillIP := classify(msg)
	if register {
		r.register(src)
	}
	if len(fwd) == 0 {
		return
	}
	if fillIP && src.Addr().Is4() {
		ip := src.Addr().As4()
		copy(fwd[12:16], ip[:])
	}
	r.fanOut(fwd, src)
}

// classify tells what a datagram asks of the repeater. A zero-length
// datagram, or one starting with REPEATER_REGISTER, registers its sender;
// what follows a REPEATER_REGISTER header, and every other datagram, is
// forwarded (fwd aliases msg). fillIP is true for a datagram starting with a
// beacon whose P2 (the server's address) is zero: the repeater writes the
// sender's address into bytes 12 to 15 before forwarding. Any input is
// accepted; nothing but the first header is looked at.
func classify(msg []byte) (register bool, fwd []byte, fillIP bool) {
	if len(msg) == 0 {
		return true, nil, false
	}
	if len(msg) < wire.HeaderSize {
		return false, msg, false
	}
	// Standard header: command at offset 0, P2 at offset 12; an extended
	// header has the same first 16 bytes.
	switch wire.Command(binary.BigEndian.Uint16(msg[0:2])) {
	case wire.CmdRepeaterRegister:
		return true, msg[wire.HeaderSize:], false
	case wire.CmdRsrvIsUp:
		return false, msg, binary.BigEndian.Uint32(msg[12:16]) == 0
	}
	return false, msg, false
}

// noop is the all-zero VERSION message sent to every other client when one
// registers. It makes the kernel report clients that have gone away.
var noop = (&wire.Version{}).AppendTo(nil)

// register handles a registration from src: it records a new client,
// confirms, sends the no-op to the other clients, and after a new
// registration forgets the clients that have gone away. A client that
// registers again (identified, as caRepeater does, by its port) keeps its
// record and is confirmed again.
func (r *Repeater) register(src netip.AddrPort) {
	if !r.isLocal(src.Addr()) {
		now := time.Now()
		if now.Sub(r.ignoredAt) >= ignoredLogEvery {
			r.ignoredAt = now
			r.log.Info("CA repeater: ignoring registrations from non-local addresses", "from", src.String())
		}
		return
	}
	if r.isSelf(src) {
		return
	}
	var c *client
	for _, k := range r.clients {
		if k.addr.Port() == src.Port() {
			c = k
			break
		}
	}
	isNew := c == nil
	if isNew {
		if len(r.clients) >= r.maxClients && !r.makeRoom() {
			return
		}
		conn, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(src))
		if err != nil {
			if !r.dialErr {
				r.dialErr = true
				r.log.Warn("CA repeater: cannot open a socket for a client", "client", src.String(), "err", err)
			}
			return
		}
		r.dialErr = false
		c = &client{addr: src, conn: conn}
		r.clients = append(r.clients, c)
		r.nclients.Store(int64(len(r.clients)))
		r.log.Debug("CA repeater: client registered", "client", src.String(), "clients", len(r.clients))
	}
	ip := c.addr.Addr().As4()
	confirm := (&wire.RepeaterConfirm{IP: binary.BigEndian.Uint32(ip[:])}).AppendTo(r.scratch[:0])
	if err := r.send(c, confirm); err != nil {
		r.remove(c, "confirm failed: "+err.Error())
	}
	r.fanOut(noop, src)
	if isNew {
		r.verifyClients(c)
	}
}

// isSelf reports whether src is the repeater's own socket, which must never
// become a client (it would forward to itself).
func (r *Repeater) isSelf(src netip.AddrPort) bool {
	if src.Port() != r.self.Port() {
		return false
	}
	return src.Addr() == r.self.Addr() || r.self.Addr().IsUnspecified()
}

// makeRoom is called when a new client arrives at the limit. It forgets the
// clients that have gone away (at most once a second) and reports whether
// there is room now; if not, it logs (at most once a minute).
func (r *Repeater) makeRoom() bool {
	now := time.Now()
	if now.Sub(r.capVerifyAt) >= capVerifyEvery {
		r.capVerifyAt = now
		r.verifyClients(nil)
	}
	if len(r.clients) < r.maxClients {
		return true
	}
	if now.Sub(r.capLogAt) >= capLogEvery {
		r.capLogAt = now
		r.log.Warn("CA repeater: client limit reached; new clients get no beacons until others exit",
			"limit", r.maxClients)
	}
	return false
}

// fanOut sends msg to every client except the one at from. A client that
// cannot be sent to and whose port is free is forgotten.
func (r *Repeater) fanOut(msg []byte, from netip.AddrPort) {
	kept := r.clients[:0]
	for _, c := range r.clients {
		if c.addr != from {
			if err := r.send(c, msg); err != nil {
				r.drop(c, "send failed: "+err.Error())
				continue
			}
		}
		kept = append(kept, c)
	}
	r.setClients(kept)
}

// send sends msg to c. It fails only when c has gone: a connected UDP
// socket reports an ICMP error caused by an earlier datagram on the next
// write, which it fails without sending, so after an error the client is
// verified and, if its port is still held (say by a new process that
// registered on the same port), the write is repeated.
func (r *Repeater) send(c *client, msg []byte) error {
	_, err := c.conn.Write(msg)
	if err == nil {
		return nil
	}
	if !portHeld(c.addr) {
		return err
	}
	_, _ = c.conn.Write(msg) // the client is there; a second error is not its death
	return nil
}

// verifyClients forgets every client except skip whose port is free.
func (r *Repeater) verifyClients(skip *client) {
	kept := r.clients[:0]
	for _, c := range r.clients {
		if c != skip && !portHeld(c.addr) {
			r.drop(c, "port released")
			continue
		}
		kept = append(kept, c)
	}
	r.setClients(kept)
}

// remove forgets one client.
func (r *Repeater) remove(c *client, reason string) {
	kept := r.clients[:0]
	for _, k := range r.clients {
		if k != c {
			kept = append(kept, k)
		}
	}
	r.drop(c, reason)
	r.setClients(kept)
}

// setClients installs a compacted client list (a prefix of the old one).
func (r *Repeater) setClients(kept []*client) {
	clear(r.clients[len(kept):])
	r.clients = kept
	r.nclients.Store(int64(len(kept)))
}

// drop closes a client's socket and logs its departure; the caller removes
// it from the list.
func (r *Repeater) drop(c *client, reason string) {
	c.conn.Close()
	r.log.Debug("CA repeater: client gone", "client", c.addr.String(), "reason", reason)
}

// dropAll forgets every client when the repeater stops.
func (r *Repeater) dropAll() {
	for _, c := range r.clients {
		c.conn.Close()
	}
	r.setClients(r.clients[:0])
}

// portHeld reports whether some socket still holds the client's address and
// port, by trying to bind it: success means the client has gone. When the
// answer cannot be known (for example a privileged port) the client is
// assumed to be there.
func portHeld(a netip.AddrPort) bool {
	conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(a))
	if err == nil {
		conn.Close()
		return false
	}
	if isAddrInUse(err) {
		return true
	}
	return !isAddrNotAvail(err) // the address is no longer this host's: gone
}

// isLocal reports whether a registration from a may be accepted: a must be
// a loopback address or an address of one of this host's interfaces. The
// interface list is read again when it is older than a second.
func (r *Repeater) isLocal(a netip.Addr) bool {
	a = a.Unmap()
	if a.Is4() && a.IsLoopback() {
		return true
	}
	if now := time.Now(); now.Sub(r.ifaddrsAt) >= ifaceCacheMaxAge {
		r.ifaddrsAt = now
		r.ifaddrs = interfaceAddrs()
	}
	return isLocalAddr(a, r.ifaddrs)
}

// isLocalAddr reports whether a is a loopback IPv4 address or one of
// ifaddrs. The unspecified, broadcast and multicast addresses never are.
func isLocalAddr(a netip.Addr, ifaddrs []netip.Addr) bool {
	a = a.Unmap()
	if !a.Is4() || a.IsUnspecified() || a.IsMulticast() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return false
	}
	if a.IsLoopback() {
		return true
	}
	for _, l := range ifaddrs {
		if l.Unmap() == a {
			return true
		}
	}
	return false
}

// interfaceAddrs returns the IPv4 addresses of this host's interfaces, or
// nil when they cannot be read.
func interfaceAddrs() []netip.Addr {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, a := range addrs {
		var ip net.IP
		switch v := a.(type) {
		case *net.IPNet:
			ip = v.IP
		case *net.IPAddr:
			ip = v.IP
		default:
			continue
		}
		if na, ok := netip.AddrFromSlice(ip); ok && na.Unmap().Is4() {
			out = append(out, na.Unmap())
		}
	}
	return out
}
