package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"time"

	"github.com/pvhub/pvhub/bench"
	"github.com/pvhub/pvhub/ca/catest/cadriver"
)

// benchCmd is `pvhub bench`: whole-system workloads on 127.0.0.1, printed as a
// table after a description of the machine.
func benchCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("pvhub bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	scenario := fs.String("scenario", "all", "relay-fanout, client-ingest, websocket, hop, memory or all")
	d := fs.Duration("duration", 3*time.Second, "how long each load runs")
	fanPVs := fs.Int("fanout-pvs", 100, "relay-fanout: relay PVs")
	fanRate := fs.Float64("fanout-rate", 100, "relay-fanout: updates per second of each PV")
	fanClients := fs.Int("fanout-clients", 10, "relay-fanout: CA clients monitoring every PV")
	ingestPVs := fs.Int("ingest-pvs", 100, "client-ingest: PVs")
	browsers := fs.Int("browsers", 10, "websocket, hop: WebSocket clients")
	wsPVs := fs.Int("ws-pvs", 100, "websocket, hop: relay PVs every client subscribes to")
	wsRate := fs.Float64("ws-rate", 10000, "websocket, hop: puts per second in total")
	plugin := fs.Bool("plugin", true, "websocket: run the transport as a plugin process")
	memPVs := fs.Int("memory-pvs", 100000, "memory: relay PVs, each subscribed")
	libca := fs.Bool("libca", true, "relay-fanout: also with libca clients (the C test driver; needs gcc and Debian libca-dev)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: pvhub bench [flags]\n\nRuns pvhub's workloads on 127.0.0.1 and prints what they measured.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "pvhub bench: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "pvhub bench: %v\n", err)
		return 1
	}
	pluginCmd := func() *exec.Cmd { return exec.Command(self, "plugin", "websocket") }
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	type run struct {
		name string
		fn   func() (bench.Result, error)
	}
	ws := func(p bool) func() (bench.Result, error) {
		return func() (bench.Result, error) {
			return bench.WebSocket(ctx, *browsers, *wsPVs, *wsRate, *d, p, pluginCmd)
		}
	}
	all := []run{
		{"relay-fanout", nil},
		{"client-ingest", func() (bench.Result, error) { return bench.ClientIngest(ctx, *ingestPVs, *d) }},
		{"websocket", ws(*plugin)},
		{"hop", nil},
		{"memory", func() (bench.Result, error) { return bench.Memory(ctx, *memPVs) }},
	}
	known := false
	for _, r := range all {
		known = known || r.name == *scenario
	}
	if !known && *scenario != "all" {
		fmt.Fprintf(stderr, "pvhub bench: unknown scenario %q: want relay-fanout, client-ingest, websocket, hop, memory or all\n", *scenario)
		return 2
	}
	fmt.Fprintf(stdout, "pvhub bench, %s, %s\nmachine: %s\n\n", version, time.Now().UTC().Format("2006-01-02 15:04 MST"), bench.Machine())
	for _, r := range all {
		if *scenario != "all" && *scenario != r.name || r.name == "websocket" && *scenario == "all" {
			continue
		}
		var results []bench.Result
		if r.name == "relay-fanout" {
			res, err := bench.RelayFanout(ctx, *fanPVs, *fanClients, *fanRate, *d, "")
			if err != nil {
				fmt.Fprintf(stderr, "pvhub bench: relay-fanout: %v\n", err)
				return 1
			}
			results = append(results, res)
			if *libca {
				driver, missing, err := cadriver.Build()
				switch {
				case err != nil:
					fmt.Fprintf(stderr, "pvhub bench: building the libca driver: %v\n", err)
					return 1
				case missing != "":
					fmt.Fprintf(stdout, "(relay-fanout with libca skipped: %s is not installed)\n", missing)
				default:
					res, err := bench.RelayFanout(ctx, *fanPVs, *fanClients, *fanRate, *d, driver)
					if err != nil {
						fmt.Fprintf(stderr, "pvhub bench: relay-fanout with libca: %v\n", err)
						return 1
					}
					results = append(results, res)
				}
			}
		} else if r.name == "hop" {
			in, err := ws(false)()
			if err == nil {
				var out bench.Result
				out, err = ws(true)()
				results = []bench.Result{in, out, bench.Hop(in, out)}
			}
			if err != nil {
				fmt.Fprintf(stderr, "pvhub bench: hop: %v\n", err)
				return 1
			}
		} else {
			res, err := r.fn()
			if err != nil {
				fmt.Fprintf(stderr, "pvhub bench: %s: %v\n", r.name, err)
				return 1
			}
			results = []bench.Result{res}
		}
		bench.Print(stdout, results)
		fmt.Fprintln(stdout)
	}
	return 0
}
