package catools

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/pvhub/pvhub/ca/wire"
)

// ValueError reports a value argument of put that does not convert to the
// PV's native type.
type ValueError struct {
	Text  string       // the argument, as given
	Index int          // its position among several values, or -1 for a single value
	To    wire.DBRType // the native type it was to become
	Why   string       // what is wrong with it
}

func (e *ValueError) Error() string {
	elem := ""
	if e.Index >= 0 {
		elem = fmt.Sprintf(" (element %d)", e.Index)
	}
	return fmt.Sprintf("value %q%s does not convert to %s: %s", e.Text, elem, e.To, e.Why)
}

// CountError reports more values than the PV holds.
type CountError struct {
	Given int // elements given (characters plus NUL for -S)
	Max   int // the PV's element count
	Chars bool
}

func (e *CountError) Error() string {
	if e.Chars {
		return fmt.Sprintf("text of %d characters does not fit in %d elements", e.Given, e.Max)
	}
	return fmt.Sprintf("%d values given, but the PV holds at most %d", e.Given, e.Max)
}

// ErrNotChar is returned for put -S to a PV whose native type is not CHAR.
var ErrNotChar = errors.New("-S writes text to CHAR arrays only")

// PutValue converts the value arguments of put into a value of the PV's
// native type native, for a channel of count elements whose ENUM states (if
// native is DBREnum) are states. It follows caput:
//
//   - with o.Array, o.Values[0] is the number of values and the rest are the
//     elements; a count that differs from the number of values given gives
//     a warning, and the values given are written;
//   - with CharAsString (-S) the values are joined by blanks, unescaped, and
//     written as the characters of a CHAR array followed by a NUL when it fits;
//   - otherwise several values are the elements of an array PV (count > 1),
//     and are joined by blanks into one value for a scalar PV.
//
// Text is unescaped (\n, \xNN, ...). An ENUM takes a state string or an
// index, per o.Text. A value that does not convert gives a *ValueError, too
// many values a *CountError; warnings are for stderr.
func (o *PutOptions) PutValue(native wire.DBRType, count int, states []string) (v wire.Value, warnings []string, err error) {
	args := o.Values
	if o.Format.CharAsString {
		if native != wire.DBRChar {
			return v, nil, ErrNotChar
		}
		raw := Unescape(strings.Join(args, " "))
		if len(raw) > count {
			return v, nil, &CountError{Given: len(raw), Max: count, Chars: true}
		}
		if len(raw) < count {
			raw = append(raw, 0)
		}
		return wire.Value{Type: wire.DBRChar, Chars: raw}, nil, nil
	}
	if o.Array {
		n, err := strconv.Atoi(args[0])
		if err != nil || n < 0 {
			return v, nil, fmt.Errorf("-a: the first value must be the number of values, not %q", args[0])
		}
		args = args[1:]
		if n != len(args) {
			warnings = append(warnings, fmt.Sprintf("-a: count %d differs from the %d values given; writing %d", n, len(args), len(args)))
		}
	} else if count <= 1 || len(args) == 1 {
		args = []string{strings.Join(args, " ")}
	}
	if len(args) > max(count, 1) {
		return v, warnings, &CountError{Given: len(args), Max: count}
	}
	index := -1
	if len(args) > 1 {
		index = 0
	}
	src := wire.Value{Type: wire.DBRString, Strings: make([]string, len(args))}
	for i, a := range args {
		s := string(Unescape(a))
		if native == wire.DBRString && len(s) >= wire.MaxStringSize {
			return v, warnings, &ValueError{Text: a, Index: elemIndex(index, i), To: native,
				Why: fmt.Sprintf("longer than the %d characters a string PV holds", wire.MaxStringSize-1)}
		}
		if native == wire.DBREnum {
			if err := o.checkEnum(s, states); err != "" {
				return v, warnings, &ValueError{Text: a, Index: elemIndex(index, i), To: native, Why: err}
			}
		}
		src.Strings[i] = s
	}
	if err := wire.Convert(&v, native, &src, 0, states); err != nil {
		var ce *wire.ConvertError
		if !errors.As(err, &ce) {
			return v, warnings, err
		}
		if native == wire.DBRChar && len(src.Strings) == 1 && len(src.Strings[0]) < wire.MaxStringSize {
			// As caput does: send the text as a DBR_STRING and let the server
			// decide. An IOC refuses it; a relay char PV stores the text.
			return src, warnings, nil
		}
		why := ce.Why
		if native == wire.DBRChar {
			why += " (use -S to write text to a CHAR array)"
		}
		return v, warnings, &ValueError{Text: args[ce.Index], Index: elemIndex(index, ce.Index), To: native, Why: why}
	}
	return v, warnings, nil
}

// elemIndex returns -1 for a single value and i for one of several.
func elemIndex(index, i int) int {
	if index < 0 {
		return -1
	}
	return i
}

// checkEnum applies -n and -s to the text s for an ENUM PV with the given
// states. It returns why s is refused, or "".
func (o *PutOptions) checkEnum(s string, states []string) string {
	switch o.Text {
	case EnumIndex:
		if _, err := strconv.ParseUint(strings.TrimSpace(s), 10, 16); err != nil {
			return "not a state index (-n)"
		}
	case EnumString:
		for _, st := range states {
			if st == s {
				return ""
			}
		}
		return fmt.Sprintf("not one of the states %q (-s)", states)
	}
	return ""
}
