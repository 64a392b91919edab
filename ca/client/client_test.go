package client

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pvhub/pvhub/ca/server"
	"github.com/pvhub/pvhub/ca/wire"
)

func TestSmoke(t *testing.T) {
	ao := mustPV(t, "C:ao", server.PVOptions{Type: wire.DBRDouble, Count: 1, Value: doubles(1.5),
		Meta: wire.Metadata{Units: "V", Precision: 2}})
	ts := newTestServer(t, 0, ao)
	c := newClient(t, ts)
	ev := newEvents()
	ch, err := c.Channel("C:ao", ChannelOptions{OnConnection: ev.onConn})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := ch.Get(ctx, wire.DBRCtrlDouble, 1)
	if err != nil {
		t.Fatal(err)
	}
	if d.Value.Doubles[0] != 1.5 || d.Meta.Units != "V" {
		t.Errorf("get %+v", d)
	}
	if err := ch.Put(ctx, wire.Value{Type: wire.DBRString, Strings: []string{"2.5"}}); err != nil {
		t.Fatal(err)
	}
	err = ch.Put(ctx, wire.Value{Type: wire.DBRString, Strings: []string{"abc"}})
	if !errors.Is(err, wire.ECAPutFail) {
		t.Errorf("bad put: %v", err)
	}
	if _, err := ch.Subscribe(SubscribeOptions{Type: wire.DBRTimeDouble, Native: true}, ev.onUpdate); err != nil {
		t.Fatal(err)
	}
	ev.wait(t, 5*time.Second, "first update", func() bool { return len(ev.updates) == 1 && ev.updates[0] == 2.5 })
	_ = ao.Post(doubles(3), server.NoAlarm, wire.Timestamp{})
	ev.wait(t, 5*time.Second, "second update", func() bool { return len(ev.updates) == 2 })

	// Restart the server on the same port: disconnected, connected, fresh value.
	ts.stop()
	ev.wait(t, 5*time.Second, "disconnect", func() bool { return len(ev.conns) == 2 && ev.conns[1].State == Disconnected })
	time.Sleep(300 * time.Millisecond)
	_ = ao.Post(doubles(4), server.NoAlarm, wire.Timestamp{})
	start := time.Now()
	ts.start()
	ev.wait(t, 10*time.Second, "reconnect and fresh value", func() bool {
		return len(ev.conns) == 3 && ev.conns[2].State == Connected && len(ev.updates) == 3 && ev.updates[2] == 4
	})
	t.Logf("reconnected with a fresh value %v after the restart", time.Since(start))
}
