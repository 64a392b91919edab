package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/pvhub/pvhub/metrics"

	"github.com/pvhub/pvhub/config"
	"github.com/pvhub/pvhub/runtime"
)

// multiFlag collects repeated -set key=value flags.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// loadFlags parses the flags shared by serve and config print into load options.
func loadFlags(name string, args []string, environ []string, stderr io.Writer) (config.LoadOptions, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("config", "", "YAML configuration `file`")
	level := fs.String("log-level", "", "log level: debug, info, warn, error (sets log.level)")
	var sets multiFlag
	fs.Var(&sets, "set", "set a configuration `key=value` (repeatable), e.g. -set relay.prefix=BL1:")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: pvhub %s [-config FILE] [-set key=value]... [-log-level LEVEL]\n\n", name)
		fs.PrintDefaults()
		fmt.Fprintf(stderr, "\nLayers, later ones win: defaults, EPICS_CA_*/EPICS_CAS_* variables, the file,\n%s variables (PVHUB_RELAY__PREFIX sets relay.prefix), flags.\n", config.EnvPrefix)
	}
	if err := fs.Parse(args); err != nil {
		return config.LoadOptions{}, err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return config.LoadOptions{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	o := config.LoadOptions{File: *file, Environ: environ, Flags: map[string]string{}}
	for _, s := range sets {
		k, v, err := config.ParseFlag(s)
		if err != nil {
			return o, fmt.Errorf("-set %s: %w", s, err)
		}
		o.Flags[k] = v
	}
	if *level != "" {
		o.Flags["log.level"] = *level
	}
	return o, nil
}

// serve runs the daemon until SIGINT or SIGTERM; SIGHUP reloads the
// configuration. signals may be nil (the process's own signals are used).
func serve(args []string, environ []string, stderr io.Writer, signals <-chan os.Signal) int {
	opts, err := loadFlags("serve", args, environ, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "pvhub serve: %v\n", err)
		return 2
	}
	cfg, err := config.Load(opts)
	if err != nil {
		fmt.Fprintf(stderr, "pvhub serve: configuration:\n%v\n", err)
		return 2
	}
	log := slog.New(cfg.Log.Handler(stderr))
	if signals == nil {
		ch := make(chan os.Signal, 4)
		signal.Notify(ch, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
		defer signal.Stop(ch)
		signals = ch
	}
	rules := config.NewWriteRules(cfg.Write)
	transports, err := transportOptions(cfg, builtinTransports(), log)
	if err != nil {
		log.Error("pvhub cannot start", "error", err)
		return 1
	}
	m := metrics.New()
	rt, err := newRuntime(cfg, rules, transports, m, log)
	if err != nil {
		log.Error("pvhub cannot start", "error", err)
		return 1
	}
	if cfg.Metrics.Enabled {
		// Before the runtime starts: /readyz answers 503 until it serves.
		stop, err := serveMetrics(cfg.Metrics.Listen, m, rt.Ready, log)
		if err != nil {
			log.Error("pvhub cannot start", "error", err)
			return 1
		}
		defer stop()
	}
	if err := rt.Start(context.Background()); err != nil {
		log.Error("pvhub cannot start", "error", err)
		return 1
	}
	log.Info("pvhub running", "version", version, "config", opts.File)
	for sig := range signals {
		if sig != syscall.SIGHUP {
			log.Info("pvhub stopping", "signal", sig.String())
			break
		}
		cfg = reload(cfg, opts, log)
		rules.Set(cfg.Write)
		rt.RulesChanged()
		if ts, err := transportOptions(cfg, builtinTransports(), log); err != nil {
			log.Error("reload: transports", "error", err)
		} else if err := rt.SetTransports(context.Background(), ts); err != nil {
			log.Error("reload: a transport did not start", "error", err)
		}
	}
	if err := rt.Close(); err != nil {
		log.Error("shutdown", "error", err)
		return 1
	}
	log.Info("pvhub stopped")
	return 0
}

// newRuntime maps the configuration onto the runtime's options.
func newRuntime(cfg *config.Config, rules *config.WriteRules, transports []runtime.TransportOptions, m *metrics.Metrics, log *slog.Logger) (*runtime.Runtime, error) {
	scfg, err := cfg.ServerConfig()
	if err != nil {
		return nil, err
	}
	ccfg, err := cfg.ClientConfig()
	if err != nil {
		return nil, err
	}
	r := cfg.Relay
	return runtime.New(runtime.Options{
		Relay: runtime.RelayOptions{Enabled: r.Enabled, Prefix: r.Prefix, MaxPVs: r.MaxPVs, MaxElements: r.MaxElements,
			AutosavePath: r.Autosave.Path, AutosavePeriod: r.Autosave.Period},
		Server:     scfg,
		Client:     ccfg,
		Write:      rules,
		Transports: transports,
		Logger:     log,
		Metrics:    m,
	})
}

// serveMetrics serves /metrics, /healthz and /readyz on listen until the
// returned function is called.
func serveMetrics(listen string, m *metrics.Metrics, ready func() error, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("metrics.listen %s: %w", listen, err)
	}
	srv := &http.Server{Handler: m.Handler(ready), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "error", err)
		}
	}()
	log.Info("metrics listening", "addr", ln.Addr().String(), "paths", "/metrics /healthz /readyz")
	return func() { _ = srv.Close(); <-done }, nil
}

// reload reads the configuration again and logs what changed: changes that
// apply live, and those that need a restart (which keep their old values).
func reload(old *config.Config, opts config.LoadOptions, log *slog.Logger) *config.Config {
	cfg, err := config.Load(opts)
	if err != nil {
		log.Error("reload refused: the configuration is invalid; the running one stays", "error", err)
		return old
	}
	changes := config.Diff(old, cfg)
	if len(changes) == 0 {
		log.Info("reload: nothing changed")
		return old
	}
	next := *old
	for _, c := range changes {
		if c.Reloadable {
			log.Info("reload: applied", "change", c.String())
		} else {
			log.Warn("reload: needs a restart; not applied", "change", c.String())
		}
	}
	next.Write = cfg.Write
	for name, t := range cfg.Transports {
		if ot, ok := next.Transports[name]; ok {
			ot.Enabled = t.Enabled
			next.Transports[name] = ot
		}
	}
	return &next
}

// configCmd implements `pvhub config check FILE`, `pvhub config print` and
// `pvhub config reference`.
func configCmd(args []string, environ []string, stdout, stderr io.Writer) int {
	usage := "Usage: pvhub config check FILE | pvhub config print [-config FILE] [-set key=value]... | pvhub config reference\n"
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "check":
		if len(args) != 2 {
			fmt.Fprint(stderr, usage)
			return 2
		}
		if _, err := config.Load(config.LoadOptions{File: args[1], Environ: environ}); err != nil {
			fmt.Fprintf(stderr, "%s:\n%v\n", args[1], err)
			return 1
		}
		fmt.Fprintf(stdout, "%s: ok\n", args[1])
		return 0
	case "print":
		opts, err := loadFlags("config print", args[1:], environ, stderr)
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		if err != nil {
			fmt.Fprintf(stderr, "pvhub config print: %v\n", err)
			return 2
		}
		cfg, err := config.Load(opts)
		if err != nil {
			fmt.Fprintf(stderr, "configuration:\n%v\n", err)
			return 1
		}
		y, err := cfg.YAML()
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		_, _ = stdout.Write(y)
		return 0
	case "reference":
		if len(args) != 1 {
			fmt.Fprint(stderr, usage)
			return 2
		}
		ref, err := config.Reference()
		if err != nil {
			fmt.Fprintf(stderr, "pvhub config reference: %v\n", err)
			return 1
		}
		_, _ = stdout.Write(ref)
		return 0
	}
	fmt.Fprintf(stderr, "pvhub config: unknown command %q\n%s", args[0], usage)
	return 2
}
