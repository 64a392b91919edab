package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pvhub/pvhub/ca/internal/caenv"
	"github.com/pvhub/pvhub/ca/wire"
)

// Client is a CA client context: one search socket, one circuit per server.
type Client struct {
	cfg Config
	log *slog.Logger
	ids atomic.Uint32

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	udp    *net.UDPConn
	dests  []netip.AddrPort
	wake   chan struct{}

	mu        sync.Mutex
	started   bool
	closed    bool
	chans     map[uint32]*Channel // by CID (= search ID)
	circuits  map[netip.AddrPort]*circuit
	nameSrv   []*circuit
	rtte      rttEstimator
	beacons   map[netip.AddrPort]*beaconState
	seq       uint32
	lastBoost time.Time

	confirmed   chan struct{} // closed when the repeater confirms registration
	confirmOnce sync.Once
}

// New checks the configuration and returns a client. It does no I/O.
func New(cfg Config) (*Client, error) {
	cfg.setDefaults()
	for _, a := range append(append([]netip.AddrPort(nil), cfg.AddrList...), cfg.NameServers...) {
		if !a.Addr().Is4() || a.Port() == 0 {
			return nil, fmt.Errorf("ca/client: address %s: need an IPv4 address and a port", a)
		}
	}
	return &Client{cfg: cfg, log: cfg.Logger, wake: make(chan struct{}, 1), confirmed: make(chan struct{}),
		chans: map[uint32]*Channel{}, circuits: map[netip.AddrPort]*circuit{},
		beacons: map[netip.AddrPort]*beaconState{}, rtte: newRTT()}, nil
}

// Start binds the search socket and starts searching for channels.
func (c *Client) Start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started {
		return errors.New("ca/client: already started")
	}
	c.started = true
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.dests = append(c.dests, c.cfg.AddrList...)
	if c.cfg.AutoAddrList {
		bcs, err := caenv.BroadcastAddrs(nil)
		if err != nil {
			c.log.Warn("cannot list interface broadcast addresses", "error", err)
		}
		for _, b := range bcs {
			c.dests = append(c.dests, netip.AddrPortFrom(b, uint16(c.cfg.ServerPort)))
		}
	}
	if len(c.dests) == 0 && len(c.cfg.NameServers) == 0 {
		c.dests = append(c.dests, netip.AddrPortFrom(Loopback, uint16(c.cfg.ServerPort)))
	}
	var lc net.ListenConfig
	pc, err := lc.ListenPacket(ctx, "udp4", ":0")
	if err != nil {
		c.cancel()
		return fmt.Errorf("ca/client: search socket: %w", err)
	}
	c.udp = pc.(*net.UDPConn)
	_ = c.udp.SetReadBuffer(1 << 20)
	c.wg.Add(2)
	go c.readUDP()
	go c.searchLoop()
	if !c.cfg.NoRepeater {
		c.wg.Add(1)
		go c.registerLoop()
	}
	for _, ns := range c.cfg.NameServers {
		circ := c.newCircuit(ns, true)
		c.nameSrv = append(c.nameSrv, circ)
		c.wg.Add(1)
		go circ.run()
	}
	return nil
}

// Close closes every channel and circuit and waits for every goroutine.
func (c *Client) Close() error {
	c.mu.Lock()
	if !c.started || c.closed {
		c.closed = true
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.cancel()
	chans := make([]*Channel, 0, len(c.chans))
	for _, ch := range c.chans {
		chans = append(chans, ch)
	}
	circs := make([]*circuit, 0, len(c.circuits)+len(c.nameSrv))
	for _, circ := range c.circuits {
		circs = append(circs, circ)
	}
	circs = append(circs, c.nameSrv...)
	c.mu.Unlock()
	for _, ch := range chans {
		ch.Close()
	}
	for _, circ := range circs {
		circ.fail(errors.New("client closed"))
	}
	_ = c.udp.Close()
	c.wg.Wait()
	return nil
}

func (c *Client) nextID() uint32 { return c.ids.Add(1) }

// Channel creates a channel and starts searching for it. It does not wait.
func (c *Client) Channel(name string, opts ChannelOptions) (*Channel, error) {
	if name == "" || len(name) >= wire.MaxNameSize {
		return nil, fmt.Errorf("ca/client: invalid PV name %q", name)
	}
	ch := &Channel{c: c, name: name, cid: c.nextID(), opts: opts, ready: make(chan struct{}), subs: map[uint32]*Subscription{}}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.started || c.closed {
		return nil, errors.New("ca/client: client not running")
	}
	c.chans[ch.cid] = ch
	c.searchLocked(ch, 0, time.Now())
	return ch, nil
}

// forget removes a closed channel from the search.
func (c *Client) forget(ch *Channel) {
	c.mu.Lock()
	delete(c.chans, ch.cid)
	ch.searching = false
	c.mu.Unlock()
}

// searchLocked (re)starts the search for ch at schedule index idx; c.mu held.
func (c *Client) searchLocked(ch *Channel, idx int, at time.Time) {
	ch.searching = true
	ch.searchIdx = idx
	ch.nextSrch = at
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// research puts a channel that lost its server back into the search.
func (c *Client) research(ch *Channel) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.chans[ch.cid] == ch && !c.closed {
		c.searchLocked(ch, 0, time.Now())
	}
}

// Circuits returns the number of circuits open or opening to servers (name
// servers included).
func (c *Client) Circuits() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.circuits) + len(c.nameSrv)
}

// Channels returns the number of open channels.
func (c *Client) Channels() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.chans)
}

// circuitFor returns the circuit to addr, starting one if needed.
func (c *Client) circuitFor(addr netip.AddrPort) *circuit {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	if circ := c.circuits[addr]; circ != nil {
		return circ
	}
	circ := c.newCircuit(addr, false)
	c.circuits[addr] = circ
	c.wg.Add(1)
	go circ.run()
	return circ
}

// circuitGone forgets a dead circuit.
func (c *Client) circuitGone(circ *circuit) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.circuits[circ.addr] == circ {
		delete(c.circuits, circ.addr)
	}
}

// found handles a search reply: the channel with search ID id is on addr.
func (c *Client) found(id uint32, addr netip.AddrPort, from string) {
	c.mu.Lock()
	ch := c.chans[id]
	if ch == nil || !ch.searching {
		c.mu.Unlock()
		return // answered already, or closed
	}
	ch.searching = false
	if !ch.sentAt.IsZero() {
		c.rtte.add(time.Since(ch.sentAt))
	}
	c.mu.Unlock()
	circ := c.circuitFor(addr)
	if circ == nil {
		return
	}
	c.log.Debug("channel found", "pv", ch.name, "server", addr.String(), "via", from)
	circ.addChannel(ch)
}

// readUDP receives search replies, beacons and repeater messages.
func (c *Client) readUDP() {
	defer c.wg.Done()
	buf := make([]byte, wire.MaxUDPRecv)
	dec := wire.NewDecoder(wire.MaxUDPRecv)
	for {
		n, from, err := c.udp.ReadFromUDPAddrPort(buf)
		if err != nil {
			if c.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		dec.Reset()
		dec.Feed(buf[:n])
		minor := uint16(0)
		for {
			f, err := dec.Next()
			if err != nil {
				break
			}
			h := f.Header
			switch h.Command {
			case wire.CmdVersion:
				minor = uint16(h.Count)
			case wire.CmdSearch:
				ip := from.Addr().Unmap()
				if h.P1 != wire.BeaconIPUnknown {
					ip = netip.AddrFrom4([4]byte{byte(h.P1 >> 24), byte(h.P1 >> 16), byte(h.P1 >> 8), byte(h.P1)})
				}
				port := h.DataType
				if len(f.Payload) >= 2 {
					minor = uint16(f.Payload[0])<<8 | uint16(f.Payload[1])
				}
				if minor < 5 || port == 0 {
					port = uint16(c.cfg.ServerPort) // old servers do not send their port
				}
				c.found(h.P2, netip.AddrPortFrom(ip, port), "udp")
			case wire.CmdRsrvIsUp:
				ip := from.Addr().Unmap()
				if h.P2 != 0 {
					ip = netip.AddrFrom4([4]byte{byte(h.P2 >> 24), byte(h.P2 >> 16), byte(h.P2 >> 8), byte(h.P2)})
				}
				port := uint16(h.Count)
				if port == 0 {
					port = uint16(c.cfg.ServerPort)
				}
				c.beacon(netip.AddrPortFrom(ip, port), h.P1, h.DataType)
			case wire.CmdRepeaterConfirm:
				c.repeaterConfirmed()
			}
		}
	}
}
