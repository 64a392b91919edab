package actors

import (
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/pvhub/pvhub/relay"
)

// AutosaveConfig configures the autosave actor.
type AutosaveConfig struct {
	Path   string
	Period time.Duration
	Logger *slog.Logger
}

// NewAutosave returns the props of the autosave actor: it keeps the latest
// state of every relay PV and writes them all, atomically, every Period when
// something changed, and on Flush.
func NewAutosave(cfg AutosaveConfig) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		return &autosave{cfg: cfg, states: map[string]relay.Saved{}}
	})
}

type autosave struct {
	cfg    AutosaveConfig
	states map[string]relay.Saved
	dirty  bool
	timer  *time.Timer
	failed bool
}

func (a *autosave) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		root, self := ctx.ActorSystem().Root, ctx.Self()
		a.timer = time.AfterFunc(a.cfg.Period, func() { root.Send(self, &autosaveTick{}) })
	case *actor.Stopping:
		a.timer.Stop()
	case *savedState:
		a.states[m.s.Name] = m.s
		a.dirty = true
	case *deletedState:
		delete(a.states, m.name)
		a.dirty = true
	case *autosaveTick:
		if a.dirty {
			_ = a.write()
		}
		a.timer.Reset(a.cfg.Period)
	case *Flush:
		var err error
		if a.dirty {
			err = a.write()
		}
		ctx.Respond(&Result{Err: err})
	}
}

func (a *autosave) write() error {
	all := make([]relay.Saved, 0, len(a.states))
	for _, s := range a.states {
		all = append(all, s)
	}
	slices.SortFunc(all, func(x, y relay.Saved) int { return strings.Compare(x.Name, y.Name) })
	if err := relay.Save(a.cfg.Path, all); err != nil {
		if !a.failed {
			a.cfg.Logger.Error("autosave failed; retrying every period", "path", a.cfg.Path, "error", err)
		}
		a.failed = true
		return err
	}
	if a.failed {
		a.cfg.Logger.Info("autosave works again", "path", a.cfg.Path)
	}
	a.failed, a.dirty = false, false
	return nil
}
