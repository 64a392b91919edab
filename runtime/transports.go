package runtime

import (
	"context"
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
}

// transport is a running transport plugin: its supervisor and its subscriber actor.
type transport struct {
	name string
	sup  *plugins.Supervisor
	sub  *actor.PID
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
		log := r.log.With("transport", t.Name)
		tr := &transport{name: t.Name}
		root := r.system.Root
		tr.sub = root.Spawn(actors.NewSubscriber(actors.SubscriberConfig{Name: t.Name, Router: r.router, Logger: r.log, Dispatcher: r.dispatch, Metrics: r.opts.Metrics,
			Deliver: func(b []plugins.Event) error { return tr.sup.Events(b) }}))
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
			r.stopTransports()
			return fmt.Errorf("transport %s: %w", t.Name, err)
		}
		r.transports = append(r.transports, tr)
	}
	return nil
}

// stopTransports stops the plugins and then their subscriber actors.
func (r *Runtime) stopTransports() {
	for _, tr := range r.transports {
		_ = tr.sup.Close()
		_ = r.system.Root.StopFuture(tr.sub).Wait()
	}
	r.transports = nil
}

// TransportPID returns the pid of the running process of a transport, or 0.
func (r *Runtime) TransportPID(name string) int {
	for _, tr := range r.transports {
		if tr.name == name {
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
