package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
	goruntime "runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/coder/websocket"

	"github.com/pvhub/pvhub/actors"
	"github.com/pvhub/pvhub/ca/client"
	"github.com/pvhub/pvhub/ca/repeater"
	"github.com/pvhub/pvhub/ca/server"
	"github.com/pvhub/pvhub/ca/wire"
	"github.com/pvhub/pvhub/runtime"
	wstransport "github.com/pvhub/pvhub/transports/websocket"
)

// waitFor polls cond until it holds or timeout passes.
func waitFor(ctx context.Context, what string, timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v waiting for %s", timeout, what)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

func relayNames(n int, stem string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("RELAY:%s%05d_f1", stem, i)
	}
	return out
}

// RelayFanout updates pvs relay PVs at rate Hz each for d, with clients CA
// clients monitoring every one of them: pvhub's own, or, when libcaDriver is
// the path of the C test driver (package ca/catest/cadriver), that many
// processes of it, each a libca client.
func RelayFanout(ctx context.Context, pvs, clients int, rate float64, d time.Duration, libcaDriver string) (Result, error) {
	kind := "pvhub CA clients"
	if libcaDriver != "" {
		kind = "libca clients (the C driver)"
	}
	res := Result{Scenario: "relay-fanout", Params: fmt.Sprintf("%d PVs at %g Hz, %d %s, %v", pvs, rate, clients, kind, d)}
	rt, port, err := relay(ctx, pvs+10, nil)
	if err != nil {
		return res, err
	}
	defer rt.Close()
	names := relayNames(pvs, "fan")
	for _, n := range names {
		if err := rt.Put(ctx, n, dbl(0)); err != nil {
			return res, err
		}
	}
	var received atomic.Int64
	clientCPU := func() time.Duration { return 0 }
	if libcaDriver != "" {
		stop, cpu, err := libcaMonitors(ctx, libcaDriver, port, clients, names, &received)
		if err != nil {
			return res, err
		}
		defer stop()
		clientCPU = cpu
	}
	for range clients * btoi(libcaDriver == "") {
		c, err := caClient(ctx, port)
		if err != nil {
			return res, err
		}
		defer c.Close()
		for _, n := range names {
			ch, err := c.Channel(n, client.ChannelOptions{})
			if err != nil {
				return res, err
			}
			if _, err := ch.Subscribe(client.SubscribeOptions{Type: wire.DBRTimeDouble, Mask: wire.DBEValue},
				func(*client.Update) { received.Add(1) }); err != nil {
				return res, err
			}
		}
	}
	want := int64(pvs * clients)
	if err := waitFor(ctx, "the first values", time.Minute, func() bool { return received.Load() >= want }); err != nil {
		return res, err
	}
	received.Store(0)
	cpu0, ccpu0, start := cpuTime(), clientCPU(), time.Now()
	puts, err := pace(ctx, rate*float64(pvs), d, func(i int) error { return rt.Put(ctx, names[i%pvs], dbl(float64(i))) })
	if err != nil {
		return res, err
	}
	time.Sleep(200 * time.Millisecond) // the last updates in flight
	elapsed := time.Since(start)
	got := received.Load()
	res.add("puts", float64(puts)/d.Seconds(), "/s")
	res.add("updates delivered", float64(got)/elapsed.Seconds(), "/s")
	res.add("coalesced", 1-float64(got)/float64(int64(puts)*int64(clients)), "fraction")
	if libcaDriver == "" {
		res.add("CPU", (cpuTime()-cpu0).Seconds()/elapsed.Seconds(), "cores (pvhub and its clients)")
	} else {
		res.add("CPU", (cpuTime()-cpu0).Seconds()/elapsed.Seconds(), "cores (pvhub)")
		res.add("CPU of the libca clients", (clientCPU()-ccpu0).Seconds()/elapsed.Seconds(), "cores")
	}
	return res, nil
}

// ClientIngest has a CA server post updates of pvs PVs as fast as it can for d
// while one pvhub CA client monitors them.
func ClientIngest(ctx context.Context, pvs int, d time.Duration) (Result, error) {
	res := Result{Scenario: "client-ingest", Params: fmt.Sprintf("%d PVs posted as fast as possible, 1 pvhub CA client, %v", pvs, d)}
	list := make([]*server.PV, pvs)
	for i := range list {
		pv, err := server.NewPV(fmt.Sprintf("INGEST:%05d", i), server.PVOptions{Type: wire.DBRDouble, Count: 1, Value: dbl(0)})
		if err != nil {
			return res, err
		}
		list[i] = pv
	}
	p, err := ports(2)
	if err != nil {
		return res, err
	}
	srv, err := server.New(server.Config{Source: server.NewTable(list...), Port: p[0], BeaconPort: p[1], Logger: quiet})
	if err == nil {
		err = srv.Start(ctx)
	}
	if err != nil {
		return res, err
	}
	defer srv.Close()
	c, err := caClient(ctx, p[0])
	if err != nil {
		return res, err
	}
	defer c.Close()
	var received atomic.Int64
	for _, pv := range list {
		ch, err := c.Channel(pv.Name(), client.ChannelOptions{})
		if err != nil {
			return res, err
		}
		if _, err := ch.Subscribe(client.SubscribeOptions{Type: wire.DBRTimeDouble, Mask: wire.DBEValue},
			func(*client.Update) { received.Add(1) }); err != nil {
			return res, err
		}
	}
	if err := waitFor(ctx, "the first values", time.Minute, func() bool { return received.Load() >= int64(pvs) }); err != nil {
		return res, err
	}
	received.Store(0)
	cpu0, start := cpuTime(), time.Now()
	posted := 0
	v := dbl(0)
	for time.Since(start) < d && ctx.Err() == nil {
		for range 1000 {
			posted++
			v.Doubles[0] = float64(posted)
			_ = list[posted%pvs].Post(v, server.NoAlarm, wire.Timestamp{})
		}
	}
	elapsed := time.Since(start)
	got := received.Load()
	cpu := cpuTime() - cpu0
	res.add("updates received", float64(got)/elapsed.Seconds(), "/s")
	res.add("coalesced by the server", 1-float64(got)/float64(posted), "fraction")
	res.add("CPU per update", float64(cpu.Nanoseconds())/float64(max(got, 1)), "ns (whole process, server included)")
	return res, nil
}

// WebSocket runs browsers WebSocket clients (pvhub's dialect) subscribed to pvs
// relay PVs, which are put at rate puts per second in total for d, with the
// transport in this process or, when plugin is set, as the plugin process
// pluginCmd starts. It reports the updates delivered and the latency from put
// to message.
func WebSocket(ctx context.Context, browsers, pvs int, rate float64, d time.Duration, plugin bool, pluginCmd func() *exec.Cmd) (Result, error) {
	mode := "in process"
	if plugin {
		mode = "plugin process"
	}
	res := Result{Scenario: "websocket", Params: fmt.Sprintf("%d browsers on %d PVs, %g puts/s, transport %s, %v", browsers, pvs, rate, mode, d)}
	addrPort, err := freePort()
	if err != nil {
		return res, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(addrPort)
	var pluginPID func() int
	rt, _, err := relay(ctx, pvs+10, func(o *runtime.Options) {
		t := runtime.TransportOptions{Name: "websocket", Options: map[string]any{"listen": addr}}
		if plugin {
			t.Command = pluginCmd
		} else {
			t.InProcess = wstransport.New()
		}
		o.Transports = []runtime.TransportOptions{t}
	})
	if err != nil {
		return res, err
	}
	defer rt.Close()
	pluginPID = func() int { return rt.TransportPID("websocket") }
	names := relayNames(pvs, "ws")
	index := map[string]int{}
	for i, n := range names {
		index[n] = i
		if err := rt.Put(ctx, n, dbl(-1)); err != nil {
			return res, err
		}
	}
	// The value put is the put's sequence number, which indexes its send time.
	maxPuts := int(rate*d.Seconds()) + 1
	sent := make([]atomic.Int64, maxPuts)
	var mu sync.Mutex
	var lat []float64 // milliseconds
	var delivered atomic.Int64
	latest := make([][]atomic.Int64, browsers) // per browser, per PV: newest sequence number seen
	var wg sync.WaitGroup
	var conns []*websocket.Conn
	defer func() {
		for _, c := range conns {
			_ = c.CloseNow()
		}
		wg.Wait()
	}()
	for b := range browsers {
		latest[b] = make([]atomic.Int64, pvs)
		for i := range latest[b] {
			latest[b][i].Store(-2)
		}
		var c *websocket.Conn
		err := waitFor(ctx, "the WebSocket listener", 30*time.Second, func() bool {
			var err error
			c, _, err = websocket.Dial(ctx, "ws://"+addr+wstransport.NativePath, nil)
			return err == nil
		})
		if err != nil {
			return res, err
		}
		c.SetReadLimit(-1)
		conns = append(conns, c)
		msg, _ := json.Marshal(map[string]any{"type": "subscribe", "pvs": names})
		if err := c.Write(ctx, websocket.MessageText, msg); err != nil {
			return res, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var m struct {
				Type  string  `json:"type"`
				PV    string  `json:"pv"`
				Value float64 `json:"value"`
			}
			for {
				_, data, err := c.Read(context.Background())
				if err != nil {
					return
				}
				at := time.Now().UnixNano()
				m.Type = ""
				if json.Unmarshal(data, &m) != nil || m.Type != "value" {
					continue
				}
				i, ok := index[m.PV]
				if !ok {
					continue
				}
				seq := int64(m.Value)
				latest[b][i].Store(seq)
				if seq < 0 || seq >= int64(len(sent)) {
					continue
				}
				delivered.Add(1)
				if t := sent[seq].Load(); t != 0 {
					mu.Lock()
					lat = append(lat, float64(at-t)/1e6)
					mu.Unlock()
				}
			}
		}()
	}
	if err := waitFor(ctx, "every browser's first values", time.Minute, func() bool {
		for b := range latest {
			for i := range latest[b] {
				if latest[b][i].Load() != -1 {
					return false
				}
			}
		}
		return true
	}); err != nil {
		return res, err
	}
	cpu0, pcpu0, start := cpuTime(), cpuOf(pluginPID()), time.Now()
	puts, err := pace(ctx, rate, d, func(i int) error {
		if i >= len(sent) {
			return nil
		}
		sent[i].Store(time.Now().UnixNano())
		return rt.Put(ctx, names[i%pvs], dbl(float64(i)))
	})
	if err != nil {
		return res, err
	}
	puts = min(puts, len(sent))
	// Wait until every browser has the last value of every PV.
	if err := waitFor(ctx, "the last values", time.Minute, func() bool {
		for b := range latest {
			for i := range pvs {
				last := int64(puts - 1 - (puts-1-i)%pvs)
				if i >= puts {
					continue
				}
				if latest[b][i].Load() < last {
					return false
				}
			}
		}
		return true
	}); err != nil {
		return res, err
	}
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0 + cpuOf(pluginPID()) - pcpu0
	got := delivered.Load()
	mu.Lock()
	slices.Sort(lat)
	p := func(q float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(q*float64(len(lat))))]
	}
	res.add("puts", float64(puts)/d.Seconds(), "/s")
	res.add("updates delivered", float64(got)/elapsed.Seconds(), "/s")
	res.add("coalesced", 1-float64(got)/float64(puts*browsers), "fraction")
	res.add("latency p50", p(0.50), "ms (put to message, delivered values)")
	res.add("latency p99", p(0.99), "ms")
	res.add("latency p99.9", p(0.999), "ms")
	res.add("CPU", cpu.Seconds()/elapsed.Seconds(), "cores (with the plugin process)")
	mu.Unlock()
	return res, nil
}

// counter is an actor that counts the value events it receives.
type counter struct{ values *atomic.Int64 }

func (c *counter) Receive(ctx actor.Context) {
	if _, ok := ctx.Message().(*actors.ValueEvent); ok {
		c.values.Add(1)
	}
}

// Memory creates pvs relay PVs and subscribes to every one of them (as a
// transport would), and reports the process's resident memory.
func Memory(ctx context.Context, pvs int) (Result, error) {
	res := Result{Scenario: "memory", Params: fmt.Sprintf("%d relay PVs, each subscribed", pvs)}
	goruntime.GC()
	rss0 := rss()
	var ms0 goruntime.MemStats
	goruntime.ReadMemStats(&ms0)
	rt, _, err := relay(ctx, pvs+10, nil)
	if err != nil {
		return res, err
	}
	defer rt.Close()
	names := relayNames(pvs, "mem")
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < pvs; i += 8 {
				if err := rt.Put(ctx, names[i], dbl(float64(i))); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return res, err
	}
	var values atomic.Int64
	sub := rt.System().Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return &counter{values: &values} }))
	for _, n := range names {
		rt.Subscribe(n, sub)
	}
	if err := waitFor(ctx, "a value of every PV", 5*time.Minute, func() bool { return values.Load() >= int64(pvs) }); err != nil {
		return res, err
	}
	goruntime.GC()
	var ms goruntime.MemStats
	goruntime.ReadMemStats(&ms)
	rss1 := rss()
	res.add("resident memory", float64(rss1)/(1<<20), "MiB")
	res.add("resident memory per PV", float64(rss1-rss0)/float64(pvs), "bytes")
	res.add("Go heap per PV", float64(int64(ms.HeapAlloc)-int64(ms0.HeapAlloc))/float64(pvs), "bytes")
	for _, n := range names {
		rt.Unsubscribe(n, sub)
	}
	return res, nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// libcaMonitors starts n processes of the C driver, each monitoring names on
// the CA server at 127.0.0.1:port, and counts the value events they print. A
// repeater of pvhub's own serves them on a free port, so that libca starts
// none. stop ends the processes and waits for them.
func libcaMonitors(ctx context.Context, driver string, port, n int, names []string, received *atomic.Int64) (stop func(), cpu func() time.Duration, err error) {
	rp, err := freePort()
	if err != nil {
		return nil, nil, err
	}
	rep, err := repeater.New(repeater.Config{Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(rp)), Logger: quiet})
	if err == nil {
		err = rep.Start(ctx)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("repeater for libca: %w", err)
	}
	env := []string{"PATH=/usr/bin:/bin", "EPICS_CA_AUTO_ADDR_LIST=NO",
		"EPICS_CA_ADDR_LIST=127.0.0.1:" + strconv.Itoa(port), "EPICS_CA_SERVER_PORT=" + strconv.Itoa(port),
		"EPICS_CA_REPEATER_PORT=" + strconv.Itoa(rp)}
	var cmds []*exec.Cmd
	var wg sync.WaitGroup
	stop = func() {
		for _, c := range cmds {
			_ = c.Process.Kill()
		}
		wg.Wait()
		for _, c := range cmds {
			_ = c.Wait()
		}
		_ = rep.Close()
	}
	valueKey := []byte(`"event":"value"`)
	for range n {
		cmd := exec.Command(driver, append([]string{"monitor", "-m", "v", "-d", "DBR_TIME_DOUBLE"}, names...)...)
		cmd.Env = env
		out, err := cmd.StdoutPipe()
		if err != nil {
			stop()
			return nil, nil, err
		}
		if err := cmd.Start(); err != nil {
			stop()
			return nil, nil, fmt.Errorf("starting the libca driver: %w", err)
		}
		cmds = append(cmds, cmd)
		wg.Add(1)
		go func() {
			defer wg.Done()
			sc := bufio.NewScanner(out)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			for sc.Scan() {
				if bytes.Contains(sc.Bytes(), valueKey) {
					received.Add(1)
				}
			}
		}()
	}
	cpu = func() (sum time.Duration) {
		for _, c := range cmds {
			sum += cpuOf(c.Process.Pid)
		}
		return sum
	}
	return stop, cpu, nil
}
