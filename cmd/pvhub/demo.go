package main

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/pvhub/pvhub/ca/server"
	"github.com/pvhub/pvhub/ca/wire"
)

// demoPVs builds the PVs that `pvhub serve` hosts until the relay exists.
func demoPVs() ([]*server.PV, error) {
	specs := []struct {
		name string
		o    server.PVOptions
	}{
		{"demo:sine", server.PVOptions{Type: wire.DBRDouble, Count: 1, ReadOnly: true,
			Value: wire.Value{Type: wire.DBRDouble, Doubles: []float64{0}},
			Meta: wire.Metadata{Units: "V", Precision: 3, ClassName: "ai", Limits: wire.Limits{
				UpperDisp: 1, LowerDisp: -1, UpperAlarm: 0.95, UpperWarning: 0.8, LowerWarning: -0.8, LowerAlarm: -0.95,
				UpperCtrl: 1, LowerCtrl: -1}}}},
		{"demo:setpoint", server.PVOptions{Type: wire.DBRDouble, Count: 1,
			Value: wire.Value{Type: wire.DBRDouble, Doubles: []float64{0}},
			Meta:  wire.Metadata{Units: "mm", Precision: 2, ClassName: "ao", Limits: wire.Limits{UpperDisp: 100, UpperCtrl: 100}}}},
		{"demo:counter", server.PVOptions{Type: wire.DBRLong, Count: 1, ReadOnly: true,
			Value: wire.Value{Type: wire.DBRLong, Longs: []int32{0}}, Meta: wire.Metadata{ClassName: "longin"}}},
		{"demo:message", server.PVOptions{Type: wire.DBRString, Count: 1,
			Value: wire.Value{Type: wire.DBRString, Strings: []string{"hello from pvhub"}}, Meta: wire.Metadata{ClassName: "stringout"}}},
		{"demo:mode", server.PVOptions{Type: wire.DBREnum, Count: 1,
			Value: wire.Value{Type: wire.DBREnum, Enums: []uint16{0}},
			Meta:  wire.Metadata{EnumStrings: []string{"Off", "On", "Auto"}, ClassName: "mbbo"}}},
		{"demo:text", server.PVOptions{Type: wire.DBRChar, Count: 256,
			Value: wire.Value{Type: wire.DBRChar, Chars: []byte("a long text kept in a char array\x00")}, Meta: wire.Metadata{ClassName: "waveform"}}},
		{"demo:waveform", server.PVOptions{Type: wire.DBRDouble, Count: 1000, ReadOnly: true,
			Value: wire.Value{Type: wire.DBRDouble, Doubles: make([]float64, 1000)}, Meta: wire.Metadata{ClassName: "waveform"}}},
	}
	var pvs []*server.PV
	for _, sp := range specs {
		pv, err := server.NewPV(sp.name, sp.o)
		if err != nil {
			return nil, err
		}
		pvs = append(pvs, pv)
	}
	return pvs, nil
}

// runDemo serves the demo PVs until ctx ends, updating the moving ones at 10 Hz.
// The server's configuration comes from lookup (the environment); started, when
// not nil, receives the running server.
func runDemo(ctx context.Context, log *slog.Logger, lookup func(string) (string, bool), started func(*server.Server)) error {
	pvs, err := demoPVs()
	if err != nil {
		return err
	}
	table := server.NewTable(pvs...)
	cfg, err := server.ConfigFromEnv(lookup)
	if err != nil {
		return fmt.Errorf("CA server configuration: %w", err)
	}
	cfg.Source, cfg.Logger = table, log
	srv, err := server.New(cfg)
	if err != nil {
		return err
	}
	if err := srv.Start(ctx); err != nil {
		return err
	}
	defer srv.Close()
	if started != nil {
		started(srv)
	}
	sine, counter, wave := table.Get("demo:sine"), table.Get("demo:counter"), table.Get("demo:waveform")
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	w := make([]float64, 1000)
	for n := int32(0); ; n++ {
		select {
		case <-ctx.Done():
			log.Info("pvhub stopping")
			return nil
		case <-tick.C:
		}
		t := time.Since(start).Seconds()
		v := math.Sin(2 * math.Pi * t / 10)
		alarm := server.NoAlarm
		switch a := math.Abs(v); {
		case a >= 0.95:
			alarm = server.Alarm{Status: wire.StatHiHi, Severity: wire.SevMajor}
		case a >= 0.8:
			alarm = server.Alarm{Status: wire.StatHigh, Severity: wire.SevMinor}
		}
		_ = sine.Post(wire.Value{Type: wire.DBRDouble, Doubles: []float64{v}}, alarm, wire.Timestamp{})
		if n%10 == 0 {
			_ = counter.Post(wire.Value{Type: wire.DBRLong, Longs: []int32{n / 10}}, server.NoAlarm, wire.Timestamp{})
		}
		for i := range w {
			w[i] = math.Sin(2*math.Pi*float64(i)/1000*3 + t)
		}
		_ = wave.Post(wire.Value{Type: wire.DBRDouble, Doubles: w}, server.NoAlarm, wire.Timestamp{})
	}
}
