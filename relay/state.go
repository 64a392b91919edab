package relay

import (
	"encoding/binary"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/pvhub/pvhub/ca/wire"
)

// Flag bits of State.flags.
const (
	flagBuffer  uint8 = 1 << iota // an upper-case dtype: append, keep the newest count elements
	flagDefined                   // written at least once (or restored as written)
)

// minBufferCap is the smallest capacity, in elements, a buffer grows to.
const minBufferCap = 4

// State is the state of one relay PV: its value, alarm, time stamp and
// attributes. A new State has no value (an empty buffer, a scalar without a
// value), the alarm UDF/INVALID, a zero time stamp and no attributes.
//
// The value is kept in one byte slice holding exactly the current elements
// (8 bytes a DOUBLE, 4 a LONG, 1 a CHAR), and attributes are allocated only
// once one is set, so a scalar State takes about a hundred bytes. A buffer's
// slice grows by doubling up to its count and then keeps that capacity; the
// newest element is last.
//
// A State is not safe for concurrent use; one goroutine (the PV's actor) owns
// it.
type State struct {
	name   string // the PV name, with the prefix, without a field suffix
	attrs  *Attributes
	data   []byte // the elements, little-endian
	stamp  wire.Timestamp
	count  int32
	plen   uint16 // the length of the prefix in name
	status wire.AlarmStatus
	sev    wire.AlarmSeverity
	kind   Kind
	flags  uint8
}

// New returns the state of a new relay PV named n (its field, if any, is
// ignored). n must be a Name returned by ParseName.
func New(n Name) *State {
	pv := n.PVName()
	s := &State{
		name:   strings.Clone(pv),
		count:  int32(max(n.Count, 1)),
		kind:   n.Kind,
		status: wire.StatUDF,
		sev:    wire.SevInvalid,
	}
	if n.Buffer {
		s.flags |= flagBuffer
	}
	if p := len(pv) - len(n.Base) - 2 - len(strconv.Itoa(n.Count)); p > 0 && p <= math.MaxUint16 && strings.HasPrefix(pv[p:], n.Base) {
		s.plen = uint16(p)
	}
	return s
}

// PVName returns the PV's name, with the prefix.
func (s *State) PVName() string { return s.name }

// Name returns the PV's parsed name (with no field).
func (s *State) Name() Name {
	n, _ := ParseName(s.name[:s.plen], s.name)
	return n
}

// Kind returns the PV's element kind.
func (s *State) Kind() Kind { return s.kind }

// Count returns the PV's element count: its capacity.
func (s *State) Count() int { return int(s.count) }

// Buffer reports whether the PV is a right-appending buffer.
func (s *State) Buffer() bool { return s.flags&flagBuffer != 0 }

// NativeType returns the CA type of the PV's value.
func (s *State) NativeType() wire.DBRType { return s.kind.NativeType() }

// Defined reports whether the PV has been written since it was created.
func (s *State) Defined() bool { return s.flags&flagDefined != 0 }

// Len returns the number of elements the PV holds now (bytes for a char PV).
func (s *State) Len() int { return len(s.data) / s.esize() }

// scalar reports whether the PV holds one number: count 1 and not char.
func (s *State) scalar() bool { return s.count == 1 && s.kind != Char }

// esize is the size of one stored element.
func (s *State) esize() int {
	switch s.kind {
	case Float:
		return 8
	case Int:
		return 4
	}
	return 1
}

// at returns element i as a float64.
func (s *State) at(i int) float64 {
	switch s.kind {
	case Float:
		return math.Float64frombits(binary.LittleEndian.Uint64(s.data[8*i:]))
	case Int:
		return float64(int32(binary.LittleEndian.Uint32(s.data[4*i:])))
	}
	return float64(s.data[i])
}

// Value returns a copy of the PV's value in its native type: DBR_DOUBLE,
// DBR_LONG or DBR_CHAR, holding the current elements (none before the first
// put). A char PV's value is its text without a terminating NUL.
func (s *State) Value() wire.Value {
	n := s.Len()
	v := wire.Value{Type: s.NativeType()}
	switch s.kind {
	case Float:
		v.Doubles = make([]float64, n)
		for i := range v.Doubles {
			v.Doubles[i] = math.Float64frombits(binary.LittleEndian.Uint64(s.data[8*i:]))
		}
	case Int:
		v.Longs = make([]int32, n)
		for i := range v.Longs {
			v.Longs[i] = int32(binary.LittleEndian.Uint32(s.data[4*i:]))
		}
	default:
		v.Chars = make([]byte, n)
		copy(v.Chars, s.data)
	}
	return v
}

// Alarm returns the PV's alarm status and severity.
func (s *State) Alarm() (wire.AlarmStatus, wire.AlarmSeverity) { return s.status, s.sev }

// Stamp returns the time stamp of the last successful put: zero before the
// first one.
func (s *State) Stamp() wire.Timestamp { return s.stamp }

// Description returns the DESC attribute. CA metadata has no description, so
// Metadata does not carry it.
func (s *State) Description() string {
	if s.attrs == nil {
		return ""
	}
	return s.attrs.DESC
}

// Attributes returns a copy of the PV's attributes.
func (s *State) Attributes() Attributes {
	if s.attrs == nil {
		return Attributes{}
	}
	return *s.attrs
}

// prec returns the PREC attribute.
func (s *State) prec() int16 {
	if s.attrs == nil {
		return 0
	}
	return s.attrs.PREC
}

// Metadata returns the PV's CA metadata: Units from EGU, Precision from PREC,
// the display limits from HOPR and LOPR, the control limits from DRVH and
// DRVL, and the alarm and warning limits from HIHI, HIGH, LOW and LOLO. As an
// IOC's ai and ao records do, an alarm or warning limit whose severity is
// NO_ALARM is reported as NaN (and so as 0 in integer DBR types), and so are
// all four for a char PV, which has no value alarms. ClassName is "ao" for a
// numeric scalar and "waveform" for numeric arrays, buffers and char PVs.
func (s *State) Metadata() wire.Metadata {
	m := wire.Metadata{ClassName: "waveform"}
	if s.scalar() {
		m.ClassName = "ao"
	}
	nan := math.NaN()
	l := &m.Limits
	l.UpperAlarm, l.UpperWarning, l.LowerWarning, l.LowerAlarm = nan, nan, nan, nan
	a := s.attrs
	if a == nil {
		return m
	}
	m.Units, m.Precision = a.EGU, a.PREC
	l.UpperDisp, l.LowerDisp = a.HOPR, a.LOPR
	l.UpperCtrl, l.LowerCtrl = a.DRVH, a.DRVL
	if s.kind == Char {
		return m
	}
	if a.HHSV != wire.SevNoAlarm {
		l.UpperAlarm = a.HIHI
	}
	if a.HSV != wire.SevNoAlarm {
		l.UpperWarning = a.HIGH
	}
	if a.LSV != wire.SevNoAlarm {
		l.LowerWarning = a.LOW
	}
	if a.LLSV != wire.SevNoAlarm {
		l.LowerAlarm = a.LOLO
	}
	return m
}

// Put writes raw, a value as a client sent it in any plain CA type, at time
// now. On success the time stamp becomes now and the alarm is recomputed (see
// below); on error the state is unchanged and the error is an *Error.
//
// A numeric PV (f, i, F, I) converts raw with wire.Convert, as an IOC converts
// a written value, so that text such as "abc" is refused with an error naming
// it. Then:
//
//   - a scalar (count 1) takes exactly one element;
//   - an array takes 1 to count elements, and its length becomes that many
//     (zero elements are accepted too, and empty it);
//   - a buffer appends every element written (a scalar appends one) and keeps
//     the newest count elements, the newest last; one put may write at most
//     count elements, as for an array.
//
// More elements than allowed give ECA_BADCOUNT. When DRVH > DRVL, an element
// outside DRVL..DRVH (after conversion) is refused, as an ao record's drive
// limits would clamp it. NaN passes the drive limits.
//
// A char PV (c, C) takes text: the text of a one-element DBR_STRING value, or
// the bytes of a DBR_CHAR value, up to the first NUL; other numeric types are
// taken element by element as character codes, each an integer 0..255 (0 ends
// the text). Text longer than count bytes is refused with ECA_BADCOUNT. An
// array char PV's value becomes the text; a char buffer appends it and keeps
// the newest count bytes (which may split a multi-byte UTF-8 character).
//
// The alarm of a numeric PV is computed from its newest (last) element as an
// ai record computes it, checking only limits whose severity is not NO_ALARM,
// in this order: v >= HIHI gives HIHI/HHSV, v <= LOLO gives LOLO/LLSV, v >=
// HIGH gives HIGH/HSV, v <= LOW gives LOW/LSV, and otherwise NO_ALARM. A NaN
// element gives UDF/INVALID, as an ai record reports an undefined value. An
// empty array and every char PV have NO_ALARM.
func (s *State) Put(raw wire.Value, now time.Time) error {
	if raw.Type > wire.DBRDouble {
		return errorf(wire.ECAPutFail, "a value of type %s cannot be written", raw.Type)
	}
	if s.kind == Char {
		return s.putText(&raw, now)
	}
	n, count := raw.Len(), int(s.count)
	switch {
	case s.scalar() && n != 1:
		return errorf(wire.ECABadCount, "a scalar takes exactly one element, not %d", n)
	case n > count:
		return errorf(wire.ECABadCount, "%d elements exceed the element count of %d", n, count)
	}
	src := &raw
	native := s.NativeType()
	var conv wire.Value
	if raw.Type != native {
		if err := wire.Convert(&conv, native, &raw, s.prec(), nil); err != nil {
			return &Error{Status: wire.ECAPutFail, Text: err.Error(), Err: err}
		}
		src = &conv
	}
	if err := s.checkDrive(src); err != nil {
		return err
	}
	s.store(src)
	s.written(now)
	return nil
}

// store writes the elements of v, which is in the native type and has been
// checked to fit, as Put describes for the PV's shape.
func (s *State) store(v *wire.Value) {
	dst := s.reserve(v.Len())
	switch s.kind {
	case Float:
		for i, f := range v.Doubles {
			binary.LittleEndian.PutUint64(dst[8*i:], math.Float64bits(f))
		}
	case Int:
		for i, l := range v.Longs {
			binary.LittleEndian.PutUint32(dst[4*i:], uint32(l))
		}
	default:
		copy(dst, v.Chars)
	}
}

// checkDrive refuses an element of v (in the native type) outside DRVL..DRVH
// when DRVH > DRVL.
func (s *State) checkDrive(v *wire.Value) error {
	a := s.attrs
	if a == nil || !(a.DRVH > a.DRVL) {
		return nil
	}
	n := v.Len()
	for i := 0; i < n; i++ {
		var x float64
		if v.Type == wire.DBRDouble {
			x = v.Doubles[i]
		} else {
			x = float64(v.Longs[i])
		}
		if x < a.DRVL || x > a.DRVH {
			what := formatFloat(x)
			if n > 1 {
				what = "element " + strconv.Itoa(i) + " (" + what + ")"
			}
			return errorf(wire.ECAPutFail, "%s is outside the drive limits DRVL %s to DRVH %s",
				what, formatFloat(a.DRVL), formatFloat(a.DRVH))
		}
	}
	return nil
}

// formatFloat formats f in the shortest form that reads back exactly.
func formatFloat(f float64) string {
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// putText is Put for a char PV.
func (s *State) putText(raw *wire.Value, now time.Time) error {
	var text []byte
	switch raw.Type {
	case wire.DBRString:
		switch raw.Len() {
		case 0:
		case 1:
			text = cutNUL([]byte(raw.Strings[0]))
		default:
			return errorf(wire.ECABadCount, "a char PV takes one string, not %d", raw.Len())
		}
	case wire.DBRChar:
		text = cutNUL(raw.Chars)
	default:
		var d wire.Value
		if err := wire.Convert(&d, wire.DBRDouble, raw, 0, nil); err != nil {
			return &Error{Status: wire.ECAPutFail, Text: err.Error(), Err: err}
		}
		text = make([]byte, 0, len(d.Doubles))
		for i, f := range d.Doubles {
			if !(f >= 0 && f <= 255 && f == math.Trunc(f)) {
				return errorf(wire.ECAPutFail, "element %d (%s) is not a character code 0..255", i, formatFloat(f))
			}
			if f == 0 {
				break
			}
			text = append(text, byte(f))
		}
	}
	if len(text) > int(s.count) {
		return errorf(wire.ECABadCount, "text of %d bytes exceeds the element count of %d", len(text), s.count)
	}
	copy(s.reserve(len(text)), text)
	s.written(now)
	return nil
}

// cutNUL returns b up to its first NUL.
func cutNUL(b []byte) []byte {
	for i, c := range b {
		if c == 0 {
			return b[:i]
		}
	}
	return b
}

// reserve makes room for n new elements, which the caller must then write
// into the returned slice. An array's value is replaced: its slice is reused
// when its capacity is at most twice what n needs, and otherwise allocated to
// exactly n elements. A buffer's oldest elements are dropped so that the n new
// ones fit within count; its slice grows by doubling, never beyond count
// elements. The caller has checked n <= count.
func (s *State) reserve(n int) []byte {
	es := s.esize()
	need := n * es
	if s.flags&flagBuffer == 0 {
		if cap(s.data) < need || cap(s.data) > 2*need {
			s.data = make([]byte, need)
		}
		s.data = s.data[:need]
		return s.data
	}
	count := int(s.count)
	old := len(s.data) / es
	newLen := min(old+n, count)
	keep := newLen - n // old elements that stay
	drop := old - keep
	if cap(s.data) >= newLen*es {
		if drop > 0 {
			copy(s.data, s.data[drop*es:])
		}
		s.data = s.data[:newLen*es]
	} else {
		c := min(count, max(newLen, 2*old, minBufferCap))
		d := make([]byte, newLen*es, c*es)
		copy(d, s.data[drop*es:])
		s.data = d
	}
	return s.data[keep*es:]
}

// written completes a successful put.
func (s *State) written(now time.Time) {
	s.stamp = wire.TimestampOf(now)
	s.flags |= flagDefined
	s.recompute()
}

// recompute sets the alarm from the value and the alarm limits, as Put
// describes. A PV that was never written keeps UDF/INVALID.
func (s *State) recompute() {
	s.status, s.sev = valueAlarm(s)
}

// valueAlarm computes the alarm of s's current value.
func valueAlarm(s *State) (wire.AlarmStatus, wire.AlarmSeverity) {
	if s.flags&flagDefined == 0 {
		return wire.StatUDF, wire.SevInvalid
	}
	if s.kind == Char || len(s.data) == 0 {
		return wire.StatNoAlarm, wire.SevNoAlarm
	}
	v := s.at(s.Len() - 1)
	if v != v {
		return wire.StatUDF, wire.SevInvalid
	}
	a := s.attrs
	switch {
	case a == nil:
	case a.HHSV != wire.SevNoAlarm && v >= a.HIHI:
		return wire.StatHiHi, a.HHSV
	case a.LLSV != wire.SevNoAlarm && v <= a.LOLO:
		return wire.StatLoLo, a.LLSV
	case a.HSV != wire.SevNoAlarm && v >= a.HIGH:
		return wire.StatHigh, a.HSV
	case a.LSV != wire.SevNoAlarm && v <= a.LOW:
		return wire.StatLow, a.LSV
	}
	return wire.StatNoAlarm, wire.SevNoAlarm
}
