package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/pvhub/pvhub/ca/internal/caenv"
	"github.com/pvhub/pvhub/ca/wire"
)

// Server is a CA server. Create it with New, start it with Start, stop it with Close.
type Server struct {
	cfg Config
	log *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	started   bool
	closed    bool
	listeners []net.Listener
	udp       []*udpSocket
	circuits  map[*circuit]struct{}

	tcpPort int
	udpPort int
	beacons []netip.AddrPort
}

type udpSocket struct {
	conn  *net.UDPConn
	reply *net.UDPConn // where replies are sent from (itself, or the unicast socket of a broadcast one)
}

// New checks the configuration and returns a server. It does no I/O.
func New(cfg Config) (*Server, error) {
	if cfg.Source == nil {
		return nil, errors.New("ca/server: Config.Source is required")
	}
	cfg.setDefaults()
	for _, a := range cfg.Interfaces {
		if !a.Is4() {
			return nil, fmt.Errorf("ca/server: interface %s is not an IPv4 address", a)
		}
		if a.IsUnspecified() && len(cfg.Interfaces) > 1 {
			return nil, errors.New("ca/server: 0.0.0.0 cannot be combined with other interface addresses")
		}
	}
	return &Server{cfg: cfg, log: cfg.Logger, circuits: map[*circuit]struct{}{}}, nil
}

// TCPPort returns the port that TCP circuits are accepted on (after Start).
func (s *Server) TCPPort() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tcpPort
}

// UDPPort returns the port that searches are answered on (after Start).
func (s *Server) UDPPort() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.udpPort
}

// Clients returns the number of open circuits.
func (s *Server) Clients() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.circuits)
}

// Start binds the search and circuit sockets and starts serving. The context
// bounds only the start-up; the server runs until Close.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("ca/server: already started")
	}
	s.started = true
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if err := s.bind(ctx); err != nil {
		s.closeSockets()
		s.cancel()
		return err
	}
	s.beacons = s.beaconAddrs()
	if len(s.beacons) == 0 {
		s.log.Warn("no beacon destinations: clients will reconnect slowly after a restart")
	}
	for _, l := range s.listeners {
		s.wg.Add(1)
		go s.acceptLoop(l)
	}
	for _, u := range s.udp {
		s.wg.Add(1)
		go s.searchLoop(u)
	}
	s.wg.Add(1)
	go s.beaconLoop()
	addrs := make([]string, len(s.cfg.Interfaces))
	for i, a := range s.cfg.Interfaces {
		addrs[i] = a.String()
	}
	s.log.Info("CA server listening", "interfaces", addrs, "tcp_port", s.tcpPort, "udp_port", s.udpPort, "beacons", len(s.beacons))
	return nil
}

// bind opens every socket. Port -1 picks a port free for both TCP and UDP.
func (s *Server) bind(ctx context.Context) error {
	lc := net.ListenConfig{Control: reuseAddr}
	if s.cfg.Port < 0 {
		var err error
		for range 50 {
			if err = s.bindPort(ctx, lc, 0); err == nil {
				return nil
			}
			s.closeSockets()
		}
		return fmt.Errorf("ca/server: no free port for TCP and UDP: %w", err)
	}
	return s.bindPort(ctx, lc, s.cfg.Port)
}

// bindPort binds TCP first (port 0 picks one), then UDP on the same number.
// When a fixed TCP port is taken, another one is used and advertised, as IOCs do.
func (s *Server) bindPort(ctx context.Context, lc net.ListenConfig, port int) error {
	s.listeners, s.udp = nil, nil
	tcpPort := port
	for i, ip := range s.cfg.Interfaces {
		l, err := lc.Listen(ctx, "tcp4", netip.AddrPortFrom(ip, uint16(tcpPort)).String())
		if err != nil && port != 0 && i == 0 {
			s.log.Warn("CA server TCP port in use; using another port", "port", port, "error", err)
			l, err = lc.Listen(ctx, "tcp4", netip.AddrPortFrom(ip, 0).String())
		}
		if err != nil {
			return fmt.Errorf("ca/server: listen on %s: %w", ip, err)
		}
		s.listeners = append(s.listeners, l)
		tcpPort = l.Addr().(*net.TCPAddr).Port
	}
	udpPort := port
	if udpPort == 0 {
		udpPort = tcpPort
	}
	ifs, _ := caenv.Interfaces()
	for _, ip := range s.cfg.Interfaces {
		pc, err := lc.ListenPacket(ctx, "udp4", netip.AddrPortFrom(ip, uint16(udpPort)).String())
		if err != nil {
			return fmt.Errorf("ca/server: UDP search port %s:%d: %w", ip, udpPort, err)
		}
		u := pc.(*net.UDPConn)
		s.udp = append(s.udp, &udpSocket{conn: u, reply: u})
		// A socket bound to a unicast address does not receive broadcasts; bind the
		// interface's broadcast address too.
		for _, it := range ifs {
			if it.Addr == ip && it.Broadcast.IsValid() && !it.Loopback {
				bc, err := lc.ListenPacket(ctx, "udp4", netip.AddrPortFrom(it.Broadcast, uint16(udpPort)).String())
				if err != nil {
					s.log.Warn("cannot receive broadcast searches", "address", it.Broadcast, "error", err)
					continue
				}
				s.udp = append(s.udp, &udpSocket{conn: bc.(*net.UDPConn), reply: u})
			}
		}
	}
	s.tcpPort, s.udpPort = tcpPort, udpPort
	return nil
}

func (s *Server) closeSockets() {
	for _, l := range s.listeners {
		_ = l.Close()
	}
	for _, u := range s.udp {
		_ = u.conn.Close()
	}
}

// beaconAddrs returns the beacon destinations: the configured list, plus the
// broadcast addresses of the served interfaces when AutoBeaconAddrs is set; or
// 127.0.0.1 when neither gives any.
func (s *Server) beaconAddrs() []netip.AddrPort {
	out := append([]netip.AddrPort(nil), s.cfg.BeaconAddrs...)
	if s.cfg.AutoBeaconAddrs {
		bcs, err := caenv.BroadcastAddrs(s.cfg.Interfaces)
		if err != nil {
			s.log.Warn("cannot list interface broadcast addresses", "error", err)
		}
		for _, b := range bcs {
			out = append(out, netip.AddrPortFrom(b, uint16(s.cfg.BeaconPort)))
		}
	}
	if len(out) == 0 && !s.cfg.AutoBeaconAddrs {
		out = append(out, netip.AddrPortFrom(Loopback, uint16(s.cfg.BeaconPort)))
	}
	return out
}

// Close stops the server: listeners, search sockets, beacons and every circuit.
// It waits for all goroutines and is idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	if !s.started || s.closed {
		s.closed = true
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.cancel()
	s.closeSockets()
	circs := make([]*circuit, 0, len(s.circuits))
	for c := range s.circuits {
		circs = append(circs, c)
	}
	s.mu.Unlock()
	for _, c := range circs {
		c.shutdown(errors.New("server closing"))
	}
	s.wg.Wait()
	return nil
}

func (s *Server) acceptLoop(l net.Listener) {
	defer s.wg.Done()
	delay := 5 * time.Millisecond
	for {
		conn, err := l.Accept()
		if err != nil {
			if s.ctx.Err() != nil {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				s.log.Warn("accept failed; retrying", "error", err)
				select {
				case <-time.After(delay):
				case <-s.ctx.Done():
					return
				}
				delay = min(2*delay, time.Second)
				continue
			}
			s.log.Error("accept failed; no longer accepting circuits", "error", err)
			return
		}
		delay = 5 * time.Millisecond
		c := newCircuit(s, conn)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = conn.Close()
			return
		}
		s.circuits[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			c.run()
			s.mu.Lock()
			delete(s.circuits, c)
			s.mu.Unlock()
		}()
	}
}

// searchLoop answers UDP searches for the names the Source claims.
func (s *Server) searchLoop(u *udpSocket) {
	defer s.wg.Done()
	buf := make([]byte, wire.MaxUDPRecv)
	dec := wire.NewDecoder(wire.MaxUDPRecv)
	var reply []byte
	bad := 0
	for {
		n, from, err := u.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if s.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn("search socket read failed", "error", err)
			continue
		}
		if s.ignored(from.Addr()) {
			continue
		}
		var seq uint32
		var minor uint16
		reply, seq, minor = s.answer(dec, buf[:n], reply[:0], func(why string) {
			if bad++; bad <= maxBadInputLogs {
				s.log.Warn("bad search datagram", "from", from.String(), "error", why)
			}
		})
		if len(reply) > 0 {
			s.sendReplies(u.reply, from, reply, seq, minor)
		}
	}
}

func (s *Server) ignored(a netip.Addr) bool {
	a = a.Unmap()
	for _, ig := range s.cfg.IgnoreAddrs {
		if ig == a {
			return true
		}
	}
	return false
}

// answer decodes a search datagram and appends the replies (without the leading
// VERSION) for the names the Source claims. Datagrams that do not start with a
// VERSION message are ignored, as IOCs ignore them.
func (s *Server) answer(dec *wire.Decoder, dgram []byte, reply []byte, bad func(string)) (_ []byte, seq uint32, minor uint16) {
	dec.Reset()
	dec.Feed(dgram)
	first := true
	for {
		f, err := dec.Next()
		if err != nil {
			if !errors.Is(err, wire.ErrNeedMore) {
				bad(err.Error())
			} else if dec.Buffered() > 0 {
				bad("datagram ends inside a message")
			}
			dec.Reset()
			return reply, seq, minor
		}
		h := f.Header
		if first {
			first = false
			if h.Command != wire.CmdVersion {
				dec.Reset()
				return reply, 0, 0
			}
			seq, minor = h.P1, uint16(h.Count)
			continue
		}
		if h.Command != wire.CmdSearch || h.Count < wire.MinSupportedMinor {
			continue
		}
		m, err := wire.Decode(f, wire.ToServer)
		if err != nil {
			bad(err.Error())
			continue
		}
		req := m.(*wire.SearchRequest)
		if s.cfg.Source.Claim(req.Name) {
			reply = (&wire.SearchResponse{Port: uint16(s.tcpPort), IP: wire.BeaconIPUnknown, SearchID: req.SearchID, Minor: wire.MinorVersion}).AppendTo(reply)
		}
	}
}

const searchReplySize = 24 // a SEARCH reply with its 8-byte payload

// sendReplies sends search replies to a client in datagrams of at most
// wire.MaxUDPSend bytes, each led by a VERSION message that echoes the request's
// sequence number (for clients of protocol 4.11 and later).
func (s *Server) sendReplies(conn *net.UDPConn, to netip.AddrPort, replies []byte, seq uint32, minor uint16) {
	var head []byte
	if minor >= 11 {
		head = (&wire.Version{DataType: 1, Minor: wire.MinorVersion, Seq: seq}).AppendTo(nil)
	}
	per := (wire.MaxUDPSend - len(head)) / searchReplySize * searchReplySize
	dgram := make([]byte, 0, wire.MaxUDPSend)
	for len(replies) > 0 {
		k := min(per, len(replies))
		dgram = append(append(dgram[:0], head...), replies[:k]...)
		replies = replies[k:]
		if _, err := conn.WriteToUDPAddrPort(dgram, to); err != nil && s.ctx.Err() == nil {
			s.log.Debug("search reply failed", "to", to.String(), "error", err)
		}
	}
}

// beaconLoop announces the server: beacons start 20 ms apart and the interval
// doubles up to the beacon period; the beacon ID increments with each one.
func (s *Server) beaconLoop() {
	defer s.wg.Done()
	if len(s.beacons) == 0 {
		return
	}
	conn := s.udp[0].reply
	interval := 20 * time.Millisecond
	var id uint32
	msg := make([]byte, 0, wire.HeaderSize)
	t := time.NewTimer(0)
	defer t.Stop()
	failed := map[netip.AddrPort]bool{}
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		msg = (&wire.Beacon{Minor: wire.MinorVersion, Port: uint16(s.tcpPort), ID: id}).AppendTo(msg[:0])
		for _, to := range s.beacons {
			_, err := conn.WriteToUDPAddrPort(msg, to)
			if err != nil && !failed[to] && s.ctx.Err() == nil {
				s.log.Warn("beacon send failed", "to", to.String(), "error", err)
			}
			failed[to] = err != nil
		}
		id++
		t.Reset(interval)
		interval = min(2*interval, s.cfg.BeaconPeriod)
	}
}
