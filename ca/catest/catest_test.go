package catest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

func TestFreePortIsFreeForTCPAndUDP(t *testing.T) {
	seen := map[int]bool{}
	for range 20 {
		port := FreePort(t)
		if seen[port] {
			t.Fatalf("port %d handed out twice", port)
		}
		seen[port] = true
		tl, ul, err := listenBoth(port)
		if err != nil {
			t.Fatalf("port %d is not free: %v", port, err)
		}
		tl.Close()
		ul.Close()
	}
}

func TestListenLoopbackSharesOnePort(t *testing.T) {
	tl, ul := ListenLoopback(t)
	ta := tl.Addr().(*net.TCPAddr)
	ua := ul.LocalAddr().(*net.UDPAddr)
	if ta.Port != ua.Port || !ta.IP.Equal(LoopbackIP) || !ua.IP.Equal(LoopbackIP) {
		t.Fatalf("tcp %v and udp %v differ or are not on loopback", ta, ua)
	}
	tcp, udp := Loopback(t)
	if tcp == udp {
		t.Fatalf("Loopback returned one port twice: %d", tcp)
	}
}

func TestEnvironPointsAtLoopbackOnly(t *testing.T) {
	t.Setenv("EPICS_CA_ADDR_LIST", "192.0.2.1")
	t.Setenv("EPICS_CA_NAME_SERVERS", "192.0.2.2")
	e := &Env{ServerPort: 25064, RepeaterPort: 25065, MaxArrayBytes: 1 << 20, ConnTmo: 2.5,
		Extra: []string{"EPICS_CA_AUTO_ARRAY_BYTES=NO"}}
	env := e.Environ()
	want := map[string]string{
		"EPICS_CA_ADDR_LIST":        "127.0.0.1:25064",
		"EPICS_CA_AUTO_ADDR_LIST":   "NO",
		"EPICS_CA_SERVER_PORT":      "25064",
		"EPICS_CA_REPEATER_PORT":    "25065",
		"EPICS_CA_MAX_ARRAY_BYTES":  "1048576",
		"EPICS_CA_CONN_TMO":         "2.5",
		"EPICS_CA_AUTO_ARRAY_BYTES": "NO",
	}
	for k, v := range want {
		if got, ok := Lookup(env, k); !ok || got != v {
			t.Errorf("%s = %q, %v; want %q", k, got, ok, v)
		}
	}
	if v, ok := Lookup(env, "EPICS_CA_NAME_SERVERS"); ok {
		t.Errorf("host variable EPICS_CA_NAME_SERVERS leaked: %q", v)
	}
	if _, ok := Lookup(env, "PATH"); !ok && os.Getenv("PATH") != "" {
		t.Errorf("PATH was dropped")
	}
	senv := e.ServerEnviron()
	for k, v := range map[string]string{
		"EPICS_CAS_SERVER_PORT":           "25064",
		"EPICS_CAS_INTF_ADDR_LIST":        "127.0.0.1",
		"EPICS_CAS_BEACON_ADDR_LIST":      "127.0.0.1",
		"EPICS_CAS_AUTO_BEACON_ADDR_LIST": "NO",
		"EPICS_CAS_BEACON_PORT":           "25065",
		"EPICS_CA_AUTO_ADDR_LIST":         "NO",
	} {
		if got, ok := Lookup(senv, k); !ok || got != v {
			t.Errorf("server %s = %q, %v; want %q", k, got, ok, v)
		}
	}
}

func TestStubRepeaterConfirmsAndForwards(t *testing.T) {
	port := StubRepeater(t)
	repeater := &net.UDPAddr{IP: LoopbackIP, Port: port}
	client, err := net.ListenUDP("udp4", &net.UDPAddr{IP: LoopbackIP})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	// libca registers with a zero-length datagram.
	if _, err := client.WriteToUDP(nil, repeater); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := client.ReadFromUDP(buf)
	if err != nil {
		t.Fatal(err)
	}
	if n != 16 || binary.BigEndian.Uint16(buf) != cmdRepeaterConfirm ||
		!net.IP(buf[12:16]).Equal(LoopbackIP) {
		t.Fatalf("confirm = % x", buf[:n])
	}
	// A beacon from a server is forwarded with the source address filled in.
	server, err := net.ListenUDP("udp4", &net.UDPAddr{IP: LoopbackIP})
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	beacon := make([]byte, 16)
	binary.BigEndian.PutUint16(beacon[0:], cmdBeacon)
	binary.BigEndian.PutUint16(beacon[4:], 13)
	binary.BigEndian.PutUint16(beacon[6:], 5064)
	binary.BigEndian.PutUint32(beacon[8:], 7)
	if _, err := server.WriteToUDP(beacon, repeater); err != nil {
		t.Fatal(err)
	}
	n, _, err = client.ReadFromUDP(buf)
	if err != nil {
		t.Fatal(err)
	}
	if n != 16 || binary.BigEndian.Uint16(buf) != cmdBeacon || binary.BigEndian.Uint32(buf[8:]) != 7 ||
		!net.IP(buf[12:16]).Equal(LoopbackIP) {
		t.Fatalf("forwarded beacon = % x", buf[:n])
	}
}

// fakeTB records Skipf and Fatalf instead of stopping the goroutine.
type fakeTB struct {
	testing.TB
	skipped, failed string
}

func (f *fakeTB) Helper()                        {}
func (f *fakeTB) Skipf(format string, a ...any)  { f.skipped = fmt.Sprintf(format, a...) }
func (f *fakeTB) Fatalf(format string, a ...any) { f.failed = fmt.Sprintf(format, a...) }

func TestRequireSkipsOrFailsUnderCI(t *testing.T) {
	t.Setenv("CI", "")
	f := &fakeTB{TB: t}
	Require(f, "libca", true, "")
	if f.skipped != "" || f.failed != "" {
		t.Fatalf("present peer stopped the test: %+v", f)
	}
	Require(f, "libca", false, "")
	if !strings.Contains(f.skipped, "libca") || !strings.Contains(f.skipped, "make test-deps") || f.failed != "" {
		t.Fatalf("missing peer outside CI: %+v", f)
	}
	t.Setenv("CI", "true")
	f = &fakeTB{TB: t}
	Require(f, "pyepics", false, "apt-get install python3-pyepics")
	if !strings.Contains(f.failed, "pyepics") || !strings.Contains(f.failed, "apt-get install") || f.skipped != "" {
		t.Fatalf("missing peer under CI: %+v", f)
	}
}

func TestLineAccessors(t *testing.T) {
	l := parseLine([]byte(`{"event":"value","pv":"a","count":3,"ok":true,"value":[1.5,"NaN","-Inf"]}`))
	if l.Event() != "value" || l.Str("pv") != "a" || l.Int("count") != 3 || !l.Bool("ok") {
		t.Fatalf("accessors: %v", l)
	}
	f := l.Floats()
	if len(f) != 3 || f[0] != 1.5 || f[1] == f[1] || f[2] > 0 {
		t.Fatalf("Floats = %v", f)
	}
	if raw := parseLine([]byte("iocRun: All initialization complete")); raw.Event() != "raw" {
		t.Fatalf("raw line = %v", raw)
	}
	s := parseLine([]byte(`{"value":["h\u00c3\u00a9"]}`))
	if got := string(s.Bytes()); got != "h\xc3\xa9" {
		t.Fatalf("Bytes = %q", got)
	}
}

func TestProcStopKillsTheWholeGroup(t *testing.T) {
	ctx := context.Background()
	p, err := StartProcess(t, ctx, nil, "/bin/sh", "-c", `sleep 60 & echo "{\"event\":\"child\",\"pid\":$!}"; wait`)
	if err != nil {
		t.Fatal(err)
	}
	l, err := p.WaitFor(5*time.Second, func(l Line) bool { return l.Event() == "child" })
	if err != nil {
		t.Fatal(err)
	}
	child := int(l.Int("pid"))
	if err := p.Stop(); err != nil {
		t.Fatalf("Stop of a killed process = %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for alive(child) {
		if time.Now().After(deadline) {
			t.Fatalf("grandchild %d survived Stop", child)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, ok := <-p.Lines(); ok {
		t.Fatalf("Lines still open after Stop")
	}
}

func TestProcReportsExitStatusAndStderr(t *testing.T) {
	lines, err := run(t, context.Background(), nil, "/bin/sh", "-c", `echo '{"event":"a"}'; echo oops >&2; exit 3`)
	if ExitCode(err) != 3 || len(lines) != 1 || lines[0].Event() != "a" {
		t.Fatalf("lines %v, err %v", lines, err)
	}
	var ee *ExitError
	if !errors.As(err, &ee) || !strings.Contains(ee.Stderr, "oops") {
		t.Fatalf("err = %#v", err)
	}
}

func TestProcLinesStreamInOrder(t *testing.T) {
	p, err := StartProcess(t, context.Background(), nil, "/bin/sh", "-c",
		`i=0; while [ $i -lt 500 ]; do echo "{\"event\":\"n\",\"i\":$i}"; i=$((i+1)); done`)
	if err != nil {
		t.Fatal(err)
	}
	i := int64(0)
	for l := range p.Lines() {
		if l.Int("i") != i {
			t.Fatalf("line %d = %v", i, l)
		}
		i++
	}
	if i != 500 {
		t.Fatalf("got %d lines", i)
	}
	if err := p.Wait(5 * time.Second); err != nil {
		t.Fatal(err)
	}
}

// docLayout is the table of ca-protocol.md section 5.2: size of one element's
// structure and value offset of every DBR type.
var docLayout = [39][2]int{
	{40, 0}, {2, 0}, {4, 0}, {2, 0}, {1, 0}, {4, 0}, {8, 0},
	{44, 4}, {6, 4}, {8, 4}, {6, 4}, {6, 5}, {8, 4}, {16, 8},
	{52, 12}, {16, 14}, {16, 12}, {16, 14}, {16, 15}, {16, 12}, {24, 16},
	{44, 4}, {26, 24}, {44, 40}, {424, 422}, {20, 19}, {40, 36}, {72, 64},
	{44, 4}, {30, 28}, {52, 48}, {424, 422}, {22, 21}, {48, 44}, {88, 80},
	{2, 0}, {2, 0}, {48, 8}, {40, 0},
}

func TestCDriverLayoutMatchesTheProtocolDoc(t *testing.T) {
	d := Libca(t)
	lines, err := d.Run(context.Background(), NewEnv(t, FreePort(t)), "layout")
	if err != nil {
		t.Fatal(err)
	}
	lines = Find(lines, "layout", "")
	if len(lines) != 39 {
		t.Fatalf("%d layout lines", len(lines))
	}
	for i, l := range lines {
		if int(l.Int("type")) != i || int(l.Int("size")) != docLayout[i][0] || int(l.Int("value_offset")) != docLayout[i][1] {
			t.Errorf("type %d: %v; doc says size %d, value offset %d", i, l, docLayout[i][0], docLayout[i][1])
		}
	}
}

func TestCDriverUsageErrors(t *testing.T) {
	d := Libca(t)
	env := NewEnv(t, FreePort(t))
	ctx := context.Background()
	for _, args := range [][]string{
		{},
		{"frobnicate"},
		{"get"},
		{"get", "-d", "39", "pv"},
		{"get", "-d", "DBR_NOPE", "pv"},
		{"get", "-c", "-1", "pv"},
		{"put", "pv"},
		{"put", "-S", "pv", "a", "b"},
		{"put", "-d", "DBR_SHORT", "pv", "70000"},
		{"put", "-d", "DBR_LONG", "pv", "abc"},
		{"put", "pv", strings.Repeat("x", 41)},
		{"monitor", "-m", "xyz", "pv"},
		{"info"},
	} {
		lines, err := d.Run(ctx, env, args...)
		if ExitCode(err) != 2 || len(Find(lines, "usage", "")) != 1 {
			t.Errorf("cadriver %q: exit %d, lines %v", args, ExitCode(err), lines)
		}
	}
}

// TestCDriverNotFound runs every subcommand against a port where no server
// listens: each must time out with status 3, and the stub repeater must keep
// libca from trying to start caRepeater.
func TestCDriverNotFound(t *testing.T) {
	d := Libca(t)
	env := NewEnv(t, FreePort(t))
	ctx := context.Background()
	for _, args := range [][]string{
		{"get", "-w", "0.3", "nope:a", "nope:b"},
		{"put", "-w", "0.3", "nope:a", "1"},
		{"info", "-w", "0.3", "nope:a"},
		{"monitor", "-t", "0.3", "nope:a"},
	} {
		start := time.Now()
		lines, err := d.Run(ctx, env, args...)
		if ExitCode(err) != 3 {
			t.Errorf("cadriver %q: exit %d (%v), lines %v", args, ExitCode(err), err, lines)
			continue
		}
		if took := time.Since(start); took > 10*time.Second {
			t.Errorf("cadriver %q took %v", args, took)
		}
		if to := Find(lines, "timeout", "nope:a"); len(to) != 1 || to[0].Str("what") != "connect" {
			t.Errorf("cadriver %q: lines %v", args, lines)
		}
		if args[0] == "monitor" && len(Find(lines, "end", "")) != 1 {
			t.Errorf("monitor printed no end line: %v", lines)
		}
		var ee *ExitError
		if errors.As(err, &ee) && strings.Contains(ee.Stderr, "caRepeater") {
			t.Errorf("libca tried to start caRepeater despite the stub:\n%s", ee.Stderr)
		}
	}
}

func TestCDriverMonitorStopsOnRequest(t *testing.T) {
	d := Libca(t)
	p, err := d.Start(context.Background(), NewEnv(t, FreePort(t)), "monitor", "nope:a")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if err := p.Stop(); err != nil {
		t.Fatalf("Stop = %v", err)
	}
	if alive(p.Pid()) {
		t.Fatalf("driver %d still running after Stop", p.Pid())
	}
}

// alive reports whether pid is a process that is neither gone nor a zombie
// (an orphan's zombie may linger when PID 1 does not reap).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z' && s[i+2] != 'X'
	}
	return true
}

func TestPyDriverUsageAndNotFound(t *testing.T) {
	d := Pyepics(t)
	env := NewEnv(t, FreePort(t))
	ctx := context.Background()
	lines, err := d.Run(ctx, env, "get")
	if ExitCode(err) != 2 || len(Find(lines, "usage", "")) != 1 {
		t.Errorf("pydriver get: exit %d, lines %v", ExitCode(err), lines)
	}
	for _, args := range [][]string{
		{"get", "--timeout", "0.3", "nope:a"},
		{"put", "--timeout", "0.3", "nope:a", "1"},
		{"info", "--timeout", "0.3", "nope:a"},
		{"monitor", "--seconds", "0.3", "nope:a"},
	} {
		lines, err := d.Run(ctx, env, args...)
		if ExitCode(err) != 3 || len(Find(lines, "timeout", "nope:a")) != 1 {
			t.Errorf("pydriver %q: exit %d (%v), lines %v", args, ExitCode(err), err, lines)
		}
	}
}

func TestDriversRefuseToBroadcast(t *testing.T) {
	env := NewEnv(t, FreePort(t))
	env.Extra = []string{"EPICS_CA_AUTO_ADDR_LIST=YES"}
	ctx := context.Background()
	lines, err := Libca(t).Run(ctx, env, "get", "-w", "0.1", "nope:a")
	if ExitCode(err) != 2 || len(Find(lines, "usage", "")) != 1 {
		t.Errorf("cadriver with EPICS_CA_AUTO_ADDR_LIST=YES: exit %d, lines %v", ExitCode(err), lines)
	}
	lines, err = Pyepics(t).Run(ctx, env, "get", "--timeout", "0.1", "nope:a")
	if ExitCode(err) != 2 || len(Find(lines, "usage", "")) != 1 {
		t.Errorf("pydriver with EPICS_CA_AUTO_ADDR_LIST=YES: exit %d, lines %v", ExitCode(err), lines)
	}
}
