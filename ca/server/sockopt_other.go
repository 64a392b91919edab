//go:build !unix

package server

import "syscall"

func reuseAddr(_, _ string, _ syscall.RawConn) error { return nil }
