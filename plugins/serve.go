package plugins

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/pvhub/pvhub/plugins/internal/transportv1"
)

// Serve runs t as a plugin process: it is the whole of a plugin's main, or of
// `pvhub plugin <name>`. It returns when the host ends the plugin. Started by hand (without
// the host's handshake in its environment), it prints a message and exits with status 1.
//
// The transport's Config.Logger writes JSON lines to stderr, which the host reads into its own
// log, tagged with the plugin's name. Anything else the plugin writes to stderr arrives there
// too, at debug level; stdout is discarded.
func Serve(t Transport) {
	// A plugin's lifetime belongs to its host: it is closed by the host, or
	// ends by the parent-death signal when the host dies. SIGINT and SIGTERM
	// sent to the whole process group (a terminal's Ctrl-C, systemd stopping
	// the service) must not kill it before the host has closed it.
	signal.Ignore(os.Interrupt, syscall.SIGTERM)
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: handshake,
		Plugins:         plugin.PluginSet{pluginKey: &goPlugin{impl: t}},
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			return grpc.NewServer(append(opts, grpc.MaxRecvMsgSize(maxMessage), grpc.MaxSendMsgSize(maxMessage))...)
		},
		Logger: hclog.New(&hclog.LoggerOptions{Output: os.Stderr, JSONFormat: true, Level: hclog.Info}),
	})
}

// pluginLogger returns a logger whose JSON lines go-plugin's host side understands
// (hclog's "@level" and "@message").
func pluginLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level: slog.LevelDebug - 4,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) > 0 {
				return a
			}
			switch a.Key {
			case slog.TimeKey:
				return slog.Attr{} // the host stamps its own time
			case slog.LevelKey:
				lv, _ := a.Value.Any().(slog.Level)
				return slog.String("@level", hclogLevel(lv))
			case slog.MessageKey:
				return slog.String("@message", a.Value.String())
			}
			return a
		},
	}))
}

func hclogLevel(lv slog.Level) string {
	switch {
	case lv < slog.LevelDebug:
		return "trace"
	case lv < slog.LevelInfo:
		return "debug"
	case lv < slog.LevelWarn:
		return "info"
	case lv < slog.LevelError:
		return "warn"
	}
	return "error"
}

// server is the plugin side of the stream: it starts the transport, feeds it the event batches
// and sends its requests up.
type server struct {
	pb.UnimplementedTransportServer
	t      Transport
	used   atomic.Bool
	logOut io.Writer
}

func newServer(t Transport) *server { return &server{t: t, logOut: os.Stderr} }

func (s *server) Connect(stream pb.Transport_ConnectServer) error {
	if !s.used.CompareAndSwap(false, true) {
		return status.Error(codes.FailedPrecondition, "pvhub transport plugin: already connected")
	}
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	start := first.GetStart()
	if start == nil {
		return status.Error(codes.InvalidArgument, "pvhub transport plugin: the first message is not start")
	}
	cfg := Config{Name: start.GetName(), Logger: pluginLogger(s.logOut), RelayPrefix: start.GetRelayPrefix()}
	if raw := start.GetOptionsJson(); len(raw) > 0 {
		if err := json.Unmarshal(raw, &cfg.Options); err != nil {
			return status.Errorf(codes.InvalidArgument, "pvhub transport plugin: options: %v", err)
		}
	}
	h := &streamHost{stream: stream}
	defer h.close()
	if err := s.t.Start(stream.Context(), cfg, h); err != nil {
		_ = s.t.Close()
		msg := err.Error()
		if msg == "" {
			msg = "start failed"
		}
		return h.started(&pb.Started{Error: msg})
	}
	defer s.t.Close()
	if err := h.started(&pb.Started{}); err != nil {
		return err
	}
	var batch []Event
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil // the host closed its side: an orderly end
		}
		if err != nil {
			return err
		}
		events := m.GetEvents()
		if events == nil {
			cfg.Logger.Warn("unexpected message from the host", "type", fmt.Sprintf("%T", m.GetMsg()))
			continue
		}
		batch = batch[:0]
		for _, pe := range events.GetEvents() {
			e, err := eventFromProto(pe)
			if err != nil {
				cfg.Logger.Warn("dropped an event", "error", err)
				continue
			}
			batch = append(batch, e)
		}
		if len(batch) > 0 {
			s.t.Events(batch)
		}
		clear(batch)
	}
}

// streamHost is the Host a transport gets in a plugin process: each call is one message up.
type streamHost struct {
	mu      sync.Mutex
	stream  pb.Transport_ConnectServer
	ready   bool                // Started was sent
	pending []*pb.PluginMessage // requests made during Start, sent after Started
	closed  bool
}

var _ Host = (*streamHost)(nil)

func (h *streamHost) send(m *pb.PluginMessage) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return errors.New("pvhub transport plugin: stream closed")
	}
	if !h.ready {
		h.pending = append(h.pending, m)
		return nil
	}
	return h.stream.Send(m)
}

// started sends Started, then the requests the transport made during Start.
func (h *streamHost) started(st *pb.Started) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ready = true
	if err := h.stream.Send(&pb.PluginMessage{Msg: &pb.PluginMessage_Started{Started: st}}); err != nil {
		return err
	}
	for _, m := range h.pending {
		if err := h.stream.Send(m); err != nil {
			return err
		}
	}
	h.pending = nil
	return nil
}

func (h *streamHost) close() {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
}

// Requests after the stream broke are dropped: the host restarts the plugin.

func (h *streamHost) Subscribe(names ...string) {
	if len(names) > 0 {
		_ = h.send(&pb.PluginMessage{Msg: &pb.PluginMessage_Subscribe{Subscribe: &pb.Subscribe{Names: names}}})
	}
}

func (h *streamHost) Unsubscribe(names ...string) {
	if len(names) > 0 {
		_ = h.send(&pb.PluginMessage{Msg: &pb.PluginMessage_Unsubscribe{Unsubscribe: &pb.Unsubscribe{Names: names}}})
	}
}

func (h *streamHost) Put(name string, value Data, id uint64) {
	_ = h.send(&pb.PluginMessage{Msg: &pb.PluginMessage_Put{Put: &pb.Put{Name: name, Value: dataToProto(value), Id: id}}})
}
