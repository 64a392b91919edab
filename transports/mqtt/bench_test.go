package mqtt

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pvhub/pvhub/plugins"
	"github.com/pvhub/pvhub/plugins/plugintest"
)

// BenchmarkPublish measures PV updates published to MQTT through the embedded broker: the
// harness publishes rounds of values of pvs PVs (one op is one PV update), and one
// subscriber on <prefix>/# (a minimal MQTT 3.1.1 reader over TCP) counts the messages it
// receives. The harness stays at most two rounds ahead of what the subscriber received, so
// that the figure is the rate of updates the transport and the broker carry one message per
// update, not the rate of a producer whose updates mostly coalesce (see
// BenchmarkPublishFlood). Reported: updates/s (PV updates in, through to the subscriber),
// msgs/s (state messages the subscriber received), coalesced/op (the share of updates merged
// into a newer state before it was published), and drops (messages the broker could not
// queue for the subscriber, published again later).
//
//	go test -run '^$' -bench 'Publish' -benchtime 1000000x ./transports/mqtt/
func BenchmarkPublish(b *testing.B) {
	for _, pvs := range []int{100, 1000} {
		for _, qos := range []int{0, 1} {
			b.Run(fmt.Sprintf("pvs=%d/qos=%d", pvs, qos), func(b *testing.B) { benchPublish(b, pvs, qos, 2) })
		}
	}
}

// BenchmarkPublishFlood is BenchmarkPublish with the harness publishing as fast as it can:
// most updates coalesce in the transport (coalesced/op), memory stays bounded by the number of
// PVs, and the subscriber ends with each PV's last value.
func BenchmarkPublishFlood(b *testing.B) {
	for _, pvs := range []int{100, 1000} {
		b.Run(fmt.Sprintf("pvs=%d", pvs), func(b *testing.B) { benchPublish(b, pvs, 0, 0) })
	}
}

// benchPublish runs the benchmark; window is how many rounds the harness may be ahead of
// the subscriber (0: no limit).
func benchPublish(b *testing.B, pvs, qos, window int) {
	names := make([]string, pvs)
	publish := make([]any, 0, pvs+1)
	tr := newTransport()
	h := plugintest.NewHarness(tr)
	meta := plugins.Metadata{Type: plugins.TypeDouble, Count: 1, Units: "mm", Precision: 3,
		Display: plugins.Range{Low: -10, High: 10}}
	for i := range names {
		names[i] = fmt.Sprintf("BENCH:pv:%04d", i)
		m := meta
		m.Name = names[i]
		h.AddPV(m, okValue(names[i], plugins.Float64s(0), 1000), true)
		publish = append(publish, names[i])
	}
	const marker = "BENCH:marker"
	h.AddPV(plugins.Metadata{Name: marker, Type: plugins.TypeDouble, Count: 1}, okValue(marker, plugins.Float64s(0), 1000), true)
	publish = append(publish, marker)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := h.Start(ctx, plugins.Config{Name: "mqtt", Logger: slog.New(slog.DiscardHandler),
		Options: map[string]any{"listen": "127.0.0.1:0", "publish": publish, "qos": qos}})
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	sub, err := dialCounter(tr.Addr(), "pvhub/#", "pvhub/"+marker, byte(qos))
	if err != nil {
		b.Fatal(err)
	}
	defer sub.close()

	var seq float64
	mark := func() {
		n := sub.markers.Load()
		seq++
		h.Publish(okValue(marker, plugins.Float64s(seq), 2000))
		deadline := time.Now().Add(time.Minute)
		for sub.markers.Load() == n {
			if time.Now().After(deadline) {
				b.Fatalf("the marker did not arrive (%d messages)", sub.msgs.Load())
			}
			time.Sleep(100 * time.Microsecond)
		}
	}
	mark() // every PV's first state is out
	pub0, coal0, _ := tr.stats()
	drop0 := tr.emb.drops()
	msgs0 := sub.msgs.Load()
	batch := make([]plugins.Event, pvs)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for done, round := 0, 0; done < b.N; round++ {
		for window > 0 && sub.msgs.Load()-msgs0 < int64(done-window*pvs) {
			select {
			case <-sub.progress:
			case <-time.After(time.Millisecond):
			}
		}
		n := min(pvs, b.N-done)
		for i := range n {
			batch[i] = okValue(names[i], plugins.Float64s(float64(round)), uint32(3000+round))
		}
		h.Publish(batch[:n]...)
		done += n
	}
	mark()
	elapsed := time.Since(start)
	b.StopTimer()
	pub, coal, resent := tr.stats()
	msgs := sub.msgs.Load() - msgs0
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "updates/s")
	b.ReportMetric(float64(msgs)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(coal-coal0)/float64(b.N), "coalesced/op")
	b.ReportMetric(float64(tr.emb.drops()-drop0), "drops")
	if testing.Verbose() {
		b.Logf("N=%d: %d states published, %d received, %d updates coalesced, %d resent, in %v",
			b.N, pub-pub0, msgs, coal-coal0, resent, elapsed)
	}
}

// counter is a minimal MQTT 3.1.1 subscriber that counts the PUBLISH packets it receives,
// and those on one topic (the marker).
type counter struct {
	conn     net.Conn
	progress chan struct{} // a token every 64 messages
	subacked chan error    // the SUBACK's verdict
	msgs     atomic.Int64
	markers  atomic.Int64
	done     chan struct{}
	once     sync.Once
}

func dialCounter(addr, filter, markerTopic string, qos byte) (*counter, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	// CONNECT: protocol MQTT level 4, clean session, keep-alive 60 s, client id "counter".
	var p []byte
	p = appendStr(p, "MQTT")
	p = append(p, 4, 0x02, 0, 60)
	p = appendStr(p, "counter")
	pkt := appendPacket(nil, 0x10, p)
	// SUBSCRIBE (packet id 1): filter at qos.
	s := []byte{0, 1}
	s = appendStr(s, filter)
	s = append(s, qos)
	pkt = appendPacket(pkt, 0x82, s)
	if _, err := conn.Write(pkt); err != nil {
		conn.Close()
		return nil, err
	}
	r := bufio.NewReaderSize(conn, 1<<18)
	// CONNACK, then SUBACK; PUBLISH packets may come before the SUBACK (MQTT 3.1.1 §3.8.4):
	// they are counted by read.
	typ, body, err := readPacket(r, nil)
	if err == nil && (typ&0xf0 != 0x20 || len(body) < 2 || body[1] != 0) {
		err = fmt.Errorf("unexpected answer to CONNECT %#x % x", typ, body)
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	c := &counter{conn: conn, done: make(chan struct{}), progress: make(chan struct{}, 1), subacked: make(chan error, 1)}
	go c.read(r, []byte(markerTopic))
	select {
	case err = <-c.subacked:
	case <-time.After(10 * time.Second):
		err = errors.New("no SUBACK")
	}
	if err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

func (c *counter) read(r *bufio.Reader, marker []byte) {
	defer close(c.done)
	var buf []byte
	for {
		typ, body, err := readPacket(r, buf)
		if err != nil {
			return
		}
		buf = body[:0]
		if typ&0xf0 == 0x90 {
			var err error
			if len(body) < 3 || body[len(body)-1] >= 0x80 {
				err = fmt.Errorf("subscription refused: % x", body)
			}
			c.subacked <- err
			continue
		}
		if typ&0xf0 != 0x30 || len(body) < 2 {
			continue
		}
		if c.msgs.Add(1)%64 == 0 {
			select {
			case c.progress <- struct{}{}:
			default:
			}
		}
		n := int(binary.BigEndian.Uint16(body))
		if 2+n <= len(body) && bytes.Equal(body[2:2+n], marker) {
			c.markers.Add(1)
		}
		if (typ>>1)&3 == 1 && 2+n+2 <= len(body) { // QoS 1: PUBACK
			id := body[2+n : 2+n+2]
			if _, err := c.conn.Write([]byte{0x40, 2, id[0], id[1]}); err != nil {
				return
			}
		}
	}
}

func (c *counter) close() {
	c.once.Do(func() {
		c.conn.Close()
		<-c.done
	})
}

func appendStr(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

func appendPacket(b []byte, typ byte, body []byte) []byte {
	b = append(b, typ)
	n := len(body)
	for {
		d := byte(n % 128)
		n /= 128
		if n > 0 {
			d |= 0x80
		}
		b = append(b, d)
		if n == 0 {
			break
		}
	}
	return append(b, body...)
}

// readPacket reads one MQTT packet: its first byte and its body (into buf's storage).
func readPacket(r *bufio.Reader, buf []byte) (byte, []byte, error) {
	typ, err := r.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	n, mul := 0, 1
	for i := 0; ; i++ {
		d, err := r.ReadByte()
		if err != nil {
			return 0, nil, err
		}
		n += int(d&0x7f) * mul
		mul *= 128
		if d&0x80 == 0 {
			break
		}
		if i == 3 {
			return 0, nil, errors.New("bad remaining length")
		}
	}
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	_, err = io.ReadFull(r, buf)
	return typ, buf, err
}
