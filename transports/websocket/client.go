package websocket

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/pvhub/pvhub/plugins"
)

type entryKind uint8

const (
	entRaw      entryKind = iota // a prepared message (ack, error, echo)
	entSubStart                  // the socket subscribed to name
	entSubEnd                    // the socket unsubscribed from name
	entConn
	entMeta
	entValue // coalesced: only the newest value per PV waits in the queue
)

// entry is one item of a socket's send queue. Events are shared by every socket and never
// modified; the writer encodes them in the socket's dialect.
type entry struct {
	kind     entryKind
	readOnly bool
	name     string
	raw      []byte
	conn     plugins.Connection
	meta     *plugins.Metadata
	value    *plugins.Value
}

// dialect is one wire protocol: it handles the client's messages (reader goroutine) and
// encodes queued entries (writer goroutine).
type dialect interface {
	handle(c *client, msg []byte)
	// encode appends the messages for e to out; views holds the writer's per-PV state.
	encode(w *writer, e entry)
	// flush appends the messages deferred until the end of a batch.
	flush(w *writer)
}

// client is one WebSocket connection.
type client struct {
	t       *Transport
	conn    *websocket.Conn
	netConn net.Conn
	batch   *batchConn // nil when the connection could not be wrapped
	d       dialect
	log     *slog.Logger

	subs map[string]*sub // guarded by t.hub.mu

	mu      sync.Mutex
	queue   []entry
	spare   []entry
	valueAt map[string]int
	dead    bool
	peak    int // largest queue length seen (tests)

	wake      chan struct{}
	stop      chan struct{}
	ctx       context.Context // cancelled by close
	cancel    context.CancelFunc
	stopOnce  sync.Once
	code      websocket.StatusCode
	reason    string
	wg        sync.WaitGroup // writer and ping goroutines
	pingCount int
}

// enqueue adds e to the send queue without blocking. A queue longer than the limit
// closes the socket.
func (c *client) enqueue(e entry) {
	c.mu.Lock()
	if c.dead {
		c.mu.Unlock()
		return
	}
	if e.kind == entValue {
		if i, ok := c.valueAt[e.name]; ok {
			c.queue[i] = e
			c.mu.Unlock()
			return
		}
	} else if e.name != "" {
		delete(c.valueAt, e.name)
	}
	if len(c.queue) >= c.t.opts.queueLimit {
		c.dead = true
		n := len(c.queue)
		c.queue, c.valueAt = nil, nil
		c.mu.Unlock()
		c.log.Warn("closing a client that does not keep up", "queued", n)
		c.close(websocket.StatusPolicyViolation, fmt.Sprintf("client too slow: more than %d messages queued", n))
		return
	}
	if e.kind == entValue {
		c.valueAt[e.name] = len(c.queue)
	}
	c.queue = append(c.queue, e)
	if len(c.queue) > c.peak {
		c.peak = len(c.queue)
	}
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// send queues a prepared message.
func (c *client) send(msg []byte) { c.enqueue(entry{kind: entRaw, raw: msg}) }

// close asks the writer to close the socket with code and reason (the first call wins).
func (c *client) close(code websocket.StatusCode, reason string) {
	c.stopOnce.Do(func() {
		c.code, c.reason = code, reason
		close(c.stop)
		c.cancel()
	})
}

func (c *client) take() []entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	q := c.queue
	c.queue = c.spare[:0]
	c.spare = nil
	clear(c.valueAt)
	return q
}

func (c *client) giveBack(q []entry) {
	clear(q)
	c.mu.Lock()
	if c.spare == nil && cap(q) <= 4096 {
		c.spare = q[:0]
	}
	c.mu.Unlock()
}

// writer is the writer goroutine's state: the per-PV views of the dialect and the
// messages being built.
type writer struct {
	c     *client
	views map[string]*view
	buf   []byte
	ends  []int // end offsets of the messages in buf
	dirty []string
}

// view is what the client has been told about one PV.
type view struct {
	readOnly bool
	conn     plugins.Connection
	haveConn bool
	meta     *plugins.Metadata
	// ophyd
	status, severity string
	timestamp        float64
	haveValue        bool
	dirty            bool
	metaStale        bool // connected, and the metadata of this connection not received yet
	// pvws
	needMeta   bool
	sentFirst  bool
	lastSev    string
	lastRO     bool
	lastConnOK bool
}

// msg returns buf with a new message started; end records it.
func (w *writer) end() { w.ends = append(w.ends, len(w.buf)) }

func (c *client) runWriter() {
	defer c.wg.Done()
	w := &writer{c: c, views: map[string]*view{}}
	for {
		select {
		case <-c.stop:
			c.finish()
			return
		case <-c.wake:
		}
		q := c.take()
		for _, e := range q {
			switch e.kind {
			case entRaw:
				w.buf = append(w.buf, e.raw...)
				w.end()
			case entSubStart:
				w.views[e.name] = &view{readOnly: e.readOnly}
			case entSubEnd:
				delete(w.views, e.name)
			default:
				c.d.encode(w, e)
			}
			if len(w.buf) > 64<<10 {
				if !w.write() {
					return
				}
			}
		}
		c.d.flush(w)
		c.giveBack(q)
		if !w.write() {
			return
		}
	}
}

// write sends the messages built so far as one batch (see batchConn); false means the
// socket is gone.
func (w *writer) write() bool {
	c := w.c
	select {
	case <-c.stop:
		w.reset()
		c.finish()
		return false
	default:
	}
	if c.batch != nil {
		c.batch.hold()
	}
	var err error
	timedOut := false
	start := 0
	for _, end := range w.ends {
		if c.batch != nil {
			// Held writes only append to the batch: nothing here waits for the client.
			err = c.conn.Write(context.Background(), websocket.MessageText, w.buf[start:end])
		} else {
			ctx, cancel := context.WithTimeout(context.Background(), c.t.opts.stallTimeout)
			err = c.conn.Write(ctx, websocket.MessageText, w.buf[start:end])
			timedOut = ctx.Err() != nil
			cancel()
		}
		if err != nil {
			break
		}
		start = end
	}
	if c.batch != nil {
		if rerr := c.batch.release(time.Now().Add(c.t.opts.stallTimeout)); err == nil && rerr != nil {
			err, timedOut = rerr, errors.Is(rerr, os.ErrDeadlineExceeded)
		}
	}
	w.reset()
	if err != nil {
		if timedOut {
			reason := fmt.Sprintf("client too slow: a message waited more than %v", c.t.opts.stallTimeout)
			c.log.Warn("closing a client that does not keep up", "reason", reason)
			c.close(websocket.StatusPolicyViolation, reason)
		} else {
			c.close(websocket.StatusInternalError, "write failed")
		}
		c.finish()
		return false
	}
	return true
}

func (w *writer) reset() {
	w.buf, w.ends = w.buf[:0], w.ends[:0]
	if cap(w.buf) > 1<<20 {
		w.buf = nil
	}
}

// finish marks the client dead and closes the connection with the recorded reason.
func (c *client) finish() {
	c.mu.Lock()
	c.dead = true
	c.queue, c.spare, c.valueAt = nil, nil, nil
	c.mu.Unlock()
	<-c.stop
	_ = c.conn.Close(c.code, c.reason)
}

// readLoop reads messages until the connection ends. A message over the size limit is
// discarded (read but not kept) and answered with an error; the socket stays open.
func (c *client) readLoop() {
	limit := int64(c.t.opts.maxMessageBytes)
	buf := make([]byte, 0, 4096)
	for {
		typ, r, err := c.conn.Reader(context.Background())
		if err != nil {
			if s := websocket.CloseStatus(err); s == -1 && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				c.log.Debug("websocket read ended", "err", err)
			}
			return
		}
		buf = buf[:0]
		n, err := readAppend(&buf, io.LimitReader(r, limit+1))
		if err != nil {
			return
		}
		if n > limit {
			discarded, err := io.Copy(io.Discard, r)
			if err != nil {
				return
			}
			c.send(c.tooBig(n + discarded))
			continue
		}
		if typ != websocket.MessageText {
			c.send(c.badInput("binary messages are not supported; send JSON text messages"))
			continue
		}
		c.d.handle(c, buf)
		if cap(buf) > 1<<20 {
			buf = make([]byte, 0, 4096)
		}
	}
}

func (c *client) tooBig(n int64) []byte {
	return c.badInput(fmt.Sprintf("message too big: %d bytes, the limit is %d (max_message_bytes)", n, c.t.opts.maxMessageBytes))
}

// badInput builds a dialect error message.
func (c *client) badInput(text string) []byte {
	switch c.d.(type) {
	case *pvwsDialect:
		return pvwsError(nil, "", text)
	case *nativeDialect:
		return nativeError("", text)
	}
	return ophydError(nil, text)
}

func readAppend(buf *[]byte, r io.Reader) (int64, error) {
	b := *buf
	var n int64
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		m, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+m]
		n += int64(m)
		if err == io.EOF {
			*buf = b
			return n, nil
		}
		if err != nil {
			*buf = b
			return n, err
		}
	}
}

// ping sends a WebSocket ping and waits for the pong, on its own goroutine (the pong is
// read by the reader).
func (c *client) ping() {
	c.mu.Lock()
	if c.dead || c.pingCount > 0 {
		c.mu.Unlock()
		return
	}
	c.pingCount++
	c.wg.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.wg.Done()
		ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
		defer cancel()
		_ = c.conn.Ping(ctx)
		c.mu.Lock()
		c.pingCount--
		c.mu.Unlock()
	}()
}

// queued returns the number of queued entries and the peak (tests).
func (c *client) queued() (int, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.queue), c.peak
}
