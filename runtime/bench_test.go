package runtime

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	goruntime "runtime"
	"testing"
	"time"

	"github.com/pvhub/pvhub/ca/catest"
	"github.com/pvhub/pvhub/ca/client"
	"github.com/pvhub/pvhub/ca/server"
	"github.com/pvhub/pvhub/ca/wire"
)

func benchRuntime(b *testing.B, maxPVs int) (*Runtime, *client.Client) {
	port := catest.FreePort(b)
	rt, err := New(Options{
		Relay:  RelayOptions{Enabled: true, Prefix: "RELAY:", MaxPVs: maxPVs, MaxElements: 1000},
		Server: server.Config{Port: port, BeaconPort: catest.FreePort(b), Logger: slog.New(slog.DiscardHandler)},
		Client: client.Config{NoRepeater: true, ServerPort: catest.FreePort(b)},
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := rt.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = rt.Close() })
	c, err := client.New(client.Config{AddrList: []netip.AddrPort{netip.AddrPortFrom(client.Loopback, uint16(port))}, NoRepeater: true})
	if err != nil {
		b.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	return rt, c
}

// BenchmarkRelayPut measures puts into relay PVs from a CA client: with
// completion (WRITE_NOTIFY, one at a time, so latency-bound), and pipelined
// plain writes (WRITE) to 10 PVs, flushed by a final read of each.
func BenchmarkRelayPut(b *testing.B) {
	b.Run("notify", func(b *testing.B) {
		_, c := benchRuntime(b, 100)
		ch, _ := c.Channel("RELAY:bench_f1", client.ChannelOptions{})
		ctx := context.Background()
		v := wire.Value{Type: wire.DBRDouble, Doubles: []float64{0}}
		if err := ch.Put(ctx, v); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		start := time.Now()
		for i := range b.N {
			v.Doubles[0] = float64(i)
			if err := ch.Put(ctx, v); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "puts/s")
	})
	b.Run("pipelined", func(b *testing.B) {
		_, c := benchRuntime(b, 100)
		ctx := context.Background()
		chans := make([]*client.Channel, 10)
		for i := range chans {
			chans[i], _ = c.Channel(fmt.Sprintf("RELAY:pipe%d_f1", i), client.ChannelOptions{})
			if err := chans[i].Put(ctx, wire.Value{Type: wire.DBRDouble, Doubles: []float64{0}}); err != nil {
				b.Fatal(err)
			}
		}
		v := wire.Value{Type: wire.DBRDouble, Doubles: []float64{0}}
		b.ResetTimer()
		start := time.Now()
		for i := range b.N {
			v.Doubles[0] = float64(i)
			if err := chans[i%10].PutNoWait(ctx, v); err != nil {
				b.Fatal(err)
			}
		}
		for _, ch := range chans {
			if _, err := ch.Get(ctx, wire.DBRDouble, 1); err != nil { // ordered after every write on the circuit
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "puts/s")
	})
}

// BenchmarkRelayMemory creates 100,000 scalar relay PVs (through the runtime,
// as a transport's puts do) and reports the Go heap they take, per PV: the
// actor, its relay state, the CA server PV and the index entry.
func BenchmarkRelayMemory(b *testing.B) {
	const n = 100_000
	for range b.N {
		b.StopTimer()
		rt, _ := benchRuntime(b, n)
		var before, after goruntime.MemStats
		goruntime.GC()
		goruntime.ReadMemStats(&before)
		b.StartTimer()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		v := wire.Value{Type: wire.DBRDouble, Doubles: []float64{1}}
		for i := range n {
			if err := rt.Put(ctx, fmt.Sprintf("RELAY:pv%06d_f1", i), v); err != nil {
				b.Fatal(err)
			}
		}
		cancel()
		b.StopTimer()
		goruntime.GC()
		goruntime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapInuse-before.HeapInuse)/n, "heap-bytes/PV")
		b.ReportMetric(float64(goruntime.NumGoroutine()), "goroutines")
		_ = rt.Close()
	}
}
