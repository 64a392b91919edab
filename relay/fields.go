package relay

import (
	"math"
	"strconv"
	"strings"

	"github.com/pvhub/pvhub/ca/wire"
)

// Bounds of attribute values.
const (
	// MaxEGU is the longest EGU in bytes, as an IOC record's EGU field holds.
	// CA metadata carries only the first 7 bytes of it.
	MaxEGU = 15
	// MaxDESC is the longest DESC in bytes: what one DBR_STRING holds.
	MaxDESC = wire.MaxStringSize - 1
	// MaxPREC is the largest PREC: the most significant digits a double has.
	MaxPREC = 17
)

// Attributes are the settable attributes of a relay PV, named after the
// fields of an EPICS ao record. Their zero value is what a new PV has: no
// units, precision 0, all limits 0 and all severities NO_ALARM.
type Attributes struct {
	EGU  string // engineering units: valid UTF-8 without control characters, at most MaxEGU bytes
	DESC string // description: valid UTF-8 without control characters, at most MaxDESC bytes
	PREC int16  // display precision, 0..MaxPREC

	HOPR, LOPR float64 // display limits
	DRVH, DRVL float64 // drive limits: when DRVH > DRVL, puts outside them are refused

	HIHI, HIGH, LOW, LOLO float64 // alarm (HIHI, LOLO) and warning (HIGH, LOW) limits

	HHSV, HSV, LSV, LLSV wire.AlarmSeverity // the severities of the four limits
}

// isZero reports whether a holds the zero attributes, -0 limits excluded.
func (a *Attributes) isZero() bool {
	return a.EGU == "" && a.DESC == "" && a.PREC == 0 &&
		math.Float64bits(a.HOPR)|math.Float64bits(a.LOPR)|math.Float64bits(a.DRVH)|math.Float64bits(a.DRVL)|
			math.Float64bits(a.HIHI)|math.Float64bits(a.HIGH)|math.Float64bits(a.LOW)|math.Float64bits(a.LOLO) == 0 &&
		a.HHSV|a.HSV|a.LSV|a.LLSV == 0
}

// validate checks the bounds of every attribute.
func (a *Attributes) validate() error {
	if err := checkText("EGU", a.EGU, MaxEGU); err != nil {
		return err
	}
	if err := checkText("DESC", a.DESC, MaxDESC); err != nil {
		return err
	}
	if a.PREC < 0 || a.PREC > MaxPREC {
		return errorf(wire.ECAPutFail, "PREC must be an integer 0..%d, not %d", MaxPREC, a.PREC)
	}
	for _, f := range [...]string{"HHSV", "HSV", "LSV", "LLSV"} {
		if sev := *a.severity(f); sev > wire.SevInvalid {
			return errorf(wire.ECAPutFail, "%s must be a severity 0..3, not %d", f, sev)
		}
	}
	return nil
}

// checkText checks the text of attribute f.
func checkText(f, s string, maxLen int) error {
	if len(s) > maxLen {
		return errorf(wire.ECAPutFail, "%s must be at most %d bytes, not %d", f, maxLen, len(s))
	}
	if !validText(s) {
		return errorf(wire.ECAPutFail, "%s must be UTF-8 text without control characters: %q", f, s)
	}
	return nil
}

// limit returns a pointer to the limit attribute f, or nil.
func (a *Attributes) limit(f string) *float64 {
	switch f {
	case "HOPR":
		return &a.HOPR
	case "LOPR":
		return &a.LOPR
	case "DRVH":
		return &a.DRVH
	case "DRVL":
		return &a.DRVL
	case "HIHI":
		return &a.HIHI
	case "HIGH":
		return &a.HIGH
	case "LOW":
		return &a.LOW
	case "LOLO":
		return &a.LOLO
	}
	return nil
}

// severity returns a pointer to the severity attribute f, or nil.
func (a *Attributes) severity(f string) *wire.AlarmSeverity {
	switch f {
	case "HHSV":
		return &a.HHSV
	case "HSV":
		return &a.HSV
	case "LSV":
		return &a.LSV
	case "LLSV":
		return &a.LLSV
	}
	return nil
}

// severityStates are the enum states of the severity fields.
var severityStates = [...]string{"NO_ALARM", "MINOR", "MAJOR", "INVALID"}

// FieldType returns the CA type of a field of the PV: the native type for ""
// and "VAL", DBR_STRING for EGU and DESC, DBR_SHORT for PREC, DBR_DOUBLE for
// the limits, and DBR_ENUM for the severities HHSV, HSV, LSV and LLSV. It
// returns DBR_STRING for a name that is not a field (see IsField).
func (s *State) FieldType(field string) wire.DBRType {
	var zero Attributes
	switch {
	case field == "" || field == "VAL":
		return s.NativeType()
	case field == "PREC":
		return wire.DBRShort
	case zero.limit(field) != nil:
		return wire.DBRDouble
	case zero.severity(field) != nil:
		return wire.DBREnum
	}
	return wire.DBRString
}

// FieldCount returns the element count of a field: the PV's count for "" and
// "VAL", and 1 for an attribute.
func (s *State) FieldCount(field string) int {
	if field == "" || field == "VAL" {
		return int(s.count)
	}
	return 1
}

// FieldStates returns the enum states of a severity field (HHSV, HSV, LSV,
// LLSV): NO_ALARM, MINOR, MAJOR and INVALID, in a new slice. It returns nil for
// any other field.
func (s *State) FieldStates(field string) []string {
	var zero Attributes
	if zero.severity(field) == nil {
		return nil
	}
	return append([]string(nil), severityStates[:]...)
}

// Field returns a field of the PV as a CA value of the type FieldType
// reports: the value for "" and "VAL", and otherwise one element holding the
// attribute. A name that is not a field gives an *Error with ECA_GETFAIL.
func (s *State) Field(field string) (wire.Value, error) {
	if field == "" || field == "VAL" {
		return s.Value(), nil
	}
	a := s.Attributes()
	switch field {
	case "EGU":
		return wire.Value{Type: wire.DBRString, Strings: []string{a.EGU}}, nil
	case "DESC":
		return wire.Value{Type: wire.DBRString, Strings: []string{a.DESC}}, nil
	case "PREC":
		return wire.Value{Type: wire.DBRShort, Shorts: []int16{a.PREC}}, nil
	}
	if p := a.limit(field); p != nil {
		return wire.Value{Type: wire.DBRDouble, Doubles: []float64{*p}}, nil
	}
	if p := a.severity(field); p != nil {
		return wire.Value{Type: wire.DBREnum, Enums: []uint16{uint16(*p)}}, nil
	}
	return wire.Value{}, errorf(wire.ECAGetFail, "%q is not a relay PV field", field)
}

// PutField sets the attribute field from raw, a one-element value in any
// plain CA type, and then recomputes the alarm of the current value (a PV
// never written keeps UDF/INVALID). It does not change the time stamp.
//
//   - EGU and DESC take text: a DBR_STRING, the bytes of a DBR_CHAR array up
//     to the first NUL, or a number formatted as text; valid UTF-8 without
//     control characters, at most MaxEGU and MaxDESC bytes.
//   - PREC takes an integer 0..MaxPREC, as a number or as text.
//   - HOPR, LOPR, DRVH, DRVL, HIHI, HIGH, LOW and LOLO take any number
//     (NaN and infinities included), or text that reads as one.
//   - HHSV, HSV, LSV and LLSV take a severity: its name (NO_ALARM, MINOR, MAJOR,
//     INVALID, in any case) or its number 0..3.
//
// Changing DRVH or DRVL does not check the current value. "VAL" is refused:
// the value is written with Put, which takes the time. Any error is an *Error
// and leaves the state unchanged.
func (s *State) PutField(field string, raw wire.Value) error {
	switch {
	case field == "" || field == "VAL":
		return errorf(wire.ECAPutFail, "the value is written with Put, not PutField")
	case !IsField(field):
		return errorf(wire.ECAPutFail, "%q is not a relay PV field", field)
	case raw.Type > wire.DBRDouble:
		return errorf(wire.ECAPutFail, "a value of type %s cannot be written", raw.Type)
	case raw.Type != wire.DBRChar && raw.Len() != 1:
		return errorf(wire.ECABadCount, "%s takes exactly one element, not %d", field, raw.Len())
	}
	a := s.Attributes()
	switch field {
	case "EGU", "DESC":
		text, err := textOf(&raw, a.PREC)
		if err != nil {
			return err
		}
		if field == "EGU" {
			if err := checkText(field, text, MaxEGU); err != nil {
				return err
			}
			a.EGU = text
		} else {
			if err := checkText(field, text, MaxDESC); err != nil {
				return err
			}
			a.DESC = text
		}
	case "PREC":
		f, err := numberOf(field, &raw)
		if err != nil {
			return err
		}
		if !(f >= 0 && f <= MaxPREC && f == math.Trunc(f)) {
			return errorf(wire.ECAPutFail, "PREC must be an integer 0..%d, not %s", MaxPREC, formatFloat(f))
		}
		a.PREC = int16(f)
	default:
		if p := a.limit(field); p != nil {
			f, err := numberOf(field, &raw)
			if err != nil {
				return err
			}
			*p = f
		} else if p := a.severity(field); p != nil {
			sev, err := severityOf(field, &raw)
			if err != nil {
				return err
			}
			*p = sev
		}
	}
	if a.isZero() {
		s.attrs = nil
	} else if s.attrs == nil {
		s.attrs = &a
	} else {
		*s.attrs = a
	}
	s.recompute()
	return nil
}

// textOf returns the text of raw: a string, char bytes up to the first NUL, or
// a number formatted with precision prec.
func textOf(raw *wire.Value, prec int16) (string, error) {
	switch raw.Type {
	case wire.DBRString:
		return string(cutNUL([]byte(raw.Strings[0]))), nil
	case wire.DBRChar:
		return string(cutNUL(raw.Chars)), nil
	}
	var t wire.Value
	if err := wire.Convert(&t, wire.DBRString, raw, prec, nil); err != nil {
		return "", &Error{Status: wire.ECAPutFail, Text: err.Error(), Err: err}
	}
	return t.Strings[0], nil
}

// numberOf returns the one element of raw (not a DBR_CHAR array) as a float64.
func numberOf(field string, raw *wire.Value) (float64, error) {
	if raw.Type == wire.DBRChar && raw.Len() != 1 {
		return 0, errorf(wire.ECABadCount, "%s takes exactly one element, not %d", field, raw.Len())
	}
	var d wire.Value
	if err := wire.Convert(&d, wire.DBRDouble, raw, 0, nil); err != nil {
		return 0, &Error{Status: wire.ECAPutFail, Text: field + ": " + err.Error(), Err: err}
	}
	return d.Doubles[0], nil
}

// severityOf reads a severity from raw: a name, or a number 0..3.
func severityOf(field string, raw *wire.Value) (wire.AlarmSeverity, error) {
	if raw.Type == wire.DBRString {
		t := strings.TrimSpace(raw.Strings[0])
		for i, name := range severityStates {
			if strings.EqualFold(t, name) {
				return wire.AlarmSeverity(i), nil
			}
		}
		if i, err := strconv.ParseUint(t, 10, 8); err == nil && i <= uint64(wire.SevInvalid) {
			return wire.AlarmSeverity(i), nil
		}
		return 0, errorf(wire.ECAPutFail, "%s must be NO_ALARM, MINOR, MAJOR or INVALID (or 0..3), not %q", field, raw.Strings[0])
	}
	f, err := numberOf(field, raw)
	if err != nil {
		return 0, err
	}
	if !(f >= 0 && f <= 3 && f == math.Trunc(f)) {
		return 0, errorf(wire.ECAPutFail, "%s must be a severity 0..3 (NO_ALARM, MINOR, MAJOR, INVALID), not %s", field, formatFloat(f))
	}
	return wire.AlarmSeverity(f), nil
}
