package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pvhub/pvhub/ca/catest"
	"github.com/pvhub/pvhub/ca/server"
	"github.com/pvhub/pvhub/ca/wire"
	"github.com/pvhub/pvhub/cmd/pvhub/catools"
)

// toolServer is a CA server on a free loopback port with the PVs the tool
// tests read and write, and the environment that points a tool at it.
type toolServer struct {
	srv *server.Server
	env catools.LookupEnv
	pvs map[string]*server.PV
	// stamp is the time stamp of every PV's initial value.
	stamp wire.Timestamp
}

func newToolServer(t *testing.T) *toolServer {
	t.Helper()
	ts := &toolServer{pvs: map[string]*server.PV{},
		stamp: wire.TimestampOf(time.Date(2026, 11, 21, 13, 15, 57, 618243000, time.UTC))}
	add := func(name string, o server.PVOptions) {
		if o.Count == 0 {
			o.Count = 1
		}
		if o.Stamp.IsZero() {
			o.Stamp = ts.stamp
		}
		pv, err := server.NewPV(name, o)
		if err != nil {
			t.Fatal(err)
		}
		ts.pvs[name] = pv
	}
	add("t:ao", server.PVOptions{Type: wire.DBRDouble, Value: wire.Value{Type: wire.DBRDouble, Doubles: []float64{1.5}},
		Meta: wire.Metadata{Units: "mA", Precision: 3, ClassName: "ao", Limits: wire.Limits{
			UpperDisp: 100, LowerDisp: -100, UpperAlarm: 80, UpperWarning: 60, LowerWarning: -60, LowerAlarm: -80, UpperCtrl: 90, LowerCtrl: -90}}})
	add("t:long", server.PVOptions{Type: wire.DBRLong, Value: wire.Value{Type: wire.DBRLong, Longs: []int32{42}}})
	add("t:str", server.PVOptions{Type: wire.DBRString, Value: wire.Value{Type: wire.DBRString, Strings: []string{"hello world"}}})
	add("t:mbb", server.PVOptions{Type: wire.DBREnum, Value: wire.Value{Type: wire.DBREnum, Enums: []uint16{1}},
		Meta: wire.Metadata{EnumStrings: []string{"Off", "On", "Auto mode"}}})
	add("t:wf", server.PVOptions{Type: wire.DBRDouble, Count: 10, Value: wire.Value{Type: wire.DBRDouble, Doubles: []float64{1, 2.5, 3, 4, 5}}})
	add("t:cwf", server.PVOptions{Type: wire.DBRChar, Count: 16, Value: wire.Value{Type: wire.DBRChar, Chars: []byte("hi there\x00")}})
	add("t:ro", server.PVOptions{Type: wire.DBRDouble, ReadOnly: true, Value: wire.Value{Type: wire.DBRDouble, Doubles: []float64{7}}})
	add("t:fail", server.PVOptions{Type: wire.DBRDouble, Value: wire.Value{Type: wire.DBRDouble, Doubles: []float64{0}},
		OnWrite: func(context.Context, *server.Put) error { return errors.New("the hardware refuses") }})
	add("t:never", server.PVOptions{Type: wire.DBRDouble})

	table := server.NewTable()
	for _, pv := range ts.pvs {
		table.Add(pv)
	}
	beacons := catest.FreePort(t)
	srv, err := server.New(server.Config{Source: table, Port: -1, BeaconPort: beacons, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ts.srv = srv
	t.Cleanup(func() { _ = srv.Close() })
	port := strconv.Itoa(srv.UDPPort())
	vars := map[string]string{
		"EPICS_CA_ADDR_LIST":      "127.0.0.1:" + port,
		"EPICS_CA_AUTO_ADDR_LIST": "NO",
		"EPICS_CA_SERVER_PORT":    port,
		"EPICS_CA_REPEATER_PORT":  strconv.Itoa(beacons),
	}
	ts.env = func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	return ts
}

// run runs a tool against the server and returns its exit status, stdout and
// stderr.
func (ts *toolServer) run(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := runTool(context.Background(), args[0], args[1:], ts.env, &out, &errb)
	return code, out.String(), errb.String()
}

// check runs a tool and compares its exit status and output.
func (ts *toolServer) check(t *testing.T, args []string, code int, stdout, stderr string) {
	t.Helper()
	c, out, errs := ts.run(args...)
	if c != code || out != stdout || errs != stderr {
		t.Errorf("pvhub %s:\nexit %d, want %d\nstdout:\n%s\nwant:\n%s\nstderr:\n%s\nwant:\n%s",
			strings.Join(args, " "), c, code, out, stdout, errs, stderr)
	}
}

// value returns the value a PV holds now, as text.
func (ts *toolServer) value(name string) string {
	d := ts.pvs[name].Snapshot()
	var f catools.Format
	var parts []string
	for i := range d.Value.Len() {
		parts = append(parts, f.Element(d, i))
	}
	return strings.Join(parts, " ")
}

func TestToolUsage(t *testing.T) {
	for _, tool := range []string{"get", "put", "monitor", "info"} {
		var out, errb bytes.Buffer
		if code := run([]string{tool}, &out, &errb); code != catools.ExitUsage || out.Len() != 0 ||
			!strings.HasPrefix(errb.String(), "pvhub "+tool+": no PV name given\n\nUsage: pvhub "+tool+" ") {
			t.Errorf("%s without PV: %d %q %q", tool, code, out.String(), errb.String())
		}
		out.Reset()
		errb.Reset()
		if code := run([]string{tool, "-Q", "x"}, &out, &errb); code != catools.ExitUsage ||
			!strings.HasPrefix(errb.String(), "pvhub "+tool+": unknown option -Q\n") {
			t.Errorf("%s -Q: %d %q", tool, code, errb.String())
		}
		out.Reset()
		errb.Reset()
		if code := run([]string{tool, "-h"}, &out, &errb); code != catools.ExitOK || errb.Len() != 0 ||
			!strings.HasPrefix(out.String(), "Usage: pvhub "+tool+" ") {
			t.Errorf("%s -h: %d %q %q", tool, code, out.String(), errb.String())
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"get", "-w"}, &out, &errb); code != catools.ExitUsage ||
		!strings.HasPrefix(errb.String(), "pvhub get: option -w needs an argument\n") {
		t.Errorf("get -w: %d %q", code, errb.String())
	}
	errb.Reset()
	if code := run([]string{"put", "pv"}, &out, &errb); code != catools.ExitUsage ||
		!strings.HasPrefix(errb.String(), "pvhub put: no value given for pv\n") {
		t.Errorf("put without value: %d %q", code, errb.String())
	}
	out.Reset()
	if code := run([]string{"help"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "pvhub monitor [options] PV...") {
		t.Errorf("help: %d %q", code, out.String())
	}
}

func TestGet(t *testing.T) {
	ts := newToolServer(t)
	stamp := catools.FormatStamp(ts.stamp, nil)
	ts.check(t, []string{"get", "t:ao", "t:long", "t:str", "t:mbb", "t:wf", "t:cwf"}, 0, `t:ao                           1.5
t:long                         42
t:str                          hello world
t:mbb                          On
t:wf 10 1 2.5 3 4 5 0 0 0 0 0
t:cwf 16 104 105 32 116 104 101 114 101 0 0 0 0 0 0 0 0
`, "")
	ts.check(t, []string{"get", "-a", "t:ao", "t:wf", "t:never"}, 0,
		"t:ao                           "+stamp+" 1.5  \n"+
			"t:wf "+stamp+" 10 1 2.5 3 4 5 0 0 0 0 0  \n"+
			"t:never                        <undefined> 0 UDF INVALID\n", "")
	ts.check(t, []string{"get", "-t", "t:ao", "t:str"}, 0, "1.5\nhello world\n", "")
	ts.check(t, []string{"get", "t:mbb", "-n", "-S", "t:cwf"}, 0, "t:mbb                          1\nt:cwf hi there\n", "")
	ts.check(t, []string{"get", "-c", "t:wf"}, 0, "t:wf 5 1 2.5 3 4 5\n", "")
	ts.check(t, []string{"get", "-#", "3", "t:wf", "t:ao"}, 0, "t:wf 3 1 2.5 3\nt:ao                           1 1.5\n", "")
	ts.check(t, []string{"get", "-f3", "t:ao"}, 0, "t:ao                           1.500\n", "")
	ts.check(t, []string{"get", "-s", "t:ao"}, 0, "t:ao                           1.500\n", "")
	ts.check(t, []string{"get", "-d", "CTRL_DOUBLE", "t:ao"}, 0, `t:ao
    Native data type: DBF_DOUBLE
    Request type:     DBR_CTRL_DOUBLE
    Element count:    1
    Value:            1.5
    Status:           NO_ALARM
    Severity:         NO_ALARM
    Units:            mA
    Precision:        3
    Lo disp limit:    -100
    Hi disp limit:    100
    Lo alarm limit:   -80
    Lo warn limit:    -60
    Hi warn limit:    60
    Hi alarm limit:   80
    Lo ctrl limit:    -90
    Hi ctrl limit:    90
`, "")
	ts.check(t, []string{"get", "-d", "DBR_CLASS_NAME", "t:ao"}, 0, `t:ao
    Native data type: DBF_DOUBLE
    Request type:     DBR_CLASS_NAME
    Class Name:       ao
`, "")
}

func TestGetNotFound(t *testing.T) {
	ts := newToolServer(t)
	start := time.Now()
	ts.check(t, []string{"get", "-w", "0.3", "t:ao", "t:nope", "t:long"}, catools.ExitFailure,
		"t:ao                           1.5\nt:long                         42\n", "PV t:nope: not found after 0.3 s\n")
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("get of a missing PV took %v with -w 0.3", d)
	}
	// EPICS_CLI_TIMEOUT sets the default wait.
	env := ts.env
	ts.env = func(k string) (string, bool) {
		if k == "EPICS_CLI_TIMEOUT" {
			return "0.2", true
		}
		return env(k)
	}
	ts.check(t, []string{"info", "t:nope"}, catools.ExitFailure, "", "PV t:nope: not found after 0.2 s\n")
}

func TestPut(t *testing.T) {
	ts := newToolServer(t)
	ts.check(t, []string{"put", "t:ao", "2.25"}, 0,
		"Old : t:ao                           1.5\nNew : t:ao                           2.25\n", "")
	ts.check(t, []string{"put", "-c", "t:ao", "-5"}, 0,
		"Old : t:ao                           2.25\nNew : t:ao                           -5\n", "")
	ts.check(t, []string{"put", "-t", "t:long", "0x10"}, 0, "16\n", "")
	ts.check(t, []string{"put", "t:mbb", "Auto", "mode"}, 0,
		"Old : t:mbb                          On\nNew : t:mbb                          Auto mode\n", "")
	ts.check(t, []string{"put", "-n", "t:mbb", "0"}, 0,
		"Old : t:mbb                          2\nNew : t:mbb                          0\n", "")
	ts.check(t, []string{"put", "t:str", "a", `b\tc`}, 0,
		"Old : t:str                          hello world\nNew : t:str                          a b\\tc\n", "")
	if got := ts.value("t:str"); got != `a b\tc` {
		t.Errorf("t:str holds %q", got)
	}
	ts.check(t, []string{"put", "-a", "t:wf", "3", "7", "8", "9"}, 0,
		"Old : t:wf 10 1 2.5 3 4 5 0 0 0 0 0\nNew : t:wf 10 7 8 9 0 0 0 0 0 0 0\n", "")
	ts.check(t, []string{"put", "-t", "t:wf", "1", "2"}, 0, "10 1 2 0 0 0 0 0 0 0 0\n", "")
	ts.check(t, []string{"put", "-a", "t:wf", "5", "3"}, 0,
		"Old : t:wf 10 1 2 0 0 0 0 0 0 0 0\nNew : t:wf 10 3 0 0 0 0 0 0 0 0 0\n",
		"pvhub put: warning: -a: count 5 differs from the 1 values given; writing 1\n")
	ts.check(t, []string{"put", "-S", "t:cwf", "so", "long"}, 0, "Old : t:cwf hi there\nNew : t:cwf so long\n", "")
	old := catools.FormatStamp(ts.pvs["t:cwf"].Snapshot().Stamp, nil)
	code, out, errs := ts.run("put", "-l", "-S", "t:cwf", "x")
	lines := strings.SplitAfter(out, "\n")
	if code != 0 || errs != "" || len(lines) != 3 || lines[0] != "Old : t:cwf "+old+" so long  \n" ||
		!strings.HasPrefix(lines[1], "New : t:cwf 20") || !strings.HasSuffix(lines[1], " x  \n") {
		t.Errorf("put -l -S: exit %d, stdout %q, stderr %q", code, out, errs)
	}
}

func TestPutErrors(t *testing.T) {
	ts := newToolServer(t)
	ts.check(t, []string{"put", "t:ao", "abc"}, catools.ExitFailure, "",
		"PV t:ao: value \"abc\" does not convert to DBR_DOUBLE: not a number\n")
	ts.check(t, []string{"put", "t:mbb", "Bogus"}, catools.ExitFailure, "",
		"PV t:mbb: value \"Bogus\" does not convert to DBR_ENUM: not one of the states [\"Off\" \"On\" \"Auto mode\"]\n")
	ts.check(t, []string{"put", "t:ro", "5"}, catools.ExitFailure, "", "PV t:ro: write access denied\n")
	ts.check(t, []string{"put", "-w", "0.2", "t:nope", "5"}, catools.ExitFailure, "", "PV t:nope: not found after 0.2 s\n")
	// A WRITE_NOTIFY reply carries only the status; the error message of a
	// plain WRITE carries the server's explanation too.
	ts.check(t, []string{"put", "-c", "t:fail", "5"}, catools.ExitFailure, "Old : t:fail                         0\n",
		"PV t:fail: write failed: could not perform a database value put for that channel\n")
	ts.check(t, []string{"put", "t:fail", "6"}, catools.ExitFailure, "Old : t:fail                         0\n",
		"PV t:fail: write failed: could not perform a database value put for that channel (t:fail: the hardware refuses)\n")
	ts.check(t, []string{"put", "t:wf", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11"}, catools.ExitFailure, "",
		"PV t:wf: 11 values given, but the PV holds at most 10\n")
	for name, want := range map[string]string{"t:ao": "1.5", "t:mbb": "1", "t:ro": "7", "t:fail": "0"} {
		if got := ts.value(name); got != want {
			t.Errorf("%s holds %s after failed puts, want %s", name, got, want)
		}
	}
}

func TestInfo(t *testing.T) {
	ts := newToolServer(t)
	host := fmt.Sprintf("127.0.0.1:%d", ts.srv.TCPPort())
	ts.check(t, []string{"info", "t:ro", "t:nope", "t:cwf", "-w", "0.3"}, catools.ExitFailure, `t:ro
    State:            connected
    Host:             `+host+`
    Access:           read, no write
    Native data type: DBF_DOUBLE
    Request type:     DBR_DOUBLE
    Element count:    1
t:cwf
    State:            connected
    Host:             `+host+`
    Access:           read, write
    Native data type: DBF_CHAR
    Request type:     DBR_CHAR
    Element count:    16
`, "PV t:nope: not found after 0.3 s\n")
}

// syncBuffer is a bytes.Buffer safe for a writer and a concurrent reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor waits until the buffer holds every one of want, failing the test
// after 5 s.
func waitFor(t *testing.T, b *syncBuffer, want ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		missing := ""
		s := b.String()
		for _, w := range want {
			if !strings.Contains(s, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("output lacks %q; it is:\n%s", missing, s)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestMonitor(t *testing.T) {
	ts := newToolServer(t)
	stamp := catools.FormatStamp(ts.stamp, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- runTool(ctx, "monitor", []string{"-w", "0.3", "t:ao", "t:nope", "t:wf", "t:mbb"}, ts.env, &out, &errb)
	}()
	waitFor(t, &out,
		"t:ao                           "+stamp+" 1.5  \n",
		"t:wf "+stamp+" 5 1 2.5 3 4 5  \n",
		"t:mbb                          "+stamp+" On  \n",
		"t:nope                         *** Not connected (PV not found)\n")

	next := wire.TimestampOf(time.Date(2026, 11, 21, 13, 16, 52, 68697000, time.UTC))
	if err := ts.pvs["t:ao"].Post(wire.Value{Type: wire.DBRDouble, Doubles: []float64{70}},
		server.Alarm{Status: wire.StatHigh, Severity: wire.SevMinor}, next); err != nil {
		t.Fatal(err)
	}
	if err := ts.pvs["t:wf"].Post(wire.Value{Type: wire.DBRDouble, Doubles: []float64{6, 7}}, server.NoAlarm, next); err != nil {
		t.Fatal(err)
	}
	nextText := catools.FormatStamp(next, nil)
	waitFor(t, &out,
		"t:ao                           "+nextText+" 70 HIGH MINOR\n",
		"t:wf "+nextText+" 2 6 7  \n")

	// The server goes away: every connected channel reports its disconnection,
	// its name padded or not as its last update was a scalar or an array.
	_ = ts.srv.Close()
	disconnected := func() []string {
		var ls []string
		for _, l := range strings.Split(out.String(), "\n") {
			if strings.HasSuffix(l, " *** disconnected") {
				ls = append(ls, l)
			}
		}
		return ls
	}
	for deadline := time.Now().Add(5 * time.Second); len(disconnected()) < 3; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not every channel reported its disconnection:\n%s", out.String())
		}
	}
	for _, l := range disconnected() {
		name, rest, _ := strings.Cut(l, " ")
		pad := strings.Repeat(" ", max(catools.NameWidth-len(name), 0))
		if name == "t:wf" {
			pad = ""
		}
		if !strings.HasPrefix(rest, pad+"20") || len(rest) != len(pad)+len("2026-11-21 13:16:52.068697 *** disconnected") {
			t.Errorf("bad disconnection line %q", l)
		}
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("monitor exited with %d", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("monitor did not stop when its context ended")
	}
	if errb.String() != "" {
		t.Errorf("stderr: %q", errb.String())
	}
}

func TestMonitorOptions(t *testing.T) {
	ts := newToolServer(t)
	stamp := catools.FormatStamp(ts.stamp, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- runTool(ctx, "monitor", []string{"-n", "-S", "-#", "2", "-m", "va", "t:mbb", "t:cwf", "t:wf"}, ts.env, &out, &errb)
	}()
	waitFor(t, &out,
		"t:mbb                          "+stamp+" 1 1  \n",
		"t:cwf "+stamp+" hi  \n",
		"t:wf "+stamp+" 2 1 2.5  \n")
	cancel()
	if code := <-done; code != 0 || errb.String() != "" {
		t.Errorf("monitor: exit %d, stderr %q", code, errb.String())
	}
}
