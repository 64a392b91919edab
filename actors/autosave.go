package actors

import (
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/pvhub/pvhub/relay"
)

// AutosaveConfig configures the autosave actor.
type AutosaveConfig struct {
	Path   string
	Period time.Duration
	Logger *slog.Logger
	// Unsaved, when not nil, holds the time (Unix nanoseconds) of the oldest
	// change not yet in the file, 0 when the file is up to date; see UnsavedAge.
	Unsaved *atomic.Int64
}

// UnsavedAge returns how long the oldest change not yet written has waited, 0
// when the autosave file holds the current state.
func UnsavedAge(unsaved *atomic.Int64, now time.Time) time.Duration {
	since := unsaved.Load()
	if since == 0 {
		return 0
	}
	return now.Sub(time.Unix(0, since))
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
		a.changed()
	case *deletedState:
		delete(a.states, m.name)
		a.changed()
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
	if a.cfg.Unsaved != nil {
		a.cfg.Unsaved.Store(0)
	}
	return nil
}

// changed marks the state as not yet saved.
func (a *autosave) changed() {
	if !a.dirty && a.cfg.Unsaved != nil {
		a.cfg.Unsaved.Store(time.Now().UnixNano())
	}
	a.dirty = true
}
