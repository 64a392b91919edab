//go:build windows

package repeater

import (
	"errors"
	"syscall"
)

// Winsock error codes, which the syscall package does not name.
const (
	wsaeaddrinuse    = syscall.Errno(10048)
	wsaeaddrnotavail = syscall.Errno(10049)
	wsaeconnreset    = syscall.Errno(10054)
	wsaeconnrefused  = syscall.Errno(10061)
)

// isAddrInUse reports whether err says that a bind failed because another
// socket holds the address and port.
func isAddrInUse(err error) bool {
	return errors.Is(err, wsaeaddrinuse) || errors.Is(err, syscall.EADDRINUSE)
}

// isAddrNotAvail reports whether err says that the address of a bind is not
// one of this host's.
func isAddrNotAvail(err error) bool {
	return errors.Is(err, wsaeaddrnotavail) || errors.Is(err, syscall.EADDRNOTAVAIL)
}

// isRefused reports whether err is the report of an ICMP "port unreachable":
// the peer has no socket on that port. Windows reports it on UDP sockets as
// a connection reset.
func isRefused(err error) bool {
	return errors.Is(err, wsaeconnreset) || errors.Is(err, wsaeconnrefused) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET)
}
