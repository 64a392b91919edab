// Command sseplugin runs the SSE transport as a plugin process, for benchmarks and tests that
// want it outside pvhub's own executable (pvhub runs it as `pvhub plugin sse`).
package main

import (
	"github.com/pvhub/pvhub/plugins"
	"github.com/pvhub/pvhub/transports/sse"
)

func main() { plugins.Serve(sse.New()) }
