package relay

import (
	"fmt"

	"github.com/pvhub/pvhub/ca/wire"
)

// Error is a refused write or read of a relay PV: the CA status a server
// returns to the client, and a text saying what was wrong. Status is
// wire.ECABadCount for too many (or too few) elements and wire.ECAPutFail for
// any other refused write. Both Status and the underlying cause (such as a
// *wire.ConvertError) are reachable with errors.As and errors.Is:
//
//	var eca wire.ECA
//	if errors.As(err, &eca) { ... } // eca == wire.ECABadCount
type Error struct {
	Status wire.ECA
	Text   string
	Err    error // the cause, or nil
}

// Error returns the text.
func (e *Error) Error() string {
	return e.Text
}

// Unwrap returns the status and the cause, so that errors.As finds either.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Status}
	}
	return []error{e.Status, e.Err}
}

// errorf returns an *Error with the given status and formatted text.
func errorf(status wire.ECA, format string, args ...any) *Error {
	return &Error{Status: status, Text: fmt.Sprintf(format, args...)}
}
