//go:build unix

package server

import "syscall"

// reuseAddr sets SO_REUSEADDR so that several servers on one host can share the
// UDP search port, as IOCs do.
func reuseAddr(_, _ string, rc syscall.RawConn) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
	})
	if err != nil {
		return err
	}
	return serr
}
