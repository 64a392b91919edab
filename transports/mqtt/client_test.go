package mqtt

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
)

// waitTimeout bounds every wait of these tests: generous, for -race on a busy machine.
const waitTimeout = 20 * time.Second

// message is one PUBLISH a test client received.
type message struct {
	topic   string
	payload []byte
	retain  bool
	corr    []byte
}

// json decodes the payload as a JSON object (nil when it is not one).
func (m message) json() map[string]any {
	var v map[string]any
	if json.Unmarshal(m.payload, &v) != nil {
		return nil
	}
	return v
}

func (m message) String() string {
	return fmt.Sprintf("%s %s (retain %t)", m.topic, m.payload, m.retain)
}

// testClient is an MQTT 5 client (paho) that records what it receives, in order.
type testClient struct {
	t   testing.TB
	cli *paho.Client
	id  string

	mu      sync.Mutex
	msgs    []message // received and not yet consumed
	ended   error
	changed chan struct{} // closed and replaced when msgs or ended change
	once    sync.Once
}

type clientOpts struct {
	username, password string
	will               *paho.WillMessage
	persistent         bool // no clean start, a session that outlives the connection
}

// dialClient connects a client to addr; it is closed at the test's cleanup.
func dialClient(t testing.TB, addr, id string, o ...clientOpts) *testClient {
	t.Helper()
	c, err := connectClient(addr, id, o...)
	if err != nil {
		t.Fatalf("MQTT client %s to %s: %v", id, addr, err)
	}
	c.t = t
	t.Cleanup(c.Close)
	return c
}

func connectClient(addr, id string, o ...clientOpts) (*testClient, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return connectConn(conn, id, o...)
}

// dialTLSClient connects over TLS, verifying the server with the test CA, and presenting
// the client certificate when withCert.
func dialTLSClient(addr, id string, p pki, withCert bool) (*testClient, error) {
	pool, err := loadPool(p.ca)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	if withCert {
		cert, err := tls.LoadX509KeyPair(p.clientCert, p.clientKey)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	return connectConn(conn, id)
}

func connectConn(conn net.Conn, id string, o ...clientOpts) (*testClient, error) {
	c := &testClient{id: id, changed: make(chan struct{})}
	c.cli = paho.NewClient(paho.ClientConfig{
		ClientID:          id,
		Conn:              packets.NewThreadSafeConn(conn),
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){c.received},
		OnClientError:     func(err error) { c.end(err) },
		OnServerDisconnect: func(d *paho.Disconnect) {
			c.end(fmt.Errorf("the server disconnected the client (reason code %d)", d.ReasonCode))
		},
	})
	cp := &paho.Connect{ClientID: id, KeepAlive: 30, CleanStart: true}
	if len(o) > 0 {
		if o[0].username != "" {
			cp.Username, cp.UsernameFlag = o[0].username, true
		}
		if o[0].password != "" {
			cp.Password, cp.PasswordFlag = []byte(o[0].password), true
		}
		if o[0].will != nil {
			cp.WillMessage = o[0].will
			cp.WillProperties = &paho.WillProperties{}
		}
		if o[0].persistent {
			expiry := uint32(300)
			cp.CleanStart = false
			cp.Properties = &paho.ConnectProperties{SessionExpiryInterval: &expiry}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ca, err := c.cli.Connect(ctx, cp)
	if err != nil {
		conn.Close()
		<-c.cli.Done()
		if ca != nil {
			return nil, fmt.Errorf("connect refused (reason code %d): %w", ca.ReasonCode, err)
		}
		return nil, err
	}
	return c, nil
}

func (c *testClient) received(pr paho.PublishReceived) (bool, error) {
	m := message{topic: pr.Packet.Topic, payload: append([]byte(nil), pr.Packet.Payload...), retain: pr.Packet.Retain}
	if pr.Packet.Properties != nil {
		m.corr = pr.Packet.Properties.CorrelationData
	}
	c.mu.Lock()
	c.msgs = append(c.msgs, m)
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
	return true, nil
}

func (c *testClient) end(err error) {
	c.mu.Lock()
	if c.ended == nil {
		c.ended = err
		close(c.changed)
		c.changed = make(chan struct{})
	}
	c.mu.Unlock()
}

func (c *testClient) subscribe(topics ...string) error {
	s := &paho.Subscribe{}
	for _, tp := range topics {
		s.Subscriptions = append(s.Subscriptions, paho.SubscribeOptions{Topic: tp, QoS: 1})
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	sa, err := c.cli.Subscribe(ctx, s)
	if err != nil {
		return err
	}
	for i, code := range sa.Reasons {
		if code >= 0x80 {
			return fmt.Errorf("subscription to %s refused (reason code %d)", topics[i], code)
		}
	}
	return nil
}

func (c *testClient) mustSubscribe(topics ...string) {
	c.t.Helper()
	if err := c.subscribe(topics...); err != nil {
		c.t.Fatalf("subscribe %v: %v", topics, err)
	}
}

func (c *testClient) unsubscribe(topics ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	_, err := c.cli.Unsubscribe(ctx, &paho.Unsubscribe{Topics: topics})
	return err
}

// publish sends a message; a QoS 1 message waits for its acknowledgement.
func (c *testClient) publish(topic string, payload []byte, qos byte, props *paho.PublishProperties) error {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	_, err := c.cli.Publish(ctx, &paho.Publish{Topic: topic, Payload: payload, QoS: qos, Properties: props})
	return err
}

func (c *testClient) mustPublish(topic, payload string) {
	c.t.Helper()
	if err := c.publish(topic, []byte(payload), 1, nil); err != nil {
		c.t.Fatalf("publish %s %q: %v", topic, payload, err)
	}
}

// next returns the first message that match accepts, consuming it and every message before
// it; it fails the test after waitTimeout.
func (c *testClient) next(what string, match func(message) bool) message {
	c.t.Helper()
	m, err := c.await(context.Background(), waitTimeout, match)
	if err != nil {
		c.t.Fatalf("client %s waiting for %s: %v", c.id, what, err)
	}
	return m
}

func (c *testClient) await(ctx context.Context, timeout time.Duration, match func(message) bool) (message, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	var seen []string
	for {
		c.mu.Lock()
		for len(c.msgs) > 0 {
			m := c.msgs[0]
			c.msgs = c.msgs[1:]
			if match(m) {
				c.mu.Unlock()
				return m, nil
			}
			seen = append(seen, m.String())
			if len(seen) > 8 {
				seen = seen[1:]
			}
		}
		ended, ch := c.ended, c.changed
		c.mu.Unlock()
		if ended != nil {
			return message{}, fmt.Errorf("connection ended: %v (last messages: %s)", ended, strings.Join(seen, "; "))
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return message{}, ctx.Err()
		case <-deadline.C:
			return message{}, fmt.Errorf("nothing after %v (last messages: %s)", timeout, strings.Join(seen, "; "))
		}
	}
}

// endedErr returns the error that ended the connection, or nil.
func (c *testClient) endedErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ended
}

// Close disconnects and waits for the client's goroutines; it is idempotent.
func (c *testClient) Close() {
	c.once.Do(func() {
		_ = c.cli.Disconnect(&paho.Disconnect{ReasonCode: 0})
		<-c.cli.Done()
		c.end(errors.New("closed"))
	})
}

// Matchers.

func onTopic(topic string) func(message) bool {
	return func(m message) bool { return m.topic == topic }
}

// stateIs matches a state message of topic whose JSON has every key of want with that value
// (compared as printed).
func stateIs(topic string, want map[string]any) func(message) bool {
	return func(m message) bool {
		if m.topic != topic {
			return false
		}
		v := m.json()
		if v == nil {
			return false
		}
		for k, w := range want {
			if fmt.Sprint(v[k]) != fmt.Sprint(w) {
				return false
			}
		}
		return true
	}
}

func nan() float64 { return math.NaN() }

// dialRaw opens a plain TCP connection, for clients that never speak MQTT.
func dialRaw(addr string) (net.Conn, error) { return net.DialTimeout("tcp", addr, 5*time.Second) }
