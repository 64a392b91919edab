package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"slices"

	"github.com/pvhub/pvhub/config"
	"github.com/pvhub/pvhub/plugins"
	"github.com/pvhub/pvhub/runtime"
	"github.com/pvhub/pvhub/transports/mqtt"
	"github.com/pvhub/pvhub/transports/sse"
	"github.com/pvhub/pvhub/transports/websocket"
)

// builtinTransports returns the registry of the transports linked into this
// pvhub; each runs as its own process, `pvhub plugin <name>`.
func builtinTransports() *plugins.Registry {
	r := plugins.NewRegistry()
	_ = r.Register("websocket", websocket.New)
	_ = r.Register("sse", sse.New)
	_ = r.Register("mqtt", mqtt.New)
	return r
}

// pluginCmd is `pvhub plugin NAME`: a built-in transport as a plugin process.
// The pvhub daemon starts it; it is not meant to be run by hand.
func pluginCmd(args []string, stderr io.Writer) int {
	reg := builtinTransports()
	if len(args) != 1 {
		fmt.Fprintf(stderr, "Usage: pvhub plugin NAME (started by pvhub serve); built-in transports: %v\n", reg.Names())
		return 2
	}
	t, ok := reg.New(args[0])
	if !ok {
		fmt.Fprintf(stderr, "pvhub plugin: no built-in transport %q; built-in transports: %v\n", args[0], reg.Names())
		return 2
	}
	plugins.Serve(t)
	return 0
}

// transportOptions maps the enabled transports of the configuration onto the
// runtime's: a configured path runs that program, a built-in runs this
// executable as `pvhub plugin <name>`. Enabled transports that this build does
// not have are reported.
func transportOptions(cfg *config.Config, reg *plugins.Registry, log *slog.Logger) ([]runtime.TransportOptions, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding the pvhub executable for its plugins: %w", err)
	}
	names := make([]string, 0, len(cfg.Transports))
	for n := range cfg.Transports {
		names = append(names, n)
	}
	slices.Sort(names)
	var out []runtime.TransportOptions
	var missing []string
	for _, name := range names {
		t := cfg.Transports[name]
		if !t.Enabled {
			continue
		}
		var command func() *exec.Cmd
		switch {
		case t.Path != "":
			path := t.Path
			command = func() *exec.Cmd { return exec.Command(path) }
		case slices.Contains(reg.Names(), name):
			n := name
			command = func() *exec.Cmd { return exec.Command(self, "plugin", n) }
		default:
			missing = append(missing, name)
			continue
		}
		out = append(out, runtime.TransportOptions{Name: name, Command: command, Options: t.Map()})
	}
	if len(missing) > 0 {
		log.Warn("enabled transports that this pvhub does not include yet are not started", "transports", missing,
			"built_in", reg.Names())
	}
	return out, nil
}
