// Command wsplugin runs the WebSocket transport as a plugin process, for the
// runtime's benchmarks (runtime/ws_bench_test.go).
package main

import (
	"github.com/pvhub/pvhub/plugins"
	"github.com/pvhub/pvhub/transports/websocket"
)

func main() { plugins.Serve(websocket.New()) }
