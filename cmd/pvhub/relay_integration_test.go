package main

// Integration tests of `pvhub serve` as a separate process, driven by the real
// EPICS client library: Debian's libca through catest's C driver, and pyepics.
// Each test builds the daemon once per test process (with -race when the test
// binary has it), starts it on free loopback ports with its beacons going to a
// stub repeater, and reads its log from its standard error. They skip when the
// real peers are missing, and fail under CI=true.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pvhub/pvhub/ca/catest"
	"github.com/pvhub/pvhub/ca/wire"
)

// pvhubBuild holds the daemon built for this test process.
var pvhubBuild struct {
	once sync.Once
	path string
	err  error
}

// pvhubBinary returns the pvhub executable, built from this checkout with
// `go build ./cmd/pvhub` the first time a test of this process asks.
func pvhubBinary(t *testing.T) string {
	t.Helper()
	b := &pvhubBuild
	b.once.Do(func() { b.path, b.err = buildPvhub() })
	if b.err != nil {
		t.Fatalf("building pvhub: %v", b.err)
	}
	return b.path
}

// raceEnabled reports whether this test binary was built with -race; the
// daemon is then built with -race too, so that its data races show in its log.
func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// moduleRoot finds the directory of go.mod from the working directory (the
// package directory, cmd/pvhub, under go test).
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// buildPvhub builds the daemon into a cache directory named after the module
// root (so that the binary is replaced, not accumulated, run after run), through
// a temporary file and a rename, so that concurrent test processes never run a
// partial file.
func buildPvhub() (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("the go command is needed to build pvhub: %w", err)
	}
	sum := sha256.Sum256([]byte(root))
	sub := filepath.Join("pvhub-catest", "pvhub-"+hex.EncodeToString(sum[:])[:16])
	var bases []string
	if d, err := os.UserCacheDir(); err == nil && d != "" {
		bases = append(bases, d)
	}
	bases = append(bases, os.TempDir())
	var dir string
	for _, b := range bases {
		d := filepath.Join(b, sub)
		if err = os.MkdirAll(d, 0o755); err == nil {
			dir = d
			break
		}
	}
	if dir == "" {
		return "", err
	}
	name, args := "pvhub", []string{"build"}
	if raceEnabled() {
		name, args = "pvhub-race", append(args, "-race")
	}
	bin := filepath.Join(dir, name)
	tmp := fmt.Sprintf("%s.tmp%d", bin, os.Getpid())
	cmd := exec.Command(goTool, append(args, "-o", tmp, "./cmd/pvhub")...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		os.Remove(tmp)
		return "", err
	}
	return bin, nil
}

// relayProc is one `pvhub serve` process and the libca driver that talks to it.
type relayProc struct {
	t        *testing.T
	bin      string
	port     int      // CA server port, UDP and TCP
	repeater int      // the stub repeater's port: the daemon's beacons and repeater, the clients' repeater
	autosave string   // relay.autosave.path
	metrics  string   // metrics.listen
	extra    []string // further PVHUB_ variables
	env      *catest.Env
	drv      *catest.CDriver
	ctx      context.Context
	proc     *catest.Proc
}

// newRelay prepares a daemon on a free loopback port with autosave every
// 200 ms to a file of its own; extra holds further KEY=VALUE variables.
// Start starts it.
func newRelay(t *testing.T, extra ...string) *relayProc {
	t.Helper()
	drv := catest.Libca(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	r := &relayProc{t: t, bin: pvhubBinary(t), port: catest.FreePort(t), repeater: catest.StubRepeater(t),
		autosave: filepath.Join(t.TempDir(), "relay.json"), extra: extra, drv: drv, ctx: ctx,
		metrics: "127.0.0.1:" + strconv.Itoa(catest.FreePort(t))}
	r.env = &catest.Env{ServerPort: r.port, RepeaterPort: r.repeater}
	return r
}

// environ is the daemon's environment: this process's without any EPICS_ or
// PVHUB_ variable, plus the test's configuration.
func (r *relayProc) environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "EPICS_") && !strings.HasPrefix(kv, "PVHUB_") {
			env = append(env, kv)
		}
	}
	env = append(env,
		"PVHUB_CA__SERVER_PORT="+strconv.Itoa(r.port),
		"PVHUB_CA__BEACON_PORT="+strconv.Itoa(r.repeater),
		// The daemon's CA client registers with this repeater, or runs
		// one of its own there: never on the host's port 5065.
		"PVHUB_CA__REPEATER_PORT="+strconv.Itoa(r.repeater),
		"PVHUB_RELAY__AUTOSAVE__PATH="+r.autosave,
		"PVHUB_RELAY__AUTOSAVE__PERIOD=200ms",
		"PVHUB_LOG__LEVEL=debug",
		// No transport on the default ports; a test that wants one enables it
		// on a free port in extra (the last value of a variable wins).
		"PVHUB_TRANSPORTS__WEBSOCKET__ENABLED=false",
		"PVHUB_TRANSPORTS__SSE__ENABLED=false",
		"PVHUB_TRANSPORTS__MQTT__ENABLED=false",
		// Metrics on a port of this daemon's own.
		"PVHUB_METRICS__LISTEN="+r.metrics,
	)
	return append(env, r.extra...)
}

// start starts the daemon and waits until its log says the relay is ready.
func (r *relayProc) start() {
	r.t.Helper()
	p, err := catest.StartProcess(r.t, r.ctx, r.environ(), r.bin, "serve")
	if err != nil {
		r.t.Fatal(err)
	}
	r.proc = p
	if err := p.WaitForStderr(30*time.Second, `msg="relay ready"`); err != nil {
		r.t.Fatal(err)
	}
}

// stop ends the daemon with SIGTERM and checks that it exits with status 0,
// says so, and logged no error and no data race.
func (r *relayProc) stop() {
	r.t.Helper()
	if err := r.proc.Signal(syscall.SIGTERM); err != nil {
		r.t.Fatalf("SIGTERM: %v", err)
	}
	if err := r.proc.Wait(30 * time.Second); err != nil {
		r.t.Errorf("pvhub serve after SIGTERM: %v", err)
	}
	log := r.proc.Stderr()
	if !strings.Contains(log, `msg="pvhub stopped"`) {
		r.t.Errorf("no \"pvhub stopped\" in the log:\n%s", log)
	}
	r.checkLog()
}

// checkLog fails the test for a line with level=ERROR or a data race report
// in the daemon's log (the last 64 KiB of it, which the Proc keeps).
func (r *relayProc) checkLog() {
	r.t.Helper()
	for _, line := range strings.Split(r.proc.Stderr(), "\n") {
		if strings.Contains(line, "level=ERROR") || strings.Contains(line, "DATA RACE") {
			r.t.Errorf("pvhub log: %s", line)
		}
	}
}

// kill ends the daemon with SIGKILL, as a crash would.
func (r *relayProc) kill() {
	r.t.Helper()
	if err := r.proc.Signal(syscall.SIGKILL); err != nil {
		r.t.Fatalf("SIGKILL: %v", err)
	}
	if err := r.proc.Wait(30 * time.Second); catest.ExitCode(err) != -1 {
		r.t.Errorf("pvhub serve after SIGKILL: %v", err)
	}
}

// ca runs the C driver and checks its exit status.
func (r *relayProc) ca(wantExit int, args ...string) []catest.Line {
	r.t.Helper()
	lines, err := r.drv.Run(r.ctx, r.env, args...)
	if code := catest.ExitCode(err); code != wantExit {
		r.t.Errorf("cadriver %s: exit status %d, want %d (%v)\n%s", strings.Join(args, " "), code, wantExit, err, joinLines(lines))
	}
	return lines
}

// drvRun runs the C driver whatever its exit status.
func (r *relayProc) drvRun(args ...string) []catest.Line {
	r.t.Helper()
	lines, _ := r.drv.Run(r.ctx, r.env, args...)
	return lines
}

// get reads pv with the C driver's get and the options opts (-d TYPE, -c N)
// and returns the value line; it stops the test when there is none.
func (r *relayProc) get(pv string, opts ...string) catest.Line {
	r.t.Helper()
	lines := r.ca(0, append(append([]string{"get"}, opts...), pv)...)
	vs := catest.Find(lines, "value", pv)
	if len(vs) != 1 || vs[0].Int("eca") != int64(wire.ECANormal) {
		r.t.Fatalf("get %s %s: no value\n%s", strings.Join(opts, " "), pv, joinLines(lines))
	}
	return vs[0]
}

// put writes values to pv with completion (put -c), with the options opts
// before the PV, and checks that the put completed normally.
func (r *relayProc) put(opts []string, pv string, values ...string) {
	r.t.Helper()
	args := append(append([]string{"put", "-c"}, opts...), pv)
	lines := r.ca(0, append(args, values...)...)
	if d := catest.Find(lines, "put_done", pv); len(d) != 1 || d[0].Int("eca") != int64(wire.ECANormal) {
		r.t.Errorf("put -c %s %s: not completed normally\n%s", pv, strings.Join(values, " "), joinLines(lines))
	}
}

// putc is put without options.
func (r *relayProc) putc(pv string, values ...string) { r.t.Helper(); r.put(nil, pv, values...) }

// refused writes values to pv with completion and checks that the put failed
// with status eca, reported either by libca at once (ca_status) or by the
// server in the completion.
func (r *relayProc) refused(eca wire.ECA, pv string, values ...string) {
	r.t.Helper()
	lines := r.ca(1, append([]string{"put", "-c", pv}, values...)...)
	got := int64(-1)
	if p := catest.Find(lines, "put", pv); len(p) == 1 && p[0].Int("ca_status") != int64(wire.ECANormal) {
		got = p[0].Int("ca_status")
	} else if d := catest.Find(lines, "put_done", pv); len(d) == 1 {
		got = d[0].Int("eca")
	}
	if got != int64(eca) {
		r.t.Errorf("put -c %s %s: status %d, want %d (%s)\n%s", pv, strings.Join(values, " "), got, eca, eca, joinLines(lines))
	}
}

// info returns the connection line of pv.
func (r *relayProc) info(pv string) catest.Line {
	r.t.Helper()
	cs := catest.Find(r.ca(0, "info", pv), "conn", pv)
	if len(cs) != 1 || !cs[0].Bool("connected") {
		r.t.Fatalf("info %s: %v", pv, cs)
	}
	return cs[0]
}

// notFound checks that pv never connects: get -w 1 times out with status 3.
func (r *relayProc) notFound(pv string) {
	r.t.Helper()
	lines := r.ca(3, "get", "-w", "1", pv)
	if len(catest.Find(lines, "timeout", pv)) != 1 {
		r.t.Errorf("get %s: no connection timeout\n%s", pv, joinLines(lines))
	}
}

// waitPVList reads <prefix>pvlist until it lists exactly names (pvlist is
// updated shortly after a change). It reads the text as caget -S does, as a
// DBR_CHAR array of its current length: a DBR_STRING holds at most 39
// characters, so a DBR_STRING read gives only the start of a longer list.
func (r *relayProc) waitPVList(names ...string) {
	r.t.Helper()
	want := strings.Join(slices.Sorted(slices.Values(names)), ",")
	var got string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		got = pvText(r.get("RELAY:pvlist", "-d", "DBR_CHAR", "-c", "0"))
		if got == want {
			break
		}
	}
	if got != want {
		r.t.Errorf("RELAY:pvlist: %q, want %q", got, want)
	}
	// As DBR_STRING: the list, or its first 39 bytes.
	l := r.get("RELAY:pvlist", "-d", "DBR_STRING")
	checkType(r.t, "RELAY:pvlist as DBR_STRING", l, "DBR_STRING")
	if s := pvText(l); s != want[:min(len(want), 39)] {
		r.t.Errorf("RELAY:pvlist as DBR_STRING: %q, want %q", s, want[:min(len(want), 39)])
	}
}

// pvText returns the text of a value line: a string, or a char array up to
// its first NUL.
func pvText(l catest.Line) string {
	b := l.Bytes()
	if i := slices.Index(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

func joinLines(lines []catest.Line) string {
	var b strings.Builder
	for _, l := range lines {
		s := l.String()
		if len(s) > 600 {
			s = s[:600] + "…"
		}
		b.WriteString(s)
		b.WriteByte('\n')
	}
	return b.String()
}

// checkFloats compares the values of a value line exactly with want.
func checkFloats(t *testing.T, what string, l catest.Line, want ...float64) {
	t.Helper()
	got := l.Floats()
	if len(got) != len(want) || l.Int("count") != int64(len(want)) {
		t.Errorf("%s: count %d, values %v; want %v", what, l.Int("count"), got, want)
		return
	}
	for i := range got {
		if got[i] != want[i] && !(math.IsNaN(got[i]) && math.IsNaN(want[i])) {
			t.Errorf("%s: values %v, want %v", what, got, want)
			return
		}
	}
}

// checkAlarm compares the alarm of a value line.
func checkAlarm(t *testing.T, what string, l catest.Line, st wire.AlarmStatus, sev wire.AlarmSeverity) {
	t.Helper()
	if l.Int("alarm_status") != int64(st) || l.Int("alarm_severity") != int64(sev) {
		t.Errorf("%s: alarm %d/%d, want %s/%s (%d/%d)", what, l.Int("alarm_status"), l.Int("alarm_severity"), st, sev, st, sev)
	}
}

// checkType compares the DBR type of a value line.
func checkType(t *testing.T, what string, l catest.Line, typ string) {
	t.Helper()
	if l.Str("type_name") != typ {
		t.Errorf("%s: type %s, want %s", what, l.Str("type_name"), typ)
	}
}

// checkNative compares a channel's native type and element count.
func checkNative(t *testing.T, c catest.Line, typ string, count int) {
	t.Helper()
	if c.Str("native_type_name") != typ || c.Int("element_count") != int64(count) || !c.Bool("read") || !c.Bool("write") {
		t.Errorf("info %s: %s", c.Str("pv"), c)
	}
}

// checkText compares the bytes of a value line (a string, or a char array up
// to its first NUL) with want.
func checkText(t *testing.T, what string, l catest.Line, want string) {
	t.Helper()
	if got := pvText(l); got != want {
		t.Errorf("%s: text %q, want %q", what, got, want)
	}
}

// checkLimits compares the metadata of a GR or CTRL value line; the keys are
// the C driver's (units, precision, upper_disp_limit, ...).
func checkLimits(t *testing.T, what string, l catest.Line, units string, prec int, limits map[string]float64) {
	t.Helper()
	if l.Str("units") != units || l.Int("precision") != int64(prec) {
		t.Errorf("%s: units %q precision %d, want %q and %d", what, l.Str("units"), l.Int("precision"), units, prec)
	}
	for _, k := range slices.Sorted(maps.Keys(limits)) {
		g, w := l.Float(k), limits[k]
		if g != w && !(math.IsNaN(g) && math.IsNaN(w)) {
			t.Errorf("%s: %s %v, want %v", what, k, g, w)
		}
	}
}

// TestIntegrationRelayLibca drives a `pvhub serve` process with libca: PVs of
// every kind created by their first put, arrays, buffers, text, attributes
// and alarms, drive limits, a monitor opened before the first put, pvlist
// and delpv.
func TestIntegrationRelayLibca(t *testing.T) {
	t.Parallel()
	r := newRelay(t)
	r.start()
	created := []string{}

	// A double scalar, created by a put with completion, read back as TIME
	// and CTRL.
	r.putc("RELAY:temp_f1", "21.5")
	created = append(created, "RELAY:temp_f1")
	checkNative(t, r.info("RELAY:temp_f1"), "DBR_DOUBLE", 1)
	l := r.get("RELAY:temp_f1", "-d", "DBR_TIME_DOUBLE")
	checkType(t, "temp_f1 TIME", l, "DBR_TIME_DOUBLE")
	checkFloats(t, "temp_f1 TIME", l, 21.5)
	checkAlarm(t, "temp_f1 TIME", l, wire.StatNoAlarm, wire.SevNoAlarm)
	stamp := wire.Timestamp{Sec: uint32(l.Int("stamp_sec")), Nsec: uint32(l.Int("stamp_nsec"))}.Time()
	if d := time.Since(stamp); d < -time.Minute || d > time.Minute {
		t.Errorf("temp_f1: time stamp %v is not now", stamp)
	}
	l = r.get("RELAY:temp_f1", "-d", "DBR_CTRL_DOUBLE")
	checkType(t, "temp_f1 CTRL", l, "DBR_CTRL_DOUBLE")
	checkFloats(t, "temp_f1 CTRL", l, 21.5)
	checkAlarm(t, "temp_f1 CTRL", l, wire.StatNoAlarm, wire.SevNoAlarm)

	// A long scalar.
	r.putc("RELAY:count_i1", "42")
	created = append(created, "RELAY:count_i1")
	checkNative(t, r.info("RELAY:count_i1"), "DBR_LONG", 1)
	l = r.get("RELAY:count_i1", "-d", "DBR_TIME_LONG")
	checkType(t, "count_i1 TIME", l, "DBR_TIME_LONG")
	checkFloats(t, "count_i1 TIME", l, 42)
	checkAlarm(t, "count_i1 TIME", l, wire.StatNoAlarm, wire.SevNoAlarm)
	l = r.get("RELAY:count_i1", "-d", "DBR_CTRL_LONG")
	checkType(t, "count_i1 CTRL", l, "DBR_CTRL_LONG")
	checkFloats(t, "count_i1 CTRL", l, 42)

	// A char PV created by a put of text.
	r.putc("RELAY:note_c16", "hi")
	created = append(created, "RELAY:note_c16")
	checkNative(t, r.info("RELAY:note_c16"), "DBR_CHAR", 16)
	l = r.get("RELAY:note_c16", "-d", "DBR_TIME_CHAR")
	checkType(t, "note_c16 TIME", l, "DBR_TIME_CHAR")
	checkFloats(t, "note_c16 TIME", l, 'h', 'i', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
	checkAlarm(t, "note_c16 TIME", l, wire.StatNoAlarm, wire.SevNoAlarm)
	l = r.get("RELAY:note_c16", "-d", "DBR_CTRL_CHAR", "-c", "0")
	checkType(t, "note_c16 CTRL", l, "DBR_CTRL_CHAR")
	checkFloats(t, "note_c16 CTRL", l, 'h', 'i')
	checkText(t, "note_c16 TIME_STRING", r.get("RELAY:note_c16", "-d", "DBR_TIME_STRING"), "hi")

	// A plain put (no completion, as caput without -c) creates a PV too.
	r.ca(0, "put", "RELAY:plain_f1", "5")
	created = append(created, "RELAY:plain_f1")
	checkFloats(t, "plain_f1", r.get("RELAY:plain_f1"), 5)

	// Arrays take up to count elements; -c 0 reads the current length, the
	// native count reads the padded array. libca itself refuses more
	// elements than the channel's count (ECA_BADCOUNT) and the value stays.
	r.putc("RELAY:wave_f5", "1.5", "2.5", "3.5")
	created = append(created, "RELAY:wave_f5")
	checkNative(t, r.info("RELAY:wave_f5"), "DBR_DOUBLE", 5)
	checkFloats(t, "wave_f5 -c 0", r.get("RELAY:wave_f5", "-c", "0"), 1.5, 2.5, 3.5)
	checkFloats(t, "wave_f5", r.get("RELAY:wave_f5"), 1.5, 2.5, 3.5, 0, 0)
	r.refused(wire.ECABadCount, "RELAY:wave_f5", "1", "2", "3", "4", "5", "6")
	checkFloats(t, "wave_f5 after 6 elements", r.get("RELAY:wave_f5", "-c", "0"), 1.5, 2.5, 3.5)
	r.putc("RELAY:n_i4", "1", "2", "3")
	created = append(created, "RELAY:n_i4")
	l = r.get("RELAY:n_i4", "-c", "0")
	checkType(t, "n_i4", l, "DBR_LONG")
	checkFloats(t, "n_i4", l, 1, 2, 3)

	// Buffers append scalars and arrays and keep the newest count elements.
	r.putc("RELAY:hist_F4", "1")
	created = append(created, "RELAY:hist_F4")
	checkNative(t, r.info("RELAY:hist_F4"), "DBR_DOUBLE", 4)
	checkFloats(t, "hist_F4 after 1", r.get("RELAY:hist_F4", "-c", "0"), 1)
	r.putc("RELAY:hist_F4", "2", "3")
	checkFloats(t, "hist_F4 after 2 3", r.get("RELAY:hist_F4", "-c", "0"), 1, 2, 3)
	r.putc("RELAY:hist_F4", "4", "5", "6")
	checkFloats(t, "hist_F4 after 4 5 6", r.get("RELAY:hist_F4", "-c", "0"), 3, 4, 5, 6)
	r.putc("RELAY:hist_F4", "7")
	checkFloats(t, "hist_F4 after 7", r.get("RELAY:hist_F4", "-c", "0"), 4, 5, 6, 7)
	r.refused(wire.ECABadCount, "RELAY:hist_F4", "1", "2", "3", "4", "5")
	checkFloats(t, "hist_F4 after 5 elements", r.get("RELAY:hist_F4", "-c", "0"), 4, 5, 6, 7)
	for _, v := range []string{"1", "2", "3", "4"} {
		r.putc("RELAY:ev_I3", v)
	}
	created = append(created, "RELAY:ev_I3")
	checkNative(t, r.info("RELAY:ev_I3"), "DBR_LONG", 3)
	checkFloats(t, "ev_I3", r.get("RELAY:ev_I3", "-c", "0"), 2, 3, 4)

	// Text into a char PV: as DBR_STRING (caput) and as a char array with
	// its NUL (caput -S); read back as DBR_STRING and as DBR_CHAR.
	r.putc("RELAY:msg_c32", "hello relay")
	created = append(created, "RELAY:msg_c32")
	checkNative(t, r.info("RELAY:msg_c32"), "DBR_CHAR", 32)
	l = r.get("RELAY:msg_c32", "-d", "DBR_STRING")
	checkType(t, "msg_c32 STRING", l, "DBR_STRING")
	checkText(t, "msg_c32 STRING", l, "hello relay")
	l = r.get("RELAY:msg_c32", "-d", "DBR_CHAR", "-c", "0")
	checkType(t, "msg_c32 CHAR", l, "DBR_CHAR")
	checkText(t, "msg_c32 CHAR", l, "hello relay")
	if l.Int("count") < 11 || l.Int("count") > 12 {
		t.Errorf("msg_c32 CHAR -c 0: count %d, want the text's length", l.Int("count"))
	}
	r.put([]string{"-S"}, "RELAY:msg_c32", "µm and °C")
	checkText(t, "msg_c32 STRING after -S", r.get("RELAY:msg_c32", "-d", "DBR_STRING"), "µm and °C")
	checkText(t, "msg_c32 CHAR after -S", r.get("RELAY:msg_c32", "-d", "DBR_CHAR", "-c", "0"), "µm and °C")
	l = r.get("RELAY:msg_c32", "-d", "DBR_CHAR")
	if b := l.Bytes(); len(b) != 32 || !strings.HasPrefix(string(b), "µm and °C\x00") {
		t.Errorf("msg_c32 CHAR: %q", b)
	}
	// 33 bytes of text into 32: the server refuses it, the text stays.
	r.refused(wire.ECABadCount, "RELAY:msg_c32", strings.Repeat("x", 33))
	checkText(t, "msg_c32 after 33 bytes", r.get("RELAY:msg_c32", "-d", "DBR_STRING"), "µm and °C")

	// Attributes, written as fields, come back in the CTRL metadata, and
	// value puts get the alarm of an ai record.
	for _, fv := range [][2]string{{"EGU", "degC"}, {"PREC", "2"}, {"HIGH", "25"}, {"HSV", "MINOR"}, {"HIHI", "30"},
		{"HHSV", "MAJOR"}, {"DRVH", "40"}, {"DRVL", "-10"}, {"HOPR", "50"}, {"LOPR", "-20"}, {"DESC", "room"}} {
		r.putc("RELAY:t_f1."+fv[0], fv[1])
	}
	created = append(created, "RELAY:t_f1")
	r.putc("RELAY:t_f1", "20")
	nan := math.NaN()
	limits := map[string]float64{"upper_disp_limit": 50, "lower_disp_limit": -20, "upper_alarm_limit": 30,
		"upper_warning_limit": 25, "lower_warning_limit": nan, "lower_alarm_limit": nan, "upper_ctrl_limit": 40, "lower_ctrl_limit": -10}
	l = r.get("RELAY:t_f1", "-d", "DBR_CTRL_DOUBLE")
	checkFloats(t, "t_f1 = 20", l, 20)
	checkAlarm(t, "t_f1 = 20", l, wire.StatNoAlarm, wire.SevNoAlarm)
	checkLimits(t, "t_f1 CTRL", l, "degC", 2, limits)
	l = r.get("RELAY:t_f1", "-d", "DBR_GR_DOUBLE")
	delete(limits, "upper_ctrl_limit")
	delete(limits, "lower_ctrl_limit")
	checkLimits(t, "t_f1 GR", l, "degC", 2, limits)
	r.putc("RELAY:t_f1", "26")
	l = r.get("RELAY:t_f1", "-d", "DBR_CTRL_DOUBLE")
	checkFloats(t, "t_f1 = 26", l, 26)
	checkAlarm(t, "t_f1 = 26 (above HIGH)", l, wire.StatHigh, wire.SevMinor)
	r.putc("RELAY:t_f1", "31")
	l = r.get("RELAY:t_f1", "-d", "DBR_TIME_DOUBLE")
	checkFloats(t, "t_f1 = 31", l, 31)
	checkAlarm(t, "t_f1 = 31 (above HIHI)", l, wire.StatHiHi, wire.SevMajor)
	// Outside DRVL..DRVH: refused, the value and alarm unchanged.
	r.refused(wire.ECAPutFail, "RELAY:t_f1", "41")
	r.refused(wire.ECAPutFail, "RELAY:t_f1", "-11")
	lines := r.ca(1, "put", "RELAY:t_f1", "41")
	if ex := catest.Find(lines, "exception", "RELAY:t_f1"); len(ex) != 1 || ex[0].Int("stat") != int64(wire.ECAPutFail) ||
		!strings.Contains(ex[0].Str("ctx"), "outside the drive limits") {
		t.Errorf("plain put above DRVH: no exception with the reason\n%s", joinLines(lines))
	}
	l = r.get("RELAY:t_f1", "-d", "DBR_STS_DOUBLE")
	checkFloats(t, "t_f1 after refused puts", l, 31)
	checkAlarm(t, "t_f1 after refused puts", l, wire.StatHiHi, wire.SevMajor)
	// The fields read back in their own types.
	checkText(t, "t_f1.EGU", r.get("RELAY:t_f1.EGU"), "degC")
	checkText(t, "t_f1.DESC", r.get("RELAY:t_f1.DESC"), "room")
	l = r.get("RELAY:t_f1.PREC")
	checkType(t, "t_f1.PREC", l, "DBR_SHORT")
	checkFloats(t, "t_f1.PREC", l, 2)
	l = r.get("RELAY:t_f1.HSV")
	checkType(t, "t_f1.HSV", l, "DBR_ENUM")
	checkFloats(t, "t_f1.HSV", l, 1)
	checkText(t, "t_f1.HSV as string", r.get("RELAY:t_f1.HSV", "-d", "DBR_STRING"), "MINOR")
	checkFloats(t, "t_f1.HIHI", r.get("RELAY:t_f1.HIHI"), 30)
	checkFloats(t, "t_f1.VAL", r.get("RELAY:t_f1.VAL"), 31)

	// A monitor opened before the first put: INVALID/UDF, then the value.
	mon, err := r.drv.Start(r.ctx, r.env, "monitor", "-m", "va", "RELAY:later_f1")
	if err != nil {
		t.Fatal(err)
	}
	isValue := func(l catest.Line) bool { return l.Event() == "value" }
	first, err := mon.WaitFor(15*time.Second, isValue)
	if err != nil {
		t.Fatal(err)
	}
	checkAlarm(t, "later_f1 first event", first, wire.StatUDF, wire.SevInvalid)
	r.putc("RELAY:later_f1", "7")
	created = append(created, "RELAY:later_f1")
	l, err = mon.WaitFor(15*time.Second, isValue)
	if err != nil {
		t.Fatal(err)
	}
	checkFloats(t, "later_f1 event after the put", l, 7)
	checkAlarm(t, "later_f1 event after the put", l, wire.StatNoAlarm, wire.SevNoAlarm)

	// pvlist is a char array that reads as text: the created names.
	c := r.info("RELAY:pvlist")
	if c.Str("native_type_name") != "DBR_CHAR" || c.Bool("write") {
		t.Errorf("info RELAY:pvlist: %s", c)
	}
	if c := r.info("RELAY:delpv"); c.Str("native_type_name") != "DBR_CHAR" || !c.Bool("write") {
		t.Errorf("info RELAY:delpv: %s", c)
	}
	r.waitPVList(created...)

	// delpv disconnects the monitor's channel; libca keeps the channel, so it
	// reconnects, which creates the PV anew and empty (INVALID/UDF).
	r.putc("RELAY:delpv", "later_f1")
	if _, err := mon.WaitFor(15*time.Second, func(l catest.Line) bool { return l.Event() == "conn" && !l.Bool("connected") }); err != nil {
		t.Errorf("delpv: the monitor was not disconnected: %v", err)
	}
	if _, err := mon.WaitFor(15*time.Second, func(l catest.Line) bool { return l.Event() == "conn" && l.Bool("connected") }); err != nil {
		t.Errorf("delpv: the monitor did not reconnect: %v", err)
	} else if l, err := mon.WaitFor(15*time.Second, isValue); err != nil {
		t.Errorf("delpv: no event after the reconnection: %v", err)
	} else {
		checkAlarm(t, "later_f1 re-created", l, wire.StatUDF, wire.SevInvalid)
	}
	_ = mon.Stop()
	if !strings.Contains(r.proc.Stderr(), `msg="relay PV deleted" pv=RELAY:later_f1`) {
		t.Error("no log line for the deletion of RELAY:later_f1")
	}
	// With nobody holding it, a deleted PV (full name this time) stays gone.
	r.putc("RELAY:delpv", "RELAY:later_f1")
	created = slices.DeleteFunc(created, func(s string) bool { return s == "RELAY:later_f1" })
	r.waitPVList(created...)
	// Deleting an unknown PV fails, with the reason for a plain put.
	r.refused(wire.ECAPutFail, "RELAY:delpv", "nosuch_f1")
	lines = r.ca(1, "put", "RELAY:delpv", "nosuch_f1")
	if ex := catest.Find(lines, "exception", "RELAY:delpv"); len(ex) != 1 || !strings.Contains(ex[0].Str("ctx"), "no relay PV named RELAY:nosuch_f1") {
		t.Errorf("delete of an unknown PV: no exception with the reason\n%s", joinLines(lines))
	}
	r.waitPVList(created...)

	r.stop()
}

// TestIntegrationRelayCaps checks relay.max_pvs and relay.max_elements: names
// beyond them are not found, and the log says why, once.
func TestIntegrationRelayCaps(t *testing.T) {
	t.Parallel()
	r := newRelay(t, "PVHUB_RELAY__MAX_PVS=5", "PVHUB_RELAY__MAX_ELEMENTS=100")
	r.start()
	names := []string{"RELAY:a_f1", "RELAY:b_f1", "RELAY:c_f1", "RELAY:d_f1", "RELAY:e_f1"}
	for i, n := range names {
		r.putc(n, strconv.Itoa(i))
	}
	// A sixth name is not found; libca searches several times, the log warns once.
	r.notFound("RELAY:f_f1")
	var warns []string
	for _, line := range strings.Split(r.proc.Stderr(), "\n") {
		if strings.Contains(line, "level=WARN") && strings.Contains(line, "relay.max_pvs") {
			warns = append(warns, line)
		}
	}
	if len(warns) != 1 || !strings.Contains(warns[0], "pv=RELAY:f_f1") {
		t.Errorf("warnings naming relay.max_pvs: %q, want one for RELAY:f_f1", warns)
	}
	// The fields of an existing PV are no new PVs: at the cap they still work.
	// (Fails at the time of writing: the CA server's Source claims a field
	// name only when that field's channel was opened before, and otherwise
	// counts it as a new PV against relay.max_pvs, so the search goes
	// unanswered and the log warns "relay.max_pvs reached" for it.)
	lines := r.drvRun("put", "-c", "-w", "2", "RELAY:a_f1.EGU", "mm")
	if d := catest.Find(lines, "put_done", "RELAY:a_f1.EGU"); len(d) != 1 || d[0].Int("eca") != int64(wire.ECANormal) {
		t.Errorf("at relay.max_pvs, a field of the existing PV RELAY:a_f1 is not found or not written:\n%s", joinLines(lines))
	}
	checkFloats(t, "a_f1", r.get("RELAY:a_f1"), 0)
	r.waitPVList(names...)

	// Below the cap again, a name of more than max_elements is not found,
	// one of max_elements is.
	r.putc("RELAY:delpv", "e_f1")
	r.waitPVList(names[:4]...)
	r.notFound("RELAY:x_f101")
	checkNative(t, r.info("RELAY:x_f100"), "DBR_DOUBLE", 100)
	r.waitPVList(append(names[:4:4], "RELAY:x_f100")...)
	r.notFound("RELAY:f_f1")
	r.stop()
}

// TestIntegrationRelayAutosaveKill checks that the periodic autosave brings
// values, attributes and alarms back after the process is killed (SIGKILL),
// and that a normal stop saves once more.
func TestIntegrationRelayAutosaveKill(t *testing.T) {
	t.Parallel()
	r := newRelay(t)
	r.start()
	for _, fv := range [][2]string{{"EGU", "V"}, {"PREC", "3"}, {"HIGH", "5"}, {"HSV", "MINOR"}, {"HIHI", "8"},
		{"HHSV", "MAJOR"}, {"DRVH", "10"}, {"DRVL", "-10"}, {"HOPR", "12"}, {"LOPR", "-12"}, {"DESC", "supply"}} {
		r.putc("RELAY:psu_f1."+fv[0], fv[1])
	}
	r.putc("RELAY:psu_f1", "6")
	r.putc("RELAY:hot_f1.HIHI", "1")
	r.putc("RELAY:hot_f1.HHSV", "MAJOR")
	r.putc("RELAY:hot_f1", "2")
	r.putc("RELAY:buf_F3", "1")
	r.putc("RELAY:buf_F3", "2", "3")
	r.putc("RELAY:msg_c16", "kept text")
	r.putc("RELAY:n_i3", "4", "5")
	r.putc("RELAY:undef_f1.EGU", "A") // a PV with an attribute and no value
	names := []string{"RELAY:psu_f1", "RELAY:hot_f1", "RELAY:buf_F3", "RELAY:msg_c16", "RELAY:n_i3", "RELAY:undef_f1"}
	before := r.get("RELAY:psu_f1", "-d", "DBR_TIME_DOUBLE")

	// Longer than relay.autosave.period (200 ms): the periodic save has run.
	time.Sleep(600 * time.Millisecond)
	if saved := savedNames(t, r.autosave); !slices.Equal(saved, slices.Sorted(slices.Values(names))) {
		t.Errorf("autosave file after 600 ms holds %q, want %q", saved, names)
	}
	r.checkLog()
	r.kill()

	r.start() // the same port and autosave file
	if !strings.Contains(r.proc.Stderr(), fmt.Sprintf(`msg="relay PVs restored" path=%s pvs=%d`, r.autosave, len(names))) {
		t.Errorf("no restore of %d PVs in the log:\n%s", len(names), r.proc.Stderr())
	}
	l := r.get("RELAY:psu_f1", "-d", "DBR_CTRL_DOUBLE")
	checkFloats(t, "restored psu_f1", l, 6)
	checkAlarm(t, "restored psu_f1", l, wire.StatHigh, wire.SevMinor)
	checkLimits(t, "restored psu_f1", l, "V", 3, map[string]float64{"upper_disp_limit": 12, "lower_disp_limit": -12,
		"upper_alarm_limit": 8, "upper_warning_limit": 5, "upper_ctrl_limit": 10, "lower_ctrl_limit": -10})
	l = r.get("RELAY:psu_f1", "-d", "DBR_TIME_DOUBLE")
	if l.Int("stamp_sec") != before.Int("stamp_sec") || l.Int("stamp_nsec") != before.Int("stamp_nsec") {
		t.Errorf("restored psu_f1: time stamp %d.%09d, want %d.%09d", l.Int("stamp_sec"), l.Int("stamp_nsec"),
			before.Int("stamp_sec"), before.Int("stamp_nsec"))
	}
	checkText(t, "restored psu_f1.DESC", r.get("RELAY:psu_f1.DESC"), "supply")
	checkText(t, "restored psu_f1.HSV", r.get("RELAY:psu_f1.HSV", "-d", "DBR_STRING"), "MINOR")
	r.refused(wire.ECAPutFail, "RELAY:psu_f1", "11") // DRVH restored
	l = r.get("RELAY:hot_f1", "-d", "DBR_CTRL_DOUBLE")
	checkFloats(t, "restored hot_f1", l, 2)
	checkAlarm(t, "restored hot_f1", l, wire.StatHiHi, wire.SevMajor)
	checkFloats(t, "restored buf_F3", r.get("RELAY:buf_F3", "-c", "0"), 1, 2, 3)
	checkNative(t, r.info("RELAY:buf_F3"), "DBR_DOUBLE", 3)
	r.putc("RELAY:buf_F3", "4") // still a buffer
	checkFloats(t, "restored buf_F3 after 4", r.get("RELAY:buf_F3", "-c", "0"), 2, 3, 4)
	checkText(t, "restored msg_c16", r.get("RELAY:msg_c16", "-d", "DBR_STRING"), "kept text")
	l = r.get("RELAY:n_i3", "-c", "0")
	checkType(t, "restored n_i3", l, "DBR_LONG")
	checkFloats(t, "restored n_i3", l, 4, 5)
	l = r.get("RELAY:undef_f1", "-d", "DBR_CTRL_DOUBLE")
	checkAlarm(t, "restored undef_f1", l, wire.StatUDF, wire.SevInvalid)
	if l.Str("units") != "A" {
		t.Errorf("restored undef_f1: units %q", l.Str("units"))
	}
	r.waitPVList(names...)

	// A normal stop saves the last values.
	r.stop()
	if v := savedValue(t, r.autosave, "buf_F3"); !slices.Equal(v, []float64{2, 3, 4}) {
		t.Errorf("autosave after a normal stop: buf_F3 %v, want [2 3 4]", v)
	}
}

// savedFile reads the autosave file's PV entries.
func savedFile(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("autosave file: %v", err)
	}
	var f struct {
		PVs []map[string]any `json:"pvs"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("autosave file %s: %v\n%s", path, err, b)
	}
	return f.PVs
}

// savedNames returns the sorted full names in the autosave file.
func savedNames(t *testing.T, path string) []string {
	t.Helper()
	var names []string
	for _, e := range savedFile(t, path) {
		names = append(names, fmt.Sprint("RELAY:", e["name"]))
	}
	slices.Sort(names)
	return names
}

// savedValue returns the numeric value of the PV name (without the prefix)
// in the autosave file.
func savedValue(t *testing.T, path, name string) []float64 {
	t.Helper()
	for _, e := range savedFile(t, path) {
		if e["name"] == name {
			vs, _ := e["value"].([]any)
			out := make([]float64, len(vs))
			for i, v := range vs {
				out[i], _ = v.(float64)
			}
			return out
		}
	}
	return nil
}

// TestIntegrationRelayPyepics writes and reads relay PVs with pyepics: a put
// with wait that creates a PV, a ctrl get, and the text of a char PV.
func TestIntegrationRelayPyepics(t *testing.T) {
	t.Parallel()
	py := catest.Pyepics(t)
	r := newRelay(t)
	r.start()
	run := func(args ...string) []catest.Line {
		t.Helper()
		lines, err := py.Run(r.ctx, r.env, args...)
		if err != nil {
			t.Errorf("pydriver %s: %v\n%s", strings.Join(args, " "), err, joinLines(lines))
		}
		return lines
	}
	value := func(lines []catest.Line, pv string) catest.Line {
		t.Helper()
		vs := catest.Find(lines, "value", pv)
		if len(vs) != 1 {
			t.Fatalf("no value of %s\n%s", pv, joinLines(lines))
		}
		return vs[0]
	}
	put := func(args ...string) {
		t.Helper()
		lines := run(append([]string{"put", "--wait"}, args...)...)
		if p := catest.Find(lines, "put", ""); len(p) != 1 || !p[0].Bool("complete") {
			t.Errorf("put --wait %s: not complete\n%s", strings.Join(args, " "), joinLines(lines))
		}
	}

	put("RELAY:py_f1", "3.5")
	put("RELAY:py_f1.EGU", "mV")
	put("RELAY:py_f1.PREC", "1")
	l := value(run("get", "--form", "ctrl", "RELAY:py_f1"), "RELAY:py_f1")
	if l.Float("value") != 3.5 || l.Str("units") != "mV" || l.Int("precision") != 1 || l.Int("severity") != 0 {
		t.Errorf("pyepics ctrl get of RELAY:py_f1: %s", l)
	}

	put("--text", "RELAY:pytext_c40", "hello pyepics")
	l = value(run("get", "--form", "ctrl", "--as-string", "RELAY:pytext_c40"), "RELAY:pytext_c40")
	if l.Str("value") != "hello pyepics" || l.Str("char_value") != "hello pyepics" {
		t.Errorf("pyepics ctrl get as string of RELAY:pytext_c40: %s", l)
	}
	// The same text through libca.
	checkText(t, "pytext_c40 via libca", r.get("RELAY:pytext_c40", "-d", "DBR_STRING"), "hello pyepics")
	// pvlist is a char array: pyepics reads it as text.
	r.waitPVList("RELAY:py_f1", "RELAY:pytext_c40")
	l = value(run("get", "--as-string", "RELAY:pvlist"), "RELAY:pvlist")
	if l.Str("value") != "RELAY:py_f1,RELAY:pytext_c40" {
		t.Errorf("pyepics get as string of RELAY:pvlist: %s", l)
	}
	r.stop()
}
