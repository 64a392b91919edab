package main

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/pvhub/pvhub/ca/client"
	"github.com/pvhub/pvhub/ca/wire"
	"github.com/pvhub/pvhub/cmd/pvhub/catools"
)

// cmdPut is `pvhub put`: it converts the value arguments to the PV's native
// type, prints the old value, writes, and prints the new value, as caput
// does. Every step is bounded by -w. The value is checked before anything is
// printed or written: a value that does not convert, or a PV without write
// access, stops put with exit status 1 and a message on stderr, as do a PV
// that is not found and a write the server refuses.
func cmdPut(ctx context.Context, args []string, env catools.LookupEnv, stdout, stderr io.Writer) int {
	const cmd = "pvhub put"
	o, err := catools.ParsePut(args, env)
	if err != nil {
		return catools.ReportUsage(err, cmd, catools.PutUsage, stdout, stderr)
	}
	warn(stderr, cmd, o.Warnings)
	c, err := startClient(ctx, env, false)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", cmd, err)
		return catools.ExitFailure
	}
	defer c.Close()

	// A plain write (without -c) that the server refuses is reported on the
	// circuit before the reply to the read that follows it.
	var mu sync.Mutex
	var writeErr error
	onError := func(err error) {
		mu.Lock()
		if writeErr == nil {
			writeErr = err
		}
		mu.Unlock()
	}
	chs, connected, err := connectAll(ctx, c, []string{o.PV}, o.Timeout, func(int) client.ChannelOptions {
		return client.ChannelOptions{OnError: onError}
	})
	defer closeAll(chs)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", cmd, err)
		return catools.ExitFailure
	}
	if !connected[0] {
		fmt.Fprintln(stderr, notFound(ctx, o.PV, o.Timeout))
		return catools.ExitFailure
	}
	ch := chs[0]
	in := ch.Info()
	fail := func(op string, err error) int {
		fmt.Fprintf(stderr, "PV %s: %s\n", o.PV, describe(ctx, op, err, o.Timeout))
		return catools.ExitFailure
	}
	get := func(t wire.DBRType, count int) (*wire.DBR, error) {
		opctx, cancel := withTimeout(ctx, o.Timeout)
		defer cancel()
		return ch.Get(opctx, t, count)
	}

	var states []string
	if in.Type == wire.DBREnum {
		d, err := get(wire.DBRCtrlEnum, 1)
		if err != nil {
			return fail("reading the enum states", err)
		}
		states = d.Meta.EnumStrings
	}
	v, warnings, err := o.PutValue(in.Type, in.Count, states)
	warn(stderr, cmd, warnings)
	if err != nil {
		fmt.Fprintf(stderr, "PV %s: %v\n", o.PV, err)
		return catools.ExitFailure
	}
	if !in.Write {
		fmt.Fprintf(stderr, "PV %s: write access denied\n", o.PV)
		return catools.ExitFailure
	}

	readType := o.RequestType(in.Type)
	if o.Mode != catools.PutTerse {
		old, err := get(readType, in.Count)
		if err != nil {
			return fail("read", err)
		}
		fmt.Fprint(stdout, o.Line(old, true))
	}
	opctx, cancel := withTimeout(ctx, o.Timeout)
	if o.Wait {
		err = ch.Put(opctx, v)
	} else {
		err = ch.PutNoWait(opctx, v)
	}
	cancel()
	if err != nil {
		return fail("write", err)
	}
	d, err := get(readType, in.Count)
	mu.Lock()
	werr := writeErr
	mu.Unlock()
	if werr != nil {
		return fail("write", werr)
	}
	if err != nil {
		return fail("read", err)
	}
	fmt.Fprint(stdout, o.Line(d, false))
	return catools.ExitOK
}
