package actors

import (
	"log/slog"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/goleak"

	"github.com/pvhub/pvhub/ca/wire"
)

// protoactor's dead-letter throttle keeps a goroutine for one throttle interval
// after a dead letter (messages to stopped actors while the system shuts down);
// it ends by itself.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"))
}

// TestRelayPVRestartKeepsState makes a relay PV actor fail: its supervisor
// restarts it, and the PV keeps its value and attributes and takes puts.
func TestRelayPVRestartKeepsState(t *testing.T) {
	quiet := slog.New(slog.DiscardHandler)
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quiet }))
	defer sys.Shutdown()
	sup := sys.Root.Spawn(NewRelaySupervisor(RelayConfig{Prefix: "R:", MaxPVs: 10, MaxElements: 10, Index: NewIndex(), Logger: quiet}))
	defer func() { _ = sys.Root.StopFuture(sup).Wait() }()
	ask := func(msg any) any {
		t.Helper()
		r, err := sys.Root.RequestFuture(sup, msg, 5*time.Second).Result()
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	put := func(name string, v wire.Value) {
		t.Helper()
		if err := ask(&Put{Name: name, Value: v}).(*PutResult).Err; err != nil {
			t.Fatalf("put %s: %v", name, err)
		}
	}
	put("R:x_f1.EGU", wire.Value{Type: wire.DBRString, Strings: []string{"mm"}})
	put("R:x_f1", wire.Value{Type: wire.DBRDouble, Doubles: []float64{3}})
	pv := ask(&OpenRelay{Name: "R:x_f1"}).(*Opened).PV
	boxes := ask(&listBoxes{}).([]*relayBox)
	if len(boxes) != 1 {
		t.Fatalf("%d relay PVs", len(boxes))
	}
	before := boxes[0].pid
	restarted := make(chan *actor.SupervisorEvent, 1)
	sub := sys.EventStream.Subscribe(func(evt any) {
		if e, ok := evt.(*actor.SupervisorEvent); ok && e.Child.Equal(before) {
			select {
			case restarted <- e:
			default:
			}
		}
	})
	defer sys.EventStream.Unsubscribe(sub)
	sys.Root.Send(before, &crash{})
	put("R:x_f1", wire.Value{Type: wire.DBRDouble, Doubles: []float64{4}})
	st := pv.Snapshot()
	if st.Value.Doubles[0] != 4 || st.Meta.Units != "mm" {
		t.Errorf("after the restart: value %v, units %q", st.Value.Doubles, st.Meta.Units)
	}
	if after := ask(&listBoxes{}).([]*relayBox); len(after) != 1 || after[0].pid != before {
		t.Errorf("the PV changed actor: %v", after)
	}
	// The failure really happened and was handled by a restart.
	select {
	case e := <-restarted:
		if e.Directive != actor.RestartDirective {
			t.Errorf("supervisor directive %v, want restart", e.Directive)
		}
	case <-time.After(5 * time.Second):
		t.Error("no supervised restart: the crash did not fail the actor")
	}
}
