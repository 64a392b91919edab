// Command pvhub is the pvhub daemon and its command-line tools.
//
// `pvhub serve` runs the daemon: the relay, a pure-Go Channel Access server
// that creates PVs on first put, configured from defaults, EPICS variables, a
// YAML file, PVHUB_ variables and flags, on loopback unless configured
// otherwise.
// `pvhub get`, `put`, `monitor` and `info` are Channel Access clients whose
// options and output follow EPICS base's caget, caput, camonitor and cainfo;
// they read the EPICS_CA_* variables as those tools do.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

var version = "dev"

const usage = `pvhub — a Channel Access relay and web gateway for EPICS PVs

Usage:
  pvhub serve [flags]             run the daemon (the relay CA server)
  pvhub config check FILE         validate a configuration file
  pvhub config print [flags]      print the effective configuration
  pvhub config reference          print the configuration reference (Markdown)
  pvhub get [options] PV...       read PVs once, like caget
  pvhub put [options] PV VALUE... write a PV, like caput
  pvhub monitor [options] PV...   print every update of PVs, like camonitor
  pvhub info [options] PV...      describe the channels of PVs, like cainfo
  pvhub bench [flags]             run the benchmark workloads on 127.0.0.1, print a table
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
		return serve(args[1:], os.Environ(), stderr, nil)
	case "config":
		return configCmd(args[1:], os.Environ(), stdout, stderr)
	case "plugin":
		return pluginCmd(args[1:], stderr)
	case "get", "put", "monitor", "info":
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return runTool(ctx, args[0], args[1:], os.LookupEnv, stdout, stderr)
	case "bench":
		return benchCmd(args[1:], stdout, stderr)
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
