package client

import (
	"errors"
	"net/netip"
	"time"

	"github.com/pvhub/pvhub/ca/repeater"

	"github.com/pvhub/pvhub/ca/wire"
)

const (
	// maxNamesPerPass bounds the searches sent in one pass; the rest follow at
	// once in the next pass, so a burst of new channels is paced.
	maxNamesPerPass = 2000
	// boostInterval is the shortest time between two search boosts caused by
	// beacons.
	boostInterval = 200 * time.Millisecond
	// maxBeaconServers bounds the beacon table.
	maxBeaconServers = 4096
)

// rttEstimator is libca's search round-trip estimate: the mean plus four mean
// deviations of the reply times, clamped to [32 ms, 30 s].
type rttEstimator struct {
	mean, dev float64 // seconds
}

func newRTT() rttEstimator { return rttEstimator{mean: 0.032} }

func (r *rttEstimator) add(d time.Duration) {
	s := d.Seconds()
	err := s - r.mean
	r.mean += err / 8
	if err < 0 {
		err = -err
	}
	r.dev += (err - r.dev) / 4
}

func (r *rttEstimator) estimate() time.Duration {
	e := r.mean + 4*r.dev
	e = max(min(e, 30), 0.032)
	return time.Duration(e * float64(time.Second))
}

// period returns the delay after the idx-th search of a channel: the estimate
// doubled idx times, capped at the maximum search period.
func (c *Client) period(idx int) time.Duration {
	d := c.rtte.estimate()
	for i := 0; i < idx && d < c.cfg.MaxSearchPeriod; i++ {
		d *= 2
	}
	return min(d, c.cfg.MaxSearchPeriod)
}

// searchLoop sends searches when they are due.
func (c *Client) searchLoop() {
	defer c.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		next := c.searchPass()
		d := time.Hour
		if !next.IsZero() {
			d = max(time.Until(next), 0)
		}
		timer.Reset(d)
		select {
		case <-c.ctx.Done():
			return
		case <-c.wake:
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
		case <-timer.C:
		}
	}
}

// searchPass sends the due searches and returns when the next one is due.
func (c *Client) searchPass() time.Time {
	now := time.Now()
	var names []*Channel
	var next time.Time
	c.mu.Lock()
	for _, ch := range c.chans {
		if !ch.searching {
			continue
		}
		if !ch.nextSrch.After(now) && len(names) < maxNamesPerPass {
			names = append(names, ch)
			ch.sentAt = now
			ch.nextSrch = now.Add(c.period(ch.searchIdx))
			ch.searchIdx++
		}
		if next.IsZero() || ch.nextSrch.Before(next) {
			next = ch.nextSrch
		}
	}
	if len(names) == maxNamesPerPass {
		next = now
	}
	seq := c.seq
	c.seq++
	nameSrv := c.nameSrv
	c.mu.Unlock()
	if len(names) == 0 {
		return next
	}
	for _, dgram := range searchDatagrams(names, seq) {
		for _, to := range c.dests {
			if _, err := c.udp.WriteToUDPAddrPort(dgram, to); err != nil && c.ctx.Err() == nil {
				c.log.Debug("search send failed", "to", to.String(), "error", err)
			}
		}
		for _, ns := range nameSrv {
			ns.sendSearch(dgram)
		}
	}
	return next
}

// searchDatagrams packs VERSION + SEARCH messages into datagrams of at most
// wire.MaxUDPSend bytes.
func searchDatagrams(chans []*Channel, seq uint32) [][]byte {
	var out [][]byte
	head := (&wire.Version{DataType: 1, Minor: wire.MinorVersion, Seq: seq}).AppendTo(nil)
	d := append([]byte(nil), head...)
	for _, ch := range chans {
		m := (&wire.SearchRequest{Reply: wire.SearchDontReply, Minor: wire.MinorVersion, SearchID: ch.cid, Name: ch.name}).AppendTo(nil)
		if len(d)+len(m) > wire.MaxUDPSend && len(d) > len(head) {
			out = append(out, d)
			d = append([]byte(nil), head...)
		}
		d = append(d, m...)
	}
	if len(d) > len(head) {
		out = append(out, d)
	}
	return out
}

// beaconState tracks one server's beacons, as libca does, to notice restarts.
type beaconState struct {
	id     uint32
	at     time.Time
	period time.Duration
}

// beacon processes a beacon from the server at addr. A server not seen before,
// a beacon ID that went backwards (a restarted server counts from 0 again) or an
// interval much shorter than usual (a restarted server beacons fast) is an
// anomaly: unresolved channels are searched again at once.
func (c *Client) beacon(addr netip.AddrPort, id uint32, minor uint16) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.beacons[addr]
	anomaly := false
	switch {
	case b == nil:
		if len(c.beacons) >= maxBeaconServers {
			c.pruneBeaconsLocked(now)
		}
		c.beacons[addr] = &beaconState{id: id, at: now}
		anomaly = true
	default:
		interval := now.Sub(b.at)
		if minor >= 10 && id == b.id {
			return // a duplicate through a second route
		}
		if minor >= 10 && id < b.id && b.id-id < 1<<31 {
			anomaly = true // counting from the start again
		}
		if b.period > 0 && (interval*5 <= b.period*4 || interval*4 >= b.period*13) {
			anomaly = true
		}
		if b.period == 0 || anomaly {
			b.period = interval
		} else {
			b.period = (interval + 7*b.period) / 8
		}
		b.id, b.at = id, now
	}
	if anomaly {
		c.boostLocked(now)
	}
}

func (c *Client) pruneBeaconsLocked(now time.Time) {
	for a, b := range c.beacons {
		if now.Sub(b.at) > 2*c.cfg.MaxSearchPeriod {
			delete(c.beacons, a)
		}
	}
	if len(c.beacons) >= maxBeaconServers {
		clear(c.beacons)
	}
}

// boostLocked makes every unresolved channel search again soon; c.mu held.
func (c *Client) boostLocked(now time.Time) {
	if now.Sub(c.lastBoost) < boostInterval {
		return
	}
	c.lastBoost = now
	n := 0
	for _, ch := range c.chans {
		if ch.searching && ch.nextSrch.Sub(now) > c.rtte.estimate() {
			ch.nextSrch = now
			ch.searchIdx = min(ch.searchIdx, 1)
			n++
		}
	}
	if n > 0 {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

// registerLoop registers the search socket with the CA repeater, so that
// beacons reach this client, once a second until the repeater confirms. When
// no repeater holds the port, the client runs one itself (as libca does when
// it cannot spawn caRepeater); it serves every CA client on the host until
// this client closes.
func (c *Client) registerLoop() {
	defer c.wg.Done()
	to := netip.AddrPortFrom(Loopback, uint16(c.cfg.RepeaterPort))
	if rep, err := repeater.New(repeater.Config{Addr: to, Logger: c.log}); err == nil {
		if err := rep.Start(c.ctx); err == nil {
			c.log.Info("started an embedded CA repeater", "address", to.String())
			defer rep.Close()
		} else if !errors.Is(err, repeater.ErrInUse) {
			c.log.Warn("cannot start a CA repeater", "address", to.String(), "error", err)
		}
	}
	msg := (&wire.RepeaterRegister{IP: 0x7F000001}).AppendTo(nil)
	t := time.NewTimer(0)
	defer t.Stop()
	for tries := 0; ; tries++ {
		select {
		case <-c.ctx.Done():
			return
		case <-c.confirmed:
			<-c.ctx.Done() // keep an embedded repeater running until Close
			return
		case <-t.C:
		}
		if _, err := c.udp.WriteToUDPAddrPort(msg, to); err != nil && c.ctx.Err() == nil {
			c.log.Debug("repeater registration failed", "error", err)
		}
		if tries == 10 {
			c.log.Info("no CA repeater answers; servers that restart will be found by the search schedule alone", "repeater", to.String())
		}
		t.Reset(time.Second)
	}
}

// repeaterConfirmed records the repeater's confirmation.
func (c *Client) repeaterConfirmed() {
	c.confirmOnce.Do(func() { close(c.confirmed) })
}
