package mqtt

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pvhub/pvhub/plugins"
	"github.com/pvhub/pvhub/plugins/plugintest"
)

// TestEmbeddedSubscribeDuringUpdates: clients subscribe (to the exact topic, or with a
// wildcard) while a PV updates continuously; none ever gets a state older than one it already
// received (the retained state sent at subscription never overtakes a newer live message).
func TestEmbeddedSubscribeDuringUpdates(t *testing.T) {
	e := startEnv(t, nil)
	topic := "pvhub/" + pvDouble
	watcher := e.client("watcher")
	watcher.mustSubscribe(topic) // keeps the PV published between the clients below
	watcher.next("the first state", onTopic(topic))

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := uint32(1); ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			e.h.Publish(okValue(pvDouble, plugins.Float64s(float64(i)), 2000+i))
			runtime.Gosched()
		}
	}()
	defer func() { close(stop); wg.Wait() }()

	const rounds, perRound = 60, 4
	for r := range rounds {
		filter := topic
		if r%2 == 1 {
			filter = "pvhub/#" // a wildcard holds back every retained state
		}
		var cwg sync.WaitGroup
		errs := make(chan error, perRound)
		for k := range perRound {
			cwg.Add(1)
			go func() {
				defer cwg.Done()
				c, err := connectClient(e.tr.Addr(), fmt.Sprintf("c-%d-%d", r, k))
				if err != nil {
					errs <- err
					return
				}
				defer c.Close()
				if err := c.subscribe(filter); err != nil {
					errs <- err
					return
				}
				last := -1.0
				for range 5 {
					m, err := c.await(context.Background(), waitTimeout, onTopic(topic))
					if err != nil {
						errs <- err
						return
					}
					s, _ := m.json()["seconds"].(float64)
					if s < last {
						errs <- fmt.Errorf("client %s got the state of second %v after that of %v (retain %t)", c.id, s, last, m.retain)
						return
					}
					last = s
				}
			}()
		}
		cwg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	}
}

// TestEmbeddedSlowSubscriber: a subscriber that stops reading makes the broker drop messages
// for it (its queue is full); once it reads again it still ends with each PV's last state,
// which the transport published again.
func TestEmbeddedSlowSubscriber(t *testing.T) {
	const pvs = 100
	tr := newTransport()
	h := plugintest.NewHarness(tr)
	names := make([]any, pvs)
	for i := range pvs {
		n := fmt.Sprintf("SLOW:%03d", i)
		names[i] = n
		h.AddPV(plugins.Metadata{Name: n, Type: plugins.TypeDouble, Count: 1}, okValue(n, plugins.Float64s(0), 1000), true)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := h.Start(ctx, plugins.Config{Name: "mqtt", Logger: slog.New(slog.DiscardHandler),
		Options: map[string]any{"listen": "127.0.0.1:0", "publish": names}}); err != nil {
		t.Fatal(err)
	}
	defer h.Close()

	// A subscriber with a small receive buffer that does not read yet.
	d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		if err != nil {
			return err
		}
		return serr
	}}
	conn, err := d.Dial("tcp", tr.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var p []byte
	p = appendStr(p, "MQTT")
	p = append(p, 4, 0x02, 0, 60)
	p = appendStr(p, "slow")
	pkt := appendPacket(nil, 0x10, p)
	s := appendStr([]byte{0, 1}, "pvhub/#")
	pkt = appendPacket(pkt, 0x82, append(s, 0))
	if _, err := conn.Write(pkt); err != nil {
		t.Fatal(err)
	}

	// Rounds of updates, each published before the next, until the broker drops some.
	deadline := time.Now().Add(2 * time.Minute)
	round := 0
	for tr.emb.drops() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no message dropped after %d rounds", round)
		}
		round++
		pub0, coal0, _ := tr.stats()
		batch := make([]plugins.Event, pvs)
		for i := range batch {
			batch[i] = okValue(names[i].(string), plugins.Float64s(float64(round)), uint32(2000+round))
		}
		h.Publish(batch...)
		for {
			// Each update is published, or merged into a state published later.
			pub, coal, _ := tr.stats()
			if (pub-pub0)+(coal-coal0) >= pvs || time.Now().After(deadline) {
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
	final := make([]plugins.Event, pvs)
	for i := range final {
		final[i] = okValue(names[i].(string), plugins.Float64s(-1), uint32(9000))
	}
	h.Publish(final...)

	// Read again: every PV ends at -1.
	r := bufio.NewReaderSize(conn, 1<<16)
	last := map[string]float64{}
	done := 0
	_ = conn.SetReadDeadline(time.Now().Add(time.Minute))
	var buf []byte
	for done < pvs {
		typ, body, err := readPacket(r, buf)
		if err != nil {
			t.Fatalf("reading (%d of %d PVs at their last value): %v", done, pvs, err)
		}
		buf = body[:0]
		if typ&0xf0 != 0x30 || len(body) < 2 {
			continue
		}
		n := int(binary.BigEndian.Uint16(body))
		topic := string(body[2 : 2+n])
		var v map[string]any
		if json.Unmarshal(body[2+n:], &v) != nil {
			continue
		}
		f, _ := v["value"].(float64)
		if f == -1 && last[topic] != -1 {
			done++
		}
		last[topic] = f
	}
	_, _, resent := tr.stats()
	if resent == 0 {
		t.Error("nothing was published again after the drops")
	}
	t.Logf("%d rounds until the first drop; %d dropped, %d published again", round, tr.emb.drops(), resent)
}
