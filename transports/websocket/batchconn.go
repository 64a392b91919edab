package websocket

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"
)

// coder/websocket flushes its buffered writer at the end of every message, so a socket
// that receives many small messages costs one write system call per message. A batchConn
// sits between the library and the TCP connection: while the writer goroutine holds it,
// the library's flushes only append to a buffer, and release sends the whole batch with
// one write under the stall deadline. Writes made while nobody holds it (close frames,
// pongs answered by the reader) go straight through.
type batchConn struct {
	net.Conn

	mu      sync.Mutex
	holding bool
	pending []byte
	broken  error // a failed or timed-out write: the stream may be cut mid-frame
}

// errBatchBroken reports writes after a failed batch.
var errBatchBroken = errors.New("websocket connection broken by an earlier failed write")

func (b *batchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.broken != nil {
		return 0, b.broken
	}
	if b.holding {
		b.pending = append(b.pending, p...)
		return len(p), nil
	}
	// Not holding: release has sent (or dropped, on failure) everything pending.
	n, err := b.Conn.Write(p)
	if err != nil {
		b.broken = errBatchBroken
	}
	return n, err
}

// hold starts a batch: writes are kept until release.
func (b *batchConn) hold() {
	b.mu.Lock()
	b.holding = true
	b.mu.Unlock()
}

// release ends the batch and sends it, failing if it is not written before deadline.
// A failure leaves the connection broken: every later write fails.
func (b *batchConn) release(deadline time.Time) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.holding = false
	if b.broken != nil {
		return b.broken
	}
	return b.sendLocked(deadline)
}

func (b *batchConn) sendLocked(deadline time.Time) error {
	if len(b.pending) == 0 {
		return nil
	}
	_ = b.Conn.SetWriteDeadline(deadline)
	_, err := b.Conn.Write(b.pending)
	_ = b.Conn.SetWriteDeadline(time.Time{})
	if cap(b.pending) > 256<<10 {
		b.pending = nil
	} else {
		b.pending = b.pending[:0]
	}
	if err != nil {
		b.broken = errBatchBroken
	}
	return err
}

// batchResponseWriter hands coder/websocket a hijacked connection wrapped in a batchConn.
type batchResponseWriter struct {
	http.ResponseWriter
	conn *batchConn // set by Hijack
}

func (w *batchResponseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("the HTTP connection cannot be hijacked")
	}
	conn, brw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	if err := brw.Writer.Flush(); err != nil {
		_ = conn.Close()
		return nil, nil, err
	}
	w.conn = &batchConn{Conn: conn}
	return w.conn, bufio.NewReadWriter(brw.Reader, bufio.NewWriterSize(w.conn, 8<<10)), nil
}
