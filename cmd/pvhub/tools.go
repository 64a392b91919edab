package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/pvhub/pvhub/ca/client"
	"github.com/pvhub/pvhub/ca/wire"
	"github.com/pvhub/pvhub/cmd/pvhub/catools"
)

// runTool runs the CA tool name (get, put, monitor or info) with its
// arguments. The tool takes its configuration from env (the EPICS_CA_*
// variables and EPICS_CLI_TIMEOUT) and stops early when ctx ends; monitor
// runs until then. It returns the exit status.
func runTool(ctx context.Context, name string, args []string, env catools.LookupEnv, stdout, stderr io.Writer) int {
	switch name {
	case "get":
		return cmdGet(ctx, args, env, stdout, stderr)
	case "put":
		return cmdPut(ctx, args, env, stdout, stderr)
	case "monitor":
		return cmdMonitor(ctx, args, env, stdout, stderr)
	case "info":
		return cmdInfo(ctx, args, env, stdout, stderr)
	}
	fmt.Fprintf(stderr, "pvhub: unknown tool %q\n", name)
	return catools.ExitUsage
}

// warn prints the warnings of an option parse to stderr.
func warn(stderr io.Writer, cmd string, warnings []string) {
	for _, w := range warnings {
		fmt.Fprintf(stderr, "%s: warning: %s\n", cmd, w)
	}
}

// startClient starts a CA client configured from env. Short-lived tools
// (repeater false) do not register with a CA repeater: they never wait for a
// server to restart.
func startClient(ctx context.Context, env catools.LookupEnv, repeater bool) (*client.Client, error) {
	cfg, err := client.ConfigFromEnv(env)
	if err != nil {
		return nil, err
	}
	cfg.NoRepeater = !repeater
	c, err := client.New(cfg)
	if err != nil {
		return nil, err
	}
	if err := c.Start(ctx); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

// withTimeout returns ctx limited to d, or merely cancellable when d is 0
// (no limit).
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

// connectAll creates a channel for each name and waits, at most timeout in
// all, until every one is connected. connected[i] tells whether channel i
// connected in time.
func connectAll(ctx context.Context, c *client.Client, names []string, timeout time.Duration, opts func(i int) client.ChannelOptions) (chs []*client.Channel, connected []bool, err error) {
	chs = make([]*client.Channel, len(names))
	connected = make([]bool, len(names))
	for i, name := range names {
		var o client.ChannelOptions
		if opts != nil {
			o = opts(i)
		}
		if chs[i], err = c.Channel(name, o); err != nil {
			return chs[:i], connected, fmt.Errorf("PV %s: %w", name, err)
		}
	}
	wctx, cancel := withTimeout(ctx, timeout)
	defer cancel()
	for i, ch := range chs {
		connected[i] = ch.WaitConnected(wctx) == nil
	}
	return chs, connected, nil
}

// notFound returns the message for a PV that did not connect in time, or
// that the wait for it was interrupted.
func notFound(ctx context.Context, name string, timeout time.Duration) string {
	if ctx.Err() != nil {
		return fmt.Sprintf("PV %s: interrupted before it was found", name)
	}
	return fmt.Sprintf("PV %s: not found after %s s", name, catools.Seconds(timeout))
}

// describe returns a short explanation of a failed CA operation for the
// message "PV NAME: <op> failed: <explanation>" or, for access rights, "PV
// NAME: read access denied". ctx is the tool's context (not the operation's),
// which ends only when the tool is interrupted.
func describe(ctx context.Context, op string, err error, timeout time.Duration) string {
	var ce *client.Error
	switch {
	case errors.Is(err, wire.ECANoRdAccess):
		return "read access denied"
	case errors.Is(err, wire.ECANoWtAccess):
		return "write access denied"
	case ctx.Err() != nil:
		return op + " interrupted"
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("%s failed: no reply after %s s", op, catools.Seconds(timeout))
	case errors.Is(err, client.ErrDisconnected):
		return op + " failed: the channel disconnected"
	case errors.As(err, &ce):
		msg := ce.Status.String()
		if _, text, ok := strings.Cut(msg, ": "); ok && ce.Status.Known() {
			msg = text
		}
		if ce.Text != "" {
			msg += " (" + ce.Text + ")"
		}
		return op + " failed: " + msg
	}
	return op + " failed: " + err.Error()
}

// closeAll closes the channels that were created.
func closeAll(chs []*client.Channel) {
	for _, ch := range chs {
		if ch != nil {
			ch.Close()
		}
	}
}
