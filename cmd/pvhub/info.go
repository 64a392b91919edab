package main

import (
	"context"
	"fmt"
	"io"

	"github.com/pvhub/pvhub/ca/client"
	"github.com/pvhub/pvhub/cmd/pvhub/catools"
)

// cmdInfo is `pvhub info`: it connects to each PV and prints cainfo's block
// about the channel (state, server, access rights, native type, element
// count). A PV not found within -w gets a message on stderr and makes the
// exit status 1; the others are printed.
func cmdInfo(ctx context.Context, args []string, env catools.LookupEnv, stdout, stderr io.Writer) int {
	const cmd = "pvhub info"
	o, err := catools.ParseInfo(args, env)
	if err != nil {
		return catools.ReportUsage(err, cmd, catools.InfoUsage, stdout, stderr)
	}
	warn(stderr, cmd, o.Warnings)
	c, err := startClient(ctx, env, false)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", cmd, err)
		return catools.ExitFailure
	}
	defer c.Close()
	chs, connected, err := connectAll(ctx, c, o.PVs, o.Timeout, nil)
	defer closeAll(chs)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", cmd, err)
		return catools.ExitFailure
	}
	status := catools.ExitOK
	for i, name := range o.PVs {
		if !connected[i] {
			fmt.Fprintln(stderr, notFound(ctx, name, o.Timeout))
			status = catools.ExitFailure
			continue
		}
		in := chs[i].Info()
		state := catools.StateConnected
		if in.State != client.Connected {
			state = catools.StatePreviouslyConnected
		}
		info := catools.Info{Name: name, State: state, Host: in.Server, Read: in.Read, Write: in.Write, Native: in.Type, Count: in.Count}
		fmt.Fprint(stdout, info.String())
	}
	return status
}
