package wire

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"unsafe"
)

// decoded is a frame copied out of the decoder, or an error it reported.
type decoded struct {
	h       Header
	payload []byte
	err     error
}

// drain calls Next until ErrNeedMore and copies what it returns.
func drain(t testing.TB, d *Decoder, out []decoded) []decoded {
	t.Helper()
	for {
		f, err := d.Next()
		if err == ErrNeedMore {
			return out
		}
		out = append(out, decoded{h: f.Header, payload: bytes.Clone(f.Payload), err: err})
		if errors.Is(err, ErrMisaligned) {
			return out
		}
		if len(out) > 1<<20 {
			t.Fatal("the decoder does not stop")
		}
	}
}

// feedChunks feeds data in the given chunk sizes (the last one takes the rest).
func feedChunks(t testing.TB, d *Decoder, data []byte, sizes []int) []decoded {
	t.Helper()
	var out []decoded
	for i := 0; len(data) > 0; i++ {
		n := len(data)
		if i < len(sizes) && sizes[i] < n {
			n = sizes[i]
		}
		d.Feed(data[:n])
		data = data[n:]
		out = drain(t, d, out)
	}
	return out
}

// checkStreamFrames compares decoded frames with the captured messages.
func checkStreamFrames(t *testing.T, name string, got []decoded, msgs []*captureMsg) {
	t.Helper()
	if len(got) != len(msgs) {
		t.Errorf("%s: %d frames, want %d", name, len(got), len(msgs))
		return
	}
	for i, m := range msgs {
		g := got[i]
		if g.err != nil || g.h != m.Header() || !bytes.Equal(g.payload, m.Payload()) {
			t.Errorf("%s: frame %d = %+v (%d payload bytes, %v), want %s %+v", name, i, g.h, len(g.payload), g.err, m.Name(), m.Header())
		}
	}
}

// TestDecoderCaptureStreams feeds the byte stream of each direction of each
// captured TCP connection whole, in the captured TCP segments, one byte at a
// time and in random chunks, and requires the captured frames every time.
func TestDecoderCaptureStreams(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	streams := 0
	for _, c := range loadCaptures(t) {
		for _, s := range tcpStreams(t, c) {
			streams++
			d := NewDecoder(1 << 20)
			checkStreamFrames(t, s.Key+" whole", feedChunks(t, d, s.Bytes, nil), s.Msgs)
			if d.Buffered() != 0 || d.Need() != HeaderSize {
				t.Errorf("%s: after the stream Buffered() = %d, Need() = %d", s.Key, d.Buffered(), d.Need())
			}
			d = NewDecoder(1 << 20)
			checkStreamFrames(t, s.Key+" segments", feedChunks(t, d, s.Bytes, s.Segments), s.Msgs)
			for round := range 3 {
				sizes := make([]int, len(s.Bytes))
				limit := []int{7, 100, 5000}[round]
				for i := range sizes {
					sizes[i] = 1 + rng.IntN(limit)
				}
				d = NewDecoder(1 << 20)
				checkStreamFrames(t, fmt.Sprintf("%s random(%d)", s.Key, limit), feedChunks(t, d, s.Bytes, sizes), s.Msgs)
			}
			checkByteByByte(t, s)
		}
	}
	if streams < 40 {
		t.Errorf("only %d TCP streams in the captures", streams)
	}
}

// checkByteByByte feeds a stream one byte at a time and checks Need() and
// Buffered() after every byte against the message boundaries.
func checkByteByByte(t *testing.T, s *tcpStream) {
	t.Helper()
	d := NewDecoder(1 << 20)
	var got []decoded
	pos := 0
	for _, m := range s.Msgs {
		hn := HeaderSize
		if m.Extended {
			hn = ExtHeaderSize
		}
		for k := range len(m.Bytes) {
			d.Feed(s.Bytes[pos : pos+1])
			pos++
			got = drain(t, d, got)
			done := k + 1
			if done == len(m.Bytes) {
				if d.Need() != HeaderSize || d.Buffered() != 0 {
					t.Errorf("%s: after %s Need() = %d, Buffered() = %d", s.Key, m.Name(), d.Need(), d.Buffered())
					return
				}
				continue
			}
			want := len(m.Bytes) - done
			switch {
			case done < HeaderSize:
				want = HeaderSize - done
			case done < hn:
				want = hn - done
			}
			if d.Need() != want || d.Buffered() != done {
				t.Errorf("%s: %d bytes into %s: Need() = %d, Buffered() = %d; want %d, %d",
					s.Key, done, m.Name(), d.Need(), d.Buffered(), want, done)
				return
			}
		}
	}
	checkStreamFrames(t, s.Key+" byte by byte", got, s.Msgs)
}

// TestDecoderNeedChunks feeds each stream in chunks of exactly Need() bytes:
// every chunk must complete a header part or a message.
func TestDecoderNeedChunks(t *testing.T) {
	for _, c := range loadCaptures(t) {
		for _, s := range tcpStreams(t, c) {
			d := NewDecoder(1 << 20)
			var got []decoded
			data := s.Bytes
			for len(data) > 0 {
				n := min(d.Need(), len(data))
				d.Feed(data[:n])
				data = data[n:]
				got = drain(t, d, got)
			}
			checkStreamFrames(t, s.Key+" need-sized", got, s.Msgs)
		}
	}
}

// TestDecoderUDPDatagrams decodes every captured UDP datagram, several of which
// carry two messages, and checks that nothing is left over.
func TestDecoderUDPDatagrams(t *testing.T) {
	d := NewDecoder(MaxUDPRecv)
	multi, empty := 0, 0
	for _, c := range loadCaptures(t) {
		for _, dg := range udpDatagrams(t, c) {
			d.Reset()
			d.Feed(dg.Bytes)
			got := drain(t, d, nil)
			var msgs []*captureMsg
			for _, m := range dg.Msgs {
				if m.HasHeader {
					msgs = append(msgs, m)
				} else {
					empty++
				}
			}
			checkStreamFrames(t, dg.Name, got, msgs)
			if d.Buffered() != 0 {
				t.Errorf("%s: %d bytes left in the decoder", dg.Name, d.Buffered())
			}
			if len(msgs) > 1 {
				multi++
			}
		}
	}
	if multi < 50 || empty != 2 {
		t.Errorf("%d multi-message datagrams and %d empty ones", multi, empty)
	}
	// A datagram that ends inside a message leaves bytes behind.
	dg := hx("0000 0000 0001 000d 00000001 00000000  0006 0008 0005 000d 00000001 00000001 4341503a")
	d.Reset()
	d.Feed(dg)
	if got := drain(t, d, nil); len(got) != 1 || d.Buffered() != 20 || d.Need() != 4 {
		t.Errorf("truncated datagram: %d frames, Buffered() %d, Need() %d", len(got), d.Buffered(), d.Need())
	}
}

// TestDecoderZeroCopy checks that a message wholly inside the fed chunk is
// returned as a slice of that chunk, not a copy.
func TestDecoderZeroCopy(t *testing.T) {
	m := captureMessage(t, "01", 13) // a 40-byte READ_NOTIFY reply
	chunk := append(append([]byte{}, m.Bytes...), m.Bytes...)
	d := NewDecoder(0)
	d.Feed(chunk)
	for i := range 2 {
		f, err := d.Next()
		if err != nil {
			t.Fatal(err)
		}
		if unsafe.SliceData(f.Payload) != &chunk[i*len(m.Bytes)+HeaderSize] || cap(f.Payload) != len(f.Payload) {
			t.Errorf("frame %d was copied or has spare capacity", i)
		}
	}
	if _, err := d.Next(); err != ErrNeedMore || d.Buffered() != 0 {
		t.Errorf("after two frames: %v, Buffered() = %d", err, d.Buffered())
	}
}

// TestDecoderOversize checks that a payload above the limit is reported with
// its header and skipped, whether it arrives whole or in pieces, and that the
// following message still decodes.
func TestDecoderOversize(t *testing.T) {
	big := hx("0001 0020 0006 0004 00000001 00000009") // EVENT_ADD with 32 payload bytes
	big = append(big, bytes.Repeat([]byte{0xee}, 32)...)
	ext := hx("000f ffff 0006 0000 00000001 00000002 00000028 00000005") // extended, 40 bytes
	ext = append(ext, bytes.Repeat([]byte{0xdd}, 40)...)
	ok := hx("0001 0010 0006 0002 00000001 00000009 3ff0000000000000 4000000000000000")
	echo := hx("0017 0000 0000 0000 00000000 00000000")
	stream := bytes.Join([][]byte{echo, big, ok, ext, echo, ok}, nil)
	want := []struct {
		cmd       Command
		oversize  bool
		payloadSz uint32
	}{{CmdEcho, false, 0}, {CmdEventAdd, true, 32}, {CmdEventAdd, false, 16}, {CmdReadNotify, true, 40}, {CmdEcho, false, 0}, {CmdEventAdd, false, 16}}
	for _, chunk := range []int{len(stream), 1, 3, 8, 17, 24} {
		d := NewDecoder(16)
		if d.MaxPayload() != 16 {
			t.Fatalf("MaxPayload() = %d", d.MaxPayload())
		}
		sizes := make([]int, len(stream))
		for i := range sizes {
			sizes[i] = chunk
		}
		got := feedChunks(t, d, stream, sizes)
		if len(got) != len(want) {
			t.Errorf("chunks of %d: %d results, want %d", chunk, len(got), len(want))
			continue
		}
		for i, w := range want {
			g := got[i]
			var oe *OversizeError
			isOversize := errors.As(g.err, &oe)
			if g.h.Command != w.cmd || isOversize != w.oversize || g.h.PayloadSize != w.payloadSz {
				t.Errorf("chunks of %d: result %d = %+v, %v", chunk, i, g.h, g.err)
				continue
			}
			if isOversize {
				if oe.Max != 16 || oe.Header != g.h || !errors.Is(g.err, ErrTooLarge) || len(g.payload) != 0 ||
					!strings.Contains(oe.Error(), "EPICS_CA_MAX_ARRAY_BYTES") {
					t.Errorf("chunks of %d: oversize error %+v %q", chunk, oe, oe.Error())
				}
			} else if g.err != nil || !bytes.Equal(g.payload, stream[bytes.Index(stream, ok)+HeaderSize:][:g.h.PayloadSize]) {
				t.Errorf("chunks of %d: result %d payload %x, %v", chunk, i, g.payload, g.err)
			}
		}
		if d.Buffered() != 0 {
			t.Errorf("chunks of %d: %d bytes left", chunk, d.Buffered())
		}
	}
	// While an oversize payload is being skipped Need() counts down what is left
	// of it, and nothing is buffered.
	d := NewDecoder(16)
	d.Feed(big[:HeaderSize+5])
	if _, err := d.Next(); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("want the oversize error first, got %v", err)
	}
	if _, err := d.Next(); err != ErrNeedMore || d.Need() != 27 || d.Buffered() != 0 {
		t.Errorf("skipping: %v, Need() %d, Buffered() %d", err, d.Need(), d.Buffered())
	}
	d.Feed(big[HeaderSize+5 : len(big)-1])
	if _, err := d.Next(); err != ErrNeedMore || d.Need() != 1 {
		t.Errorf("skipping: %v, Need() %d", err, d.Need())
	}
	d.Feed(append([]byte{0xee}, echo...))
	if f, err := d.Next(); err != nil || f.Header.Command != CmdEcho {
		t.Errorf("after the skip: %+v, %v", f.Header, err)
	}
	// A payload exactly at the limit is accepted; the default limit applies
	// when none is given.
	d = NewDecoder(16)
	d.Feed(ok)
	if _, err := d.Next(); err != nil {
		t.Errorf("a payload at the limit: %v", err)
	}
	if NewDecoder(0).MaxPayload() != DefaultMaxPayload || NewDecoder(-1).MaxPayload() != DefaultMaxPayload {
		t.Errorf("default limit")
	}
}

// TestDecoderHugeOversize checks that the largest payload size an extended
// header can announce is skipped like any other oversize payload (the skip
// count must not overflow an int on 32-bit platforms).
func TestDecoderHugeOversize(t *testing.T) {
	d := NewDecoder(16)
	d.Feed(hx("0001 ffff 0006 0000 00000001 00000009 fffffff8 1fffffff"))
	f, err := d.Next()
	var oe *OversizeError
	if !errors.As(err, &oe) || f.Header.PayloadSize != 0xFFFFFFF8 || f.Header.Count != 0x1FFFFFFF {
		t.Fatalf("%+v, %v", f.Header, err)
	}
	// Whatever follows is payload to skip, even if it looks like messages.
	echo := hx("0017 0000 0000 0000 00000000 00000000")
	for range 1000 {
		d.Feed(echo)
		if _, err := d.Next(); err != ErrNeedMore || d.Buffered() != 0 {
			t.Fatalf("while skipping: %v, Buffered() %d", err, d.Buffered())
		}
	}
	want := int64(0xFFFFFFF8) - 16000
	if int64(d.Need()) != min(want, math.MaxInt) {
		t.Errorf("Need() = %d, want %d", d.Need(), want)
	}
}

// TestDecoderMisaligned checks that a payload size that is not a multiple of 8
// is a permanent error, until Reset.
func TestDecoderMisaligned(t *testing.T) {
	bad := hx("0004 000c 0000 0001 00000001 00000001 000000000000000000000000")
	echo := hx("0017 0000 0000 0000 00000000 00000000")
	for _, split := range []int{0, 3, 16, 17} {
		d := NewDecoder(0)
		stream := append(append(append([]byte{}, echo...), bad...), echo...)
		var got []decoded
		if split > 0 {
			d.Feed(stream[:HeaderSize+split])
			got = drain(t, d, got)
			stream = stream[HeaderSize+split:]
		}
		if len(got) == 0 || !errors.Is(got[len(got)-1].err, ErrMisaligned) {
			d.Feed(stream)
			got = drain(t, d, got)
		}
		if len(got) != 2 || got[0].h.Command != CmdEcho || !errors.Is(got[1].err, ErrMisaligned) || got[1].h.PayloadSize != 12 {
			t.Errorf("split %d: %+v", split, got)
			continue
		}
		// The error is sticky, also after more input, and nothing is buffered.
		for range 2 {
			if _, err := d.Next(); !errors.Is(err, ErrMisaligned) {
				t.Errorf("split %d: error not sticky: %v", split, err)
			}
		}
		d.Feed(echo)
		if _, err := d.Next(); !errors.Is(err, ErrMisaligned) || d.Buffered() != len(echo) {
			t.Errorf("split %d: after more input: %v, Buffered() %d", split, err, d.Buffered())
		}
		d.Reset()
		d.Feed(echo)
		if f, err := d.Next(); err != nil || f.Header.Command != CmdEcho {
			t.Errorf("split %d: after Reset: %v", split, err)
		}
	}
	// Misalignment is detected in an extended header too, and an oversize
	// misaligned payload is reported as misaligned.
	for _, b := range []string{
		"000f ffff 0006 0000 00000001 00000002 00010004 00002000",
		"0001 fffc 0006 0000 00000001 00000002",
	} {
		d := NewDecoder(16)
		d.Feed(hx(b))
		if _, err := d.Next(); !errors.Is(err, ErrMisaligned) {
			t.Errorf("%s: %v", b, err)
		}
	}
}

// TestDecoderFeedPanics checks that feeding before draining is caught.
func TestDecoderFeedPanics(t *testing.T) {
	d := NewDecoder(0)
	d.Feed(hx("0017 0000 0000 0000 00000000 00000000"))
	defer func() {
		if recover() == nil {
			t.Errorf("Feed with unconsumed input did not panic")
		}
	}()
	d.Feed([]byte{1})
}

// TestDecoderReset checks that Reset drops a partial message.
func TestDecoderReset(t *testing.T) {
	d := NewDecoder(0)
	d.Feed(hx("0001 0010 0006 0002 00000001"))
	if _, err := d.Next(); err != ErrNeedMore || d.Buffered() != 12 {
		t.Fatalf("%v, %d", err, d.Buffered())
	}
	d.Reset()
	if d.Buffered() != 0 || d.Need() != HeaderSize {
		t.Errorf("after Reset: Buffered() %d, Need() %d", d.Buffered(), d.Need())
	}
	d.Feed(hx("0017 0000 0000 0000 00000000 00000000"))
	if f, err := d.Next(); err != nil || f.Header.Command != CmdEcho {
		t.Errorf("after Reset: %+v, %v", f, err)
	}
	// Next on a fresh decoder with no input asks for a header.
	d = NewDecoder(0)
	if _, err := d.Next(); err != ErrNeedMore || d.Need() != HeaderSize {
		t.Errorf("empty decoder: %v, Need() %d", err, d.Need())
	}
}

// TestDecoderAllocations checks that decoding a stream of complete messages
// allocates nothing, and that assembling split messages reuses the buffer.
func TestDecoderAllocations(t *testing.T) {
	var stream []byte
	for _, m := range captureMessage(t, "04", 1).fileMsgs(t) {
		if m.Transport == "TCP" && m.Dir == "server->client" {
			stream = append(stream, m.Bytes...)
		}
	}
	d := NewDecoder(0)
	allocs := testing.AllocsPerRun(100, func() {
		d.Feed(stream)
		for {
			if _, err := d.Next(); err != nil {
				break
			}
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per whole-stream decode", allocs)
	}
	split := func() {
		for i := 0; i < len(stream); i += 7 {
			d.Feed(stream[i:min(i+7, len(stream))])
			for {
				if _, err := d.Next(); err != nil {
					break
				}
			}
		}
	}
	split()
	if allocs := testing.AllocsPerRun(100, split); allocs != 0 {
		t.Errorf("%v allocations per split-stream decode", allocs)
	}
}

// fileMsgs returns all messages of the capture m belongs to.
func (m *captureMsg) fileMsgs(t testing.TB) []*captureMsg {
	for _, c := range loadCaptures(t) {
		if c.Name == m.File {
			return c.Msgs
		}
	}
	return nil
}
