package server

import (
	"errors"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pvhub/pvhub/ca/wire"
)

// BenchmarkFanout posts DBR_DOUBLE updates to PVs monitored (as DBR_TIME_DOUBLE)
// by 10 clients on loopback, and reports the updates delivered per second in
// aggregate. Each client reads and decodes every update it receives; updates a
// client could not take are coalesced by the server (reported as dropped/op).
func BenchmarkFanout(b *testing.B) {
	for _, npv := range []int{1, 100} {
		b.Run("pvs="+strconv.Itoa(npv), func(b *testing.B) { benchFanout(b, 10, npv) })
	}
}

func benchFanout(b *testing.B, nclients, npv int) {
	pvs := make([]*PV, npv)
	for i := range pvs {
		pvs[i] = mustPV(b, "B:"+strconv.Itoa(i), PVOptions{Type: wire.DBRDouble, Count: 1, Value: doubles(0)})
	}
	srv, _ := startServer(b, Config{Logger: discard()}, pvs...)
	var received atomic.Int64
	var wg sync.WaitGroup
	var last []atomic.Int64 = make([]atomic.Int64, nclients)
	conns := make([]net.Conn, nclients)
	for i := range nclients {
		c := dial(b, srv)
		c.hello()
		for j, pv := range pvs {
			sid, _ := c.create(uint32(j), pv.Name())
			c.send(&wire.EventAdd{DataType: wire.DBRTimeDouble, Count: 1, SID: sid, SubID: uint32(j), Mask: wire.DBEValue})
			c.expect(wire.CmdEventAdd)
		}
		conns[i] = c.conn
		wg.Add(1)
		go func(i int, conn net.Conn) {
			defer wg.Done()
			dec := wire.NewDecoder(0)
			buf := make([]byte, 256<<10)
			var d wire.DBR
			for {
				n, err := conn.Read(buf)
				if n > 0 {
					dec.Feed(buf[:n])
					for {
						f, err := dec.Next()
						if err != nil {
							break
						}
						if f.Header.Command == wire.CmdEventAdd {
							_ = wire.DecodeDBR(&d, wire.DBRTimeDouble, 1, f.Payload)
							received.Add(1)
							last[i].Store(int64(d.Value.Doubles[0]))
						}
					}
				}
				if err != nil {
					return
				}
			}
		}(i, c.conn)
	}
	b.ResetTimer()
	start := time.Now()
	v := wire.Value{Type: wire.DBRDouble, Doubles: []float64{0}}
	for i := range b.N {
		v.Doubles[0] = float64(i + 1)
		if err := pvs[i%npv].Post(v, NoAlarm, wire.Timestamp{Sec: uint32(i)}); err != nil && !errors.Is(err, ErrPVClosed) {
			b.Fatal(err)
		}
	}
	// Wait until every client has the last value of the PV posted last.
	want := int64(b.N)
	deadline := time.Now().Add(10 * time.Second)
	for i := range nclients {
		for last[i].Load() != want && npv == 1 && time.Now().Before(deadline) {
			time.Sleep(100 * time.Microsecond)
		}
	}
	if npv > 1 {
		time.Sleep(50 * time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	got := received.Load()
	b.ReportMetric(float64(got)/elapsed.Seconds(), "updates/s")
	b.ReportMetric(float64(int64(b.N)*int64(nclients)-got)/float64(b.N), "dropped/op")
	for _, c := range conns {
		c.Close()
	}
	wg.Wait()
}

func discard() *slogLogger { return slogDiscard }

type slogLogger = slog.Logger

var slogDiscard = slog.New(slog.DiscardHandler)
