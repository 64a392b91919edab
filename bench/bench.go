// Package bench runs whole-system workloads of pvhub on 127.0.0.1 and reports
// what they measured: `pvhub bench` prints them as a table. Every scenario
// starts what it needs in this process (the relay, CA clients and servers,
// WebSocket clients) on free loopback ports, and stops it all before it
// returns; the WebSocket scenario can run the transport as a plugin process.
//
// The figures are lower bounds: the load generators share the machine's CPUs
// with pvhub.
package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	goruntime "runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pvhub/pvhub/ca/client"
	"github.com/pvhub/pvhub/ca/server"
	"github.com/pvhub/pvhub/ca/wire"
	"github.com/pvhub/pvhub/runtime"
)

// Result is one scenario's measurement: named figures in the order measured.
type Result struct {
	Scenario string
	Params   string
	Figures  []Figure
}

// Figure is one measured value with its unit.
type Figure struct {
	Name  string
	Value float64
	Unit  string
}

func (r *Result) add(name string, v float64, unit string) {
	r.Figures = append(r.Figures, Figure{Name: name, Value: v, Unit: unit})
}

// Machine describes this machine for the report's header.
func Machine() string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	return fmt.Sprintf("%s, %d cores (GOMAXPROCS %d), %s %s/%s", cpu, goruntime.NumCPU(), goruntime.GOMAXPROCS(0),
		goruntime.Version(), goruntime.GOOS, goruntime.GOARCH)
}

// Print writes results as a table.
func Print(w io.Writer, results []Result) {
	for _, r := range results {
		fmt.Fprintf(w, "%-14s %s\n", r.Scenario, r.Params)
		for _, f := range r.Figures {
			fmt.Fprintf(w, "  %-28s %14s %s\n", f.Name, format(f.Value), f.Unit)
		}
	}
}

func format(v float64) string {
	switch {
	case v >= 1000:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}

// cpuTime is the CPU time used by this process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuOf adds the CPU time of process pid (from /proc), 0 when it cannot be read.
func cpuOf(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:]) // f[11], f[12]: utime, stime in clock ticks
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100
}

// rss returns this process's resident set size in bytes.
func rss() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// freePort returns a port free for TCP and UDP on 127.0.0.1 right now.
func freePort() (int, error) {
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port))
		l.Close()
		if err == nil {
			u.Close()
			return port, nil
		}
	}
	return 0, fmt.Errorf("no free loopback port")
}

func ports(n int) ([]int, error) {
	out := make([]int, n)
	for i := range out {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		out[i] = p
	}
	return out, nil
}

var quiet = slog.New(slog.DiscardHandler)

// relay starts a runtime serving the relay on loopback, with opts applied.
func relay(ctx context.Context, maxPVs int, mod func(*runtime.Options)) (*runtime.Runtime, int, error) {
	p, err := ports(3)
	if err != nil {
		return nil, 0, err
	}
	opts := runtime.Options{
		Relay:  runtime.RelayOptions{Enabled: true, Prefix: "RELAY:", MaxPVs: maxPVs, MaxElements: 1000},
		Server: server.Config{Port: p[0], BeaconPort: p[1], Logger: quiet},
		Client: client.Config{NoRepeater: true, ServerPort: p[2]},
		Logger: quiet,
	}
	if mod != nil {
		mod(&opts)
	}
	rt, err := runtime.New(opts)
	if err != nil {
		return nil, 0, err
	}
	if err := rt.Start(ctx); err != nil {
		return nil, 0, err
	}
	return rt, p[0], nil
}

// caClient starts a CA client that searches 127.0.0.1:port only.
func caClient(ctx context.Context, port int) (*client.Client, error) {
	c, err := client.New(client.Config{AddrList: []netip.AddrPort{netip.AddrPortFrom(client.Loopback, uint16(port))},
		NoRepeater: true, Logger: quiet})
	if err != nil {
		return nil, err
	}
	if err := c.Start(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

func dbl(f float64) wire.Value { return wire.Value{Type: wire.DBRDouble, Doubles: []float64{f}} }

// pace calls put(i) for i = 0, 1, ... at rate per second until d has passed,
// in bursts of a millisecond's worth, and returns the number of calls.
func pace(ctx context.Context, rate float64, d time.Duration, put func(i int) error) (int, error) {
	start := time.Now()
	n := 0
	for {
		elapsed := time.Since(start)
		if elapsed >= d || ctx.Err() != nil {
			return n, ctx.Err()
		}
		due := int(elapsed.Seconds() * rate)
		for ; n < due; n++ {
			if err := put(n); err != nil {
				return n, err
			}
		}
		time.Sleep(time.Millisecond)
	}
}

// Hop compares the same WebSocket workload in process and through the plugin.
func Hop(in, plugin Result) Result {
	res := Result{Scenario: "hop", Params: "the plugin process against in process, same workload"}
	get := func(r Result, name string) float64 {
		for _, f := range r.Figures {
			if f.Name == name {
				return f.Value
			}
		}
		return 0
	}
	if v := get(plugin, "CPU"); v > 0 {
		res.add("CPU, plugin / in process", v/get(in, "CPU"), "x")
	}
	if v := get(in, "latency p99"); v > 0 {
		res.add("p99 latency, plugin / in process", get(plugin, "latency p99")/v, "x")
	}
	if v := get(plugin, "updates delivered"); v > 0 {
		res.add("delivered, in process / plugin", get(in, "updates delivered")/v, "x")
	}
	return res
}
