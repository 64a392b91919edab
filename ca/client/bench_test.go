package client

import (
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pvhub/pvhub/ca/server"
	"github.com/pvhub/pvhub/ca/wire"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkMonitorIngest measures monitor updates received per second by one
// client from one server on loopback: 100 PVs monitored as DBR_TIME_DOUBLE,
// each update decoded into the subscription's DBR and handed to a callback.
// cpu-ns/update is the CPU time of the whole process (server included) per
// update received, an upper bound for the client's share.
func BenchmarkMonitorIngest(b *testing.B) {
	const npv = 100
	pvs := make([]*server.PV, npv)
	for i := range pvs {
		pvs[i] = mustPV(b, "I:"+strconv.Itoa(i), server.PVOptions{Type: wire.DBRDouble, Count: 1, Value: doubles(0)})
	}
	ts := newTestServer(b, 0, pvs...)
	c := newClient(b, ts, func(c *Config) { c.Logger = nil })
	var got atomic.Int64
	var last [npv]atomic.Int64
	for i := range pvs {
		ch, _ := c.Channel(pvs[i].Name(), ChannelOptions{})
		i := i
		if _, err := ch.Subscribe(SubscribeOptions{Type: wire.DBRTimeDouble}, func(u *Update) {
			got.Add(1)
			last[i].Store(int64(u.DBR.Value.Doubles[0]))
		}); err != nil {
			b.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for got.Load() < npv && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	got.Store(0)
	b.ResetTimer()
	cpu0, t0 := cpuTime(), time.Now()
	v := doubles(0)
	for i := range b.N {
		v.Doubles[0] = float64(i + 1)
		_ = pvs[i%npv].Post(v, server.NoAlarm, wire.Timestamp{Sec: uint32(i)})
	}
	// Wait for the last value of every PV.
	for p := range npv {
		want := int64(0)
		for i := b.N - 1; i >= 0; i-- {
			if i%npv == p {
				want = int64(i + 1)
				break
			}
		}
		for want != 0 && last[p].Load() != want && time.Now().Before(deadline.Add(time.Minute)) {
			time.Sleep(100 * time.Microsecond)
		}
	}
	elapsed, cpu := time.Since(t0), cpuTime()-cpu0
	b.StopTimer()
	n := got.Load()
	b.ReportMetric(float64(n)/elapsed.Seconds(), "updates/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(n), "cpu-ns/update")
	b.ReportMetric(1-float64(n)/float64(b.N), "coalesced-fraction")
}

// BenchmarkConnect measures the time to search for and connect 10,000
// channels on one server (one op = all 10,000 connected).
func BenchmarkConnect(b *testing.B) {
	const n = 10_000
	pvs := make([]*server.PV, n)
	for i := range pvs {
		pvs[i] = mustPV(b, "CONN:pv:"+strconv.Itoa(i), server.PVOptions{Type: wire.DBRDouble, Count: 1, Value: doubles(0)})
	}
	ts := newTestServer(b, 0, pvs...)
	b.ResetTimer()
	for range b.N {
		c := newClient(b, ts, func(c *Config) { c.Logger = nil })
		var wg sync.WaitGroup
		wg.Add(n)
		start := time.Now()
		for i := range n {
			var once sync.Once
			if _, err := c.Channel(pvs[i].Name(), ChannelOptions{OnConnection: func(conn Connection) {
				if conn.State == Connected {
					once.Do(wg.Done)
				}
			}}); err != nil {
				b.Fatal(err)
			}
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			b.Fatalf("%d channels not connected after 60 s", n)
		}
		b.ReportMetric(time.Since(start).Seconds(), "s/10k-channels")
		b.StopTimer()
		_ = c.Close()
		b.StartTimer()
	}
}
