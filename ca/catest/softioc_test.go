package catest

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// iocDB is the database of the softIoc check.
const iocDB = `
record(ao, "T:ao") {
  field(VAL, "3.25") field(PREC, "3") field(EGU, "mm")
  field(HOPR, "100") field(LOPR, "-100")
  field(HIHI, "90") field(HIGH, "80") field(LOW, "-80") field(LOLO, "-90")
  field(HHSV, "MAJOR") field(HSV, "MINOR") field(LSV, "MINOR") field(LLSV, "MAJOR")
  field(DRVH, "95") field(DRVL, "-95")
}
record(mbbi, "T:mbbi") {
  field(ZRST, "zero") field(ONST, "one") field(TWST, "two")
  field(VAL, "1") field(PINI, "YES")
}
record(stringin, "T:si") { field(VAL, "hello \"world\"") }
record(stringin, "T:num") { field(VAL, "42.5") }
record(waveform, "T:cwf") { field(FTVL, "CHAR") field(NELM, "64") }
record(waveform, "T:dwf") { field(FTVL, "DOUBLE") field(NELM, "10") }
record(calc, "T:cnt") { field(SCAN, ".1 second") field(CALC, "A+1") field(INPA, "T:cnt") }
`

// TestIntegrationDriversAgainstSoftIoc checks both drivers against a real
// IOC (rsrv) from a locally built EPICS base named by EPICS_BASE. It is an
// optional local check of the drivers themselves, not a CI peer: without
// EPICS_BASE it skips.
func TestIntegrationDriversAgainstSoftIoc(t *testing.T) {
	base := os.Getenv("EPICS_BASE")
	if base == "" {
		t.Skip("EPICS_BASE is not set; this optional check needs a built EPICS base with softIoc")
	}
	arch := hostArch(t, base)
	c := Libca(t)
	py := Pyepics(t)
	ioc := SoftIoc(t, iocDB)
	env := ioc.Env()
	ctx := context.Background()

	t.Run("DeclarationsMatchTheEPICSHeaders", func(t *testing.T) {
		checkABI(t, c, base, arch)
	})

	// Known array contents first, then every DBR type on every record.
	mustRun(t, c, env, "put", "-S", "T:cwf", "hi")
	mustRun(t, c, env, "put", "-c", "-d", "DBR_DOUBLE", "T:dwf", "1", "2", "3")

	t.Run("GetEveryType", func(t *testing.T) {
		pvs := []string{"T:ao", "T:mbbi", "T:si", "T:num", "T:cwf", "T:dwf"}
		for typ := range 39 {
			if typ == 35 || typ == 36 {
				continue // PUT_ACKT and PUT_ACKS are write-only
			}
			lines, err := c.Run(ctx, env, append([]string{"get", "-d", strconv.Itoa(typ)}, pvs...)...)
			if code := ExitCode(err); code != 0 && code != 1 {
				t.Fatalf("type %d: %v", typ, err)
			}
			for _, pv := range pvs {
				vs := Find(lines, "value", pv)
				if len(vs) != 1 {
					t.Errorf("type %d %s: lines %v", typ, pv, lines)
					continue
				}
				checkGet(t, typ, pv, vs[0])
			}
		}
	})

	t.Run("GetCountZero", func(t *testing.T) {
		lines := mustRun(t, c, env, "get", "-c", "0", "-d", "DBR_TIME_CHAR", "T:cwf")
		v := Find(lines, "value", "T:cwf")[0]
		if v.Int("count") != 3 || string(v.Bytes()) != "hi\x00" {
			t.Errorf("count-0 char get: %v", v)
		}
		lines = mustRun(t, c, env, "get", "-c", "0", "T:dwf")
		if v := Find(lines, "value", "T:dwf")[0]; !reflect.DeepEqual(v.Floats(), []float64{1, 2, 3}) {
			t.Errorf("count-0 double get: %v", v)
		}
	})

	t.Run("Put", func(t *testing.T) {
		lines := mustRun(t, c, env, "put", "-c", "T:ao", "7.5")
		if d := Find(lines, "put_done", "T:ao"); len(d) != 1 || d[0].Int("eca") != 1 {
			t.Errorf("put -c: %v", lines)
		}
		expectValue(t, c, env, "T:ao", "DBR_DOUBLE", 7.5)

		mustRun(t, c, env, "put", "-d", "DBR_LONG", "T:dwf", "4", "5", "6", "7")
		lines = mustRun(t, c, env, "get", "-c", "0", "T:dwf")
		if v := Find(lines, "value", "T:dwf")[0]; !reflect.DeepEqual(v.Floats(), []float64{4, 5, 6, 7}) {
			t.Errorf("array put: %v", v)
		}

		mustRun(t, c, env, "put", "-c", "T:mbbi", "two")
		expectValue(t, c, env, "T:mbbi", "DBR_STRING", "two")

		lines, err := c.Run(ctx, env, "put", "-c", "T:mbbi", "bogus")
		if d := Find(lines, "put_done", "T:mbbi"); ExitCode(err) != 1 || len(d) != 1 || d[0].Int("eca") != 160 {
			t.Errorf("bad enum put -c: exit %d, %v", ExitCode(err), lines)
		}
		lines, err = c.Run(ctx, env, "put", "T:mbbi", "bogus")
		if x := Find(lines, "exception", "T:mbbi"); ExitCode(err) != 1 || len(x) != 1 || x[0].Int("stat") != 160 {
			t.Errorf("bad enum put: exit %d, %v", ExitCode(err), lines)
		}

		lines = mustRun(t, c, env, "put", "-c", "-d", "DBR_PUT_ACKT", "T:ao", "0")
		if d := Find(lines, "put_done", "T:ao"); len(d) != 1 || d[0].Int("eca") != 1 {
			t.Errorf("put ACKT: %v", lines)
		}
		lines = mustRun(t, c, env, "get", "-d", "DBR_STSACK_STRING", "T:ao")
		if v := Find(lines, "value", "T:ao")[0]; v.Int("ackt") != 0 {
			t.Errorf("ACKT after put: %v", v)
		}
	})

	t.Run("Pyepics", func(t *testing.T) {
		lines := mustRun(t, py, env, "put", "--wait", "T:ao", "12.5")
		if p := Find(lines, "put", "T:ao"); len(p) != 1 || !p[0].Bool("complete") {
			t.Errorf("pyepics put --wait: %v", lines)
		}
		expectValue(t, c, env, "T:ao", "DBR_DOUBLE", 12.5)

		mustRun(t, py, env, "put", "T:si", "42")
		expectValue(t, c, env, "T:si", "DBR_STRING", "42")

		mustRun(t, py, env, "put", "--text", "T:cwf", "hello there")
		lines = mustRun(t, c, env, "get", "-c", "0", "T:cwf")
		if v := Find(lines, "value", "T:cwf")[0]; string(v.Bytes()) != "hello there\x00" {
			t.Errorf("C view of the pyepics text put: %v", v)
		}

		lines = mustRun(t, py, env, "get", "--as-string", "T:cwf", "T:mbbi")
		if v := Find(lines, "value", "T:cwf"); len(v) != 1 || v[0].Str("value") != "hello there" {
			t.Errorf("pyepics char waveform as text: %v", lines)
		}
		if v := Find(lines, "value", "T:mbbi"); len(v) != 1 || v[0].Str("value") != "two" {
			t.Errorf("pyepics enum as string: %v", lines)
		}

		lines = mustRun(t, py, env, "get", "--form", "ctrl", "--ctrlvars", "T:ao", "T:mbbi")
		ao := Find(lines, "value", "T:ao")
		if len(ao) != 1 || ao[0].Str("units") != "mm" || ao[0].Int("precision") != 3 ||
			ao[0].Float("upper_ctrl_limit") != 95 || ao[0].Float("lower_alarm_limit") != -90 ||
			ao[0].Float("value") != 12.5 {
			t.Errorf("pyepics ctrl get of T:ao: %v", lines)
		}
		mb := Find(lines, "value", "T:mbbi")
		if len(mb) != 1 || fmt.Sprint(mb[0]["enum_strs"]) != "[zero one two]" {
			t.Errorf("pyepics ctrl get of T:mbbi: %v", lines)
		}
	})

	t.Run("SlowMonitor", func(t *testing.T) {
		// T:cnt counts at 10 Hz; the callback sleeps 250 ms per event.
		start := time.Now()
		lines, err := c.Run(ctx, env, "monitor", "-s", "250", "-t", "2", "T:cnt")
		if err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("monitor -t 2 ran %v", took)
		}
		vs := Find(lines, "value", "T:cnt")
		if len(vs) < 3 || len(vs) > 10 {
			t.Fatalf("%d events in 2 s with a 250 ms callback: %v", len(vs), lines)
		}
		for i := 1; i < len(vs); i++ {
			if vs[i].Floats()[0] <= vs[i-1].Floats()[0] {
				t.Errorf("counter went backwards: %v then %v", vs[i-1], vs[i])
			}
		}
	})

	t.Run("MonitorsSeeUpdatesAndTheIOCDying", func(t *testing.T) {
		cm, err := c.Start(ctx, env, "monitor", "T:ao", "T:dwf")
		if err != nil {
			t.Fatal(err)
		}
		pm, err := py.Start(ctx, env, "monitor", "T:ao")
		if err != nil {
			t.Fatal(err)
		}
		waitValue(t, cm, "T:ao", func(l Line) bool { return l.Floats()[0] == 12.5 })
		waitValue(t, cm, "T:dwf", func(l Line) bool { return l.Int("count") == 4 })
		waitValue(t, pm, "T:ao", func(l Line) bool { return l.Float("value") == 12.5 })

		mustRun(t, c, env, "put", "T:ao", "1.5")
		mustRun(t, c, env, "put", "-d", "DBR_DOUBLE", "T:dwf", "8", "9")
		l := waitValue(t, cm, "T:ao", func(l Line) bool { return l.Floats()[0] == 1.5 })
		if l.Str("type_name") != "DBR_TIME_DOUBLE" || l.Int("stamp_sec") == 0 {
			t.Errorf("C monitor update: %v", l)
		}
		waitValue(t, cm, "T:dwf", func(l Line) bool {
			return reflect.DeepEqual(l.Floats(), []float64{8, 9})
		})
		waitValue(t, pm, "T:ao", func(l Line) bool { return l.Float("value") == 1.5 })

		ioc.Stop()
		for _, pv := range []string{"T:ao", "T:dwf"} {
			if _, err := cm.WaitFor(10*time.Second, func(l Line) bool {
				return l.Event() == "conn" && l.Str("pv") == pv && !l.Bool("connected")
			}); err != nil {
				t.Errorf("C monitor did not report %s disconnected: %v", pv, err)
			}
		}
		if _, err := pm.WaitFor(10*time.Second, func(l Line) bool {
			return l.Event() == "conn" && l.Str("pv") == "T:ao" && !l.Bool("connected")
		}); err != nil {
			t.Errorf("pyepics monitor did not report T:ao disconnected: %v", err)
		}
		// The C monitor reports the lost circuit as an exception too.
		if x := Find(cm.All(), "exception", ""); len(x) == 0 || x[0].Int("stat") != 192 {
			t.Errorf("exceptions: %v", x)
		}
	})
}

// runner is CDriver or PyDriver.
type runner interface {
	Run(ctx context.Context, env *Env, args ...string) ([]Line, error)
}

func mustRun(t *testing.T, r runner, env *Env, args ...string) []Line {
	t.Helper()
	lines, err := r.Run(context.Background(), env, args...)
	if err != nil {
		t.Fatalf("%q: %v\nlines:\n%s", args, err, formatLines(lines))
	}
	return lines
}

func expectValue(t *testing.T, c *CDriver, env *Env, pv, typ string, want any) {
	t.Helper()
	lines := mustRun(t, c, env, "get", "-d", typ, pv)
	v := Find(lines, "value", pv)
	if len(v) != 1 || len(v[0].Values()) != 1 || v[0].Values()[0] != want {
		t.Errorf("get %s as %s = %v; want %v", pv, typ, lines, want)
	}
}

func waitValue(t *testing.T, p *Proc, pv string, match func(Line) bool) Line {
	t.Helper()
	l, err := p.WaitFor(10*time.Second, func(l Line) bool {
		return l.Event() == "value" && l.Str("pv") == pv && len(l.Values()) > 0 && match(l)
	})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// hostArch returns the EPICS host architecture directory of base: that of
// the softIoc that SoftIoc runs.
func hostArch(t *testing.T, base string) string {
	exe, err := softIocPath(base)
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Base(filepath.Dir(exe))
}

// checkGet checks one value line of get -d typ against the database.
func checkGet(t *testing.T, typ int, pv string, l Line) {
	t.Helper()
	base := typ
	if typ >= 7 && typ <= 34 {
		base = (typ - 7) % 7
	}
	family := ""
	switch {
	case typ >= 7 && typ <= 13:
		family = "STS"
	case typ >= 14 && typ <= 20:
		family = "TIME"
	case typ >= 21 && typ <= 27:
		family = "GR"
	case typ >= 28 && typ <= 34:
		family = "CTRL"
	}
	isString := base == 0 || typ == 37
	if typ == 38 {
		isString = true
	}
	fail := func(format string, a ...any) {
		t.Errorf("type %d %s: %s in %v", typ, pv, fmt.Sprintf(format, a...), l)
	}
	// Conversions that rsrv refuses: text to number, and "42.5" to an enum.
	wantEca := int64(1)
	if (pv == "T:si" && !isString) || (pv == "T:num" && base == 3 && typ <= 34) {
		wantEca = 152
	}
	if l.Int("eca") != wantEca {
		fail("eca %d, want %d", l.Int("eca"), wantEca)
		return
	}
	if wantEca != 1 {
		return
	}
	if l.Int("type") != int64(typ) {
		fail("type")
	}
	wantCount := map[string]int64{"T:cwf": 64, "T:dwf": 10}[pv]
	if wantCount == 0 {
		wantCount = 1
	}
	if l.Int("count") != wantCount || len(l.Values()) != int(wantCount) {
		fail("count %d, want %d", l.Int("count"), wantCount)
	}
	if family != "" || typ == 37 {
		if !l.Has("alarm_status") || !l.Has("alarm_severity") {
			fail("no alarm fields")
		}
	}
	if family == "TIME" {
		if !l.Has("stamp_sec") || !l.Has("stamp_nsec") {
			fail("no stamp")
		}
		if (pv == "T:mbbi" || pv == "T:cwf") && l.Int("stamp_sec") == 0 {
			fail("zero stamp of a processed record")
		}
	}
	if typ == 37 && (!l.Has("ackt") || !l.Has("acks")) {
		fail("no ackt/acks")
	}
	graphic := (family == "GR" || family == "CTRL") && base != 0 && base != 3
	if graphic {
		nlim := 6
		if family == "CTRL" {
			nlim = 8
		}
		if !l.Has("units") {
			fail("no units")
		}
		names := []string{"upper_disp_limit", "lower_disp_limit", "upper_alarm_limit",
			"upper_warning_limit", "lower_warning_limit", "lower_alarm_limit",
			"upper_ctrl_limit", "lower_ctrl_limit"}
		for i, n := range names {
			if l.Has(n) != (i < nlim) {
				fail("limit %s presence", n)
			}
		}
		if (base == 2 || base == 6) != l.Has("precision") {
			fail("precision presence")
		}
		if pv == "T:ao" {
			if l.Str("units") != "mm" {
				fail("units")
			}
			want := []float64{100, -100, 90, 80, -80, -90, 95, -95}[:nlim]
			for i, w := range want {
				if base == 4 { // DBR_CHAR limits are converted with a C cast to uint8
					w = float64(uint8(int8(w)))
				}
				if got := l.Float(names[i]); got != w {
					fail("%s = %v, want %v", names[i], got, w)
				}
			}
			if (base == 2 || base == 6) && l.Int("precision") != 3 {
				fail("precision")
			}
		}
	}
	if (family == "GR" || family == "CTRL") && base == 3 {
		want := "[]"
		if pv == "T:mbbi" {
			want = "[zero one two]"
		}
		if got := fmt.Sprint(l["enum_strs"]); got != want {
			fail("enum_strs %s, want %s", got, want)
		}
	}
	// Values.
	if typ == 38 {
		want := map[string]string{"T:ao": "ao", "T:mbbi": "mbbi", "T:si": "stringin",
			"T:num": "stringin", "T:cwf": "waveform", "T:dwf": "waveform"}[pv]
		if l.Strings()[0] != want {
			fail("class name %q, want %q", l.Strings()[0], want)
		}
		return
	}
	var wantStr []string
	var wantNum []float64
	switch pv {
	case "T:ao":
		wantStr, wantNum = []string{"3.250"}, []float64{3.25}
	case "T:mbbi":
		wantStr, wantNum = []string{"one"}, []float64{1}
	case "T:si":
		wantStr = []string{`hello "world"`}
	case "T:num":
		wantStr, wantNum = []string{"42.5"}, []float64{42.5}
	case "T:cwf":
		wantStr, wantNum = padded([]string{"104", "105", "0"}, 64), make([]float64, 64)
		copy(wantNum, []float64{104, 105})
	case "T:dwf":
		wantStr, wantNum = padded([]string{"1", "2", "3"}, 10), make([]float64, 10)
		copy(wantNum, []float64{1, 2, 3})
	}
	if isString {
		if got := l.Strings(); !slices.Equal(got, wantStr) {
			fail("strings %q, want %q", got, wantStr)
		}
		return
	}
	got := l.Floats()
	for i, w := range wantNum {
		if base == 1 || base == 3 || base == 4 || base == 5 {
			w = math.Trunc(w) // integer types truncate
		}
		if got[i] != w {
			fail("value[%d] = %v, want %v", i, got[i], w)
			break
		}
	}
}

// padded returns s followed by empty strings up to n elements (rsrv
// zero-fills the elements beyond the current length).
func padded(s []string, n int) []string {
	out := make([]string, n)
	copy(out, s)
	return out
}

// abiProgram prints, from the EPICS headers, the same "layout" and "abi"
// lines as cadriver layout.
const abiProgram = `
#include <stdio.h>
#include <stddef.h>
#include "cadef.h"
#include "db_access.h"
#define SZ(T) printf("{\"event\":\"abi\",\"name\":\"%s\",\"size\":%zu}\n", #T, sizeof(struct T))
#define OFF(T, m) printf("{\"event\":\"abi\",\"name\":\"%s.%s\",\"offset\":%zu}\n", #T, #m, offsetof(struct T, m))
#define VAL(c) printf("{\"event\":\"abi\",\"name\":\"%s\",\"value\":%d}\n", #c, (int)(c))
int main(void)
{
    for (int t = 0; t <= LAST_BUFFER_TYPE; t++)
        printf("{\"event\":\"layout\",\"type\":%d,\"size\":%u,\"value_offset\":%u}\n",
               t, dbr_size[t], dbr_value_offset[t]);
    SZ(connection_handler_args); OFF(connection_handler_args, chid); OFF(connection_handler_args, op);
    SZ(access_rights_handler_args); OFF(access_rights_handler_args, ar);
    SZ(event_handler_args); OFF(event_handler_args, usr); OFF(event_handler_args, chid);
    OFF(event_handler_args, type); OFF(event_handler_args, count); OFF(event_handler_args, dbr);
    OFF(event_handler_args, status);
    SZ(exception_handler_args); OFF(exception_handler_args, chid); OFF(exception_handler_args, type);
    OFF(exception_handler_args, count); OFF(exception_handler_args, addr); OFF(exception_handler_args, stat);
    OFF(exception_handler_args, op); OFF(exception_handler_args, ctx); OFF(exception_handler_args, pFile);
    OFF(exception_handler_args, lineNo);
    VAL(CA_OP_GET); VAL(CA_OP_PUT); VAL(CA_OP_CONN_UP); VAL(CA_OP_CONN_DOWN);
    VAL(DBE_VALUE); VAL(DBE_LOG); VAL(DBE_ALARM); VAL(DBE_PROPERTY);
    VAL(ECA_NORMAL); VAL(ECA_TIMEOUT); VAL(ca_disable_preemptive_callback);
    return 0;
}
`

// checkABI compiles abiProgram against the EPICS headers and compares its
// output with the C driver's own declarations.
func checkABI(t *testing.T, c *CDriver, base, arch string) {
	dir := t.TempDir()
	src := filepath.Join(dir, "abi.c")
	if err := os.WriteFile(src, []byte(abiProgram), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "abi")
	lib := filepath.Join(base, "lib", arch)
	inc := filepath.Join(base, "include")
	out, err := exec.Command("gcc", "-Wall", "-Werror", "-o", bin, src,
		"-I"+inc, "-I"+filepath.Join(inc, "os", "Linux"), "-I"+filepath.Join(inc, "compiler", "gcc"),
		"-L"+lib, "-lca", "-lCom", "-Wl,-rpath,"+lib).CombinedOutput()
	if err != nil {
		t.Fatalf("compiling the header check: %v\n%s", err, out)
	}
	out, err = exec.Command(bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	var want []Line
	for _, s := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		want = append(want, parseLine([]byte(s)))
	}
	got, err := c.Run(context.Background(), &Env{RepeaterPort: StubRepeater(t)}, "layout")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d lines from the driver, %d from the headers", len(got), len(want))
	}
	for i := range want {
		for k, v := range want[i] {
			if got[i][k] != v {
				t.Errorf("driver %v; headers %v", got[i], want[i])
				break
			}
		}
	}
}

func TestSoftIocSkipsWithoutEPICSBase(t *testing.T) {
	t.Setenv("EPICS_BASE", "")
	f := &fakeTB{TB: t}
	if ioc := SoftIoc(f, "record(ai, \"x\") {}"); ioc != nil || !strings.Contains(f.skipped, "EPICS_BASE") || f.failed != "" {
		t.Fatalf("SoftIoc without EPICS_BASE: %v, %+v", ioc, f)
	}
}

// TestSoftIocStopAndRestart checks the helper itself: the IOC serves TCP on
// Port, beacons to the stub repeater at BeaconPort, is gone after Stop and
// back on the same port after Restart.
func TestSoftIocStopAndRestart(t *testing.T) {
	ioc := SoftIoc(t, `record(ai, "H:ai") { field(VAL, "1") }`)
	if ioc.Port() == ioc.BeaconPort() || ioc.Env().ServerPort != ioc.Port() || ioc.Env().RepeaterPort != ioc.BeaconPort() {
		t.Fatalf("ports: %d, beacons %d, env %+v", ioc.Port(), ioc.BeaconPort(), ioc.Env())
	}
	env := ioc.Proc().cmd.Env
	for k, v := range map[string]string{
		"EPICS_CAS_SERVER_PORT":           strconv.Itoa(ioc.Port()),
		"EPICS_CAS_INTF_ADDR_LIST":        "127.0.0.1",
		"EPICS_CAS_BEACON_ADDR_LIST":      "127.0.0.1",
		"EPICS_CAS_AUTO_BEACON_ADDR_LIST": "NO",
		"EPICS_CAS_BEACON_PORT":           strconv.Itoa(ioc.BeaconPort()),
		"EPICS_CA_AUTO_ADDR_LIST":         "NO",
		"EPICS_CA_REPEATER_PORT":          strconv.Itoa(ioc.BeaconPort()),
	} {
		if got, ok := Lookup(env, k); !ok || got != v {
			t.Errorf("softIoc %s = %q, %v; want %q", k, got, ok, v)
		}
	}
	addr := &net.TCPAddr{IP: LoopbackIP, Port: ioc.Port()}
	dial := func() error {
		c, err := net.DialTCP("tcp4", nil, addr)
		if err == nil {
			c.Close()
		}
		return err
	}
	// Register with the stub repeater and wait for a beacon of the IOC.
	client, err := net.ListenUDP("udp4", &net.UDPAddr{IP: LoopbackIP})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	beacon := func() {
		t.Helper()
		if _, err := client.WriteToUDP(nil, &net.UDPAddr{IP: LoopbackIP, Port: ioc.BeaconPort()}); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 1500)
		deadline := time.Now().Add(20 * time.Second)
		for {
			client.SetReadDeadline(deadline)
			n, _, err := client.ReadFromUDP(buf)
			if err != nil {
				t.Fatalf("no beacon from the IOC at the stub repeater: %v", err)
			}
			if n >= 16 && binary.BigEndian.Uint16(buf) == cmdBeacon && int(binary.BigEndian.Uint16(buf[6:])) == ioc.Port() {
				return
			}
		}
	}
	if err := dial(); err != nil {
		t.Fatalf("IOC not listening: %v", err)
	}
	beacon()
	pid := ioc.Proc().Pid()
	ioc.Stop()
	if alive(pid) || ioc.Proc() != nil {
		t.Fatalf("softIoc %d still running after Stop", pid)
	}
	if err := dial(); err == nil {
		t.Fatalf("port %d still accepts connections after Stop", ioc.Port())
	}
	ioc.Stop() // no-op
	if err := ioc.Restart(); err != nil {
		t.Fatal(err)
	}
	if ioc.Proc() == nil || ioc.Proc().Pid() == pid {
		t.Fatalf("Restart started no new process")
	}
	if err := dial(); err != nil {
		t.Fatalf("restarted IOC not listening on the same port: %v", err)
	}
	beacon()
	if err := ioc.Restart(); err != nil { // restart of a running IOC
		t.Fatal(err)
	}
	if err := dial(); err != nil {
		t.Fatalf("IOC restarted twice not listening: %v", err)
	}
}
