//go:build !linux

package plugins

import "os/exec"

// setParentDeathSignal does nothing outside Linux: there, go-plugin's own shutdown is all.
func setParentDeathSignal(*exec.Cmd) {}
