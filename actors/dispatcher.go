package actors

import (
	"sync"

	"github.com/asynkron/protoactor-go/actor"
)

// Dispatcher runs actor mailboxes on long-lived worker goroutines.
//
// protoactor's default dispatcher starts a new goroutine each time an idle
// mailbox receives a message. A new goroutine starts with a small stack, and
// a relay PV's put path (mailbox, Receive, notify, the subscribers' sends)
// grows it several times: under a flood of puts, copying stacks took a
// quarter of the CPU. The workers here keep their grown stacks. When no
// worker is idle the mailbox gets a new goroutine as before, so an actor
// that blocks in Receive never holds up another.
type Dispatcher struct {
	work       chan func()
	stop       chan struct{}
	wg         sync.WaitGroup
	throughput int
	once       sync.Once
}

var _ actor.Dispatcher = (*Dispatcher)(nil)

// NewDispatcher starts workers goroutines; throughput is the number of
// messages a mailbox processes before it yields (protoactor's default is 300).
// Close stops them.
func NewDispatcher(workers, throughput int) *Dispatcher {
	d := &Dispatcher{work: make(chan func()), stop: make(chan struct{}), throughput: throughput}
	d.wg.Add(workers)
	for range workers {
		go d.run()
	}
	return d
}

func (d *Dispatcher) run() {
	defer d.wg.Done()
	for {
		select {
		case fn := <-d.work:
			fn()
		case <-d.stop:
			return
		}
	}
}

// Schedule implements actor.Dispatcher: fn runs on an idle worker, or on a new
// goroutine when every worker is busy (or after Close).
func (d *Dispatcher) Schedule(fn func()) {
	select {
	case d.work <- fn:
	default:
		go fn()
	}
}

// Throughput implements actor.Dispatcher.
func (d *Dispatcher) Throughput() int { return d.throughput }

// Close stops the workers once they finish what they run; mailboxes scheduled
// afterwards get their own goroutines. Close it after the actor system has
// stopped the actors that use it.
func (d *Dispatcher) Close() {
	d.once.Do(func() { close(d.stop) })
	d.wg.Wait()
}

// withDispatcher returns the props option for d, or none when d is nil
// (protoactor's default dispatcher).
func withDispatcher(d actor.Dispatcher) []actor.PropsOption {
	if d == nil {
		return nil
	}
	return []actor.PropsOption{actor.WithDispatcher(d)}
}
