package plugins

import (
	"context"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	pb "github.com/pvhub/pvhub/plugins/internal/transportv1"
)

// The go-plugin wiring shared by both sides.

// handshake is checked by both sides before anything else. The cookie's key must not start
// with PVHUB_: the config package reads every PVHUB_* variable as a configuration key, and the
// plugin process inherits the host's environment.
var handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "PLUGIN_COOKIE_PVHUB_TRANSPORT",
	MagicCookieValue: "2f4c1a7e9b3d4e6f8a0c5b7d9e1f3a5c",
}

// pluginKey is the name the one plugin type is dispensed under.
const pluginKey = "transport"

// maxMessage bounds one gRPC message either way. The peer is our own child on a local socket;
// the bound only guards against a runaway. Batches are split far below it (maxBatchBytes).
const maxMessage = 1 << 30

// maxBatchBytes is the size at which the host splits a batch into several messages.
const maxBatchBytes = 4 << 20

// goPlugin is go-plugin's view of a transport: on the plugin side it registers the gRPC server
// around impl; on the host side it returns the raw gRPC client.
type goPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	impl Transport
}

var _ plugin.GRPCPlugin = (*goPlugin)(nil)

func (p *goPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterTransportServer(s, newServer(p.impl))
	return nil
}

func (p *goPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return pb.NewTransportClient(c), nil
}
