package catools

import (
	"strconv"
	"strings"
	"time"

	"github.com/pvhub/pvhub/ca/wire"
)

// NameWidth is the column width the tools pad a scalar PV's name to.
const NameWidth = 30

// MaxFloatDigits is the largest precision -e, -f and -g accept, as in the
// EPICS tools.
const MaxFloatDigits = 18

// Format holds the output options shared by get, put and monitor. The zero
// Format prints as the EPICS tools do by default.
type Format struct {
	// FloatVerb is the C conversion for FLOAT and DOUBLE values: 'e', 'f' or
	// 'g' with FloatPrec digits (-e, -f, -g). Zero means the default, %g with
	// six significant digits.
	FloatVerb byte
	// FloatPrec is the precision for FloatVerb, 0 to MaxFloatDigits.
	FloatPrec int
	// FloatBase, when not Decimal, rounds FLOAT and DOUBLE values to an
	// integer and prints it in that base (-lx, -lo, -lb).
	FloatBase IntBase
	// IntBase is the base for SHORT and LONG values (-0x, -0o, -0b). CHAR and
	// ENUM values always print in decimal.
	IntBase IntBase
	// EnumAsNumber prints ENUM values as their index even when the state
	// strings are at hand (-n).
	EnumAsNumber bool
	// CharAsString prints CHAR arrays as text (-S).
	CharAsString bool
	// Separator separates the fields of a line (-F); zero means a blank. Names
	// are padded only when it is a blank.
	Separator byte
	// Location is the time zone of printed time stamps; nil means time.Local.
	Location *time.Location
}

// sep returns the field separator.
func (f *Format) sep() byte {
	if f.Separator == 0 {
		return ' '
	}
	return f.Separator
}

// Element returns element i of d's value as the tools print one element:
// strings escaped, FLOAT and DOUBLE per FloatVerb and FloatBase, SHORT and LONG
// per IntBase, CHAR as a signed decimal number (C's char is signed on the
// platforms EPICS users run), and ENUM as its state string when d is of the
// DBR_GR_ or DBR_CTRL_ family and EnumAsNumber is false. An index past the
// number of states prints as "Enum Index Overflow (n)", one of 16 or above
// as "Illegal Value (n)".
func (f *Format) Element(d *wire.DBR, i int) string {
	return string(f.appendElement(nil, d, i))
}

func (f *Format) appendElement(b []byte, d *wire.DBR, i int) []byte {
	v := &d.Value
	switch v.Type {
	case wire.DBRString:
		return appendEscaped(b, v.Strings[i])
	case wire.DBRFloat:
		return f.appendFloat(b, float64(v.Floats[i]))
	case wire.DBRDouble:
		return f.appendFloat(b, v.Doubles[i])
	case wire.DBRChar:
		return strconv.AppendInt(b, int64(int8(v.Chars[i])), 10)
	case wire.DBRShort:
		return appendLong(b, int32(v.Shorts[i]), f.IntBase)
	case wire.DBRLong:
		return appendLong(b, v.Longs[i], f.IntBase)
	case wire.DBREnum:
		e := v.Enums[i]
		if fam := d.Type.Family(); !f.EnumAsNumber && (fam == wire.FamilyGr || fam == wire.FamilyCtrl) {
			switch {
			case e >= wire.MaxEnumStates:
				b = append(b, "Illegal Value ("...)
			case int(e) >= len(d.Meta.EnumStrings):
				b = append(b, "Enum Index Overflow ("...)
			default:
				return append(b, d.Meta.EnumStrings[e]...)
			}
			return append(strconv.AppendUint(b, uint64(e), 10), ')')
		}
		return strconv.AppendUint(b, uint64(e), 10)
	}
	return b
}

// appendFloat appends a FLOAT or DOUBLE element.
func (f *Format) appendFloat(b []byte, x float64) []byte {
	if f.FloatBase != Decimal {
		return appendLong(b, roundToLong(x), f.FloatBase)
	}
	if f.FloatVerb == 0 {
		return appendCFloat(b, x, 'g', 6)
	}
	return appendCFloat(b, x, f.FloatVerb, f.FloatPrec)
}

// FormatFloat returns x as the tools print a DOUBLE element with this Format.
func (f *Format) FormatFloat(x float64) string { return string(f.appendFloat(nil, x)) }

// charText returns the text of a CHAR array printed with -S: the elements up
// to the first NUL, at most limit of them, escaped. ok is false when the value
// is not printed as text: -S is off, the value is not CHAR, or it is a single
// element and no element count was requested (a scalar CHAR prints as a number).
func (f *Format) charText(d *wire.DBR, requested, limit int) (text []byte, ok bool) {
	n := d.Value.Len()
	if !f.CharAsString || d.Value.Type != wire.DBRChar || (requested <= 0 && n <= 1) {
		return nil, false
	}
	c := d.Value.Chars[:min(limit, n)]
	for i, ch := range c {
		if ch == 0 {
			c = c[:i]
			break
		}
	}
	return appendEscaped(nil, string(c)), true
}

// appendName appends the PV name, padded to NameWidth when the value has at
// most one element and the separator is a blank, then the separator.
func (f *Format) appendName(b []byte, name string, n int) []byte {
	b = append(b, name...)
	if n <= 1 && f.sep() == ' ' {
		for i := len(name); i < NameWidth; i++ {
			b = append(b, ' ')
		}
	}
	return append(b, f.sep())
}

// appendValues appends the value part of the plain and terse formats: the
// text of a CHAR array with -S, or else the element count (for arrays, and
// whenever a count was requested) and the elements, all separated by the
// separator.
func (f *Format) appendValues(b []byte, d *wire.DBR, requested int) []byte {
	n := d.Value.Len()
	if text, ok := f.charText(d, requested, n); ok {
		return append(b, text...)
	}
	if requested > 0 || n > 1 {
		b = strconv.AppendInt(b, int64(n), 10)
		b = append(b, f.sep())
	}
	for i := range n {
		if i > 0 {
			b = append(b, f.sep())
		}
		b = f.appendElement(b, d, i)
	}
	return b
}

// Plain returns caget's default line for d, newline included:
//
//	NAME                           1.5
//	NAME 3 1 2 3
//
// requested is the element count asked for with -# (0 when not given); when
// it is set the count is printed even for a single element, as caget does.
// caput prints its "Old :" and "New :" lines in this format with requested 0.
func (f *Format) Plain(name string, d *wire.DBR, requested int) string {
	b := f.appendName(nil, name, d.Value.Len())
	b = f.appendValues(b, d, requested)
	return string(append(b, '\n'))
}

// Terse returns the line of caget -t (and caput -t): the value part of Plain
// without the name.
func (f *Format) Terse(d *wire.DBR, requested int) string {
	return string(append(f.appendValues(nil, d, requested), '\n'))
}

// Wide returns the line of caget -a, caput -l and camonitor for a DBR of the
// DBR_TIME_ family, newline included: the name (padded as in Plain), the time
// stamp, the value and the alarm status and severity, or two empty fields when
// both are zero:
//
//	NAME                           2026-11-21 13:15:57.618243 1.5
//	NAME                           2026-11-21 13:16:52.068697 70 HIGH MINOR
//
// (the first line ends in two blanks). requested is the -# count; with -S a
// CHAR array's text is cut at requested characters.
func (f *Format) Wide(name string, d *wire.DBR, requested int) string {
	n := d.Value.Len()
	sep := f.sep()
	b := f.appendName(nil, name, n)
	b = append(b, FormatStamp(d.Stamp, f.Location)...)
	limit := n
	if requested > 0 && requested < n {
		limit = requested
	}
	if text, ok := f.charText(d, requested, limit); ok {
		b = append(append(b, sep), text...)
	} else {
		if requested > 0 || n > 1 {
			b = strconv.AppendInt(append(b, sep), int64(n), 10)
		}
		for i := range n {
			b = f.appendElement(append(b, sep), d, i)
		}
	}
	if d.Status != 0 || d.Severity != 0 {
		b = append(append(b, sep), StatusName(d.Status)...)
		b = append(append(b, sep), SeverityName(d.Severity)...)
	} else {
		b = append(b, sep, sep)
	}
	return string(append(b, '\n'))
}

// NotConnected returns camonitor's line for a PV that was not found within
// the connection timeout.
func (f *Format) NotConnected(name string) string {
	return string(f.appendName(nil, name, 0)) + "*** Not connected (PV not found)\n"
}

// Disconnected returns camonitor's line for a PV whose server went away: the
// name (padded as for a value of n elements, n being the last update's
// length), the client's time now and "*** disconnected".
func (f *Format) Disconnected(name string, n int, now time.Time) string {
	b := f.appendName(nil, name, n)
	b = append(b, FormatTime(now, f.Location)...)
	return string(append(b, " *** disconnected\n"...))
}

// StatusName returns the alarm status as the tools print it: its EPICS name,
// or "??" for a code outside the table.
func StatusName(s wire.AlarmStatus) string {
	if s > wire.StatWriteAccess {
		return "??"
	}
	return s.String()
}

// SeverityName returns the alarm severity as the tools print it: its EPICS
// name, or "??" for a code outside the table.
func SeverityName(s wire.AlarmSeverity) string {
	if s > wire.SevInvalid {
		return "??"
	}
	return s.String()
}

// FieldTypeName returns the DBF_ name of a native (plain) type, as cainfo and
// caget -d print it: "DBF_DOUBLE" for DBRDouble.
func FieldTypeName(t wire.DBRType) string {
	if t > wire.DBRDouble {
		return "DBF_NO_ACCESS"
	}
	return "DBF_" + strings.TrimPrefix(t.String(), "DBR_")
}
