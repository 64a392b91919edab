// Command pvhub is the pvhub daemon and its command-line tools.
//
// At this stage `pvhub serve` runs the pure-Go Channel Access server with a
// few demo PVs, on loopback unless the EPICS_CAS_* variables say otherwise.
// `pvhub get`, `put`, `monitor` and `info` are Channel Access clients whose
// options and output follow EPICS base's caget, caput, camonitor and cainfo;
// they read the EPICS_CA_* variables as those tools do.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

var version = "dev"

const usage = `pvhub — a Channel Access relay and web gateway for EPICS PVs

Usage:
  pvhub serve [flags]             run the CA server (demo PVs for now)
  pvhub get [options] PV...       read PVs once, like caget
  pvhub put [options] PV VALUE... write a PV, like caput
  pvhub monitor [options] PV...   print every update of PVs, like camonitor
  pvhub info [options] PV...      describe the channels of PVs, like cainfo
  pvhub version                   print the version

Run "pvhub COMMAND -h" for the options of a command.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stderr)
	case "get", "put", "monitor", "info":
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return runTool(ctx, args[0], args[1:], os.LookupEnv, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "pvhub", version)
		return 0
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "pvhub: unknown command %q\n\n%s", args[0], usage)
	return 2
}

func serve(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintf(stderr, "pvhub serve: -log-level: %v\n", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := runDemo(ctx, log, os.LookupEnv, nil); err != nil {
		log.Error("pvhub serve failed", "error", err)
		return 1
	}
	return 0
}
