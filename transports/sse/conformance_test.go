package sse_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/pvhub/pvhub/plugins"
	"github.com/pvhub/pvhub/plugins/plugintest"
	"github.com/pvhub/pvhub/transports/sse"
)

// TestConformance runs the plugin conformance suite with clients that open one event stream
// per subscribed PV and write through PUT /api/v1/pv/{name}.
func TestConformance(t *testing.T) {
	plugintest.Run(t, func(t *testing.T) (plugins.Transport, plugins.Config, plugintest.ClientFactory) {
		tr := sse.New()
		cfg := plugins.Config{Name: "sse", Options: map[string]any{"listen": "127.0.0.1:0"}}
		return tr, cfg, func(t *testing.T) plugintest.Client {
			return newConfClient("http://" + tr.(*sse.Transport).Addr())
		}
	})
}

// confClient is a plugintest.Client over HTTP: a stream per PV, each read by its own
// goroutine, and PUTs for writes. It has an HTTP transport of its own, so that its
// connections end with it.
type confClient struct {
	base string
	hc   *http.Client
	once sync.Once

	mu      sync.Mutex
	streams map[string]*confStream
	events  []plugintest.ClientEvent
	ended   error
	changed chan struct{} // closed and replaced whenever events or ended change
	state   map[string]int8
}

type confStream struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func newConfClient(base string) *confClient {
	return &confClient{base: base, hc: &http.Client{Transport: &http.Transport{}},
		streams: map[string]*confStream{}, changed: make(chan struct{}), state: map[string]int8{}}
}

func (c *confClient) signal() {
	close(c.changed)
	c.changed = make(chan struct{})
}

func (c *confClient) fail(err error) {
	c.mu.Lock()
	if c.ended == nil {
		c.ended = err
	}
	c.signal()
	c.mu.Unlock()
}

// Subscribe implements plugintest.Client: it opens a stream of the PV.
func (c *confClient) Subscribe(name string) {
	c.mu.Lock()
	if c.streams[name] != nil {
		c.mu.Unlock()
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &confStream{cancel: cancel, done: make(chan struct{})}
	c.streams[name] = s
	c.mu.Unlock()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+sse.EventsPath+"?pv="+url.QueryEscape(name), nil)
	if err != nil {
		close(s.done)
		c.fail(err)
		return
	}
	resp, err := c.hc.Do(req)
	if err == nil && resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		err = fmt.Errorf("GET %s: %s: %s", req.URL, resp.Status, b)
	}
	if err != nil {
		close(s.done)
		c.fail(err)
		return
	}
	go func() {
		defer close(s.done)
		defer resp.Body.Close()
		err := sse.ReadSSE(resp.Body, func(event, data string) { c.event(event, data) })
		if ctx.Err() != nil {
			return // Unsubscribe or Close
		}
		if err == nil {
			err = io.EOF
		}
		c.fail(fmt.Errorf("the stream of %s ended: %w", name, err))
	}()
}

// event sorts one server-sent event into the suite's events.
func (c *confClient) event(event, data string) {
	if event == "" || event == "error" {
		return // comments; the end of the stream follows an error event
	}
	var m map[string]any
	if json.Unmarshal([]byte(data), &m) != nil {
		c.fail(fmt.Errorf("event %s: bad JSON %q", event, data))
		return
	}
	name, _ := m["pv"].(string)
	c.mu.Lock()
	defer c.mu.Unlock()
	switch event {
	case "connection":
		connected, _ := m["connected"].(bool)
		switch {
		case connected && c.state[name] != 1:
			c.state[name] = 1
			c.events = append(c.events, plugintest.ClientEvent{Kind: plugintest.EventConnected, Name: name})
		case !connected && c.state[name] != -1:
			c.state[name] = -1
			c.events = append(c.events, plugintest.ClientEvent{Kind: plugintest.EventDisconnected, Name: name})
		}
	case "metadata":
		units, _ := m["units"].(string)
		c.events = append(c.events, plugintest.ClientEvent{Kind: plugintest.EventMetadata, Name: name, Units: units})
	case "value":
		c.events = append(c.events, plugintest.JSONValue(name, m["value"]))
	}
	c.signal()
}

// Unsubscribe implements plugintest.Client: it closes the PV's stream and returns once its
// reader has ended.
func (c *confClient) Unsubscribe(name string) {
	c.mu.Lock()
	s := c.streams[name]
	delete(c.streams, name)
	delete(c.state, name)
	c.mu.Unlock()
	if s != nil {
		s.cancel()
		<-s.done
	}
}

// Put implements plugintest.Client.
func (c *confClient) Put(name string, v plugins.Data) error {
	var val any
	switch v.Kind {
	case plugins.KindFloat64:
		val = v.Float64s
	case plugins.KindInt64:
		val = v.Int64s
	case plugins.KindString:
		val = v.Strings
	case plugins.KindBytes:
		val = string(v.Bytes)
	}
	if v.Len() == 1 && v.Kind != plugins.KindBytes {
		switch l := val.(type) {
		case []float64:
			val = l[0]
		case []int64:
			val = l[0]
		case []string:
			val = l[0]
		}
	}
	body, err := json.Marshal(map[string]any{"value": val})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, c.base+sse.PVPath+url.PathEscape(name), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var answer struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil {
		return fmt.Errorf("PUT %s: %s, body: %v", name, resp.Status, err)
	}
	if resp.StatusCode != http.StatusOK || !answer.OK {
		return fmt.Errorf("PUT %s: %s: %s", name, resp.Status, answer.Error)
	}
	return nil
}

// Next implements plugintest.Client.
func (c *confClient) Next(ctx context.Context) (plugintest.ClientEvent, error) {
	for {
		c.mu.Lock()
		if len(c.events) > 0 {
			e := c.events[0]
			c.events = c.events[1:]
			c.mu.Unlock()
			return e, nil
		}
		ended, ch := c.ended, c.changed
		c.mu.Unlock()
		if ended != nil {
			return plugintest.ClientEvent{}, ended
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return plugintest.ClientEvent{}, ctx.Err()
		}
	}
}

// Close implements plugintest.Client: it closes every stream and the idle connections.
func (c *confClient) Close() {
	c.once.Do(func() {
		c.mu.Lock()
		streams := c.streams
		c.streams = map[string]*confStream{}
		c.mu.Unlock()
		for _, s := range streams {
			s.cancel()
			<-s.done
		}
		c.hc.CloseIdleConnections()
		c.fail(errors.New("client closed"))
	})
}
