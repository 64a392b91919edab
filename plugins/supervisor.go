package plugins

import (
	"context"
	"errors"
	"log/slog"
	"os/exec"
	"sync"
	"time"
)

// SupervisorConfig configures a Supervisor. Command, Config.Name and Host are required.
type SupervisorConfig struct {
	// Command returns a fresh, unstarted command for each (re)start of the plugin.
	Command func() *exec.Cmd
	// Config is given to every start (its Logger also receives the supervisor's messages).
	Config Config
	// Host receives the plugin's requests, from every incarnation.
	Host Host
	// OnStart is called after every successful (re)start, before the supervisor waits for
	// the plugin's exit, so that the runtime can replay the plugin's subscriptions or resend
	// the state it needs. It runs on the supervisor's goroutine; Events may be called from it.
	OnStart func(p *Process)
	// OnExit, if set, is called when a running plugin ended without Close, with the reason.
	OnExit func(err error)
	// Backoff is the wait before the first restart (default 250 ms); it doubles at each
	// failed or short-lived incarnation, up to MaxBackoff (default 30 s), and is reset once
	// a plugin has run for Healthy (default 10 s).
	Backoff    time.Duration
	MaxBackoff time.Duration
	Healthy    time.Duration
	// StartTimeout bounds each launch (default 30 s).
	StartTimeout time.Duration
}

// Supervisor keeps one plugin running: it launches it, notices its exit at once (the stream
// breaks), and restarts it with back-off. It is plain Go: one goroutine, owned by the
// Supervisor, ended by Close.
type Supervisor struct {
	cfg SupervisorConfig

	mu      sync.Mutex
	current *Process // nil while the plugin is down
	stop    chan struct{}
	done    chan struct{}
	started bool

	closeOnce sync.Once
}

// NewSupervisor returns a supervisor; it does no I/O until Start.
func NewSupervisor(cfg SupervisorConfig) *Supervisor {
	if cfg.Backoff <= 0 {
		cfg.Backoff = 250 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	if cfg.MaxBackoff < cfg.Backoff {
		cfg.MaxBackoff = cfg.Backoff
	}
	if cfg.Healthy <= 0 {
		cfg.Healthy = 10 * time.Second
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 30 * time.Second
	}
	if cfg.Config.Logger == nil {
		cfg.Config.Logger = slog.New(slog.DiscardHandler)
	}
	return &Supervisor{cfg: cfg, stop: make(chan struct{}), done: make(chan struct{})}
}

// Start launches the plugin and returns its launch error, if any: a plugin that cannot start
// at all (a missing executable, a configuration it rejects) stops start-up. After a successful
// first start, later failures are retried with back-off until Close. Start may be called once.
func (s *Supervisor) Start(ctx context.Context) error {
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return errors.New("plugins: supervisor started twice")
	}
	s.started = true
	s.mu.Unlock()
	p, err := s.launch(ctx)
	if err != nil {
		close(s.done)
		return err
	}
	go s.loop(p)
	return nil
}

func (s *Supervisor) launch(ctx context.Context) (*Process, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.StartTimeout)
	defer cancel()
	go func() { // Close interrupts a launch
		select {
		case <-s.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	p, err := Launch(ctx, s.cfg.Command(), s.cfg.Config, s.cfg.Host)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.current = p
	s.mu.Unlock()
	if s.cfg.OnStart != nil {
		s.cfg.OnStart(p)
	}
	return p, nil
}

func (s *Supervisor) loop(p *Process) {
	defer close(s.done)
	log := s.cfg.Config.Logger.With("plugin", s.cfg.Config.Name)
	backoff := s.cfg.Backoff
	for {
		began := time.Now()
		select {
		case <-s.stop:
			s.setCurrent(nil)
			_ = p.Close()
			return
		case <-p.Done():
		}
		s.setCurrent(nil)
		err := p.Err()
		if time.Since(began) >= s.cfg.Healthy {
			backoff = s.cfg.Backoff
		}
		log.Warn("plugin exited; restarting", "error", err, "in", backoff)
		if s.cfg.OnExit != nil {
			s.cfg.OnExit(err)
		}
		for {
			t := time.NewTimer(backoff)
			select {
			case <-s.stop:
				t.Stop()
				return
			case <-t.C:
			}
			backoff = min(backoff*2, s.cfg.MaxBackoff)
			np, err := s.launch(context.Background())
			if err == nil {
				log.Info("plugin restarted", "pid", np.Pid())
				p = np
				break
			}
			select {
			case <-s.stop:
				return
			default:
			}
			log.Error("plugin restart failed", "error", err, "retry in", backoff)
		}
	}
}

func (s *Supervisor) setCurrent(p *Process) {
	s.mu.Lock()
	s.current = p
	s.mu.Unlock()
}

// Current returns the running plugin, or nil while it is down.
func (s *Supervisor) Current() *Process {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.current
}

// Events sends batch to the running plugin; it returns ErrClosed while the plugin is down
// (the caller keeps its state and replays it from OnStart).
func (s *Supervisor) Events(batch []Event) error {
	p := s.Current()
	if p == nil {
		return ErrClosed
	}
	return p.Events(batch)
}

// Close stops the plugin and the supervision, and returns when both have ended. It is
// idempotent and may be called without Start.
func (s *Supervisor) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		s.mu.Lock()
		started := s.started
		s.started = true // a later Start fails
		s.mu.Unlock()
		if started {
			<-s.done
		}
	})
	return nil
}
