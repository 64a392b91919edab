package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
)

var be = binary.BigEndian

// ErrBadType reports a DBR type code above 38.
var ErrBadType = errors.New("ca: invalid DBR type")

// AppendDBR appends the payload of a DBR of type t holding count elements, taken
// from src and converted as an IOC converts them, without the trailing padding.
// src holds the value in its native type together with its alarm, time stamp and
// metadata. Elements beyond src's length are zero; elements beyond count are left
// out. Metadata absent from src (units, limits, enum strings) is encoded as zeros.
// On a conversion error b is returned unchanged with a *ConvertError.
func AppendDBR(b []byte, t DBRType, count int, src *DBR) ([]byte, error) {
	if !t.Valid() {
		return b, ErrBadType
	}
	if count < 0 {
		return b, fmt.Errorf("ca: negative element count %d", count)
	}
	start := len(b)
	b = slices.Grow(b, Pad8(t.Size(count)))
	b = appendMeta(b, t, src)
	if t == DBRClassName {
		// The record type name is metadata, not a conversion of the value.
		for i := 0; i < count; i++ {
			s := ""
			if i == 0 {
				s = src.Meta.ClassName
			}
			b = appendFixedString(b, s, MaxStringSize)
		}
		return b, nil
	}
	base := t.Base()
	var err error
	b, err = appendValues(b, base, count, &src.Value, src.Meta.Precision, src.Meta.EnumStrings)
	if err != nil {
		return b[:start], err
	}
	return b, nil
}

// AppendPaddedDBR is AppendDBR followed by zero padding to a multiple of 8 bytes.
func AppendPaddedDBR(b []byte, t DBRType, count int, src *DBR) ([]byte, error) {
	start := len(b)
	b, err := AppendDBR(b, t, count, src)
	if err != nil {
		return b, err
	}
	return appendPad(b, start), nil
}

func appendZeros(b []byte, n int) []byte {
	for ; n >= 8; n -= 8 {
		b = append(b, 0, 0, 0, 0, 0, 0, 0, 0)
	}
	for ; n > 0; n-- {
		b = append(b, 0)
	}
	return b
}

func appendFixedString(b []byte, s string, size int) []byte {
	if len(s) > size-1 {
		s = s[:size-1]
	}
	b = append(b, s...)
	return appendZeros(b, size-len(s))
}

func appendStatus(b []byte, src *DBR) []byte {
	b = be.AppendUint16(b, uint16(src.Status))
	return be.AppendUint16(b, uint16(src.Severity))
}

// appendMeta appends everything in front of the first value element.
func appendMeta(b []byte, t DBRType, src *DBR) []byte {
	base := t.Base()
	m := &src.Meta
	switch t.Family() {
	case FamilyPlain, FamilyPutAck:
		return b
	case FamilyClassName:
		return b
	case FamilyStsAck:
		b = appendStatus(b, src)
		b = be.AppendUint16(b, src.AckT)
		return be.AppendUint16(b, src.AckS)
	case FamilySts:
		b = appendStatus(b, src)
		switch base {
		case DBRChar:
			b = append(b, 0)
		case DBRDouble:
			b = append(b, 0, 0, 0, 0)
		}
		return b
	case FamilyTime:
		b = appendStatus(b, src)
		b = be.AppendUint32(b, src.Stamp.Sec)
		b = be.AppendUint32(b, src.Stamp.Nsec)
		switch base {
		case DBRShort, DBREnum:
			b = append(b, 0, 0)
		case DBRChar:
			b = append(b, 0, 0, 0)
		case DBRDouble:
			b = append(b, 0, 0, 0, 0)
		}
		return b
	}
	// GR and CTRL.
	b = appendStatus(b, src)
	ctrl := t.Family() == FamilyCtrl
	nlim := 6
	if ctrl {
		nlim = 8
	}
	l := &m.Limits
	lims := [8]float64{l.UpperDisp, l.LowerDisp, l.UpperAlarm, l.UpperWarning, l.LowerWarning, l.LowerAlarm, l.UpperCtrl, l.LowerCtrl}
	switch base {
	case DBRString:
		return b
	case DBREnum:
		n := len(m.EnumStrings)
		if n > MaxEnumStates {
			n = MaxEnumStates
		}
		b = be.AppendUint16(b, uint16(n))
		for i := 0; i < MaxEnumStates; i++ {
			s := ""
			if i < n {
				s = m.EnumStrings[i]
			}
			b = appendFixedString(b, s, MaxEnumStringSize)
		}
		return b
	case DBRShort:
		b = appendFixedString(b, m.Units, MaxUnitsSize)
		for _, f := range lims[:nlim] {
			b = be.AppendUint16(b, uint16(int16(saturate32(floatToInt(f)))))
		}
		return b
	case DBRChar:
		b = appendFixedString(b, m.Units, MaxUnitsSize)
		for _, f := range lims[:nlim] {
			b = append(b, uint8(floatToInt(f)))
		}
		return append(b, 0)
	case DBRLong:
		b = appendFixedString(b, m.Units, MaxUnitsSize)
		for _, f := range lims[:nlim] {
			b = be.AppendUint32(b, uint32(int32(saturate32(floatToInt(f)))))
		}
		return b
	case DBRFloat:
		b = be.AppendUint16(b, uint16(m.Precision))
		b = append(b, 0, 0)
		b = appendFixedString(b, m.Units, MaxUnitsSize)
		for _, f := range lims[:nlim] {
			b = be.AppendUint32(b, math.Float32bits(float32(f)))
		}
		return b
	case DBRDouble:
		b = be.AppendUint16(b, uint16(m.Precision))
		b = append(b, 0, 0)
		b = appendFixedString(b, m.Units, MaxUnitsSize)
		for _, f := range lims[:nlim] {
			b = be.AppendUint64(b, math.Float64bits(f))
		}
		return b
	}
	return b
}

// appendValues appends count elements of plain type to, converted from v.
func appendValues(b []byte, to DBRType, count int, v *Value, prec int16, states []string) ([]byte, error) {
	n := min(count, v.Len())
	if v.Type == to {
		switch to {
		case DBRString:
			for _, s := range v.Strings[:n] {
				b = appendFixedString(b, s, MaxStringSize)
			}
		case DBRShort:
			for _, x := range v.Shorts[:n] {
				b = be.AppendUint16(b, uint16(x))
			}
		case DBRFloat:
			for _, x := range v.Floats[:n] {
				b = be.AppendUint32(b, math.Float32bits(x))
			}
		case DBREnum:
			for _, x := range v.Enums[:n] {
				b = be.AppendUint16(b, x)
			}
		case DBRChar:
			b = append(b, v.Chars[:n]...)
		case DBRLong:
			for _, x := range v.Longs[:n] {
				b = be.AppendUint32(b, uint32(x))
			}
		case DBRDouble:
			for _, x := range v.Doubles[:n] {
				b = be.AppendUint64(b, math.Float64bits(x))
			}
		}
	} else {
		for i := 0; i < n; i++ {
			switch to {
			case DBRString:
				s := len(b)
				b = v.appendText(b, i, prec, states)
				if len(b)-s > MaxStringSize-1 {
					b = b[:s+MaxStringSize-1]
				}
				b = appendZeros(b, MaxStringSize-(len(b)-s))
			case DBRFloat, DBRDouble:
				f, err := v.elemFloat(i, states)
				if err != nil {
					err.(*ConvertError).To = to
					return b, err
				}
				if to == DBRFloat {
					b = be.AppendUint32(b, math.Float32bits(float32(f)))
				} else {
					b = be.AppendUint64(b, math.Float64bits(f))
				}
			case DBREnum:
				e, err := v.elemEnum(i, states)
				if err != nil {
					return b, err
				}
				b = be.AppendUint16(b, e)
			default:
				k, err := v.elemInt(i, to)
				if err != nil {
					return b, err
				}
				switch to {
				case DBRShort:
					b = be.AppendUint16(b, uint16(int16(k)))
				case DBRChar:
					b = append(b, uint8(k))
				case DBRLong:
					b = be.AppendUint32(b, uint32(int32(k)))
				}
			}
		}
	}
	if count > n {
		b = appendZeros(b, (count-n)*valueSizes[to])
	}
	return b, nil
}

// PayloadError reports a payload too short for its type and count.
type PayloadError struct {
	Type  DBRType
	Count int
	Have  int
	Need  int
}

func (e *PayloadError) Error() string {
	return fmt.Sprintf("ca: %s payload with %d elements needs %d bytes, have %d", e.Type, e.Count, e.Need, e.Have)
}

// cstring returns the bytes of b up to the first NUL.
func cstring(b []byte) []byte {
	for i, c := range b {
		if c == 0 {
			return b[:i]
		}
	}
	return b
}

// setString stores the text in b into *s, reusing *s when it already holds the
// same text (so repeated decoding of unchanged metadata does not allocate).
func setString(s *string, b []byte) {
	b = cstring(b)
	if *s != string(b) {
		*s = string(b)
	}
}

// DecodeDBR decodes a payload of type t with count elements into d, reusing d's
// slices. Bytes after the data (padding) and pad fields are ignored; strings end
// at their first NUL. A scalar DBR_STRING may be shorter than 40 bytes (libca
// sends a scalar string write as its text and NUL only). count 0 decodes the
// metadata and an empty value.
func DecodeDBR(d *DBR, t DBRType, count int, payload []byte) error {
	if !t.Valid() {
		return ErrBadType
	}
	if count < 0 {
		return fmt.Errorf("ca: negative element count %d", count)
	}
	base := t.Base()
	// Every element takes at least one byte, so a count above the payload
	// length is short whatever the type; checking it first also keeps t.Size
	// from overflowing on absurd counts.
	if count > len(payload) {
		need := math.MaxInt
		if vs := t.ValueSize(); count <= (math.MaxInt-t.Size(1))/vs+1 {
			need = t.Size(count)
		}
		return &PayloadError{Type: t, Count: count, Have: len(payload), Need: need}
	}
	need := t.Size(count)
	if len(payload) < need {
		if !(t == DBRString && count == 1 && len(payload) > 0) {
			return &PayloadError{Type: t, Count: count, Have: len(payload), Need: need}
		}
	}
	d.Type = t
	d.Value.reset(base)
	if err := decodeMeta(d, t, payload); err != nil {
		return err
	}
	p := payload[t.ValueOffset():]
	switch base {
	case DBRString:
		d.Value.Strings = slices.Grow(d.Value.Strings, count)
		for i := 0; i < count; i++ {
			end := min(len(p), MaxStringSize)
			var s string
			if i < len(d.Value.Strings[:cap(d.Value.Strings)]) {
				s = d.Value.Strings[:cap(d.Value.Strings)][i]
			}
			setString(&s, p[:end])
			d.Value.Strings = append(d.Value.Strings, s)
			p = p[end:]
		}
	case DBRShort:
		d.Value.Shorts = slices.Grow(d.Value.Shorts, count)
		for i := 0; i < count; i++ {
			d.Value.Shorts = append(d.Value.Shorts, int16(be.Uint16(p[2*i:])))
		}
	case DBRFloat:
		d.Value.Floats = slices.Grow(d.Value.Floats, count)
		for i := 0; i < count; i++ {
			d.Value.Floats = append(d.Value.Floats, math.Float32frombits(be.Uint32(p[4*i:])))
		}
	case DBREnum:
		d.Value.Enums = slices.Grow(d.Value.Enums, count)
		for i := 0; i < count; i++ {
			d.Value.Enums = append(d.Value.Enums, be.Uint16(p[2*i:]))
		}
	case DBRChar:
		d.Value.Chars = append(d.Value.Chars, p[:count]...)
	case DBRLong:
		d.Value.Longs = slices.Grow(d.Value.Longs, count)
		for i := 0; i < count; i++ {
			d.Value.Longs = append(d.Value.Longs, int32(be.Uint32(p[4*i:])))
		}
	case DBRDouble:
		d.Value.Doubles = slices.Grow(d.Value.Doubles, count)
		for i := 0; i < count; i++ {
			d.Value.Doubles = append(d.Value.Doubles, math.Float64frombits(be.Uint64(p[8*i:])))
		}
	}
	if t == DBRClassName && count > 0 {
		d.Meta.ClassName = d.Value.Strings[0]
	}
	return nil
}

func decodeMeta(d *DBR, t DBRType, p []byte) error {
	fam, base := t.Family(), t.Base()
	m := &d.Meta
	// Clear what this type does not carry, so that a reused d describes this
	// payload only. Fields the type carries are overwritten below; strings are
	// compared before they are replaced so that unchanged ones are not copied.
	grctrl := fam == FamilyGr || fam == FamilyCtrl
	if fam == FamilyPlain || fam == FamilyPutAck || fam == FamilyClassName {
		d.Status, d.Severity = 0, 0
	}
	if fam != FamilyTime {
		d.Stamp = Timestamp{}
	}
	if fam != FamilyStsAck {
		d.AckT, d.AckS = 0, 0
	}
	if !grctrl || base == DBRString || base == DBREnum {
		m.Units, m.Limits = "", Limits{}
	}
	if !grctrl || (base != DBRFloat && base != DBRDouble) {
		m.Precision = 0
	}
	if !grctrl || base != DBREnum {
		m.EnumStrings = m.EnumStrings[:0]
	}
	if t != DBRClassName {
		m.ClassName = ""
	}
	if fam == FamilyPlain || fam == FamilyPutAck || fam == FamilyClassName {
		return nil
	}
	d.Status = AlarmStatus(be.Uint16(p[0:]))
	d.Severity = AlarmSeverity(be.Uint16(p[2:]))
	switch fam {
	case FamilySts:
		return nil
	case FamilyStsAck:
		d.AckT = be.Uint16(p[4:])
		d.AckS = be.Uint16(p[6:])
		return nil
	case FamilyTime:
		d.Stamp = Timestamp{Sec: be.Uint32(p[4:]), Nsec: be.Uint32(p[8:])}
		return nil
	}
	nlim := 6
	if fam == FamilyCtrl {
		nlim = 8
	}
	var lims [8]float64
	switch base {
	case DBRString:
		return nil
	case DBREnum:
		n := int(be.Uint16(p[4:]))
		if n > MaxEnumStates {
			n = MaxEnumStates
		}
		m.EnumStrings = slices.Grow(m.EnumStrings[:0], n)[:n]
		for i := 0; i < n; i++ {
			off := 6 + i*MaxEnumStringSize
			setString(&m.EnumStrings[i], p[off:off+MaxEnumStringSize])
		}
		return nil
	case DBRShort:
		setString(&m.Units, p[4:12])
		for i := 0; i < nlim; i++ {
			lims[i] = float64(int16(be.Uint16(p[12+2*i:])))
		}
	case DBRChar:
		setString(&m.Units, p[4:12])
		for i := 0; i < nlim; i++ {
			lims[i] = float64(p[12+i])
		}
	case DBRLong:
		setString(&m.Units, p[4:12])
		for i := 0; i < nlim; i++ {
			lims[i] = float64(int32(be.Uint32(p[12+4*i:])))
		}
	case DBRFloat:
		m.Precision = int16(be.Uint16(p[4:]))
		setString(&m.Units, p[8:16])
		for i := 0; i < nlim; i++ {
			lims[i] = float64(math.Float32frombits(be.Uint32(p[16+4*i:])))
		}
	case DBRDouble:
		m.Precision = int16(be.Uint16(p[4:]))
		setString(&m.Units, p[8:16])
		for i := 0; i < nlim; i++ {
			lims[i] = math.Float64frombits(be.Uint64(p[16+8*i:]))
		}
	}
	m.Limits = Limits{lims[0], lims[1], lims[2], lims[3], lims[4], lims[5], lims[6], lims[7]}
	return nil
}
