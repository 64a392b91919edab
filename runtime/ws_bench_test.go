package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/pvhub/pvhub/actors"
	"github.com/pvhub/pvhub/ca/catest"
	"github.com/pvhub/pvhub/ca/client"
	"github.com/pvhub/pvhub/ca/server"
	"github.com/pvhub/pvhub/ca/wire"
	"github.com/pvhub/pvhub/plugins"
	wstransport "github.com/pvhub/pvhub/transports/websocket"
)

// The WebSocket benchmarks run the relay with the WebSocket transport either
// in this process (the transport's Events called straight from the subscriber
// actor's sender) or as a plugin process (the wsplugin binary, over the gRPC
// stream), and browser stand-ins on the ophyd-websocket endpoint. Everything
// runs on 127.0.0.1 on free ports, in one machine: the clients' reading and
// parsing shares the CPUs with pvhub.

var (
	wsPluginOnce sync.Once
	wsPluginPath string
	wsPluginErr  error
)

// wsPlugin builds the WebSocket transport's plugin binary once per test process.
func wsPlugin(b testing.TB) string {
	b.Helper()
	wsPluginOnce.Do(func() {
		dir, err := os.MkdirTemp("", "pvhub-wsplugin")
		if err != nil {
			wsPluginErr = err
			return
		}
		wsPluginPath = filepath.Join(dir, "wsplugin")
		out, err := exec.Command("go", "build", "-o", wsPluginPath, "github.com/pvhub/pvhub/transports/websocket/internal/wsplugin").CombinedOutput()
		if err != nil {
			wsPluginErr = fmt.Errorf("%v: %s", err, out)
		}
	})
	if wsPluginErr != nil {
		b.Fatalf("building the websocket plugin: %v", wsPluginErr)
	}
	return wsPluginPath
}

// wsBench is a runtime with the relay and the WebSocket transport, and a CA client of the relay.
type wsBench struct {
	rt     *Runtime
	addr   string         // the WebSocket listener
	ca     *client.Client // a CA client of the relay's server
	values atomic.Int64   // in-process only: Value events handed to the transport
}

// startWSBench starts the runtime and the WebSocket transport, in-process or as a plugin.
func startWSBench(b *testing.B, plugin bool, maxPVs int) *wsBench {
	b.Helper()
	port := catest.FreePort(b)
	addr := "127.0.0.1:" + strconv.Itoa(catest.FreePort(b))
	wsOpts := map[string]any{"listen": addr}
	opts := Options{
		Relay:  RelayOptions{Enabled: true, Prefix: "RELAY:", MaxPVs: maxPVs, MaxElements: 1000},
		Server: server.Config{Port: port, BeaconPort: catest.FreePort(b), Logger: slog.New(slog.DiscardHandler)},
		Client: client.Config{NoRepeater: true, ServerPort: catest.FreePort(b)},
	}
	if plugin {
		bin := wsPlugin(b)
		opts.Transports = []TransportOptions{{Name: "websocket", Command: func() *exec.Cmd { return exec.Command(bin) }, Options: wsOpts}}
	}
	rt, err := New(opts)
	if err != nil {
		b.Fatal(err)
	}
	if err := rt.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = rt.Close() })
	w := &wsBench{rt: rt, addr: addr}
	if !plugin {
		// In-process host adapter: the same subscriber actor and Host as a plugin's,
		// with Deliver calling the transport's Events directly.
		tr := wstransport.New()
		root := rt.system.Root
		sub := root.Spawn(actors.NewSubscriber(actors.SubscriberConfig{Name: "websocket", Router: rt.router,
			Logger: slog.New(slog.DiscardHandler), Dispatcher: rt.dispatch,
			Deliver: func(batch []plugins.Event) error {
				n := 0
				for _, e := range batch {
					if _, ok := e.(plugins.Value); ok {
						n++
					}
				}
				w.values.Add(int64(n))
				tr.Events(batch)
				return nil
			}}))
		err := tr.Start(context.Background(), plugins.Config{Name: "websocket", Options: wsOpts, Logger: slog.New(slog.DiscardHandler)},
			&pluginHost{root: root, sub: sub})
		if err != nil {
			_ = root.StopFuture(sub).Wait()
			b.Fatal(err)
		}
		b.Cleanup(func() {
			_ = tr.Close()
			_ = root.StopFuture(sub).Wait()
		})
	}
	c, err := client.New(client.Config{AddrList: []netip.AddrPort{netip.AddrPortFrom(client.Loopback, uint16(port))}, NoRepeater: true})
	if err != nil {
		b.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	w.ca = c
	return w
}

// cpuTime returns the CPU time used so far by this process and by the
// transport's plugin process, if any.
func (w *wsBench) cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	d := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	if pid := w.rt.TransportPID("websocket"); pid != 0 {
		if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil {
			s := string(b)
			if i := strings.LastIndexByte(s, ')'); i >= 0 {
				f := strings.Fields(s[i+1:]) // f[0] is field 3 (state); utime and stime are fields 14 and 15
				if len(f) > 12 {
					ut, _ := strconv.ParseInt(f[11], 10, 64)
					st, _ := strconv.ParseInt(f[12], 10, 64)
					d += time.Duration(ut+st) * time.Second / 100 // USER_HZ
				}
			}
		}
	}
	return d
}

// wsReader is a browser stand-in: it subscribes (ophyd dialect) to a list of
// PVs and records, per PV, the latest value received, with a cheap parse of
// the value messages only.
type wsReader struct {
	conn   *websocket.Conn
	pvs    map[string]int
	last   []atomic.Int64 // latest value per PV (values are integers); -1 before any
	values atomic.Int64   // value messages received
	// onValue, if set, is called on the reader goroutine for each value message.
	onValue func(pv int, v float64, at time.Time)
	done    chan struct{}
}

func dialWSReader(b *testing.B, addr string, names []string, onValue func(int, float64, time.Time)) *wsReader {
	b.Helper()
	ctx := context.Background()
	var conn *websocket.Conn
	deadline := time.Now().Add(10 * time.Second)
	for {
		var err error
		conn, _, err = websocket.Dial(ctx, "ws://"+addr+wstransport.OphydPath, nil)
		if err == nil {
			break
		}
		if time.Now().After(deadline) { // a plugin may still be starting
			b.Fatalf("websocket dial: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	conn.SetReadLimit(-1)
	r := &wsReader{conn: conn, pvs: map[string]int{}, last: make([]atomic.Int64, len(names)), onValue: onValue, done: make(chan struct{})}
	for i, n := range names {
		r.pvs[n] = i
		r.last[i].Store(-1)
	}
	go r.run()
	b.Cleanup(func() {
		_ = conn.Close(websocket.StatusNormalClosure, "")
		_ = conn.CloseNow()
		<-r.done
	})
	msg, _ := json.Marshal(map[string]any{"action": "subscribe", "pv": names})
	if err := conn.Write(ctx, websocket.MessageText, msg); err != nil {
		b.Fatal(err)
	}
	return r
}

var (
	pvKey    = []byte(`{"pv":"`)
	valueKey = []byte(`,"value":`)
)

func (r *wsReader) run() {
	defer close(r.done)
	var buf bytes.Buffer
	for {
		_, rd, err := r.conn.Reader(context.Background())
		if err != nil {
			return
		}
		buf.Reset()
		if _, err := buf.ReadFrom(rd); err != nil {
			return
		}
		at := time.Now()
		data := buf.Bytes()
		// {"pv":"NAME","value":V,"timestamp":...}: a value message (meta starts with sub_type).
		if !bytes.HasPrefix(data, pvKey) {
			continue
		}
		rest := data[len(pvKey):]
		q := bytes.IndexByte(rest, '"')
		if q < 0 {
			continue
		}
		idx, ok := r.pvs[string(rest[:q])]
		rest = rest[q+1:]
		if !ok || !bytes.HasPrefix(rest, valueKey) {
			continue
		}
		rest = rest[len(valueKey):]
		end := bytes.IndexAny(rest, ",}")
		if end < 0 {
			continue
		}
		v, err := strconv.ParseFloat(string(rest[:end]), 64)
		if err != nil {
			continue
		}
		r.values.Add(1)
		r.last[idx].Store(int64(v))
		if r.onValue != nil {
			r.onValue(idx, v, at)
		}
	}
}

// waitAll waits until every reader has seen want(pv) as the latest value of every PV.
func waitAll(b *testing.B, readers []*wsReader, want func(pv int) int64, timeout time.Duration) {
	b.Helper()
	deadline := time.Now().Add(timeout)
	for _, r := range readers {
		for i := range r.last {
			for r.last[i].Load() != want(i) {
				if time.Now().After(deadline) {
					b.Fatalf("pv %d: latest value %d, want %d", i, r.last[i].Load(), want(i))
				}
				select {
				case <-r.done:
					b.Fatalf("a websocket client was closed (pv %d at %d, want %d)", i, r.last[i].Load(), want(i))
				case <-time.After(200 * time.Microsecond):
				}
			}
		}
	}
}

// sleepPrecise sleeps for d with nanosleep: time.Sleep wakes on a ~1 ms
// granularity here, which would turn a paced 10,000 puts/s into bursts of ten.
func sleepPrecise(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	_ = syscall.Nanosleep(&ts, nil)
}

func dblv(f float64) wire.Value { return wire.Value{Type: wire.DBRDouble, Doubles: []float64{f}} }

// BenchmarkWebSocketFanout measures the PV updates per second delivered to
// WebSocket clients in aggregate: ophyd clients each subscribed to the same
// 100 relay PVs; each iteration writes 100,000 updates (1,000 rounds over the
// 100 PVs) with Runtime.Put from 16 goroutines (each owning some PVs, so every
// PV's values increase; paced feeds write 3 s of puts instead), and ends when
// every client has seen the final value
// of every PV (the last value is never coalesced away).
//
// The sub-benchmarks are <transport>/<clients>/<feed>: the transport in-process
// or as a plugin; 10 or 100 clients; the puts as fast as Runtime.Put goes
// (flood) or paced so that clients × puts/s is 200,000 (offered 200k/s).
//
// updates/s counts the value messages the clients received;
// coalesced-fraction is the share of the clients × puts updates that
// coalescing replaced by newer ones; cpu-cores is the CPU time of this process
// and the plugin's over the elapsed time (the clients and the writers run in
// this process too); in-process, transport-events/s counts the Value events
// the transport received (what the subscriber actor did not coalesce).
func BenchmarkWebSocketFanout(b *testing.B) {
	const pvs, rounds, writers, pacedSeconds = 100, 1000, 16, 3
	for _, mode := range []struct {
		name   string
		plugin bool
	}{{"inproc", false}, {"plugin", true}} {
		for _, clients := range []int{10, 100} {
			for _, feed := range []string{"flood", "offered200k"} {
				b.Run(fmt.Sprintf("%s/clients=%d/%s", mode.name, clients, feed), func(b *testing.B) {
					rate, n := 0.0, rounds // puts per second (0: as fast as possible), rounds per iteration
					if feed == "offered200k" {
						rate = 200_000 / float64(clients)
						n = min(rounds, int(rate*pacedSeconds)/pvs)
					}
					benchFanout(b, mode.plugin, clients, pvs, n, writers, rate)
				})
			}
		}
	}
}

func benchFanout(b *testing.B, plugin bool, clients, pvs, rounds, writers int, rate float64) {
	w := startWSBench(b, plugin, pvs+10)
	ctx := context.Background()
	names := make([]string, pvs)
	for i := range names {
		names[i] = fmt.Sprintf("RELAY:fan%03d_f1", i)
		if err := w.rt.Put(ctx, names[i], dblv(0)); err != nil {
			b.Fatal(err)
		}
	}
	readers := make([]*wsReader, clients)
	for i := range readers {
		readers[i] = dialWSReader(b, w.addr, names, nil)
	}
	waitAll(b, readers, func(int) int64 { return 0 }, 30*time.Second)
	count := func() (n int64) {
		for _, r := range readers {
			n += r.values.Load()
		}
		return n
	}
	var elapsed, putTime, cpu time.Duration
	var delivered, events int64
	b.ResetTimer()
	for it := range b.N {
		base := int64(it * rounds)
		before, evBefore, cpuBefore := count(), w.values.Load(), w.cpuTime()
		start := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for g := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				v := dblv(0)
				for r := range int64(rounds) {
					for i := g; i < pvs; i += writers {
						if rate > 0 { // the writers share the rate: put r*pvs+i is due at (r*pvs+i)/rate
							due := start.Add(time.Duration(float64(int(r)*pvs+i) / rate * float64(time.Second)))
							if d := time.Until(due); d > 0 {
								sleepPrecise(d)
							}
						}
						v.Doubles[0] = float64(base + r + 1)
						if err := w.rt.Put(ctx, names[i], v); err != nil {
							errs <- err
							return
						}
					}
				}
			}()
		}
		wg.Wait()
		putTime += time.Since(start)
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
		waitAll(b, readers, func(int) int64 { return base + int64(rounds) }, 60*time.Second)
		elapsed += time.Since(start)
		cpu += w.cpuTime() - cpuBefore
		delivered += count() - before
		events += w.values.Load() - evBefore
	}
	b.StopTimer()
	puts := float64(b.N * rounds * pvs)
	b.ReportMetric(float64(delivered)/elapsed.Seconds(), "updates/s")
	b.ReportMetric(puts/putTime.Seconds(), "puts/s")
	b.ReportMetric(1-float64(delivered)/(puts*float64(clients)), "coalesced-fraction")
	b.ReportMetric(cpu.Seconds()/elapsed.Seconds(), "cpu-cores")
	if !plugin {
		b.ReportMetric(float64(events)/elapsed.Seconds(), "transport-events/s")
	}
}

// BenchmarkWebSocketLatency measures the latency from a CA client's put
// (WRITE, PutNoWait) of a relay PV to the value message at an ophyd client
// subscribed to it, at 10,000 puts per second (evenly spaced) for 3 s per
// iteration. The value is the put's sequence number, which indexes the send
// times. A put whose value was coalesced away counts until the first message
// carrying it or a newer value: p50-ms, p99-ms, p99.9-ms and max-ms are over
// every put; p99-delivered-ms is over the delivered values only.
func BenchmarkWebSocketLatency(b *testing.B) {
	const rate = 10_000
	const dur = 3 * time.Second
	const n = int(rate * dur / time.Second)
	for _, mode := range []struct {
		name   string
		plugin bool
	}{{"inproc", false}, {"plugin", true}} {
		b.Run(mode.name, func(b *testing.B) {
			w := startWSBench(b, mode.plugin, 10)
			ctx := context.Background()
			const name = "RELAY:lat_f1"
			if err := w.rt.Put(ctx, name, dblv(0)); err != nil {
				b.Fatal(err)
			}
			ch, err := w.ca.Channel(name, client.ChannelOptions{})
			if err != nil {
				b.Fatal(err)
			}
			if err := ch.Put(ctx, dblv(0)); err != nil { // connected, and the path warmed
				b.Fatal(err)
			}
			sent := make([]atomic.Int64, n+1) // send time (UnixNano) per sequence number, per iteration
			var base atomic.Int64             // sequence offset of the current iteration
			var mu sync.Mutex
			var lats, own []time.Duration // every put's latency; the delivered values' own latency
			next := 1                     // the first put not yet reflected at the client
			r := dialWSReader(b, w.addr, []string{name}, func(_ int, v float64, at time.Time) {
				seq := int(int64(v) - base.Load())
				if seq < 1 || seq > n {
					return
				}
				mu.Lock()
				defer mu.Unlock()
				own = append(own, at.Sub(time.Unix(0, sent[seq].Load())))
				for ; next <= seq; next++ { // put next was coalesced into this newer value, or is it
					lats = append(lats, at.Sub(time.Unix(0, sent[next].Load())))
				}
			})
			waitAll(b, []*wsReader{r}, func(int) int64 { return 0 }, 30*time.Second)
			var all, allOwn []time.Duration
			var puts int
			var putTime time.Duration
			b.ResetTimer()
			for it := range b.N {
				off := int64(it) * int64(n)
				for i := range sent {
					sent[i].Store(0)
				}
				mu.Lock()
				base.Store(off)
				next = 1
				mu.Unlock()
				v := dblv(0)
				start := time.Now()
				for i := 1; i <= n; i++ {
					if d := time.Until(start.Add(time.Duration(i) * time.Second / rate)); d > 0 {
						sleepPrecise(d)
					}
					sent[i].Store(time.Now().UnixNano())
					v.Doubles[0] = float64(off + int64(i))
					if err := ch.PutNoWait(ctx, v); err != nil {
						b.Fatal(err)
					}
				}
				putTime += time.Since(start)
				puts += n
				waitAll(b, []*wsReader{r}, func(int) int64 { return off + int64(n) }, 30*time.Second)
				mu.Lock()
				all = append(all, lats...)
				allOwn = append(allOwn, own...)
				lats, own = lats[:0], own[:0]
				mu.Unlock()
			}
			b.StopTimer()
			if len(all) == 0 {
				b.Fatal("no latency measured")
			}
			slices.Sort(all)
			slices.Sort(allOwn)
			q := func(d []time.Duration, p float64) float64 {
				return float64(d[min(len(d)-1, int(p*float64(len(d))))]) / float64(time.Millisecond)
			}
			b.ReportMetric(q(all, 0.50), "p50-ms")
			b.ReportMetric(q(all, 0.99), "p99-ms")
			b.ReportMetric(q(all, 0.999), "p99.9-ms")
			b.ReportMetric(q(all, 1), "max-ms")
			b.ReportMetric(q(allOwn, 0.99), "p99-delivered-ms")
			b.ReportMetric(float64(puts)/putTime.Seconds(), "puts/s")
			b.ReportMetric(1-float64(len(allOwn))/float64(puts), "coalesced-fraction")
		})
	}
}
