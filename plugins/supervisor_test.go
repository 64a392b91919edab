package plugins_test

import (
	"context"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/pvhub/pvhub/plugins"
)

func TestSupervisorRestartsKilledPlugin(t *testing.T) {
	host := newRecHost()
	starts := make(chan *plugins.Process, 10)
	s := plugins.NewSupervisor(plugins.SupervisorConfig{
		Command: func() *exec.Cmd { return exec.Command(testPlugin) },
		Config:  plugins.Config{Name: "sup", Options: map[string]any{"echo": true}, Logger: (&logBuffer{}).logger()},
		Host:    host,
		OnStart: func(p *plugins.Process) { starts <- p },
	})
	defer s.Close()
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	first := <-starts
	if s.Current() != first {
		t.Fatal("Current is not the started plugin")
	}
	oldPid := first.Pid()
	killed := time.Now()
	if err := syscall.Kill(oldPid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var second *plugins.Process
	select {
	case second = <-starts:
	case <-time.After(time.Second):
		t.Fatal("not restarted within 1 s")
	}
	t.Logf("restarted %v after kill -9", time.Since(killed))
	if second.Pid() == oldPid {
		t.Fatal("same pid after restart")
	}
	if !processGone(oldPid) {
		t.Errorf("killed plugin %d not reaped", oldPid)
	}
	// The new incarnation works.
	if err := s.Events([]plugins.Event{plugins.Connection{Name: "X", Connected: true}}); err != nil {
		t.Fatal(err)
	}
	if r := host.next(t); r.op != "put" || r.id != 1 {
		t.Fatalf("echo from the restarted plugin: %+v", r)
	}
	newPid := second.Pid()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s.Current() != nil {
		t.Error("Current not nil after Close")
	}
	if !processGone(newPid) {
		t.Errorf("plugin %d left running after Close", newPid)
	}
	s.Close() // idempotent
}

func TestSupervisorStartFails(t *testing.T) {
	s := plugins.NewSupervisor(plugins.SupervisorConfig{
		Command: func() *exec.Cmd { return exec.Command("/nonexistent/pvhub-plugin") },
		Config:  plugins.Config{Name: "missing"},
		Host:    newRecHost(),
	})
	if err := s.Start(context.Background()); err == nil {
		t.Fatal("Start of a missing executable succeeded")
	}
	s.Close()
	s.Close()
}

func TestSupervisorCloseWithoutStart(t *testing.T) {
	s := plugins.NewSupervisor(plugins.SupervisorConfig{Config: plugins.Config{Name: "x"}})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err == nil {
		t.Fatal("Start after Close succeeded")
	}
}
