// Command testplugin is the echo transport as a plugin process, for the tests of the plugin
// machinery.
package main

import (
	"github.com/pvhub/pvhub/plugins"
	"github.com/pvhub/pvhub/plugins/plugintest/echotransport"
)

func main() {
	plugins.Serve(echotransport.New())
}
