package wire

// Fuzz targets. Their seed corpora live in testdata/fuzz/<FuzzName>/: the
// files named seed-* are generated from the capture listings and the golden
// tables by `go test ./ca/wire/ -run TestFuzzSeedCorpus -update-corpus`, and
// TestFuzzSeedCorpus checks that they are up to date; other files there are
// inputs the fuzzer found and that are kept as regression tests.

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the generated fuzz seed corpus in testdata/fuzz")

// fuzzLimit maps a fuzzed selector to a decoder payload limit of 8 to 4096 bytes.
func fuzzLimit(sel uint16) int { return 8 * (int(sel)%512 + 1) }

// FuzzDecoder feeds arbitrary bytes to the stream decoder in arbitrary chunks.
// The decoder must not panic, must give the same results whatever the
// chunking, must never hold more than an extended header plus the payload
// limit, and every frame it returns must be the exact bytes of the input at
// that position, re-encoding to them when the sender used the canonical header
// form.
func FuzzDecoder(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, chunks []byte, limitSel uint16) {
		max := fuzzLimit(limitSel)
		whole := NewDecoder(max)
		whole.Feed(data)
		want := drainChecked(t, whole, max, nil)
		checkFramesAgainstInput(t, data, want, whole)

		split := NewDecoder(max)
		var got []decoded
		for i, rest := 0, data; len(rest) > 0; i++ {
			n := 1
			if len(chunks) > 0 {
				n = int(chunks[i%len(chunks)]) + 1
			}
			n = min(n, len(rest))
			split.Feed(rest[:n])
			rest = rest[n:]
			got = drainChecked(t, split, max, got)
			if len(got) > 0 && errors.Is(got[len(got)-1].err, ErrMisaligned) {
				break // the error is permanent; the rest is never read
			}
		}
		if len(got) != len(want) {
			t.Fatalf("chunked decoding gave %d results, whole decoding %d", len(got), len(want))
		}
		for i := range want {
			g, w := got[i], want[i]
			if g.h != w.h || !bytes.Equal(g.payload, w.payload) || (g.err == nil) != (w.err == nil) ||
				errors.Is(g.err, ErrMisaligned) != errors.Is(w.err, ErrMisaligned) {
				t.Fatalf("result %d: chunked %+v %v, whole %+v %v", i, g.h, g.err, w.h, w.err)
			}
		}
		if len(want) > 0 && errors.Is(want[len(want)-1].err, ErrMisaligned) {
			return
		}
		if split.Buffered() != whole.Buffered() || split.Need() != whole.Need() {
			t.Fatalf("chunked decoder ends with Buffered %d Need %d, whole with %d %d",
				split.Buffered(), split.Need(), whole.Buffered(), whole.Need())
		}
	})
}

// drainChecked is drain with the decoder's invariants checked after each call.
func drainChecked(t *testing.T, d *Decoder, max int, out []decoded) []decoded {
	t.Helper()
	for {
		f, err := d.Next()
		if err == ErrNeedMore {
			if d.Buffered() > ExtHeaderSize+max {
				t.Fatalf("the decoder holds %d bytes with a limit of %d", d.Buffered(), max)
			}
			if d.Need() <= 0 {
				t.Fatalf("Need() = %d after ErrNeedMore", d.Need())
			}
			return out
		}
		var oe *OversizeError
		switch {
		case err == nil:
			if int64(len(f.Payload)) != int64(f.Header.PayloadSize) || int64(f.Header.PayloadSize) > int64(max) || f.Header.PayloadSize%8 != 0 {
				t.Fatalf("frame %+v with %d payload bytes (limit %d)", f.Header, len(f.Payload), max)
			}
		case errors.As(err, &oe):
			if oe.Header != f.Header || int64(f.Header.PayloadSize) <= int64(max) || oe.Max != max || f.Payload != nil {
				t.Fatalf("bad oversize report %+v for %+v", oe, f.Header)
			}
		case errors.Is(err, ErrMisaligned):
			if f.Header.PayloadSize%8 == 0 {
				t.Fatalf("misaligned error for %+v", f.Header)
			}
			// Sticky: a second call gives the same error.
			if _, err2 := d.Next(); !errors.Is(err2, ErrMisaligned) {
				t.Fatalf("misalignment not sticky: %v", err2)
			}
			return append(out, decoded{h: f.Header, err: err})
		default:
			t.Fatalf("unexpected error %v", err)
		}
		out = append(out, decoded{h: f.Header, payload: bytes.Clone(f.Payload), err: err})
	}
}

// checkFramesAgainstInput walks the input alongside the decoded results.
// Offsets are int64: an oversize payload may reach past what an int holds on
// 32-bit platforms.
func checkFramesAgainstInput(t *testing.T, data []byte, res []decoded, d *Decoder) {
	t.Helper()
	var off int64
	for i, r := range res {
		if off >= int64(len(data)) {
			t.Fatalf("result %d lies beyond the input", i)
		}
		hn := HeaderSize
		if be.Uint16(data[off+2:]) == 0xFFFF {
			hn = ExtHeaderSize
		}
		h, n, err := ParseHeader(data[off:])
		if err != nil || n != hn || h != r.h {
			t.Fatalf("result %d: input at %d parses as %+v/%d/%v, decoder said %+v", i, off, h, n, err, r.h)
		}
		if errors.Is(r.err, ErrMisaligned) {
			return
		}
		end := off + int64(hn) + int64(h.PayloadSize)
		if r.err == nil {
			orig := data[off:end]
			if !bytes.Equal(r.payload, orig[hn:]) {
				t.Fatalf("result %d: payload differs from the input", i)
			}
			re := append(AppendHeader(nil, h), r.payload...)
			canonical := h.Size() == hn && (hn == HeaderSize || be.Uint16(orig[6:]) == 0)
			if canonical && !bytes.Equal(re, orig) {
				t.Fatalf("result %d: re-encoded %x, input %x", i, re, orig)
			}
			if h2, _, err := ParseHeader(re); err != nil || h2 != h {
				t.Fatalf("result %d: re-encoded header parses as %+v, %v", i, h2, err)
			}
		}
		off = end
	}
	// What is left: part of a message being assembled, or of a payload being
	// skipped.
	if off > int64(len(data)) {
		if want := min(off-int64(len(data)), math.MaxInt); d.Buffered() != 0 || int64(d.Need()) != want {
			t.Fatalf("skipping: Buffered %d Need %d, want 0 and %d", d.Buffered(), d.Need(), want)
		}
		return
	}
	rest := len(data) - int(off)
	if d.Buffered() != rest {
		t.Fatalf("Buffered() = %d, %d input bytes unaccounted for", d.Buffered(), rest)
	}
	need := HeaderSize - rest
	if rest >= HeaderSize {
		h, n, err := ParseHeader(data[off:])
		switch {
		case err == ErrShort:
			need = n - rest
		default:
			need = n + int(h.PayloadSize) - rest
		}
	}
	if d.Need() != need {
		t.Fatalf("Need() = %d with %d bytes buffered, want %d", d.Need(), rest, need)
	}
}

// FuzzDecode decodes arbitrary frames in both directions. Decode must not
// panic, must fail only with a *DecodeError or ErrUnknownCommand, must carry
// every header field into the message, and re-encoding must be stable:
// decoding the encoding gives a message that encodes to the same bytes.
func FuzzDecode(f *testing.F) {
	f.Fuzz(func(t *testing.T, frame []byte, toClient bool) {
		h, n, err := ParseHeader(frame)
		if err != nil {
			return
		}
		dir := ToServer
		if toClient {
			dir = ToClient
		}
		payload := frame[n:]
		consistent := len(payload) >= int(h.PayloadSize)
		if consistent {
			payload = payload[:h.PayloadSize]
		}
		fr := Frame{Header: h, Payload: payload}
		m, err := Decode(fr, dir)
		if err != nil {
			var de *DecodeError
			if m != nil || !(errors.As(err, &de) || errors.Is(err, ErrUnknownCommand)) {
				t.Fatalf("Decode: %v, %v", m, err)
			}
			if h.Command <= MaxCommand && de == nil {
				t.Fatalf("known command %v rejected as unknown", h.Command)
			}
			return
		}
		if h.Command > MaxCommand || m.Command() != h.Command {
			t.Fatalf("command %v decoded as %T (%v)", h.Command, m, m.Command())
		}
		checkMessageFields(t, "fuzz", m, fr)
		if !consistent {
			return
		}
		b1 := m.AppendTo(nil)
		h1, n1, err := ParseHeader(b1)
		if err != nil || n1+int(h1.PayloadSize) != len(b1) || h1.PayloadSize%8 != 0 || h1.Command != h.Command || n1 != h1.Size() {
			t.Fatalf("%T encodes to %x (%+v, %v)", m, b1, h1, err)
		}
		m2, err := Decode(Frame{Header: h1, Payload: b1[n1:]}, dir)
		if err != nil {
			t.Fatalf("%T: its own encoding %x does not decode: %v", m, b1, err)
		}
		if reflect.TypeOf(m2) != reflect.TypeOf(m) {
			t.Fatalf("%T re-decodes as %T", m, m2)
		}
		if b2 := m2.AppendTo(nil); !bytes.Equal(b2, b1) {
			t.Fatalf("%T: unstable encoding\n%x\n%x", m, b1, b2)
		}
	})
}

// canonicalDBR returns what an encoder writes for the DBR payload p of type t
// with count elements: p itself, except that pad fields are zero, fixed-size
// strings stop at their first NUL with zeros after it (a string filling its
// field loses its last byte to the NUL), enum string table entries beyond
// no_str (capped at 16) are zero, signalling NaNs among FLOAT limits become
// quiet (they pass through a float64), and a short scalar DBR_STRING fills the
// 40-byte field. CLASS_NAME keeps its first string only.
func canonicalDBR(t DBRType, count int, p []byte) []byte {
	if need := t.Size(count); len(p) < need {
		out := make([]byte, MaxStringSize)
		copy(out, cstring(p))
		return out
	}
	out := bytes.Clone(p[:t.Size(count)])
	fixStr := func(off, size int) {
		s := out[off : off+size]
		i := bytes.IndexByte(s, 0)
		if i < 0 {
			i = size - 1
		}
		clear(s[i:])
	}
	base, fam := t.Base(), t.Family()
	switch fam {
	case FamilySts:
		clear(out[4:t.ValueOffset()])
	case FamilyTime:
		clear(out[12:t.ValueOffset()])
	case FamilyGr, FamilyCtrl:
		nlim := 6
		if fam == FamilyCtrl {
			nlim = 8
		}
		switch base {
		case DBRShort, DBRLong:
			fixStr(4, MaxUnitsSize)
		case DBRChar:
			fixStr(4, MaxUnitsSize)
			out[t.ValueOffset()-1] = 0
		case DBRFloat, DBRDouble:
			clear(out[6:8])
			fixStr(8, MaxUnitsSize)
			if base == DBRFloat {
				for i := range nlim {
					off := 16 + 4*i
					bits := be.Uint32(out[off:])
					if bits&0x7f800000 == 0x7f800000 && bits&0x007fffff != 0 {
						be.PutUint32(out[off:], bits|0x00400000)
					}
				}
			}
		case DBREnum:
			n := min(int(be.Uint16(out[4:])), MaxEnumStates)
			be.PutUint16(out[4:], uint16(n))
			for i := range MaxEnumStates {
				if i < n {
					fixStr(6+i*MaxEnumStringSize, MaxEnumStringSize)
				} else {
					clear(out[6+i*MaxEnumStringSize : 6+(i+1)*MaxEnumStringSize])
				}
			}
		}
	}
	if base == DBRString && fam != FamilyPutAck {
		for i := range count {
			off := t.ValueOffset() + i*MaxStringSize
			if t == DBRClassName && i > 0 {
				clear(out[off : off+MaxStringSize])
			} else {
				fixStr(off, MaxStringSize)
			}
		}
	}
	return out
}

// FuzzDecodeDBR decodes arbitrary payloads as arbitrary types and counts.
// DecodeDBR must not panic, must not allocate more than the payload justifies,
// and must keep every specified byte: re-encoding gives canonicalDBR of the
// input.
func FuzzDecodeDBR(f *testing.F) {
	f.Fuzz(func(t *testing.T, typ uint16, count uint32, payload []byte) {
		dt := DBRType(typ % 41) // 39 and 40 are invalid
		c := int(count)
		var d DBR
		err := DecodeDBR(&d, dt, c, payload)
		v := &d.Value
		caps := cap(v.Strings)*16 + cap(v.Shorts)*2 + cap(v.Floats)*4 + cap(v.Enums)*2 + cap(v.Chars) +
			cap(v.Longs)*4 + cap(v.Doubles)*8 + cap(d.Meta.EnumStrings)*16
		if err != nil {
			var pe *PayloadError
			if !errors.Is(err, ErrBadType) && !errors.As(err, &pe) {
				t.Fatalf("unexpected error %v", err)
			}
			if dt.Valid() && (pe == nil || len(payload) >= pe.Need) {
				t.Fatalf("%v count %d with %d bytes: %v", dt, c, len(payload), err)
			}
			if caps != 0 {
				t.Fatalf("a rejected payload allocated %d bytes of slices", caps)
			}
			return
		}
		if !dt.Valid() || (len(payload) < dt.Size(c) && !(dt == DBRString && c == 1)) {
			t.Fatalf("%v count %d accepted with %d bytes", dt, c, len(payload))
		}
		if caps > 2*len(payload)+64 {
			t.Fatalf("%d bytes of slices for a %d-byte payload", caps, len(payload))
		}
		textBytes := 0
		for _, s := range v.Strings {
			textBytes += len(s)
		}
		for _, s := range d.Meta.EnumStrings {
			textBytes += len(s)
		}
		if textBytes > len(payload) {
			t.Fatalf("%d bytes of text from a %d-byte payload", textBytes, len(payload))
		}
		if d.Type != dt || v.Type != dt.Base() || v.Len() != c {
			t.Fatalf("decoded %v/%v with %d elements, want %v with %d", d.Type, v.Type, v.Len(), dt, c)
		}
		enc, err := AppendDBR(nil, dt, c, &d)
		if err != nil {
			t.Fatalf("re-encoding: %v", err)
		}
		if want := canonicalDBR(dt, c, payload); !bytes.Equal(enc, want) {
			t.Fatalf("%v count %d re-encodes as\n%x\nwant\n%x", dt, c, enc, want)
		}
	})
}

// FuzzConvert converts arbitrary values between the value types with Convert
// and inside AppendDBR (for every family), which must agree with each other.
func FuzzConvert(f *testing.F) {
	f.Fuzz(func(t *testing.T, from, to uint8, prec int16, text string, payload []byte, states string) {
		ft, tt := DBRType(from%7), DBRType(to%7)
		var src Value
		if ft == DBRString {
			src = Value{Type: DBRString, Strings: strings.Split(text, "\n")}
			if len(src.Strings) > 64 {
				return
			}
		} else {
			var d DBR
			if err := DecodeDBR(&d, ft, len(payload)/ft.ValueSize(), payload); err != nil {
				t.Fatal(err)
			}
			src = d.Value
		}
		var stateList []string
		if states != "" {
			stateList = strings.Split(states, "|")
			if len(stateList) > 20 {
				return
			}
		}
		var dst Value
		err := Convert(&dst, tt, &src, prec, stateList)
		failAt := math.MaxInt
		if err != nil {
			var ce *ConvertError
			if !errors.As(err, &ce) || ft != DBRString || ce.From != DBRString || ce.To != tt ||
				ce.Index < 0 || ce.Index >= src.Len() || ce.Text != src.Strings[ce.Index] {
				t.Fatalf("Convert %v to %v: %v", ft, tt, err)
			}
			failAt = ce.Index
		} else {
			if dst.Type != tt || dst.Len() != src.Len() {
				t.Fatalf("Convert %v to %v: %d of %d elements", ft, tt, dst.Len(), src.Len())
			}
			if ft == tt && !valuesEqual(&dst, &src) {
				t.Fatalf("same-type conversion changed the value")
			}
		}
		n := src.Len()
		fam := DBRType(7 * (int(from/7) % 5))
		typ := tt + fam
		meta := &DBR{Value: src, Meta: Metadata{Precision: prec, EnumStrings: stateList, Units: text}}
		for _, count := range []int{n, n + 2, max(n-1, 0)} {
			enc, err := AppendDBR(nil, typ, count, meta)
			if failAt < count {
				var ce *ConvertError
				if !errors.As(err, &ce) || ce.Index != failAt || len(enc) != 0 {
					t.Fatalf("AppendDBR %v count %d: %v, Convert failed at %d", typ, count, err, failAt)
				}
				continue
			}
			if err != nil || len(enc) != typ.Size(count) {
				t.Fatalf("AppendDBR %v count %d: %d bytes, %v", typ, count, len(enc), err)
			}
			var d DBR
			if err := DecodeDBR(&d, typ, count, enc); err != nil {
				t.Fatalf("decoding AppendDBR's %v: %v", typ, err)
			}
			for i := range count {
				if !elementMatches(&d.Value, &dst, i, i < n) {
					t.Fatalf("%v count %d element %d: encoded %+v, converted %+v", typ, count, i, d.Value, dst)
				}
			}
		}
	})
}

// elementMatches compares element i of an encoded-and-decoded value with the
// converted one (or with zero, for zero fill), allowing for the 40-byte
// string field.
func elementMatches(got, conv *Value, i int, have bool) bool {
	switch got.Type {
	case DBRString:
		want := ""
		if have {
			want = conv.Strings[i]
			if len(want) > MaxStringSize-1 {
				want = want[:MaxStringSize-1]
			}
			want = string(cstring([]byte(want)))
		}
		return got.Strings[i] == want
	case DBRShort:
		return have && got.Shorts[i] == conv.Shorts[i] || !have && got.Shorts[i] == 0
	case DBRFloat:
		return have && math.Float32bits(got.Floats[i]) == math.Float32bits(conv.Floats[i]) || !have && got.Floats[i] == 0
	case DBREnum:
		return have && got.Enums[i] == conv.Enums[i] || !have && got.Enums[i] == 0
	case DBRChar:
		return have && got.Chars[i] == conv.Chars[i] || !have && got.Chars[i] == 0
	case DBRLong:
		return have && got.Longs[i] == conv.Longs[i] || !have && got.Longs[i] == 0
	case DBRDouble:
		return have && math.Float64bits(got.Doubles[i]) == math.Float64bits(conv.Doubles[i]) || !have && got.Doubles[i] == 0
	}
	return false
}

// corpusEntry is one generated seed file.
type corpusEntry struct {
	name string
	vals []any
}

// marshalSeed writes values in the "go test fuzz v1" format.
func marshalSeed(vals ...any) []byte {
	var b bytes.Buffer
	b.WriteString("go test fuzz v1\n")
	for _, v := range vals {
		switch x := v.(type) {
		case []byte:
			fmt.Fprintf(&b, "[]byte(%q)\n", x)
		case string:
			fmt.Fprintf(&b, "string(%q)\n", x)
		case uint8:
			fmt.Fprintf(&b, "byte(%q)\n", x)
		case bool, int16, uint16, uint32:
			fmt.Fprintf(&b, "%T(%v)\n", x, x)
		default:
			panic(fmt.Sprintf("unsupported seed type %T", v))
		}
	}
	return b.Bytes()
}

// seedCorpus builds the generated seeds of every fuzz target.
func seedCorpus(t *testing.T) map[string][]corpusEntry {
	const maxSeed = 4096
	seeds := map[string][]corpusEntry{}
	seen := map[string]bool{}
	add := func(target, name string, vals ...any) {
		key := target + "\x00" + string(marshalSeed(vals...))
		if seen[key] {
			return
		}
		seen[key] = true
		seeds[target] = append(seeds[target], corpusEntry{name: "seed-" + name, vals: vals})
	}
	clip := func(b []byte) []byte { return b[:min(len(b), maxSeed)] }

	for _, c := range loadCaptures(t) {
		prefix := c.Name[:2]
		for i, s := range tcpStreams(t, c) {
			chunks := make([]byte, 0, len(s.Segments))
			for _, n := range s.Segments {
				chunks = append(chunks, byte(min(n, 256)-1))
			}
			add("FuzzDecoder", fmt.Sprintf("%s-tcp%d", prefix, i), clip(s.Bytes), chunks, uint16(511))
		}
		var udp []byte
		for _, dg := range udpDatagrams(t, c) {
			udp = append(udp, dg.Bytes...)
		}
		if len(udp) > 0 {
			add("FuzzDecoder", prefix+"-udp", clip(udp), []byte{15, 0, 23}, uint16(0))
		}
		for _, m := range c.Msgs {
			if !m.HasHeader {
				continue
			}
			add("FuzzDecode", fmt.Sprintf("%s-msg%03d", prefix, m.N), clip(m.Bytes), m.Direction() == ToClient)
			msg, err := Decode(m.Frame(), m.Direction())
			if err != nil {
				t.Fatal(err)
			}
			if p, ok := dbrData(msg); ok && len(p) <= maxSeed {
				add("FuzzDecodeDBR", fmt.Sprintf("%s-msg%03d", prefix, m.N), uint16(m.DataType), uint32(m.Count), p)
				if base := DBRType(m.DataType).Base(); base != DBRString {
					var d DBR
					if err := DecodeDBR(&d, DBRType(m.DataType), int(m.Count), p); err != nil {
						t.Fatal(err)
					}
					raw, _ := AppendDBR(nil, base, int(m.Count), &d)
					for to := range uint8(7) {
						add("FuzzConvert", fmt.Sprintf("%s-msg%03d-to%d", prefix, m.N, to), uint8(base), to, d.Meta.Precision, "", raw, "")
					}
				} else {
					var d DBR
					_ = DecodeDBR(&d, DBRType(m.DataType), int(m.Count), p)
					add("FuzzConvert", fmt.Sprintf("%s-msg%03d-to%d", prefix, m.N, 6), uint8(DBRString), uint8(6), int16(3),
						strings.Join(d.Value.Strings, "\n"), []byte(nil), "")
				}
			}
		}
	}
	for _, g := range goldenMessages {
		b := append(hx(g.hex), g.tail...)
		add("FuzzDecode", "golden-"+strings.ReplaceAll(g.name, "/", "-"), clip(b), g.dir == ToClient)
	}
	for _, g := range dbrGolden {
		add("FuzzDecodeDBR", "golden-"+strings.ToLower(strings.TrimPrefix(g.typ.String(), "DBR_")), uint16(g.typ), uint32(1), hx(g.hex))
		add("FuzzDecodeDBR", "golden-"+strings.ToLower(strings.TrimPrefix(g.typ.String(), "DBR_"))+"-count0", uint16(g.typ), uint32(0), hx(g.hex))
	}
	// Hand-made decoder edge cases: oversize, misaligned and extended headers.
	echo := hx("0017 0000 0000 0000 00000000 00000000")
	add("FuzzDecoder", "oversize", bytes.Join([][]byte{echo, hx("0001 0020 0006 0004 00000001 00000009"), make([]byte, 32), echo}, nil), []byte{4}, uint16(1))
	add("FuzzDecoder", "misaligned", bytes.Join([][]byte{echo, hx("0004 000c 0000 0001 00000001 00000001"), make([]byte, 16)}, nil), []byte{}, uint16(7))
	add("FuzzDecoder", "extended", bytes.Join([][]byte{hx("000f ffff 0006 0000 00000001 00000002 00000010 00000002"), make([]byte, 16), echo}, nil), []byte{20, 3}, uint16(3))
	add("FuzzDecoder", "huge-oversize", bytes.Join([][]byte{hx("0001 ffff 0006 0000 00000001 00000009 fffffff8 1fffffff"), echo, echo}, nil), []byte{15}, uint16(0))
	add("FuzzDecoder", "extended-oversize", bytes.Join([][]byte{hx("000f ffff 0006 0000 00000001 00000002 00010000 00002000"), make([]byte, 64)}, nil), []byte{255}, uint16(100))
	// Conversion edge cases.
	textSeeds := []struct {
		text, states string
		to           uint8
	}{
		{"2.5", "", 6}, {"abc", "", 6}, {"0x1F", "", 5}, {"017", "", 1}, {"", "", 4}, {"1e400", "", 2},
		{"One", "Zero|One|Two", 3}, {"3", "Zero|One|Two", 3}, {"15", "", 3}, {"-2.9\n 7 \n1e3", "", 5},
	}
	for i, s := range textSeeds {
		add("FuzzConvert", fmt.Sprintf("text%d", i), uint8(DBRString), s.to, int16(3), s.text, []byte(nil), s.states)
	}
	var specials []byte
	for _, v := range []float64{math.NaN(), math.Inf(1), math.Inf(-1), 1e16, 2e16, 0.125, math.Copysign(0, -1), 3e9, -1.5, 1e7} {
		specials = be.AppendUint64(specials, math.Float64bits(v))
	}
	for to := range uint8(7) {
		add("FuzzConvert", fmt.Sprintf("double-specials-to%d", to), uint8(DBRDouble), to, int16(3), "", specials, "a|b")
		add("FuzzConvert", fmt.Sprintf("double-specials-prec9-to%d", to), uint8(DBRDouble+21), to, int16(9), "", specials, "")
	}
	add("FuzzConvert", "enum-states", uint8(DBREnum), uint8(0), int16(0), "", hx("0000 0001 0002 0005"), "Zero|One||Three")
	return seeds
}

// TestFuzzSeedCorpus checks (or, with -update-corpus, rewrites) the generated
// seed files in testdata/fuzz.
func TestFuzzSeedCorpus(t *testing.T) {
	seeds := seedCorpus(t)
	targets := make([]string, 0, len(seeds))
	for target := range seeds {
		targets = append(targets, target)
	}
	sort.Strings(targets)
	if len(targets) != 4 {
		t.Fatalf("seeds for %v", targets)
	}
	for _, target := range targets {
		dir := filepath.Join("testdata", "fuzz", target)
		want := map[string][]byte{}
		for _, e := range seeds[target] {
			if _, dup := want[e.name]; dup {
				t.Fatalf("%s: duplicate seed name %s", target, e.name)
			}
			want[e.name] = marshalSeed(e.vals...)
		}
		if *updateCorpus {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			old, _ := filepath.Glob(filepath.Join(dir, "seed-*"))
			for _, p := range old {
				if _, keep := want[filepath.Base(p)]; !keep {
					_ = os.Remove(p)
				}
			}
			for name, b := range want {
				if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			continue
		}
		have, _ := filepath.Glob(filepath.Join(dir, "seed-*"))
		if len(have) != len(want) {
			t.Errorf("%s: %d generated seed files, want %d; run go test ./ca/wire/ -run TestFuzzSeedCorpus -update-corpus",
				target, len(have), len(want))
		}
		for name, b := range want {
			got, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil || !bytes.Equal(got, b) {
				t.Errorf("%s/%s is missing or stale (sha256 %x); run go test ./ca/wire/ -run TestFuzzSeedCorpus -update-corpus",
					target, name, sha256.Sum256(b))
			}
		}
	}
}
