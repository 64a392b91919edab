package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/pvhub/pvhub/ca/client"
	"github.com/pvhub/pvhub/ca/wire"
	"github.com/pvhub/pvhub/cmd/pvhub/catools"
)

// cmdMonitor is `pvhub monitor`: it subscribes to each PV and prints every
// update in camonitor's format until ctx ends (SIGINT or SIGTERM), then exits
// with status 0. A PV not found within -w is reported with camonitor's
// "*** Not connected (PV not found)" line on stdout and is still waited for;
// a PV whose server goes away gets a "*** disconnected" line, and its
// updates resume when it comes back.
func cmdMonitor(ctx context.Context, args []string, env catools.LookupEnv, stdout, stderr io.Writer) int {
	const cmd = "pvhub monitor"
	o, err := catools.ParseMonitor(args, env)
	if err != nil {
		return catools.ReportUsage(err, cmd, catools.MonitorUsage, stdout, stderr)
	}
	warn(stderr, cmd, o.Warnings)
	c, err := startClient(ctx, env, true)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", cmd, err)
		return catools.ExitFailure
	}
	m := &monitor{o: o, out: stdout, errw: stderr, wake: make(chan struct{}, 1), pvs: make([]monitorPV, len(o.PVs))}
	for i, name := range o.PVs {
		ch, err := c.Channel(name, client.ChannelOptions{
			OnConnection: func(conn client.Connection) { m.connection(i, conn) },
			OnError:      func(err error) { m.errorf("PV %s: %v", name, err) },
		})
		if err != nil {
			m.errorf("PV %s: %v", name, err)
			continue
		}
		m.pvs[i].ch = ch
	}
	m.run(ctx)
	// Closing the client stops every callback; what they queued is printed last.
	_ = c.Close()
	m.flush()
	return catools.ExitOK
}

// monitor is the state of a running `pvhub monitor`. The client's callbacks
// only queue work (lines to print, channels to subscribe); the goroutine in
// run does it, so that no callback ever blocks on stdout.
type monitor struct {
	o         *catools.MonitorOptions
	out, errw io.Writer
	wake      chan struct{}

	mu      sync.Mutex
	lines   []line // queued output, in the order the events happened
	pending []int  // indexes of PVs that connected and may need a subscription
	pvs     []monitorPV
}

// monitorPV is the state of one monitored PV; its fields other than ch are
// guarded by monitor.mu.
type monitorPV struct {
	ch        *client.Channel
	sub       *client.Subscription
	subType   wire.DBRType // the native type the subscription was made for
	connected bool
	seen      bool // connected at least once
	nElems    int  // the element count of the last update
}

// line is one queued line of output.
type line struct {
	text   string
	stderr bool
}

// queue adds output lines and wakes run. It never blocks.
func (m *monitor) queue(l ...line) {
	m.mu.Lock()
	m.lines = append(m.lines, l...)
	m.mu.Unlock()
	m.poke()
}

func (m *monitor) poke() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// errorf queues a message for stderr.
func (m *monitor) errorf(format string, args ...any) {
	m.queue(line{fmt.Sprintf(format, args...) + "\n", true})
}

// connection handles a connection event of PV i (on a client goroutine).
func (m *monitor) connection(i int, conn client.Connection) {
	m.mu.Lock()
	p := &m.pvs[i]
	switch {
	case conn.State == client.Connected && !p.connected:
		p.connected, p.seen = true, true
		m.pending = append(m.pending, i)
	case conn.State != client.Connected && p.connected:
		p.connected = false
		m.lines = append(m.lines, line{text: m.o.Format.Disconnected(m.o.PVs[i], p.nElems, time.Now())})
	}
	m.mu.Unlock()
	m.poke()
}

// update handles a monitor update of PV i (on a client goroutine).
func (m *monitor) update(i int, u *client.Update) {
	name := m.o.PVs[i]
	switch {
	case u.Err != nil:
		m.errorf("PV %s: monitor failed: %v", name, u.Err)
	case u.Status != wire.ECANormal || u.DBR == nil:
		m.errorf("PV %s: monitor update failed: %s", name, u.Status)
	default:
		text := m.o.Line(name, u.DBR)
		m.mu.Lock()
		m.pvs[i].nElems = u.DBR.Value.Len()
		m.lines = append(m.lines, line{text: text})
		m.mu.Unlock()
		m.poke()
	}
}

// run subscribes to PVs as they connect, prints the queued lines, and
// reports the PVs not found after the timeout, until ctx ends.
func (m *monitor) run(ctx context.Context) {
	var timeout <-chan time.Time
	if m.o.Timeout > 0 {
		t := time.NewTimer(m.o.Timeout)
		defer t.Stop()
		timeout = t.C
	}
	for {
		select {
		case <-ctx.Done():
			var subs []*client.Subscription
			m.mu.Lock()
			for i := range m.pvs {
				if s := m.pvs[i].sub; s != nil {
					subs = append(subs, s)
				}
			}
			m.mu.Unlock()
			for _, s := range subs {
				s.Cancel()
			}
			return
		case <-timeout:
			var ls []line
			m.mu.Lock()
			for i := range m.pvs {
				if !m.pvs[i].seen {
					ls = append(ls, line{text: m.o.Format.NotConnected(m.o.PVs[i])})
				}
			}
			m.mu.Unlock()
			m.queue(ls...)
		case <-m.wake:
			m.subscribe()
			m.flush()
		}
	}
}

// subscribe makes the subscriptions of the PVs that connected: one per PV,
// made again when a PV comes back with another native type, as camonitor
// does.
func (m *monitor) subscribe() {
	m.mu.Lock()
	pending := m.pending
	m.pending = nil
	m.mu.Unlock()
	for _, i := range pending {
		p := &m.pvs[i]
		in := p.ch.Info()
		if in.State != client.Connected {
			continue // it went away again; a later event brings it back
		}
		m.mu.Lock()
		old := p.sub
		same := old != nil && p.subType == in.Type
		m.mu.Unlock()
		if same {
			continue // the client re-establishes it by itself
		}
		if old != nil {
			old.Cancel()
		}
		sub, err := p.ch.Subscribe(client.SubscribeOptions{
			Type:  m.o.RequestType(in.Type),
			Count: m.o.RequestCount(in.Count),
			Mask:  m.o.Mask,
		}, func(u *client.Update) { m.update(i, u) })
		if err != nil {
			m.errorf("PV %s: %s", m.o.PVs[i], describe(context.Background(), "subscribe", err, 0))
			sub = nil
		}
		m.mu.Lock()
		p.sub, p.subType = sub, in.Type
		m.mu.Unlock()
	}
}

// flush prints the queued lines.
func (m *monitor) flush() {
	m.mu.Lock()
	ls := m.lines
	m.lines = nil
	m.mu.Unlock()
	for _, l := range ls {
		if l.stderr {
			fmt.Fprint(m.errw, l.text)
		} else {
			fmt.Fprint(m.out, l.text)
		}
	}
}
