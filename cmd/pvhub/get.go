package main

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/pvhub/pvhub/ca/wire"
	"github.com/pvhub/pvhub/cmd/pvhub/catools"
)

// cmdGet is `pvhub get`: it reads each PV once and prints the values as
// caget does. The PVs are searched for together and read together, each
// phase bounded by -w. A PV that is not found or whose read fails gets a
// message on stderr and makes the exit status 1; the others are printed.
func cmdGet(ctx context.Context, args []string, env catools.LookupEnv, stdout, stderr io.Writer) int {
	const cmd = "pvhub get"
	o, err := catools.ParseGet(args, env)
	if err != nil {
		return catools.ReportUsage(err, cmd, catools.GetUsage, stdout, stderr)
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

	type result struct {
		native wire.DBRType
		dbr    *wire.DBR
		err    error
	}
	results := make([]result, len(chs))
	rctx, cancel := withTimeout(ctx, o.Timeout)
	defer cancel()
	var wg sync.WaitGroup
	for i, ch := range chs {
		if !connected[i] {
			continue
		}
		wg.Go(func() {
			in := ch.Info()
			d, err := ch.Get(rctx, o.RequestType(in.Type), o.RequestCount(in.Count))
			results[i] = result{in.Type, d, err}
		})
	}
	wg.Wait()

	status := catools.ExitOK
	for i, name := range o.PVs {
		r := results[i]
		switch {
		case !connected[i]:
			fmt.Fprintln(stderr, notFound(ctx, name, o.Timeout))
			status = catools.ExitFailure
		case r.err != nil:
			fmt.Fprintf(stderr, "PV %s: %s\n", name, describe(ctx, "read", r.err, o.Timeout))
			status = catools.ExitFailure
		default:
			fmt.Fprint(stdout, o.Line(name, r.native, r.dbr))
		}
	}
	return status
}
