package wire

import (
	"errors"
	"fmt"
	"math"
)

// ErrNeedMore is returned by Decoder.Next when the bytes fed so far end inside a
// message. Decoder.Need tells how many more bytes complete the current part.
var ErrNeedMore = errors.New("ca: need more input")

// DefaultMaxPayload is the payload limit used when EPICS_CA_MAX_ARRAY_BYTES is not
// set: large enough for arrays of two million doubles, small enough to bound what
// one peer can make us buffer.
const DefaultMaxPayload = 16 << 20

// Frame is one message as it appears on the wire: its header and its padded
// payload. Payload aliases the decoder's input or buffer and is valid only until
// the next call to Next or Feed.
type Frame struct {
	Header  Header
	Payload []byte
}

// OversizeError reports a message whose payload exceeds the decoder's limit. The
// decoder discards that payload as it arrives and carries on with the next
// message, so the receiver may answer with ECA_TOLARGE and keep the circuit.
type OversizeError struct {
	Header Header
	Max    int
}

func (e *OversizeError) Error() string {
	return fmt.Sprintf("ca: %s payload of %d bytes exceeds the maximum of %d (raise EPICS_CA_MAX_ARRAY_BYTES)",
		e.Header.Command, e.Header.PayloadSize, e.Max)
}

func (e *OversizeError) Unwrap() error { return ErrTooLarge }

// Decoder splits a byte stream into CA frames. It is fed arbitrary chunks with
// Feed and drained with Next. A complete message inside a chunk is returned
// without copying; only a message split across chunks is assembled in an
// internal buffer, which never exceeds the extended header plus the payload
// limit. A payload size that is not a multiple of 8 is fatal (the stream cannot
// be resynchronised); a payload above the limit is reported and skipped.
//
// A Decoder is not safe for concurrent use.
type Decoder struct {
	max     int
	in      []byte // unconsumed part of the caller's last chunk
	partial []byte // bytes of an incomplete message
	skip    int64  // payload bytes of an oversize message still to discard (up to 2^32-8, beyond a 32-bit int)
	need    int
	err     error // sticky fatal error
}

// NewDecoder returns a decoder that accepts payloads up to maxPayload bytes
// (DefaultMaxPayload when maxPayload <= 0).
func NewDecoder(maxPayload int) *Decoder {
	if maxPayload <= 0 {
		maxPayload = DefaultMaxPayload
	}
	return &Decoder{max: maxPayload, need: HeaderSize}
}

// MaxPayload returns the decoder's payload limit.
func (d *Decoder) MaxPayload() int { return d.max }

// Feed hands the decoder the next chunk of the stream. The decoder keeps a
// reference to p until Next has returned ErrNeedMore, so callers must drain
// Next before reusing p or calling Feed again; Feed panics if input from the
// previous call is still unconsumed, because that is a bug in the caller.
func (d *Decoder) Feed(p []byte) {
	if len(d.in) != 0 {
		panic("wire: Decoder.Feed called before the previous input was consumed")
	}
	d.in = p
}

// Need returns how many more bytes the current message needs before Next can
// return it (the rest of the header, of the payload, or of a skipped payload).
func (d *Decoder) Need() int { return d.need }

// Buffered returns the number of bytes held for an incomplete message. A UDP
// receiver uses it to detect a datagram that ends inside a message.
func (d *Decoder) Buffered() int { return len(d.partial) + len(d.in) }

// Reset discards all state, including a fatal error.
func (d *Decoder) Reset() {
	d.in, d.partial, d.skip, d.err, d.need = nil, d.partial[:0], 0, nil, HeaderSize
}

// Next returns the next complete frame. It returns ErrNeedMore when the input is
// exhausted, an *OversizeError (with the frame's header, and no payload) for a
// message above the limit, after which decoding continues, and ErrMisaligned,
// which is permanent, for a payload size that is not a multiple of 8.
func (d *Decoder) Next() (Frame, error) {
	if d.err != nil {
		return Frame{}, d.err
	}
	if d.skip > 0 {
		k := int(min(d.skip, int64(len(d.in))))
		d.in = d.in[k:]
		d.skip -= int64(k)
		if d.skip > 0 {
			d.need = int(min(d.skip, math.MaxInt))
			return Frame{}, ErrNeedMore
		}
	}
	if len(d.partial) == 0 {
		h, hn, err := ParseHeader(d.in)
		if err != nil {
			return d.stash(hn)
		}
		if f, err, done := d.check(h); done {
			if d.err == nil {
				d.in = d.in[hn:] // skip the oversize message's header; its payload follows
			}
			return f, err
		}
		total := hn + int(h.PayloadSize)
		if len(d.in) >= total {
			f := Frame{Header: h, Payload: d.in[hn:total:total]}
			d.in = d.in[total:]
			d.need = HeaderSize
			return f, nil
		}
		return d.stash(total)
	}
	// Complete the header held in partial.
	h, hn, err := ParseHeader(d.partial)
	if err != nil {
		if !d.fill(hn) {
			return Frame{}, ErrNeedMore
		}
		if h, hn, err = ParseHeader(d.partial); err != nil {
			if !d.fill(hn) {
				return Frame{}, ErrNeedMore
			}
			h, hn, _ = ParseHeader(d.partial)
		}
	}
	if f, err, done := d.check(h); done {
		d.partial = d.partial[:0]
		return f, err
	}
	total := hn + int(h.PayloadSize)
	if !d.fill(total) {
		return Frame{}, ErrNeedMore
	}
	f := Frame{Header: h, Payload: d.partial[hn:total:total]}
	d.partial = d.partial[:0]
	d.need = HeaderSize
	return f, nil
}

// check validates a parsed header. done is true when the frame must not be
// assembled: a fatal misalignment or an oversize payload, which it arranges
// to skip.
func (d *Decoder) check(h Header) (Frame, error, bool) {
	if h.PayloadSize&7 != 0 {
		d.err = fmt.Errorf("%w: %s with payload size %d", ErrMisaligned, h.Command, h.PayloadSize)
		d.in, d.partial = nil, d.partial[:0]
		return Frame{Header: h}, d.err, true
	}
	if int64(h.PayloadSize) > int64(d.max) {
		d.skip = int64(h.PayloadSize)
		d.need = int(min(d.skip, math.MaxInt))
		return Frame{Header: h}, &OversizeError{Header: h, Max: d.max}, true
	}
	return Frame{}, nil, false
}

// stash moves the rest of the input into partial and reports the need.
func (d *Decoder) stash(total int) (Frame, error) {
	d.partial = append(d.partial, d.in...)
	d.in = nil
	d.need = total - len(d.partial)
	return Frame{}, ErrNeedMore
}

// fill tops partial up to total bytes from the input; it reports whether partial
// now holds total bytes.
func (d *Decoder) fill(total int) bool {
	k := min(total-len(d.partial), len(d.in))
	d.partial = append(d.partial, d.in[:k]...)
	d.in = d.in[k:]
	d.need = total - len(d.partial)
	return d.need == 0
}
