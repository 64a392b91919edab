package config

import (
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// kind is the type of a key's value.
type kind int

const (
	kindBool kind = iota
	kindInt
	kindString
	kindDuration
	kindList
)

// String names the kind as the configuration reference does.
func (k kind) String() string {
	switch k {
	case kindBool:
		return "bool"
	case kindInt:
		return "integer"
	case kindString:
		return "text"
	case kindDuration:
		return "duration"
	case kindList:
		return "list"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// kindWant is the "must be <want>" phrase of a field that gives none.
var kindWant = map[kind]string{kindBool: wantBool, kindInt: wantInt, kindString: wantString,
	kindDuration: wantDuration, kindList: wantList}

// field is one typed key (transports.<name>.* aside).
type field struct {
	key  string
	kind kind
	want string // for "must be <want>, got ..." when the value has the wrong type
	ptr  func(*Config) any
	// derived keys are left out of the defaults layer; Config.deriveDefaults
	// fills them when no layer sets them.
	derived bool
}

// fields lists every typed key, in the order YAML prints them.
var fields = []field{
	{key: "relay.enabled", kind: kindBool, ptr: func(c *Config) any { return &c.Relay.Enabled }},
	{key: "relay.prefix", kind: kindString, ptr: func(c *Config) any { return &c.Relay.Prefix }},
	{key: "relay.autosave.path", kind: kindString, ptr: func(c *Config) any { return &c.Relay.Autosave.Path }},
	{key: "relay.autosave.period", kind: kindDuration, want: wantPositiveDuration, ptr: func(c *Config) any { return &c.Relay.Autosave.Period }},
	{key: "relay.max_pvs", kind: kindInt, want: wantPositiveInt, ptr: func(c *Config) any { return &c.Relay.MaxPVs }},
	{key: "relay.max_elements", kind: kindInt, want: wantPositiveInt, ptr: func(c *Config) any { return &c.Relay.MaxElements }},

	{key: "ca.server_port", kind: kindInt, want: wantServerPort, ptr: func(c *Config) any { return &c.CA.ServerPort }},
	{key: "ca.search_port", kind: kindInt, want: wantPort, ptr: func(c *Config) any { return &c.CA.SearchPort }},
	{key: "ca.addr_list", kind: kindList, ptr: func(c *Config) any { return &c.CA.AddrList }},
	{key: "ca.auto_addr_list", kind: kindBool, ptr: func(c *Config) any { return &c.CA.AutoAddrList }},
	{key: "ca.name_servers", kind: kindList, ptr: func(c *Config) any { return &c.CA.NameServers }},
	{key: "ca.intf_addr_list", kind: kindList, ptr: func(c *Config) any { return &c.CA.IntfAddrList }},
	{key: "ca.ignore_addr_list", kind: kindList, ptr: func(c *Config) any { return &c.CA.IgnoreAddrList }},
	{key: "ca.beacon_addr_list", kind: kindList, ptr: func(c *Config) any { return &c.CA.BeaconAddrList }},
	{key: "ca.auto_beacon_addr_list", kind: kindBool, ptr: func(c *Config) any { return &c.CA.AutoBeaconAddrList }},
	{key: "ca.beacon_port", kind: kindInt, want: wantPort, derived: true, ptr: func(c *Config) any { return &c.CA.BeaconPort }},
	{key: "ca.beacon_period", kind: kindDuration, want: wantMin100ms, ptr: func(c *Config) any { return &c.CA.BeaconPeriod }},
	{key: "ca.repeater_port", kind: kindInt, want: wantPort, ptr: func(c *Config) any { return &c.CA.RepeaterPort }},
	{key: "ca.conn_timeout", kind: kindDuration, want: wantMin100ms, ptr: func(c *Config) any { return &c.CA.ConnTimeout }},
	{key: "ca.max_search_period", kind: kindDuration, want: wantMin1m, ptr: func(c *Config) any { return &c.CA.MaxSearchPeriod }},
	{key: "ca.max_array_bytes", kind: kindInt, want: wantMaxArrayBytes, ptr: func(c *Config) any { return &c.CA.MaxArrayBytes }},

	{key: "write.allow", kind: kindList, derived: true, ptr: func(c *Config) any { return &c.Write.Allow }},
	{key: "write.deny", kind: kindList, ptr: func(c *Config) any { return &c.Write.Deny }},

	{key: "log.level", kind: kindString, want: wantLogLevel, ptr: func(c *Config) any { return &c.Log.Level }},
	{key: "log.format", kind: kindString, want: wantLogFormat, ptr: func(c *Config) any { return &c.Log.Format }},

	{key: "metrics.enabled", kind: kindBool, ptr: func(c *Config) any { return &c.Metrics.Enabled }},
	{key: "metrics.listen", kind: kindString, ptr: func(c *Config) any { return &c.Metrics.Listen }},
}

// transportKeys are the typed keys of every transports.<name>.
var transportKeys = []string{"enabled", "listen", "path"}

var fieldByKey = func() map[string]*field {
	m := make(map[string]*field, len(fields))
	for i := range fields {
		f := &fields[i]
		if f.want == "" {
			f.want = kindWant[f.kind]
		}
		m[f.key] = f
	}
	return m
}()

// sections are the keys that hold mappings: relay, relay.autosave, ca, ...
var sections = func() map[string]bool {
	m := map[string]bool{"transports": true}
	for _, f := range fields {
		for i := strings.LastIndexByte(f.key, '.'); i > 0; i = strings.LastIndexByte(f.key[:i], '.') {
			m[f.key[:i]] = true
		}
	}
	return m
}()

// value returns the field's value in c.
func (f *field) value(c *Config) any {
	switch p := f.ptr(c).(type) {
	case *bool:
		return *p
	case *int:
		return *p
	case *string:
		return *p
	case *time.Duration:
		return *p
	case *[]string:
		return *p
	}
	panic("config: bad field " + f.key)
}

// set decodes v into the field of c, or returns the reason it cannot.
func (f *field) set(c *Config, v any) (reason string, ok bool) {
	if b, isBad := v.(badValue); isBad {
		return string(b), false
	}
	switch p := f.ptr(c).(type) {
	case *bool:
		*p, ok = toBool(v)
	case *int:
		*p, ok = toInt(v)
	case *string:
		*p, ok = v.(string)
	case *time.Duration:
		*p, ok = toDuration(v)
	case *[]string:
		var l []string
		if l, reason = toList(v); reason != "" {
			return reason, false
		}
		*p, ok = l, true
	}
	if !ok {
		return "must be " + f.want + ", got " + show(v), false
	}
	return "", true
}

// badValue is a value that a layer could not read, with the reason; decoding
// reports it only when no later layer overrides it.
type badValue string

func toBool(v any) (bool, bool) {
	switch v := v.(type) {
	case bool:
		return v, true
	case string:
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "true", "yes", "on", "1":
			return true, true
		case "false", "no", "off", "0":
			return false, true
		}
	}
	return false, false
}

func toInt(v any) (int, bool) {
	switch v := v.(type) {
	case int:
		return v, true
	case int64:
		return int(v), v >= math.MinInt && v <= math.MaxInt
	case uint64:
		return int(v), v <= math.MaxInt
	case float64:
		return int(v), v == math.Trunc(v) && math.Abs(v) < 1<<53
	case string:
		n, err := strconv.Atoi(strings.TrimSpace(v))
		return n, err == nil
	}
	return 0, false
}

func toDuration(v any) (time.Duration, bool) {
	switch v := v.(type) {
	case time.Duration:
		return v, true
	case string:
		d, err := time.ParseDuration(strings.TrimSpace(v))
		return d, err == nil
	}
	return 0, false
}

// toList accepts a list of strings, or one string of entries separated by
// spaces or commas (as in EPICS variables). An empty list decodes as nil.
func toList(v any) ([]string, string) {
	var out []string
	switch v := v.(type) {
	case string:
		out = strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' })
	case []string:
		out = slices.Clone(v)
	case []any:
		for i, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, "entry " + strconv.Itoa(i) + " must be a string, got " + show(e)
			}
			out = append(out, s)
		}
	default:
		return nil, "must be " + wantList + ", got " + show(v)
	}
	if len(out) == 0 {
		return nil, ""
	}
	return out, ""
}

// knownKeys returns every key a user may set, for suggestions: the typed keys,
// and the typed keys of the built-in transports and of names.
func knownKeys(names []string) []string {
	out := make([]string, 0, len(fields)+3*(len(builtinTransports)+len(names)))
	for _, f := range fields {
		out = append(out, f.key)
	}
	all := append(slices.Collect(maps.Keys(builtinTransports)), names...)
	for _, n := range all {
		for _, k := range transportKeys {
			out = append(out, "transports."+n+"."+k)
		}
	}
	return out
}

// suggest returns the candidate closest to s, when it is close enough to be a
// likely typo; "" otherwise.
func suggest(s string, candidates []string) string {
	best, bestD := "", math.MaxInt
	for _, c := range candidates {
		if d := editDistance(s, c); d < bestD || d == bestD && c < best {
			best, bestD = c, d
		}
	}
	if bestD <= max(2, len(s)/5) && bestD < len(s) {
		return best
	}
	return ""
}

// editDistance is the Levenshtein distance of a and b, bytewise.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
