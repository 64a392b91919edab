package runtime

import (
	"context"
	"errors"
	"fmt"
	"os/exec"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/pvhub/pvhub/actors"
	"github.com/pvhub/pvhub/plugins"
)

// TransportOptions describe one transport plugin to run.
type TransportOptions struct {
	Name string
	// Command returns a fresh command for each start of the plugin process:
	// `pvhub plugin <name>` for a built-in transport, the configured path for
	// another one.
	Command func() *exec.Cmd
	// Options is the transport's configuration slice (transports.<name>).
	Options map[string]any
	// InProcess, when not nil, is run in this process instead of Command:
	// the same subscriber actor and events, without the plugin hop and
	// without supervision (benchmarks, embedding).
	InProcess plugins.Transport
}

// transport is a running transport plugin: its supervisor and its subscriber actor.
type transport struct {
	name  string
	sup   *plugins.Supervisor // nil for an in-process transport
	local plugins.Transport   // the in-process transport
	sub   *actor.PID
}

// pluginHost turns a plugin's requests into messages to its subscriber actor.
type pluginHost struct {
	root *actor.RootContext
	sub  *actor.PID
}

var _ plugins.Host = (*pluginHost)(nil)

func (h *pluginHost) Subscribe(names ...string) {
	h.root.Send(h.sub, &actors.PluginSubscribe{Names: append([]string(nil), names...)})
}

func (h *pluginHost) Unsubscribe(names ...string) {
	h.root.Send(h.sub, &actors.PluginUnsubscribe{Names: append([]string(nil), names...)})
}

func (h *pluginHost) Put(name string, value plugins.Data, id uint64) {
	h.root.Send(h.sub, &actors.PluginPut{Name: name, Value: actors.FromPluginData(value), ID: id})
}

// startTransports launches every configured transport under supervision: a
// plugin that exits is restarted with back-off, and its subscriptions are
// replayed to the new process.
func (r *Runtime) startTransports(ctx context.Context) error {
	for _, t := range r.opts.Transports {
		if err := r.startTransport(ctx, t); err != nil {
			r.stopTransports()
			return err
		}
	}
	return nil
}

// startTransport starts one transport and its subscriber actor.
func (r *Runtime) startTransport(ctx context.Context, t TransportOptions) error {
	log := r.log.With("transport", t.Name)
	tr := &transport{name: t.Name, local: t.InProcess}
	root := r.system.Root
	deliver := func(b []plugins.Event) error { return tr.sup.Events(b) }
	if tr.local != nil {
		deliver = func(b []plugins.Event) error { tr.local.Events(b); return nil }
	}
	tr.sub = root.Spawn(actors.NewSubscriber(actors.SubscriberConfig{Name: t.Name, Router: r.router, Logger: r.log,
		Dispatcher: r.dispatch, Metrics: r.opts.Metrics, Deliver: deliver}))
	if tr.local != nil {
		cfg := plugins.Config{Name: t.Name, Options: t.Options, Logger: log, RelayPrefix: r.relayPrefix()}
		if err := tr.local.Start(ctx, cfg, &pluginHost{root: root, sub: tr.sub}); err != nil {
			_ = tr.local.Close()
			_ = root.StopFuture(tr.sub).Wait()
			return fmt.Errorf("transport %s: %w", t.Name, err)
		}
		log.Info("transport running in process")
		r.transports = append(r.transports, tr)
		return nil
	}
	tr.sup = plugins.NewSupervisor(plugins.SupervisorConfig{
		Command: t.Command,
		Config:  plugins.Config{Name: t.Name, Options: t.Options, Logger: log, RelayPrefix: r.relayPrefix()},
		Host:    &pluginHost{root: root, sub: tr.sub},
		OnStart: func(p *plugins.Process) {
			log.Info("transport plugin running", "pid", p.Pid())
			root.Send(tr.sub, &actors.Replay{})
		},
		OnExit: func(err error) {
			log.Warn("transport plugin exited; restarting it", "error", err)
			r.opts.Metrics.PluginRestart(t.Name)
		},
	})
	if err := tr.sup.Start(ctx); err != nil {
		_ = root.StopFuture(tr.sub).Wait()
		return err // it names the plugin already
	}
	r.transports = append(r.transports, tr)
	return nil
}

// stopTransports stops the plugins and then their subscriber actors.
func (r *Runtime) stopTransports() {
	for _, tr := range r.transports {
		r.stopTransport(tr)
	}
	r.transports = nil
}

func (r *Runtime) stopTransport(tr *transport) {
	if tr.local != nil {
		// The subscriber first: no Events call may follow Close.
		_ = r.system.Root.StopFuture(tr.sub).Wait()
		_ = tr.local.Close()
		return
	}
	_ = tr.sup.Close()
	_ = r.system.Root.StopFuture(tr.sub).Wait()
}

// SetTransports makes the running transports those of ts, by name: it stops
// the running ones that ts leaves out and starts those of ts that do not run
// (a reload that enables or disables transports). A transport that runs keeps
// its options. It returns the errors of the transports that did not start.
func (r *Runtime) SetTransports(ctx context.Context, ts []TransportOptions) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.started || r.closed {
		return errors.New("runtime: not running")
	}
	want := make(map[string]bool, len(ts))
	for _, t := range ts {
		want[t.Name] = true
	}
	kept := r.transports[:0]
	running := map[string]bool{}
	for _, tr := range r.transports {
		if want[tr.name] {
			kept = append(kept, tr)
			running[tr.name] = true
			continue
		}
		r.stopTransport(tr)
		r.log.Info("transport stopped", "transport", tr.name)
	}
	r.transports = kept
	var errs []error
	for _, t := range ts {
		if running[t.Name] {
			continue
		}
		if err := r.startTransport(ctx, t); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// TransportPID returns the pid of the running process of a transport, or 0.
func (r *Runtime) TransportPID(name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, tr := range r.transports {
		if tr.name == name && tr.sup != nil {
			if p := tr.sup.Current(); p != nil {
				return p.Pid()
			}
		}
	}
	return 0
}

// relayPrefix is the relay's prefix for the transports, "" when the relay is disabled.
func (r *Runtime) relayPrefix() string {
	if !r.opts.Relay.Enabled {
		return ""
	}
	return r.opts.Relay.Prefix
}
