package mqtt

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"
)

const (
	// keepAlive is the MQTT keep-alive toward the external broker, in seconds.
	keepAlive = 30
	// closeTimeout bounds each step of Close with an external broker (the offline status,
	// the disconnection).
	closeTimeout = 2 * time.Second
)

// The reconnection back-off: a random delay from reconnectMin up to a ceiling that starts at
// reconnectFirst and doubles after each failed attempt up to reconnectMax.
const (
	reconnectMin   = 250 * time.Millisecond
	reconnectFirst = time.Second
	reconnectMax   = 30 * time.Second
)

// external is the connection to an external broker, kept up by autopaho.
type external struct {
	t  *Transport
	cm *autopaho.ConnectionManager
}

func startExternal(t *Transport) (*external, error) {
	o := &t.opts
	x := &external{t: t}
	cfg := autopaho.ClientConfig{
		ServerUrls:                    []*url.URL{o.broker},
		KeepAlive:                     keepAlive,
		CleanStartOnInitialConnection: true,
		ReconnectBackoff:              autopaho.NewExponentialBackoff(reconnectMin, reconnectMax, reconnectFirst, 2),
		ConnectTimeout:                10 * time.Second,
		OnConnectionUp:                x.up,
		OnConnectError:                x.connectError,
		ConnectUsername:               o.username,
		ClientConfig: paho.ClientConfig{
			ClientID:          o.clientID,
			OnPublishReceived: []func(paho.PublishReceived) (bool, error){x.received},
			OnClientError:     x.lost,
			OnServerDisconnect: func(d *paho.Disconnect) {
				reason := ""
				if d.Properties != nil {
					reason = d.Properties.ReasonString
				}
				x.lost(fmt.Errorf("the broker disconnected pvhub (reason code %d %s)", d.ReasonCode, reason))
			},
		},
	}
	if o.password != "" {
		cfg.ConnectPassword = []byte(o.password)
	}
	if o.tls {
		tc, err := clientTLS(*o)
		if err != nil {
			return nil, err
		}
		cfg.TlsCfg = tc
	}
	if o.statusTopic != "" {
		cfg.WillMessage = &paho.WillMessage{Topic: o.statusTopic, Payload: statusOffline, QoS: o.qos, Retain: true}
		cfg.WillProperties = &paho.WillProperties{}
	}
	cm, err := autopaho.NewConnection(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("broker %s: %w", o.broker, err)
	}
	x.cm = cm
	return x, nil
}

// clientTLS is the TLS configuration toward the broker: ca_file's certificates (else the
// system's) verify it, cert_file and key_file identify pvhub.
func clientTLS(o options) (*tls.Config, error) {
	cfg := &tls.Config{ServerName: o.broker.Hostname(), MinVersion: tls.VersionTLS12}
	if o.caFile != "" {
		pool, err := loadPool(o.caFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if o.certFile != "" {
		cert, err := tls.LoadX509KeyPair(o.certFile, o.keyFile)
		if err != nil {
			return nil, fmt.Errorf("cert_file and key_file: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// up runs on each connection to the broker (autopaho's goroutine): it subscribes the set
// topics, then has the publisher say online and publish the newest state of every PV.
func (x *external) up(cm *autopaho.ConnectionManager, _ *paho.Connack) {
	t := x.t
	// Every topic under the prefix, since PV names may hold "/"; No Local leaves out
	// pvhub's own messages, and retained messages (a retained set would be replayed) are
	// not sent at subscription.
	_, err := cm.Subscribe(t.ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{
		{Topic: t.prefix + "#", QoS: 1, NoLocal: true, RetainHandling: 2},
	}})
	if err != nil && t.ctx.Err() == nil {
		t.log.Warn("cannot subscribe to the set topics on the MQTT broker; writes from MQTT are not received",
			"topic", t.prefix+"#", "error", err)
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	again := t.everUp
	t.up, t.everUp = true, true
	t.lostLogged, t.connectFailing = false, false
	t.upGen++
	t.status = t.opts.statusTopic != ""
	for _, p := range t.pvs {
		if p.publish() || p.retained {
			t.markDirty(p)
		}
	}
	n := len(t.dirty)
	t.mu.Unlock()
	t.signal()
	if again {
		t.log.Info("reconnected to the MQTT broker; publishing the newest state of every PV", "broker", t.opts.broker.String(), "pvs", n)
	} else {
		t.log.Info("connected to the MQTT broker", "broker", t.opts.broker.String())
	}
}

// lost runs when the connection to the broker fails, and autopaho reconnects. It only logs:
// autopaho calls it from a goroutine of its own, possibly after the next connection is up;
// the publisher learns that the connection is down from its failed publications.
func (x *external) lost(err error) {
	t := x.t
	t.mu.Lock()
	log := !t.closed && !t.lostLogged
	t.lostLogged = true
	t.mu.Unlock()
	if log {
		t.log.Warn("connection to the MQTT broker lost; reconnecting", "broker", t.opts.broker.String(), "error", err)
	}
}

// connectError logs a failed connection attempt: the first of a series as a warning.
func (x *external) connectError(err error) {
	t := x.t
	t.mu.Lock()
	closed := t.closed
	first := !t.connectFailing
	t.connectFailing = true
	t.mu.Unlock()
	if closed {
		return
	}
	if first {
		t.log.Warn("cannot connect to the MQTT broker; retrying with back-off", "broker", t.opts.broker.String(), "error", err)
	} else {
		t.log.Debug("cannot connect to the MQTT broker", "broker", t.opts.broker.String(), "error", err)
	}
}

// received handles a message from the broker: a set message becomes a write.
func (x *external) received(pr paho.PublishReceived) (bool, error) {
	p := pr.Packet
	name, ok := x.t.setTopic(p.Topic)
	if !ok || p.Retain {
		return false, nil
	}
	var reply string
	var corr []byte
	if p.Properties != nil {
		reply, corr = p.Properties.ResponseTopic, p.Properties.CorrelationData
	}
	x.t.handleSet(name, p.Payload, reply, corr)
	return true, nil
}

// publishJobs publishes jobs in order. On a failure it queues the rest again and reports
// false: the connection is down, and its return publishes everything again anyway.
func (x *external) publishJobs(jobs []job) bool {
	t := x.t
	t.mu.Lock()
	gen := t.upGen
	t.mu.Unlock()
	var cleared []*pvState
	var buf []byte
	for i := range jobs {
		j := &jobs[i]
		var payload []byte
		if j.p != nil {
			// A QoS 1 message stays in paho's session until acknowledged: its payload
			// cannot be a reused buffer.
			if t.opts.qos > 0 {
				buf = nil
			}
			buf = j.encode(buf)
			payload = buf
		} else {
			payload = j.payload
		}
		pub := &paho.Publish{Topic: j.topic, Payload: payload, QoS: t.opts.qos,
			Retain: j.kind == jobStatus || j.kind == jobClear || j.kind == jobState && t.opts.retain}
		if j.corr != nil {
			pub.Properties = &paho.PublishProperties{CorrelationData: j.corr}
		}
		if resp, err := x.cm.Publish(t.ctx, pub); err != nil {
			if t.ctx.Err() != nil {
				return false
			}
			if resp != nil || errors.Is(err, paho.ErrInvalidArguments) {
				// The broker refused this message (a negative PUBACK), or cannot take
				// it: retrying would not help.
				t.log.Debug("the broker refused a message", "topic", j.topic, "error", err)
				continue
			}
			t.log.Debug("publish failed; retrying", "topic", j.topic, "error", err)
			t.cleared(cleared)
			t.requeue(jobs[i:], gen, errors.Is(err, autopaho.ConnectionDownError))
			return false
		}
		switch j.kind {
		case jobState:
			t.published.Add(1)
		case jobClear:
			cleared = append(cleared, j.p)
		}
	}
	t.cleared(cleared)
	return true
}

// close stops the publisher (done is closed when it returned), says offline on the status
// topic, and disconnects.
func (x *external) close(done <-chan struct{}) {
	t := x.t
	stopped := false
	select {
	case <-done:
		stopped = true
	case <-time.After(closeTimeout):
		// The publisher is stuck in a write to a broker that does not read: the
		// disconnection below ends it.
	}
	t.mu.Lock()
	up := t.up
	t.mu.Unlock()
	if stopped && up && t.opts.statusTopic != "" {
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		_, err := x.cm.Publish(ctx, &paho.Publish{Topic: t.opts.statusTopic, Payload: statusOffline, QoS: t.opts.qos, Retain: true})
		cancel()
		if err != nil {
			t.log.Debug("cannot publish the offline status", "error", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	if err := x.cm.Disconnect(ctx); err != nil {
		t.log.Warn("disconnecting from the MQTT broker", "error", err)
		<-x.cm.Done()
	}
}
