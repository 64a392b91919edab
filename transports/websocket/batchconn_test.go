package websocket

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

// countingConn records every Write that reaches the network.
type countingConn struct {
	net.Conn
	mu     sync.Mutex
	writes int
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.writes++
	c.mu.Unlock()
	return c.Conn.Write(p)
}

func (c *countingConn) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes
}

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b := <-accepted
	if b == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func TestBatchConnOneWritePerBatch(t *testing.T) {
	a, b := tcpPair(t)
	cc := &countingConn{Conn: a}
	bc := &batchConn{Conn: cc}

	bc.hold()
	var want bytes.Buffer
	for i := range 100 {
		msg := bytes.Repeat([]byte{byte('a' + i%26)}, 1+i*7)
		want.Write(msg)
		if n, err := bc.Write(msg); err != nil || n != len(msg) {
			t.Fatalf("held write: n=%d err=%v", n, err)
		}
	}
	if cc.count() != 0 {
		t.Fatalf("%d writes reached the network while held", cc.count())
	}
	if err := bc.release(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if cc.count() != 1 {
		t.Fatalf("release made %d network writes, want 1", cc.count())
	}
	// Not held: a write goes straight through.
	want.WriteString("pong")
	if _, err := bc.Write([]byte("pong")); err != nil {
		t.Fatal(err)
	}
	if cc.count() != 2 {
		t.Fatalf("%d network writes after an unheld write, want 2", cc.count())
	}
	got := make([]byte, want.Len())
	_ = b.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(b, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatal("the peer received different bytes, or in a different order")
	}
	if err := bc.release(time.Now().Add(time.Second)); err != nil { // empty batch
		t.Fatalf("releasing an empty batch: %v", err)
	}
}

func TestBatchConnStalledPeer(t *testing.T) {
	a, _ := tcpPair(t) // the peer never reads
	bc := &batchConn{Conn: a}
	chunk := make([]byte, 1<<20)
	var err error
	start := time.Now()
	for i := 0; i < 256 && err == nil; i++ { // up to 256 MiB: more than any socket buffer
		bc.hold()
		_, _ = bc.Write(chunk)
		err = bc.release(time.Now().Add(100 * time.Millisecond))
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("release to a peer that never reads: %v, want a deadline error", err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Fatalf("the stall was noticed after %v", d)
	}
	// The stream may be cut mid-frame: nothing more may be written.
	if _, err := bc.Write([]byte("x")); !errors.Is(err, errBatchBroken) {
		t.Fatalf("write after a failed batch: %v, want errBatchBroken", err)
	}
	bc.hold()
	if err := bc.release(time.Time{}); !errors.Is(err, errBatchBroken) {
		t.Fatalf("release after a failed batch: %v, want errBatchBroken", err)
	}
}
