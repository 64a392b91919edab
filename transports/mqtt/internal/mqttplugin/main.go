// Command mqttplugin runs the MQTT transport as a plugin process, for benchmarks and tests
// that launch the transport out of process (pvhub itself runs it as `pvhub plugin mqtt`).
package main

import (
	"github.com/pvhub/pvhub/plugins"
	"github.com/pvhub/pvhub/transports/mqtt"
)

func main() { plugins.Serve(mqtt.New()) }
