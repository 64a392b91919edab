package websocket

import "github.com/pvhub/pvhub/plugins"

// denial is why a connected PV is not writable, as the host said.
func denial(c plugins.Connection) string {
	if c.WriteDenied != "" {
		return c.WriteDenied
	}
	return "it is read-only"
}
