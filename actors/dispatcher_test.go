package actors

import (
	"sync"
	"testing"
	"time"
)

func TestDispatcherRunsOnWorkersAndFallsBack(t *testing.T) {
	d := NewDispatcher(2, 7)
	defer d.Close()
	if d.Throughput() != 7 {
		t.Fatalf("Throughput() = %d, want 7", d.Throughput())
	}
	// Block both workers (and then some): every scheduled function must still
	// run, the ones beyond the workers on their own goroutines.
	release := make(chan struct{})
	var started sync.WaitGroup
	const n = 5
	started.Add(n)
	for range n {
		d.Schedule(func() { started.Done(); <-release })
	}
	waitGroup(t, &started, "5 blocking functions on 2 workers")
	var ran sync.WaitGroup
	ran.Add(1)
	d.Schedule(ran.Done)
	waitGroup(t, &ran, "a function scheduled while every worker is blocked")
	close(release)
	// The workers are idle again and take new work.
	ran.Add(100)
	for range 100 {
		d.Schedule(ran.Done)
	}
	waitGroup(t, &ran, "100 functions")
}

func TestDispatcherAfterClose(t *testing.T) {
	d := NewDispatcher(3, 300)
	d.Close()
	d.Close() // idempotent
	done := make(chan struct{})
	d.Schedule(func() { close(done) })
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a function scheduled after Close did not run")
	}
}

func waitGroup(t *testing.T, wg *sync.WaitGroup, what string) {
	t.Helper()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}
