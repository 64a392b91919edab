package plugins

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	goruntime "runtime"
	"sync"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/pvhub/pvhub/plugins/internal/hclogslog"
	pb "github.com/pvhub/pvhub/plugins/internal/transportv1"
)

// ErrClosed is returned by Process.Events after Close, or once the plugin has exited.
var ErrClosed = errors.New("plugins: plugin closed")

// closeTimeout is how long Close waits for the plugin to end the stream on its own before
// cancelling it (go-plugin then asks the process to exit, and kills it 2 s later).
const closeTimeout = 5 * time.Second

// Process is a running plugin process and its stream, on the host side. Launch returns it
// started; it ends when the plugin exits, the stream breaks, or Close is called: Done is then
// closed and Err says why.
type Process struct {
	name   string
	prefix string // the relay prefix, for Start
	logger *slog.Logger
	cmd    *exec.Cmd
	client *plugin.Client
	host   Host

	cancel context.CancelFunc // cancels the stream

	sendMu sync.Mutex
	stream pb.Transport_ConnectClient
	closed bool // CloseSend done; no more events

	done chan struct{}
	err  error // set before done is closed

	closeOnce sync.Once
}

// Launch starts the plugin process cmd, connects to it, starts its transport with cfg (Name,
// Options and Logger: the logger receives go-plugin's messages and the plugin's own log lines,
// tagged plugin=<Name>), and returns once the transport serves. The plugin's requests are
// passed to host, from one goroutine, in the order the plugin sent them.
//
// cmd must not have been started; Launch sets its environment, its standard streams and, on
// Linux, its parent-death signal (SIGKILL), so the plugin never outlives the host. ctx bounds
// start-up only. On error nothing is left running.
func Launch(ctx context.Context, cmd *exec.Cmd, cfg Config, host Host) (*Process, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	opts, err := json.Marshal(cfg.Options)
	if err != nil {
		return nil, fmt.Errorf("plugins: %s: options: %w", cfg.Name, err)
	}
	if cfg.Options == nil {
		opts = nil
	}
	setParentDeathSignal(cmd)
	logger := cfg.Logger.With("plugin", cfg.Name)
	p := &Process{
		name:   cfg.Name,
		prefix: cfg.RelayPrefix,
		logger: logger,
		cmd:    cmd,
		host:   host,
		done:   make(chan struct{}),
		client: plugin.NewClient(&plugin.ClientConfig{
			HandshakeConfig:  handshake,
			Plugins:          plugin.PluginSet{pluginKey: &goPlugin{}},
			Cmd:              cmd,
			AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
			Logger:           hclogslog.New(logger),
			GRPCDialOptions: []grpc.DialOption{grpc.WithDefaultCallOptions(
				grpc.MaxCallRecvMsgSize(maxMessage), grpc.MaxCallSendMsgSize(maxMessage))},
		}),
	}
	started := make(chan error, 1)
	go p.run(ctx, opts, started)
	select {
	case err = <-started:
	case <-ctx.Done():
		p.abort()
		err = <-started
		if err == nil {
			err = ctx.Err()
		}
	}
	if err != nil {
		p.abort()
		<-p.done
		return nil, fmt.Errorf("transport plugin %s: %w", cfg.Name, err)
	}
	return p, nil
}

// run owns the process: it starts it, opens the stream, starts the transport, reports on
// started, then passes the plugin's requests to the host until the stream ends, and finally
// waits for the process to exit. It runs on a locked OS thread, because the parent-death signal
// fires when the thread that started the child exits, not the process.
func (p *Process) run(ctx context.Context, opts []byte, started chan<- error) {
	goruntime.LockOSThread()
	defer goruntime.UnlockOSThread()
	defer close(p.done)

	err := p.connect(ctx, opts)
	started <- err
	if err == nil {
		err = p.receive()
	}
	p.cancel()
	p.client.Kill() // waits for the process to exit
	p.sendMu.Lock()
	byUs := p.closed
	p.closed = true
	p.sendMu.Unlock()
	switch {
	case byUs && (err == nil || errors.Is(err, context.Canceled)):
		p.err = nil
	case p.cmd.ProcessState != nil:
		p.err = fmt.Errorf("plugin exited: %v (stream: %v)", p.cmd.ProcessState, err)
	default:
		p.err = err
	}
}

func (p *Process) connect(ctx context.Context, opts []byte) error {
	sctx, cancel := context.WithCancel(context.Background())
	p.sendMu.Lock()
	p.cancel = cancel
	p.sendMu.Unlock()
	// Let a cancelled start-up interrupt the handshake and the wait for Started.
	stop := context.AfterFunc(ctx, cancel)
	defer stop()

	rpc, err := p.client.Client()
	if err != nil {
		return err
	}
	raw, err := rpc.Dispense(pluginKey)
	if err != nil {
		return err
	}
	stream, err := raw.(pb.TransportClient).Connect(sctx)
	if err != nil {
		return err
	}
	p.sendMu.Lock()
	p.stream = stream
	p.sendMu.Unlock()
	if err := stream.Send(&pb.HostMessage{Msg: &pb.HostMessage_Start{Start: &pb.Start{Name: p.name, OptionsJson: opts, RelayPrefix: p.prefix}}}); err != nil {
		return err
	}
	m, err := stream.Recv()
	if err != nil {
		return err
	}
	st := m.GetStarted()
	if st == nil {
		return fmt.Errorf("the plugin answered start with %T", m.GetMsg())
	}
	if st.GetError() != "" {
		return errors.New(st.GetError())
	}
	return nil
}

func (p *Process) receive() error {
	for {
		m, err := p.stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		switch m := m.GetMsg().(type) {
		case *pb.PluginMessage_Subscribe:
			p.host.Subscribe(m.Subscribe.GetNames()...)
		case *pb.PluginMessage_Unsubscribe:
			p.host.Unsubscribe(m.Unsubscribe.GetNames()...)
		case *pb.PluginMessage_Put:
			p.host.Put(m.Put.GetName(), dataFromProto(m.Put.GetValue()), m.Put.GetId())
		default:
			p.logger.Warn("unexpected message from the plugin", "type", fmt.Sprintf("%T", m))
		}
	}
}

// abort cancels the stream, which ends run.
func (p *Process) abort() {
	p.sendMu.Lock()
	cancel := p.cancel
	p.sendMu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// Name returns the plugin's name.
func (p *Process) Name() string { return p.name }

// Pid returns the plugin's process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the plugin has exited (and its process has been waited for).
func (p *Process) Done() <-chan struct{} { return p.done }

// Err returns why the plugin ended: nil after Close, otherwise the exit status or stream
// error. It returns nil before Done is closed.
func (p *Process) Err() error {
	select {
	case <-p.done:
		return p.err
	default:
		return nil
	}
}

// Events sends batch to the plugin, in one message or, when big, several (order kept). It
// returns once the messages are handed to gRPC; under flow control (a plugin that does not keep
// up) it blocks, so the caller can coalesce meanwhile. Calls may come from several goroutines;
// they are serialized. After Close or the plugin's exit it returns ErrClosed.
func (p *Process) Events(batch []Event) error {
	if len(batch) == 0 {
		return nil
	}
	msg := &pb.EventBatch{Events: make([]*pb.Event, 0, len(batch))}
	size := 0
	p.sendMu.Lock()
	defer p.sendMu.Unlock()
	if p.closed {
		return ErrClosed
	}
	flush := func() error {
		if len(msg.Events) == 0 {
			return nil
		}
		err := p.stream.Send(&pb.HostMessage{Msg: &pb.HostMessage_Events{Events: msg}})
		msg = &pb.EventBatch{Events: make([]*pb.Event, 0, len(batch))}
		size = 0
		if err != nil {
			return fmt.Errorf("plugins: %s: %w (%w)", p.name, ErrClosed, err)
		}
		return nil
	}
	for _, e := range batch {
		pe, err := eventToProto(e)
		if err != nil {
			return err
		}
		n := proto.Size(pe)
		if size > 0 && size+n > maxBatchBytes {
			if err := flush(); err != nil {
				return err
			}
		}
		msg.Events = append(msg.Events, pe)
		size += n
	}
	return flush()
}

// Close ends the plugin: it closes the stream's sending side, so that the plugin closes its
// transport and ends the stream, then waits for the process to exit (it is killed if it does
// not). It returns when everything Launch started has ended. It is idempotent.
func (p *Process) Close() error {
	p.closeOnce.Do(func() {
		p.sendMu.Lock()
		if !p.closed {
			p.closed = true
			_ = p.stream.CloseSend()
		}
		p.sendMu.Unlock()
		t := time.NewTimer(closeTimeout)
		defer t.Stop()
		select {
		case <-p.done:
		case <-t.C:
			p.logger.Warn("plugin did not end its stream; cancelling it")
			p.abort()
			<-p.done
		}
	})
	return nil
}
