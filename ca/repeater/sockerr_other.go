//go:build !windows

package repeater

import (
	"errors"
	"syscall"
)

// isAddrInUse reports whether err says that a bind failed because another
// socket holds the address and port.
func isAddrInUse(err error) bool { return errors.Is(err, syscall.EADDRINUSE) }

// isAddrNotAvail reports whether err says that the address of a bind is not
// one of this host's.
func isAddrNotAvail(err error) bool { return errors.Is(err, syscall.EADDRNOTAVAIL) }

// isRefused reports whether err is the report of an ICMP "port unreachable":
// the peer has no socket on that port.
func isRefused(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET)
}
