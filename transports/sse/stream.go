package sse

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/pvhub/pvhub/plugins"
	"github.com/pvhub/pvhub/transports/internal/eventjson"
)

type entryKind uint8

const (
	entConn entryKind = iota
	entMeta
	entValue // coalesced: only the newest value per PV waits in the queue
)

// entry is one event waiting in a stream's queue. The events are shared by every stream and
// never modified; the stream's writer encodes them.
type entry struct {
	kind  entryKind
	name  string
	conn  plugins.Connection
	meta  *plugins.Metadata // the metadata event, or, for a value, the PV's metadata then
	value *plugins.Value
}

// stream is one text/event-stream response: a bounded queue filled by the hub and a writer,
// the request's handler goroutine, that empties it.
type stream struct {
	limit int

	mu      sync.Mutex
	queue   []entry
	spare   []entry
	valueAt map[string]int // index in queue of the value of a PV that may still be replaced
	dead    bool
	peak    int // longest queue seen (tests)

	wake     chan struct{}
	stop     chan struct{}
	stopOnce sync.Once
	reason   string // why the server ends the stream, sent as a final error event
	overflow bool   // the queue went past its limit
}

func newStream(limit int) *stream {
	return &stream{limit: limit, valueAt: map[string]int{}, wake: make(chan struct{}, 1), stop: make(chan struct{})}
}

// enqueue adds e to the queue without blocking. A value replaces the value of the same PV
// still waiting, unless another event of that PV was queued after it; connection changes and
// metadata are never dropped. A queue past the limit ends the stream.
func (s *stream) enqueue(e entry) {
	s.mu.Lock()
	if s.dead {
		s.mu.Unlock()
		return
	}
	if e.kind == entValue {
		if i, ok := s.valueAt[e.name]; ok {
			s.queue[i] = e
			s.mu.Unlock()
			return
		}
	} else {
		delete(s.valueAt, e.name)
	}
	if len(s.queue) >= s.limit {
		n := len(s.queue)
		s.dead = true
		s.overflow = true
		s.queue, s.spare, s.valueAt = nil, nil, nil
		s.mu.Unlock()
		s.end(fmt.Sprintf("the client does not keep up: more than %d events queued (queue_limit)", n))
		return
	}
	if e.kind == entValue {
		s.valueAt[e.name] = len(s.queue)
	}
	s.queue = append(s.queue, e)
	s.peak = max(s.peak, len(s.queue))
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// end asks the writer to end the stream, with reason as its final error event (the first
// call wins).
func (s *stream) end(reason string) {
	s.stopOnce.Do(func() {
		s.reason = reason
		close(s.stop)
	})
}

func (s *stream) take() []entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queue
	s.queue = s.spare[:0]
	s.spare = nil
	clear(s.valueAt)
	return q
}

func (s *stream) giveBack(q []entry) {
	clear(q)
	s.mu.Lock()
	if s.spare == nil && cap(q) <= 4096 && !s.dead {
		s.spare = q[:0]
	}
	s.mu.Unlock()
}

// queued returns the queue's length and the longest it has been (tests).
func (s *stream) queued() (int, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue), s.peak
}

// finalWriteTimeout bounds the write of the final error event.
const finalWriteTimeout = 500 * time.Millisecond

// writeBatch is how much the writer encodes before it writes.
const writeBatch = 64 << 10

// responseWriter is what the writer needs of the response: http.ResponseWriter and the
// ResponseController's deadline and flush (which may be unsupported).
type responseWriter interface {
	io.Writer
	SetWriteDeadline(time.Time) error
	Flush() error
}

// rcWriter joins a ResponseWriter and its ResponseController.
type rcWriter struct {
	http.ResponseWriter
	rc *http.ResponseController
}

func (w rcWriter) SetWriteDeadline(t time.Time) error { return w.rc.SetWriteDeadline(t) }
func (w rcWriter) Flush() error                       { return w.rc.Flush() }

// run writes the queued events as they come, and a keep-alive comment every keepalive, until
// ctx is done (the client left), the stream is ended (end) or a write fails or takes longer
// than stall. It returns why it stopped, for the log, and whether the client was too slow
// (its queue overflowed or a write stalled).
func (s *stream) run(ctx context.Context, w responseWriter, keepalive, stall time.Duration) (why string, slow bool) {
	tick := time.NewTicker(keepalive)
	defer tick.Stop()
	var buf []byte
	write := func(timeout time.Duration) error {
		if len(buf) == 0 {
			return nil
		}
		// An unsupported deadline (a test's recorder) is not an error.
		if err := w.SetWriteDeadline(time.Now().Add(timeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return err
		}
		_, err := w.Write(buf)
		if err == nil {
			err = w.Flush()
		}
		buf = buf[:0]
		if cap(buf) > 1<<20 {
			buf = nil
		}
		return err
	}
	failed := func(err error) (string, bool) {
		// net/http cancels ctx when a write fails: the timeout is checked first.
		if isTimeout(err) {
			return fmt.Sprintf("the client does not keep up: a write waited more than %v (stall_timeout)", stall), true
		}
		if ctx.Err() != nil {
			return "the client left", false
		}
		return "the client left: " + err.Error(), false
	}
	for {
		select {
		case <-ctx.Done():
			return "the client left", false
		case <-s.stop:
			s.mu.Lock()
			s.dead = true
			s.queue, s.spare, s.valueAt = nil, nil, nil
			overflow := s.overflow
			s.mu.Unlock()
			buf = appendError(buf, s.reason)
			_ = write(finalWriteTimeout)
			return s.reason, overflow
		case <-tick.C:
			buf = append(buf, ": keepalive\n\n"...)
		case <-s.wake:
			q := s.take()
			for _, e := range q {
				buf = appendEntry(buf, e)
				if len(buf) >= writeBatch {
					if err := write(stall); err != nil {
						return failed(err)
					}
				}
			}
			s.giveBack(q)
		}
		if err := write(stall); err != nil {
			return failed(err)
		}
	}
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// appendEntry appends e as a server-sent event: its type as the event name, its JSON as the
// data line.
func appendEntry(b []byte, e entry) []byte {
	switch e.kind {
	case entConn:
		b = append(b, "event: connection\ndata: "...)
		b = eventjson.AppendConnection(b, e.conn)
	case entMeta:
		b = append(b, "event: metadata\ndata: "...)
		b = eventjson.AppendMetadata(b, *e.meta)
	case entValue:
		b = append(b, "event: value\ndata: "...)
		b = eventjson.AppendValue(b, *e.value, e.meta)
	}
	return append(b, "\n\n"...)
}

// appendError appends the final error event of a stream the server ends.
func appendError(b []byte, reason string) []byte {
	b = append(b, "event: error\ndata: "...)
	b = appendErrorJSON(b, reason)
	return append(b, "\n\n"...)
}

// appendErrorJSON appends {"error":reason}.
func appendErrorJSON(b []byte, reason string) []byte {
	b = append(b, `{"error":`...)
	b = eventjson.AppendString(b, reason)
	return append(b, '}')
}
