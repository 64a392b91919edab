package relay

import (
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/pvhub/pvhub/ca/wire"
)

// DefaultPrefix is the prefix of relay names when the configuration sets none.
const DefaultPrefix = "RELAY:"

// Kind is the element type of a relay PV, chosen by the letter after the last
// underscore of its name.
type Kind uint8

// The kinds.
const (
	Float Kind = iota // f or F: DBR_DOUBLE
	Int               // i or I: DBR_LONG
	Char              // c or C: a DBR_CHAR array holding text
)

// String returns "float", "int" or "char".
func (k Kind) String() string {
	switch k {
	case Float:
		return "float"
	case Int:
		return "int"
	case Char:
		return "char"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// NativeType returns the CA type that holds elements of the kind.
func (k Kind) NativeType() wire.DBRType {
	switch k {
	case Int:
		return wire.DBRLong
	case Char:
		return wire.DBRChar
	}
	return wire.DBRDouble
}

// Name is a parsed relay name, <prefix><Base>_<dtype><Count>[.<Field>].
type Name struct {
	// Full is the name as parsed, with the prefix and the field suffix.
	Full string
	// Base is the part between the prefix and the last underscore. It is never
	// empty.
	Base string
	// Kind is the element type, from the dtype letter.
	Kind Kind
	// Buffer is true for an upper-case dtype letter: a right-appending buffer
	// that keeps the newest Count elements.
	Buffer bool
	// Count is the element count (the capacity), at least 1, and at least 2
	// for a buffer.
	Count int
	// Field is the attribute named by a .FIELD suffix, such as "EGU" or "VAL",
	// or "" when the name has no suffix. "" and "VAL" both select the value.
	Field string
}

// relayFields lists the field suffixes a relay name may carry.
var relayFields = [...]string{
	"VAL", "EGU", "PREC", "DESC", "HOPR", "LOPR", "DRVH", "DRVL",
	"HIHI", "HIGH", "LOW", "LOLO", "HHSV", "HSV", "LSV", "LLSV",
}

// IsField reports whether f is a field a relay name may select: VAL or one of
// the attributes EGU, PREC, DESC, HOPR, LOPR, DRVH, DRVL, HIHI, HIGH, LOW, LOLO,
// HHSV, HSV, LSV and LLSV. Field names are upper case, as in an IOC.
func IsField(f string) bool {
	for _, g := range relayFields {
		if f == g {
			return true
		}
	}
	return false
}

// ParseName parses full as a relay name with the given prefix. It reports false
// for anything that is not a relay name:
//
//   - full does not start with prefix, or is longer than a CA name can be
//     (wire.MaxNameSize bytes, NUL included);
//   - no underscore follows a non-empty <name>: pvhub requires a non-empty
//     <name>, so "RELAY:_f1" (legal in the pcaspy relay) is not a relay name;
//   - the dtype is not one of f, i, c, F, I and C;
//   - the count is not a positive decimal without leading zeros ("f0" and
//     "f007" are refused), exceeds math.MaxInt32, or is below 2 for a buffer;
//   - a field suffix is not one IsField accepts (an empty suffix included);
//   - <name> holds invalid UTF-8 or a control character (below 0x20, or DEL).
//
// <name> may contain anything else, underscores, colons and dots included: the
// dtype and count follow the last underscore, so "a_b_f3" has the base "a_b".
// ParseName does not check the count against a configured maximum; see
// Name.Check.
func ParseName(prefix, full string) (Name, bool) {
	if len(full) >= wire.MaxNameSize || !strings.HasPrefix(full, prefix) {
		return Name{}, false
	}
	rest := full[len(prefix):]
	us := strings.LastIndexByte(rest, '_')
	if us <= 0 {
		return Name{}, false
	}
	base, tail := rest[:us], rest[us+1:]
	var field string
	if dot := strings.IndexByte(tail, '.'); dot >= 0 {
		tail, field = tail[:dot], tail[dot+1:]
		if !IsField(field) {
			return Name{}, false
		}
	}
	if len(tail) < 2 {
		return Name{}, false
	}
	n := Name{Full: full, Base: base, Field: field}
	switch tail[0] {
	case 'f', 'F':
		n.Kind = Float
	case 'i', 'I':
		n.Kind = Int
	case 'c', 'C':
		n.Kind = Char
	default:
		return Name{}, false
	}
	n.Buffer = tail[0] < 'a'
	digits := tail[1:]
	if digits[0] == '0' || len(digits) > 10 {
		return Name{}, false
	}
	count := 0
	for i := 0; i < len(digits); i++ {
		c := digits[i]
		if c < '0' || c > '9' {
			return Name{}, false
		}
		count = count*10 + int(c-'0')
	}
	if count > math.MaxInt32 || n.Buffer && count < 2 {
		return Name{}, false
	}
	n.Count = count
	if !validText(base) {
		return Name{}, false
	}
	return n, true
}

// validText reports whether s is valid UTF-8 without control characters.
func validText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}

// PVName returns the name of the PV itself: Full without the field suffix.
func (n Name) PVName() string {
	if n.Field == "" {
		return n.Full
	}
	return n.Full[:len(n.Full)-len(n.Field)-1]
}

// NativeType returns the CA type of the PV's value: DBR_DOUBLE, DBR_LONG or
// DBR_CHAR.
func (n Name) NativeType() wire.DBRType {
	return n.Kind.NativeType()
}

// IsValue reports whether the name selects the value (no field suffix, or
// .VAL) rather than an attribute.
func (n Name) IsValue() bool {
	return n.Field == "" || n.Field == "VAL"
}

// Check returns an *Error with status ECA_BADCOUNT when the PV's element count
// exceeds maxElements, the relay's configured maximum. A maxElements of 0 or
// less imposes no bound.
func (n Name) Check(maxElements int) error {
	if maxElements > 0 && n.Count > maxElements {
		return errorf(wire.ECABadCount, "%s asks for %d elements; the relay allows at most %d",
			n.PVName(), n.Count, maxElements)
	}
	return nil
}

// Service is one of the relay's service PVs.
type Service uint8

// The service PVs.
const (
	// PVList is <prefix>pvlist: the list of relay PV names.
	PVList Service = iota + 1
	// DelPV is <prefix>delpv: writing a PV name to it deletes that PV.
	DelPV
)

// String returns "pvlist" or "delpv".
func (s Service) String() string {
	switch s {
	case PVList:
		return "pvlist"
	case DelPV:
		return "delpv"
	}
	return fmt.Sprintf("Service(%d)", uint8(s))
}

// ParseService reports which service PV full names: <prefix>pvlist or
// <prefix>delpv exactly (no field suffix). Service names are never relay
// names, since they have no _<dtype><count> suffix.
func ParseService(prefix, full string) (Service, bool) {
	if !strings.HasPrefix(full, prefix) {
		return 0, false
	}
	switch full[len(prefix):] {
	case "pvlist":
		return PVList, true
	case "delpv":
		return DelPV, true
	}
	return 0, false
}
