package relay

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pvhub/pvhub/ca/wire"
)

// sampleStates returns states of every kind, with values and attributes that
// are hard to round-trip.
func sampleStates(t *testing.T) []*State {
	t.Helper()
	negZero := math.Copysign(0, -1)
	var out []*State
	add := func(name string, put ...wire.Value) *State {
		s := newState(t, name)
		for i, v := range put {
			if err := s.Put(v, t0.Add(time.Duration(i)*time.Nanosecond)); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
		out = append(out, s)
		return s
	}
	add("RELAY:never_f1")
	add("RELAY:never_F10")
	add("RELAY:never_c10")
	s := add("RELAY:scalar_f1", dbl(1.5))
	mustField(t, s, "EGU", str("°C\"<b>&"))
	mustField(t, s, "DESC", str("température du four, 2ème zone"))
	mustField(t, s, "PREC", short(3))
	mustField(t, s, "HOPR", dbl(math.Inf(1)))
	mustField(t, s, "LOPR", dbl(math.Inf(-1)))
	mustField(t, s, "DRVH", dbl(math.MaxFloat64))
	mustField(t, s, "DRVL", dbl(-math.SmallestNonzeroFloat64))
	mustField(t, s, "HIHI", dbl(math.NaN()))
	mustField(t, s, "HIGH", dbl(0.1))
	mustField(t, s, "LOW", dbl(negZero))
	mustField(t, s, "LOLO", dbl(-1e-300))
	mustField(t, s, "HHSV", str("MAJOR"))
	mustField(t, s, "HSV", str("MINOR"))
	mustField(t, s, "LSV", str("INVALID"))
	s.status, s.sev = wire.StatHigh, wire.SevMinor
	add("RELAY:nan_f1", dbl(math.NaN()))
	add("RELAY:negzero_f1", dbl(negZero))
	add("RELAY:floats_f8", dbl(math.Inf(1), math.Inf(-1), negZero, 0.1, 1e21, 5e-324, math.MaxFloat64, 1.0/3))
	add("RELAY:empty_f8", dbl(1), dbl())
	add("RELAY:ints_i4", lng(math.MinInt32, math.MaxInt32, 0, -1))
	add("RELAY:int_i1", lng(7))
	add("RELAY:buf_F3", dbl(1), dbl(2, 3, 4), dbl(5))
	add("RELAY:ibuf_I4", lng(1), lng(2))
	add("RELAY:text_c40", str("naïve 日本 \"q\" \\ \u2028 \t tab"))
	add("RELAY:emptytext_c5", str(""))
	add("RELAY:binary_c8", chars("\xff\xfe\x01\x02\x80"))
	add("RELAY:log_C6", str("abcd"), str("efgh"))
	add("RELAY:a_b.c:d_f2", dbl(1, 2))
	return out
}

func wantSameSaved(t *testing.T, got, want Saved) {
	t.Helper()
	if got.Name != want.Name || got.Defined != want.Defined || got.Status != want.Status ||
		got.Severity != want.Severity || got.Stamp != want.Stamp || !sameAttrs(got.Attrs, want.Attrs) ||
		!sameValue(got.Value, want.Value) {
		t.Errorf("%s:\n got  %+v\n want %+v", want.Name, got, want)
	}
}

func sameAttrs(a, b Attributes) bool {
	fa := []float64{a.HOPR, a.LOPR, a.DRVH, a.DRVL, a.HIHI, a.HIGH, a.LOW, a.LOLO}
	fb := []float64{b.HOPR, b.LOPR, b.DRVH, b.DRVL, b.HIHI, b.HIGH, b.LOW, b.LOLO}
	a.HOPR, a.LOPR, a.DRVH, a.DRVL, a.HIHI, a.HIGH, a.LOW, a.LOLO = 0, 0, 0, 0, 0, 0, 0, 0
	b.HOPR, b.LOPR, b.DRVH, b.DRVL, b.HIHI, b.HIGH, b.LOW, b.LOLO = 0, 0, 0, 0, 0, 0, 0, 0
	return a == b && sameBits(fa, fb)
}

func sameValue(a, b wire.Value) bool {
	if a.Len() == 0 && b.Len() == 0 {
		return true
	}
	return a.Type == b.Type && sameBits(a.Doubles, b.Doubles) && slices.Equal(a.Longs, b.Longs) && bytes.Equal(a.Chars, b.Chars)
}

func TestAutosaveRoundTrip(t *testing.T) {
	states := sampleStates(t)
	saved := make([]Saved, len(states))
	for i, s := range states {
		saved[i] = s.Save()
	}
	path := filepath.Join(t.TempDir(), "relay.json")
	if err := Save(path, saved); err != nil {
		t.Fatal(err)
	}
	loaded, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(loaded) != len(saved) {
		t.Fatalf("loaded %d entries, saved %d", len(loaded), len(saved))
	}
	for i := range saved {
		wantSameSaved(t, loaded[i], saved[i])
		r, err := Restore(loaded[i], DefaultPrefix)
		if err != nil {
			t.Fatalf("Restore(%s): %v", loaded[i].Name, err)
		}
		orig := states[i]
		if r.PVName() != orig.PVName() || r.Name() != orig.Name() || r.Defined() != orig.Defined() {
			t.Errorf("restored %q (%+v), want %q", r.PVName(), r.Name(), orig.PVName())
		}
		wantSameSaved(t, r.Save(), orig.Save())
		if !reflect.DeepEqual(r.Metadata().Units, orig.Metadata().Units) || r.Description() != orig.Description() {
			t.Errorf("%s: metadata differs", r.PVName())
		}
	}

	// A second save of the loaded entries writes the same bytes.
	first, _ := os.ReadFile(path)
	if err := Save(path, loaded); err != nil {
		t.Fatal(err)
	}
	second, _ := os.ReadFile(path)
	if !bytes.Equal(first, second) {
		t.Errorf("the file changed on a second save:\n%s\n%s", first, second)
	}
	if !json.Valid(first) || !bytes.Contains(first, []byte(`"NaN"`)) || !bytes.Contains(first, []byte(`"-Inf"`)) ||
		!bytes.Contains(first, []byte(`{"base64":"`)) || !bytes.Contains(first, []byte(`"format":"pvhub-relay-autosave","version":1`)) {
		t.Errorf("unexpected file:\n%s", first)
	}
	t.Logf("autosave file of %d PVs, %d bytes:\n%s", len(saved), len(first), first)
}

func TestRestoredStateBehaves(t *testing.T) {
	b := newState(t, "RELAY:buf_F3")
	mustPut(t, b, dbl(1, 2, 3))
	mustField(t, b, "HIHI", dbl(10))
	mustField(t, b, "HHSV", str("MAJOR"))
	r, err := Restore(b.Save(), DefaultPrefix)
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, r, dbl(11))
	wantDoubles(t, r, 2, 3, 11)
	wantAlarm(t, r, wire.StatHiHi, wire.SevMajor)
	if cap(r.data) != 24 {
		t.Errorf("a restored full buffer has capacity %d", cap(r.data))
	}

	// A PV never written stays undefined, and PutField keeps its UDF alarm.
	u, err := Restore(newState(t, "RELAY:u_f1").Save(), DefaultPrefix)
	if err != nil {
		t.Fatal(err)
	}
	mustField(t, u, "EGU", str("V"))
	wantAlarm(t, u, wire.StatUDF, wire.SevInvalid)
	if v := u.Value(); u.Defined() || v.Len() != 0 {
		t.Error("a restored undefined PV has a value")
	}
}

func TestRestoreWithNewPrefix(t *testing.T) {
	s := newState(t, "RELAY:temp_f1")
	mustPut(t, s, dbl(20))
	sv := s.Save()
	if sv.Name != "temp_f1" {
		t.Fatalf("saved name %q", sv.Name)
	}
	r, err := Restore(sv, "lab:")
	if err != nil {
		t.Fatal(err)
	}
	if r.PVName() != "lab:temp_f1" || r.Name().Base != "temp" || r.Save().Name != "temp_f1" {
		t.Errorf("restored as %q (%+v)", r.PVName(), r.Name())
	}
	if _, err := Restore(sv, strings.Repeat("p", wire.MaxNameSize)); err == nil {
		t.Error("a name too long for CA was restored")
	}
}

func TestRestoreRefusesBadEntries(t *testing.T) {
	good := Saved{Name: "x_f2", Defined: true, Value: dbl(1, 2)}
	if _, err := Restore(good, DefaultPrefix); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		edit func(*Saved)
	}{
		{"bad name", func(s *Saved) { s.Name = "x_f0" }},
		{"name with prefix field", func(s *Saved) { s.Name = "x_f2.EGU" }},
		{"too many elements", func(s *Saved) { s.Value = dbl(1, 2, 3) }},
		{"wrong type", func(s *Saved) { s.Value = lng(1, 2) }},
		{"undefined with a value", func(s *Saved) { s.Defined = false }},
		{"severity", func(s *Saved) { s.Severity = 4 }},
		{"status", func(s *Saved) { s.Status = 22 }},
		{"nsec", func(s *Saved) { s.Stamp.Nsec = 1e9 }},
		{"HHSV", func(s *Saved) { s.Attrs.HHSV = 4 }},
		{"PREC", func(s *Saved) { s.Attrs.PREC = -1 }},
		{"EGU", func(s *Saved) { s.Attrs.EGU = strings.Repeat("u", 16) }},
		{"DESC", func(s *Saved) { s.Attrs.DESC = "a\x00b" }},
		{"scalar", func(s *Saved) { s.Name = "x_f1" }},
		{"char NUL", func(s *Saved) { s.Name = "x_c4"; s.Value = chars("a\x00") }},
	} {
		sv := good
		tt.edit(&sv)
		if _, err := Restore(sv, DefaultPrefix); err == nil {
			t.Errorf("%s: restored", tt.name)
		}
		if err := Save(filepath.Join(t.TempDir(), "a.json"), []Saved{sv}); err == nil {
			t.Errorf("%s: saved", tt.name)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	pvs, err := Load(filepath.Join(t.TempDir(), "absent.json"))
	if err != nil || pvs != nil {
		t.Errorf("Load of a missing file = %v, %v", pvs, err)
	}
}

func TestLoadEmptyList(t *testing.T) {
	path := filepath.Join(t.TempDir(), "relay.json")
	if err := Save(path, nil); err != nil {
		t.Fatal(err)
	}
	pvs, err := Load(path)
	if err != nil || len(pvs) != 0 {
		t.Errorf("Load = %v, %v", pvs, err)
	}
}

func TestLoadCorrupt(t *testing.T) {
	const head = `{"format":"pvhub-relay-autosave","version":1,"pvs":[`
	entry := func(s string) string { return head + s + "]}" }
	tests := []struct {
		name, content string
		entry         int
		reason        string
	}{
		{"empty file", "", -1, "end of file"},
		{"truncated", head + `{"name":"x_f1","status":"NO_ALARM","severity":"NO_ALARM"}`, -1, ""},
		{"not JSON", "hello", -1, "invalid"},
		{"array", "[]", -1, "expecting {"},
		{"wrong format", `{"format":"other","version":1,"pvs":[]}`, -1, "format"},
		{"wrong version", `{"format":"pvhub-relay-autosave","version":2,"pvs":[]}`, -1, "version is 2"},
		{"version as text", `{"format":"pvhub-relay-autosave","version":"1","pvs":[]}`, -1, "version"},
		{"no version", `{"format":"pvhub-relay-autosave","pvs":[]}`, -1, "no version"},
		{"no format", `{"version":1,"pvs":[]}`, -1, "no format"},
		{"no pvs", `{"format":"pvhub-relay-autosave","version":1}`, -1, "no pvs"},
		{"pvs twice", `{"format":"pvhub-relay-autosave","version":1,"pvs":[],"pvs":[]}`, -1, "twice"},
		{"unknown member", `{"format":"pvhub-relay-autosave","version":1,"pvs":[],"extra":0}`, -1, "extra"},
		{"trailing data", entry("") + "{}", -1, "after"},
		{"pvs not a list", `{"format":"pvhub-relay-autosave","version":1,"pvs":{}}`, -1, "expecting ["},
		{"name no longer parses", entry(`{"name":"x_f007","status":"NO_ALARM","severity":"NO_ALARM"}`), 0, "not a relay PV name"},
		{"name with prefix field", entry(`{"name":"x_f1.EGU","status":"NO_ALARM","severity":"NO_ALARM"}`), 0, "not a relay PV name"},
		{"value too long", entry(`{"name":"x_f2","value":[1,2,3],"status":"NO_ALARM","severity":"NO_ALARM"}`), 0, "3 elements"},
		{"scalar with two", entry(`{"name":"x_f1","value":[1,2],"status":"NO_ALARM","severity":"NO_ALARM"}`), 0, "2 elements"},
		{"scalar with none", entry(`{"name":"x_f1","value":[],"status":"NO_ALARM","severity":"NO_ALARM"}`), 0, "0 elements"},
		{"int out of range", entry(`{"name":"x_i1","value":[2147483648],"status":"NO_ALARM","severity":"NO_ALARM"}`), 0, "bad value"},
		{"int fraction", entry(`{"name":"x_i1","value":[1.5],"status":"NO_ALARM","severity":"NO_ALARM"}`), 0, "bad value"},
		{"float text", entry(`{"name":"x_f1","value":["nan"],"status":"NO_ALARM","severity":"NO_ALARM"}`), 0, "not a number"},
		{"float overflow", entry(`{"name":"x_f1","value":[1e400],"status":"NO_ALARM","severity":"NO_ALARM"}`), 0, "range"},
		{"float null", entry(`{"name":"x_f1","value":[null],"status":"NO_ALARM","severity":"NO_ALARM"}`), 0, "bad value"},
		{"char too long", entry(`{"name":"x_c2","value":"abc","status":"NO_ALARM","severity":"NO_ALARM"}`), 0, "3 elements"},
		{"char NUL", entry(`{"name":"x_c2","value":"a\u0000","status":"NO_ALARM","severity":"NO_ALARM"}`), 0, "NUL"},
		{"char number", entry(`{"name":"x_c2","value":[65],"status":"NO_ALARM","severity":"NO_ALARM"}`), 0, "bad value"},
		{"char bad base64", entry(`{"name":"x_c2","value":{"base64":"!!"},"status":"NO_ALARM","severity":"NO_ALARM"}`), 0, "bad value"},
		{"char base64 key", entry(`{"name":"x_c2","value":{"b64":"QQ=="},"status":"NO_ALARM","severity":"NO_ALARM"}`), 0, "bad value"},
		{"unknown entry member", entry(`{"name":"x_f1","status":"NO_ALARM","severity":"NO_ALARM","units":"mm"}`), 0, "units"},
		{"bad status", entry(`{"name":"x_f1","status":"BAD","severity":"NO_ALARM"}`), 0, "alarm status"},
		{"missing status", entry(`{"name":"x_f1","severity":"NO_ALARM"}`), 0, "alarm status"},
		{"bad severity", entry(`{"name":"x_f1","status":"NO_ALARM","severity":"minor"}`), 0, "alarm severity"},
		{"bad limit severity", entry(`{"name":"x_f1","status":"NO_ALARM","severity":"NO_ALARM","hhsv":"4"}`), 0, "hhsv"},
		{"bad stamp", entry(`{"name":"x_f1","status":"NO_ALARM","severity":"NO_ALARM","stamp":"yesterday"}`), 0, "time stamp"},
		{"stamp before 1990", entry(`{"name":"x_f1","status":"NO_ALARM","severity":"NO_ALARM","stamp":"1989-12-31T23:59:59Z"}`), 0, "EPICS time range"},
		{"bad prec", entry(`{"name":"x_f1","status":"NO_ALARM","severity":"NO_ALARM","prec":99}`), 0, "PREC"},
		{"bad egu", entry(`{"name":"x_f1","status":"NO_ALARM","severity":"NO_ALARM","egu":"0123456789abcdef"}`), 0, "EGU"},
		{"bad limit", entry(`{"name":"x_f1","status":"NO_ALARM","severity":"NO_ALARM","hihi":"high"}`), 0, "not a number"},
		{"duplicate", entry(`{"name":"x_f1","status":"NO_ALARM","severity":"NO_ALARM"},{"name":"x_f1","status":"NO_ALARM","severity":"NO_ALARM"}`), 1, "twice"},
		{"second entry bad", entry(`{"name":"x_f1","status":"NO_ALARM","severity":"NO_ALARM"},{"name":"y","status":"NO_ALARM","severity":"NO_ALARM"}`), 1, "not a relay PV name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "relay.json")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			pvs, err := Load(path)
			var ce *CorruptError
			if !errors.As(err, &ce) {
				t.Fatalf("Load = %v, %v; want a *CorruptError", pvs, err)
			}
			if ce.Path != path || ce.Entry != tt.entry || !strings.Contains(ce.Reason, tt.reason) || pvs != nil {
				t.Errorf("got %+v (%v)", ce, ce)
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "corrupt") {
				t.Errorf("error %q", err)
			}
		})
	}
}

func TestLoadAcceptsHandWrittenForms(t *testing.T) {
	path := filepath.Join(t.TempDir(), "relay.json")
	content := `{"pvs":[
	  {"name":"a_f3","value":[1,"+Inf",2e0],"status":"HIHI","severity":"MAJOR","stamp":"2024-01-02T04:04:05.5+01:00","hihi":"NaN","hhsv":"MAJOR","lsv":"NO_ALARM"},
	  {"name":"b_c4","value":null,"status":"NO_ALARM","severity":"NO_ALARM"},
	  {"name":"c_i1","status":"UDF","severity":"INVALID"},
	  {"name":"d_C4","value":{"base64":""},"status":"NO_ALARM","severity":"NO_ALARM"},
	  {"name":"e_c4","value":{"base64":"/w=="},"status":"NO_ALARM","severity":"NO_ALARM"}
	], "version": 1, "format": "pvhub-relay-autosave"}`
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	pvs, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []Saved{
		{Name: "a_f3", Defined: true, Value: dbl(1, math.Inf(1), 2), Status: wire.StatHiHi, Severity: wire.SevMajor,
			Stamp: wire.TimestampOf(time.Date(2024, 1, 2, 3, 4, 5, 5e8, time.UTC)), Attrs: Attributes{HIHI: math.NaN(), HHSV: wire.SevMajor}},
		{Name: "b_c4", Status: wire.StatNoAlarm, Severity: wire.SevNoAlarm},
		{Name: "c_i1", Status: wire.StatUDF, Severity: wire.SevInvalid},
		{Name: "d_C4", Defined: true, Value: chars("")},
		{Name: "e_c4", Defined: true, Value: chars("\xff")},
	}
	if len(pvs) != len(want) {
		t.Fatalf("loaded %+v", pvs)
	}
	for i := range want {
		wantSameSaved(t, pvs[i], want[i])
	}
}

// listDir returns the names in dir.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestSaveIsAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "relay.json")
	good := []Saved{{Name: "a_f1", Defined: true, Value: dbl(1), Stamp: wire.TimestampOf(t0)}}
	if err := Save(path, good); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, %v", info.Mode(), err)
	}

	// A bad entry after good ones fails the save mid-file: the temporary file
	// is removed and the good file survives.
	many := make([]Saved, 1000, 1001)
	for i := range many {
		many[i] = Saved{Name: "pv" + itoa(i) + "_f1000", Defined: true, Value: dbl(make([]float64, 1000)...)}
	}
	for _, bad := range [][]Saved{
		append(many[:1000:1000], Saved{Name: "bad_f0"}),
		append(many[:1000:1000], many[0]),
	} {
		err := Save(path, bad)
		if err == nil {
			t.Fatal("a bad save succeeded")
		}
		if !strings.Contains(err.Error(), "entry 1000") {
			t.Errorf("error %q", err)
		}
		after, _ := os.ReadFile(path)
		if !bytes.Equal(before, after) {
			t.Error("a failed save changed the file")
		}
		if names := listDir(t, dir); !slices.Equal(names, []string{"relay.json"}) {
			t.Errorf("directory after a failed save: %v", names)
		}
	}
	if pvs, err := Load(path); err != nil || len(pvs) != 1 {
		t.Errorf("Load after failed saves = %v, %v", pvs, err)
	}

	// A rename that fails (path is a non-empty directory) removes the
	// temporary file too.
	sub := filepath.Join(dir, "sub")
	if err := os.MkdirAll(filepath.Join(sub, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Save(sub, good); err == nil {
		t.Error("saving over a directory succeeded")
	}
	if names := listDir(t, dir); !slices.Equal(names, []string{"relay.json", "sub"}) {
		t.Errorf("directory after a failed rename: %v", names)
	}

	// A missing directory fails before anything is written.
	if err := Save(filepath.Join(dir, "none", "relay.json"), good); err == nil {
		t.Error("saving into a missing directory succeeded")
	}
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

func TestKeepAside(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "relay.json")
	now := time.Date(2024, 1, 31, 12, 0, 0, 0, time.FixedZone("CET", 3600))
	for i, want := range []string{
		path + ".corrupt-20240131T110000Z",
		path + ".corrupt-20240131T110000Z-2",
		path + ".corrupt-20240131T110000Z-3",
	} {
		content := []byte("corrupt " + itoa(i))
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := KeepAside(path, now)
		if err != nil || got != want {
			t.Fatalf("KeepAside = %q, %v; want %q", got, err, want)
		}
		if b, err := os.ReadFile(got); err != nil || !bytes.Equal(b, content) {
			t.Errorf("kept %q, %v", b, err)
		}
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the corrupt file is still there: %v", err)
		}
	}
	if b, _ := os.ReadFile(path + ".corrupt-20240131T110000Z"); string(b) != "corrupt 0" {
		t.Errorf("the first kept file was replaced: %q", b)
	}
	if _, err := KeepAside(path, now); err == nil {
		t.Error("KeepAside of a missing file succeeded")
	}
}

// TestCorruptFileLifecycle is the sequence a daemon runs at start: Load, and
// on a *CorruptError keep the file aside and start empty.
func TestCorruptFileLifecycle(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "relay.json")
	if err := os.WriteFile(path, []byte(`{"format":"pvhub-relay-autosave","version":1,"pvs":[`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	var ce *CorruptError
	if !errors.As(err, &ce) {
		t.Fatalf("Load = %v", err)
	}
	aside, err := KeepAside(path, t0)
	if err != nil {
		t.Fatal(err)
	}
	if err := Save(path, nil); err != nil {
		t.Fatal(err)
	}
	if pvs, err := Load(path); err != nil || len(pvs) != 0 {
		t.Errorf("Load = %v, %v", pvs, err)
	}
	if _, err := os.Stat(aside); err != nil {
		t.Error(err)
	}
}

func TestJSONFloat(t *testing.T) {
	for _, f := range []float64{0, math.Copysign(0, -1), 1, -1.5, 0.1, 1e21, 1e-7, 5e-324, math.MaxFloat64, -math.MaxFloat64,
		math.Inf(1), math.Inf(-1), math.NaN(), 123456789012345678} {
		b := appendJSONFloat(nil, f)
		if !json.Valid(b) {
			t.Errorf("%v encodes as invalid JSON %s", f, b)
		}
		g, err := parseJSONFloat(b)
		if err != nil || math.Float64bits(g) != math.Float64bits(f) && !(math.IsNaN(f) && math.IsNaN(g)) {
			t.Errorf("%v -> %s -> %v, %v", f, b, g, err)
		}
	}
}
