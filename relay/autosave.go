package relay

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/pvhub/pvhub/ca/wire"
)

// Autosave file identification.
const (
	// AutosaveFormat is the value of the file's "format" member.
	AutosaveFormat = "pvhub-relay-autosave"
	// AutosaveVersion is the version of the file format Save writes and Load
	// reads.
	AutosaveVersion = 1
)

// Saved is the autosaved state of one relay PV.
type Saved struct {
	// Name is the PV's name without the prefix, such as "temp_f1", so that the
	// PV moves to a new prefix when the configuration changes it.
	Name string
	// Defined reports whether the PV had been written; Value is empty if not.
	Defined bool
	// Value is the value in the PV's native type.
	Value wire.Value
	// Attrs are the PV's attributes.
	Attrs Attributes
	// Status and Severity are the PV's alarm.
	Status   wire.AlarmStatus
	Severity wire.AlarmSeverity
	// Stamp is the time stamp of the last put.
	Stamp wire.Timestamp
}

// Save returns the state to autosave. The value is a copy.
func (s *State) Save() Saved {
	sv := Saved{
		Name:     s.name[s.plen:],
		Defined:  s.Defined(),
		Attrs:    s.Attributes(),
		Status:   s.status,
		Severity: s.sev,
		Stamp:    s.stamp,
	}
	if sv.Defined {
		sv.Value = s.Value()
	}
	return sv
}

// Restore returns the state sv describes, named with prefix. Its value,
// attributes, alarm and time stamp are sv's, as they were saved; the alarm is
// not recomputed. It fails when sv does not describe a relay PV (Load has
// checked that for a loaded entry) or when the name with prefix is not a
// relay name (too long for CA). Restore does not check the count against the
// relay's maximum; call Name.Check on the result's Name.
func Restore(sv Saved, prefix string) (*State, error) {
	if _, err := checkSaved(&sv); err != nil {
		return nil, err
	}
	n, ok := ParseName(prefix, prefix+sv.Name)
	if !ok {
		return nil, fmt.Errorf("relay: %q with the prefix %q is not a relay PV name", sv.Name, prefix)
	}
	s := New(n)
	if !sv.Attrs.isZero() {
		a := sv.Attrs
		s.attrs = &a
	}
	if sv.Defined {
		s.flags |= flagDefined
		s.store(&sv.Value)
	}
	s.status, s.sev, s.stamp = sv.Status, sv.Severity, sv.Stamp
	return s, nil
}

// checkSaved checks that sv describes a relay PV whose value fits it, and
// returns its name parsed without a prefix.
func checkSaved(sv *Saved) (Name, error) {
	n, ok := ParseName("", sv.Name)
	if !ok || n.Field != "" {
		return Name{}, fmt.Errorf("%q is not a relay PV name (without the prefix)", sv.Name)
	}
	l := sv.Value.Len()
	switch {
	case !sv.Defined && l != 0:
		return n, errors.New("a PV never written has a value")
	case !sv.Defined:
	case sv.Value.Type != n.NativeType():
		return n, fmt.Errorf("the value has the type %s, not the PV's %s", sv.Value.Type, n.NativeType())
	case n.Count == 1 && n.Kind != Char && l != 1:
		return n, fmt.Errorf("the scalar's value has %d elements", l)
	case l > n.Count:
		return n, fmt.Errorf("the value has %d elements, more than the count of %d", l, n.Count)
	case n.Kind == Char && bytes.IndexByte(sv.Value.Chars, 0) >= 0:
		return n, errors.New("the text holds a NUL")
	}
	if err := sv.Attrs.validate(); err != nil {
		return n, err
	}
	switch {
	case sv.Status > wire.StatWriteAccess:
		return n, fmt.Errorf("alarm status %d is unknown", sv.Status)
	case sv.Severity > wire.SevInvalid:
		return n, fmt.Errorf("alarm severity %d is unknown", sv.Severity)
	case sv.Stamp.Nsec >= 1e9:
		return n, fmt.Errorf("the time stamp has %d nanoseconds", sv.Stamp.Nsec)
	}
	return n, nil
}

// CorruptError reports an autosave file that cannot be loaded: bad JSON, an
// unknown format or version, or an entry that no longer describes a relay PV.
// The caller should keep the file aside (KeepAside) rather than overwrite it.
type CorruptError struct {
	Path   string
	Entry  int    // the index of the bad entry, or -1 when the document itself is bad
	Name   string // the bad entry's name, when known
	Reason string
}

// Error describes the corruption.
func (e *CorruptError) Error() string {
	switch {
	case e.Entry < 0:
		return fmt.Sprintf("relay autosave %s is corrupt: %s", e.Path, e.Reason)
	case e.Name != "":
		return fmt.Sprintf("relay autosave %s is corrupt: entry %d (%q): %s", e.Path, e.Entry, e.Name, e.Reason)
	}
	return fmt.Sprintf("relay autosave %s is corrupt: entry %d: %s", e.Path, e.Entry, e.Reason)
}

// fileEntry is one PV in the autosave file.
type fileEntry struct {
	Name     string          `json:"name"`
	Value    json.RawMessage `json:"value,omitempty"` // absent for a PV never written
	Status   string          `json:"status"`
	Severity string          `json:"severity"`
	Stamp    string          `json:"stamp,omitempty"` // RFC 3339 with nanoseconds; absent when zero
	EGU      string          `json:"egu,omitempty"`
	DESC     string          `json:"desc,omitempty"`
	PREC     int16           `json:"prec,omitempty"`
	HOPR     jsonFloat       `json:"hopr,omitzero"`
	LOPR     jsonFloat       `json:"lopr,omitzero"`
	DRVH     jsonFloat       `json:"drvh,omitzero"`
	DRVL     jsonFloat       `json:"drvl,omitzero"`
	HIHI     jsonFloat       `json:"hihi,omitzero"`
	HIGH     jsonFloat       `json:"high,omitzero"`
	LOW      jsonFloat       `json:"low,omitzero"`
	LOLO     jsonFloat       `json:"lolo,omitzero"`
	HHSV     string          `json:"hhsv,omitempty"` // severity names; absent for NO_ALARM
	HSV      string          `json:"hsv,omitempty"`
	LSV      string          `json:"lsv,omitempty"`
	LLSV     string          `json:"llsv,omitempty"`
}

// jsonFloat is a float64 that JSON holds as a number, or as the string "NaN",
// "Inf" or "-Inf". Its zero value is +0 only, so that -0 survives omitzero.
type jsonFloat float64

// IsZero reports whether f is +0.
func (f jsonFloat) IsZero() bool { return math.Float64bits(float64(f)) == 0 }

// MarshalJSON encodes f.
func (f jsonFloat) MarshalJSON() ([]byte, error) { return appendJSONFloat(nil, float64(f)), nil }

// UnmarshalJSON decodes f.
func (f *jsonFloat) UnmarshalJSON(b []byte) error {
	v, err := parseJSONFloat(b)
	*f = jsonFloat(v)
	return err
}

// appendJSONFloat appends f as a JSON number that reads back exactly, or as a
// string for NaN and the infinities.
func appendJSONFloat(b []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(b, `"Inf"`...)
	case math.IsInf(f, -1):
		return append(b, `"-Inf"`...)
	}
	return strconv.AppendFloat(b, f, 'g', -1, 64)
}

// parseJSONFloat reads what appendJSONFloat writes.
func parseJSONFloat(b []byte) (float64, error) {
	if len(b) > 0 && b[0] == '"' {
		switch string(b) {
		case `"NaN"`:
			return math.NaN(), nil
		case `"Inf"`, `"+Inf"`:
			return math.Inf(1), nil
		case `"-Inf"`:
			return math.Inf(-1), nil
		}
		return 0, fmt.Errorf("%s is not a number", b)
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return 0, fmt.Errorf("%s is not a finite number in range", b)
	}
	return f, nil
}

// toFile converts sv, which checkSaved accepted for the name n, to its file form.
func toFile(sv *Saved, n Name) fileEntry {
	a := &sv.Attrs
	e := fileEntry{
		Name: sv.Name, Status: sv.Status.String(), Severity: sv.Severity.String(),
		EGU: a.EGU, DESC: a.DESC, PREC: a.PREC,
		HOPR: jsonFloat(a.HOPR), LOPR: jsonFloat(a.LOPR), DRVH: jsonFloat(a.DRVH), DRVL: jsonFloat(a.DRVL),
		HIHI: jsonFloat(a.HIHI), HIGH: jsonFloat(a.HIGH), LOW: jsonFloat(a.LOW), LOLO: jsonFloat(a.LOLO),
		HHSV: sevName(a.HHSV), HSV: sevName(a.HSV), LSV: sevName(a.LSV), LLSV: sevName(a.LLSV),
	}
	if !sv.Stamp.IsZero() {
		e.Stamp = sv.Stamp.Time().Format(time.RFC3339Nano)
	}
	if sv.Defined {
		e.Value = appendJSONValue(nil, n.Kind, &sv.Value)
	}
	return e
}

// sevName names a limit's severity for the file: "" for NO_ALARM.
func sevName(s wire.AlarmSeverity) string {
	if s == wire.SevNoAlarm {
		return ""
	}
	return s.String()
}

// appendJSONValue appends v as JSON: an array of numbers for a numeric kind,
// and for a char PV a string when the text is valid UTF-8, otherwise an object
// {"base64": "..."}.
func appendJSONValue(b []byte, k Kind, v *wire.Value) []byte {
	switch k {
	case Float:
		b = append(b, '[')
		for i, f := range v.Doubles {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONFloat(b, f)
		}
		return append(b, ']')
	case Int:
		b = append(b, '[')
		for i, l := range v.Longs {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, int64(l), 10)
		}
		return append(b, ']')
	}
	if utf8.Valid(v.Chars) {
		q, _ := json.Marshal(string(v.Chars))
		return append(b, q...)
	}
	b = append(b, `{"base64":"`...)
	b = base64.StdEncoding.AppendEncode(b, v.Chars)
	return append(b, `"}`...)
}

// fromFile converts an entry read from the file and checks it.
func fromFile(e *fileEntry) (Saved, error) {
	sv := Saved{Name: e.Name}
	n, ok := ParseName("", e.Name)
	if !ok || n.Field != "" {
		return sv, fmt.Errorf("%q is not a relay PV name (without the prefix)", e.Name)
	}
	var err error
	if sv.Status, err = parseStatus(e.Status); err != nil {
		return sv, err
	}
	if sv.Severity, err = parseSeverity("severity", e.Severity); err != nil {
		return sv, err
	}
	if e.Stamp != "" {
		t, err := time.Parse(time.RFC3339Nano, e.Stamp)
		if err != nil {
			return sv, fmt.Errorf("bad time stamp: %v", err)
		}
		if sec := t.Unix() - wire.EpochOffset; sec < 0 || sec > math.MaxUint32 {
			return sv, fmt.Errorf("time stamp %s is outside the EPICS time range", e.Stamp)
		}
		sv.Stamp = wire.TimestampOf(t)
	}
	sv.Attrs = Attributes{
		EGU: e.EGU, DESC: e.DESC, PREC: e.PREC,
		HOPR: float64(e.HOPR), LOPR: float64(e.LOPR), DRVH: float64(e.DRVH), DRVL: float64(e.DRVL),
		HIHI: float64(e.HIHI), HIGH: float64(e.HIGH), LOW: float64(e.LOW), LOLO: float64(e.LOLO),
	}
	for _, p := range []struct {
		field string
		text  string
		dst   *wire.AlarmSeverity
	}{{"hhsv", e.HHSV, &sv.Attrs.HHSV}, {"hsv", e.HSV, &sv.Attrs.HSV}, {"lsv", e.LSV, &sv.Attrs.LSV}, {"llsv", e.LLSV, &sv.Attrs.LLSV}} {
		if p.text == "" {
			continue
		}
		if *p.dst, err = parseSeverity(p.field, p.text); err != nil {
			return sv, err
		}
	}
	if len(e.Value) > 0 && string(e.Value) != "null" {
		sv.Defined = true
		if sv.Value, err = parseJSONValue(n.Kind, e.Value); err != nil {
			return sv, fmt.Errorf("bad value: %v", err)
		}
	}
	if _, err := checkSaved(&sv); err != nil {
		return sv, err
	}
	return sv, nil
}

// parseStatus reads an alarm status name.
func parseStatus(s string) (wire.AlarmStatus, error) {
	for st := wire.StatNoAlarm; st <= wire.StatWriteAccess; st++ {
		if st.String() == s {
			return st, nil
		}
	}
	return 0, fmt.Errorf("%q is not an alarm status", s)
}

// parseSeverity reads a severity name.
func parseSeverity(field, s string) (wire.AlarmSeverity, error) {
	for sev := wire.SevNoAlarm; sev <= wire.SevInvalid; sev++ {
		if sev.String() == s {
			return sev, nil
		}
	}
	return 0, fmt.Errorf("%s %q is not an alarm severity", field, s)
}

// parseJSONValue reads what appendJSONValue writes.
func parseJSONValue(k Kind, b json.RawMessage) (wire.Value, error) {
	v := wire.Value{Type: k.NativeType()}
	switch k {
	case Float:
		var fs []jsonFloat
		if err := json.Unmarshal(b, &fs); err != nil {
			return v, err
		}
		v.Doubles = make([]float64, len(fs))
		for i, f := range fs {
			v.Doubles[i] = float64(f)
		}
		return v, nil
	case Int:
		v.Longs = []int32{}
		err := json.Unmarshal(b, &v.Longs)
		return v, err
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return v, err
		}
		v.Chars = []byte(s)
		return v, nil
	}
	var o struct {
		Base64 *[]byte `json:"base64"`
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&o); err != nil {
		return v, err
	}
	if o.Base64 == nil {
		return v, errors.New(`a char value is a string or {"base64": "..."}`)
	}
	v.Chars = *o.Base64
	if v.Chars == nil {
		v.Chars = []byte{}
	}
	return v, nil
}

// Save writes pvs to the autosave file at path atomically: it writes a
// temporary file in the same directory, syncs it to disk, renames it over
// path and syncs the directory. The file at path is always either the old
// file or the complete new one. On any error, an entry that does not describe
// a relay PV or two entries with the same name included, the temporary file is
// removed and path is left as it was. The new file has mode 0600. A crash
// during Save may leave a temporary file, named <path>.tmp-<random>, behind.
func Save(path string, pvs []Saved) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("relay autosave: %w", err)
	}
	closed := false
	defer func() {
		if err == nil {
			return
		}
		if !closed {
			tmp.Close()
		}
		os.Remove(tmp.Name())
		err = fmt.Errorf("relay autosave %s: %w", path, err)
	}()
	w := bufio.NewWriterSize(tmp, 64<<10)
	fmt.Fprintf(w, "{\"format\":%q,\"version\":%d,\"pvs\":[", AutosaveFormat, AutosaveVersion)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	seen := make(map[string]struct{}, len(pvs))
	for i := range pvs {
		sv := &pvs[i]
		n, err := checkSaved(sv)
		if err != nil {
			return fmt.Errorf("entry %d (%q): %w", i, sv.Name, err)
		}
		if _, dup := seen[sv.Name]; dup {
			return fmt.Errorf("entry %d: %q appears twice", i, sv.Name)
		}
		seen[sv.Name] = struct{}{}
		buf.Reset()
		if err := enc.Encode(toFile(sv, n)); err != nil {
			return fmt.Errorf("entry %d (%q): %w", i, sv.Name, err)
		}
		if i > 0 {
			w.WriteByte(',')
		}
		w.WriteByte('\n')
		w.Write(bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}))
	}
	w.WriteString("\n]}\n")
	if err := w.Flush(); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	closed = true
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir syncs a directory, so that a rename in it is durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// errReader remembers the first read error other than io.EOF, so that Load
// tells an I/O error from a corrupt file.
type errReader struct {
	r   io.Reader
	err error
}

func (r *errReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF && r.err == nil {
		r.err = err
	}
	return n, err
}

// Load reads the autosave file at path. A missing file is not an error: it
// returns no entries. A file that is not a complete autosave document of
// version AutosaveVersion, or that holds an entry that does not describe a
// relay PV (a name that no longer parses, a value that does not fit, an
// attribute out of range, a name twice), gives a *CorruptError; other errors
// (such as a read error) are returned as they are. Load does not check counts
// against the relay's maximum.
func Load(path string) ([]Saved, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("relay autosave: %w", err)
	}
	defer f.Close()
	r := &errReader{r: f}
	pvs, cerr := decodeFile(json.NewDecoder(bufio.NewReaderSize(r, 64<<10)))
	if r.err != nil {
		return nil, fmt.Errorf("relay autosave %s: %w", path, r.err)
	}
	if cerr != nil {
		cerr.Path = path
		return nil, cerr
	}
	return pvs, nil
}

// decodeFile decodes an autosave document. The error's Path is left empty.
func decodeFile(d *json.Decoder) ([]Saved, *CorruptError) {
	bad := func(format string, args ...any) *CorruptError {
		return &CorruptError{Entry: -1, Reason: fmt.Sprintf(format, args...)}
	}
	d.DisallowUnknownFields()
	if err := expectDelim(d, '{'); err != nil {
		return nil, bad("%v", err)
	}
	var (
		format, version, list bool
		pvs                   []Saved
	)
	for d.More() {
		tok, err := d.Token()
		if err != nil {
			return nil, bad("%v", err)
		}
		switch key, _ := tok.(string); key {
		case "format":
			var s string
			if err := d.Decode(&s); err != nil || s != AutosaveFormat {
				return nil, bad("the format is not %q", AutosaveFormat)
			}
			format = true
		case "version":
			var v json.RawMessage
			if err := d.Decode(&v); err != nil || string(v) != strconv.Itoa(AutosaveVersion) {
				return nil, bad("the version is %s, not %d", v, AutosaveVersion)
			}
			version = true
		case "pvs":
			if list {
				return nil, bad(`"pvs" appears twice`)
			}
			list = true
			if err := expectDelim(d, '['); err != nil {
				return nil, bad("pvs: %v", err)
			}
			seen := map[string]struct{}{}
			for i := 0; d.More(); i++ {
				var e fileEntry
				if err := d.Decode(&e); err != nil {
					return nil, &CorruptError{Entry: i, Name: e.Name, Reason: err.Error()}
				}
				sv, err := fromFile(&e)
				if err != nil {
					return nil, &CorruptError{Entry: i, Name: e.Name, Reason: err.Error()}
				}
				if _, dup := seen[sv.Name]; dup {
					return nil, &CorruptError{Entry: i, Name: e.Name, Reason: "the name appears twice"}
				}
				seen[sv.Name] = struct{}{}
				pvs = append(pvs, sv)
			}
			if err := expectDelim(d, ']'); err != nil {
				return nil, bad("pvs: %v", err)
			}
		default:
			return nil, bad("unknown member %v", tok)
		}
	}
	if err := expectDelim(d, '}'); err != nil {
		return nil, bad("%v", err)
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, bad("data after the document")
	}
	switch {
	case !format:
		return nil, bad("no format")
	case !version:
		return nil, bad("no version")
	case !list:
		return nil, bad("no pvs")
	}
	return pvs, nil
}

// expectDelim reads the next token and checks that it is delim.
func expectDelim(d *json.Decoder, delim json.Delim) error {
	tok, err := d.Token()
	if err == io.EOF {
		return fmt.Errorf("unexpected end of file, expecting %v", delim)
	}
	if err != nil {
		return err
	}
	if tok != delim {
		return fmt.Errorf("found %v, expecting %v", tok, delim)
	}
	return nil
}

// KeepAside renames a corrupt autosave file at path to
// <path>.corrupt-<time> (UTC, such as 20240131T120000Z), with a "-2", "-3", …
// suffix if that name is taken, and returns the new name. It never replaces
// an existing file.
func KeepAside(path string, now time.Time) (string, error) {
	stem := path + ".corrupt-" + now.UTC().Format("20060102T150405Z")
	for i := 1; i <= 1000; i++ {
		name := stem
		if i > 1 {
			name += "-" + strconv.Itoa(i)
		}
		// A hard link never replaces its target; then remove the old name.
		err := os.Link(path, name)
		if err == nil {
			if err := os.Remove(path); err != nil {
				return name, fmt.Errorf("relay autosave: %w", err)
			}
			return name, syncDir(filepath.Dir(path))
		}
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if _, serr := os.Lstat(path); serr != nil {
			return "", fmt.Errorf("relay autosave: %w", serr)
		}
		// The file system has no hard links: check, then rename.
		if _, serr := os.Lstat(name); serr == nil {
			continue
		} else if !errors.Is(serr, fs.ErrNotExist) {
			return "", fmt.Errorf("relay autosave: %w", serr)
		}
		if err := os.Rename(path, name); err != nil {
			return "", fmt.Errorf("relay autosave: %w", err)
		}
		return name, syncDir(filepath.Dir(path))
	}
	return "", fmt.Errorf("relay autosave: no free name to keep %s aside", path)
}
