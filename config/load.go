package config

import (
	"fmt"
	"maps"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	kmaps "github.com/knadh/koanf/maps"
	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/rawbytes"
	"github.com/knadh/koanf/v2"
)

// EnvPrefix starts the environment variables that set configuration keys.
const EnvPrefix = "PVHUB_"

// LoadOptions say where Load finds the configuration. The zero value loads
// the defaults alone.
type LoadOptions struct {
	// File is the YAML file to read; empty means none.
	File string
	// Environ is the environment as os.Environ returns it ("NAME=value" each),
	// read for the EPICS_CA_*, EPICS_CAS_* and PVHUB_* variables. Nil means an
	// empty environment: the daemon passes os.Environ(), tests their own list.
	Environ []string
	// Flags are command-line overrides keyed by configuration key, such as
	// "relay.prefix" or "transports.mqtt.enabled". Their values are text, read
	// as environment values are.
	Flags map[string]string
}

// ParseFlag splits a "key=value" command-line override (as in
// `--set relay.prefix=TEST:`) for LoadOptions.Flags.
func ParseFlag(s string) (key, value string, err error) {
	key, value, ok := strings.Cut(s, "=")
	key = strings.TrimSpace(key)
	if !ok || key == "" {
		return "", "", fmt.Errorf("%q: want key=value, such as relay.prefix=TEST:", s)
	}
	return key, value, nil
}

// Load builds the configuration from the defaults, the EPICS variables, the
// file, the PVHUB_ variables and the flags, in that order of precedence (each
// overrides the ones before), and validates it. It reads the file and nothing
// else. The error lists every problem, one *KeyError per line (errors.As finds
// the first), or says why the file cannot be read or parsed.
func Load(o LoadOptions) (*Config, error) {
	environ := dedupEnviron(o.Environ)
	l := &loader{k: koanf.New("."), origin: map[string]string{}, set: map[string]bool{}}

	if err := l.load("default", confmap.Provider(defaultsMap(), ""), nil, nil); err != nil {
		return nil, err
	}
	epics, epicsOrigin := epicsLayer(environ)
	if err := l.load("", confmap.Provider(epics, "."), nil, epicsOrigin); err != nil {
		return nil, err
	}
	if o.File != "" {
		b, err := os.ReadFile(o.File)
		if err != nil {
			return nil, fmt.Errorf("config file: %w", err)
		}
		if err := l.load(o.File, rawbytes.Provider(b), yaml.Parser(), nil); err != nil {
			return nil, fmt.Errorf("config file %s: %w", o.File, err)
		}
	}
	envOrigin := map[string]string{}
	envp := env.Provider(".", env.Opt{
		Prefix:      EnvPrefix,
		EnvironFunc: func() []string { return environ },
		TransformFunc: func(name, v string) (string, any) {
			key := strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(name, EnvPrefix)), "__", ".")
			envOrigin[key] = name
			return key, v
		},
	})
	if err := l.load("", envp, nil, envOrigin); err != nil {
		return nil, err
	}
	flags := make(map[string]any, len(o.Flags))
	for k, v := range o.Flags {
		flags[k] = v
	}
	if err := l.load("flag", confmap.Provider(flags, "."), nil, nil); err != nil {
		return nil, err
	}
	return l.decode()
}

// loader merges the layers and remembers where each key came from.
type loader struct {
	k      *koanf.Koanf
	origin map[string]string // flat key: where its value came from
	set    map[string]bool   // flat keys set by a layer other than the defaults
}

// load merges one layer. Every key is attributed to source, or, when source
// is empty, to origin[key].
func (l *loader) load(source string, p koanf.Provider, pa koanf.Parser, origin map[string]string) error {
	layer := koanf.New(".")
	if err := layer.Load(p, pa); err != nil {
		return err
	}
	raw := pruneNil(layer.Raw())
	flat, _ := kmaps.Flatten(raw, nil, ".")
	for key := range flat {
		if source != "" {
			l.origin[key] = source
		} else {
			l.origin[key] = origin[key]
		}
		if source != "default" {
			l.set[key] = true
		}
	}
	return l.k.Load(confmap.Provider(raw, ""), nil)
}

// pruneNil drops null values, which leave a key unset.
func pruneNil(m map[string]any) map[string]any {
	for k, v := range m {
		switch v := v.(type) {
		case nil:
			delete(m, k)
		case map[string]any:
			pruneNil(v)
		}
	}
	return m
}

// sourceOf returns where key's value (or, for a section, one of its keys'
// values) came from.
func (l *loader) sourceOf(key string) string {
	key, _, _ = strings.Cut(key, "[")
	if s, ok := l.origin[key]; ok {
		return s
	}
	for _, k := range slices.Sorted(maps.Keys(l.origin)) {
		if strings.HasPrefix(k, key+".") {
			return l.origin[k]
		}
	}
	return ""
}

// decode turns the merged layers into a Config and validates it.
func (l *loader) decode() (*Config, error) {
	c := &Config{Transports: map[string]TransportConfig{}}
	var p problems
	flat := l.k.All()
	for _, key := range slices.Sorted(maps.Keys(flat)) {
		v := flat[key]
		switch {
		case fieldByKey[key] != nil:
			if reason, ok := fieldByKey[key].set(c, v); !ok {
				p.add(key, "%s", reason)
			}
		case key == "transports" || strings.HasPrefix(key, "transports."):
			// Decoded below, from the nested map.
		case sections[key]:
			if m, ok := v.(map[string]any); !ok || len(m) > 0 {
				p.bad(key, wantMapping, v)
			}
		default:
			l.unknown(&p, key)
		}
	}
	l.decodeTransports(&p, c, l.k.Raw()["transports"])
	c.deriveDefaults(l.set)

	// Skip what would only repeat a problem already reported: a key that did
	// not decode (it holds a zero value), the keys below a section that did
	// not decode, and a derived key that no layer set.
	decodeErrs := slices.Clone(p)
	var vp problems
	c.validate(&vp)
	for _, e := range vp {
		base, _, _ := strings.Cut(e.Key, "[")
		if f := fieldByKey[base]; f != nil && f.derived && !l.set[base] {
			continue
		}
		if !slices.ContainsFunc(decodeErrs, func(d *KeyError) bool { return related(d.Key, e.Key) }) {
			p = append(p, e)
		}
	}
	for _, e := range p {
		if e.Source == "" {
			e.Source = l.sourceOf(e.Key)
		}
	}
	if err := p.err(); err != nil {
		return nil, err
	}
	return c, nil
}

// related reports whether a and b are the same key, or one is below the other
// (a list entry, a key of a section).
func related(a, b string) bool {
	a, _, _ = strings.Cut(a, "[")
	b, _, _ = strings.Cut(b, "[")
	return a == b || strings.HasPrefix(a, b+".") || strings.HasPrefix(b, a+".")
}

// unknown reports a key that no field or section has.
func (l *loader) unknown(p *problems, key string) {
	// A mapping given where a field expects a value shows up as keys below it.
	for i := strings.LastIndexByte(key, '.'); i > 0; i = strings.LastIndexByte(key[:i], '.') {
		if f := fieldByKey[key[:i]]; f != nil {
			for _, e := range *p {
				if e.Key == f.key {
					return
				}
			}
			p.bad(f.key, f.want, map[string]any{})
			(*p)[len(*p)-1].Source = l.origin[key]
			return
		}
	}
	reason := "unknown key"
	var names []string
	if m, ok := l.k.Raw()["transports"].(map[string]any); ok {
		names = slices.Collect(maps.Keys(m))
	}
	if s := suggest(key, knownKeys(names)); s != "" {
		reason += " (did you mean " + s + "?)"
	} else {
		parent := ""
		if i := strings.LastIndexByte(key, '.'); i > 0 {
			parent = key[:i]
		}
		if children := childrenOf(parent); len(children) > 0 {
			where := parent
			if where == "" {
				where = "the top level"
			}
			reason += "; " + where + " holds " + strings.Join(children, ", ")
		}
	}
	p.add(key, "%s", reason)
}

// childrenOf lists the keys directly below section ("" is the top level), in
// the order of fields.
func childrenOf(section string) []string {
	if section != "" && !sections[section] {
		return nil
	}
	var out []string
	for _, f := range fields {
		rest, ok := strings.CutPrefix(f.key, section+".")
		if section == "" {
			rest, ok = f.key, true
		}
		if !ok {
			continue
		}
		child, _, _ := strings.Cut(rest, ".")
		if !slices.Contains(out, child) {
			out = append(out, child)
		}
	}
	if section == "" {
		out = slices.Insert(out, slices.Index(out, "write"), "transports")
	}
	return out
}

// decodeTransports reads transports.<name>.* from the merged map.
func (l *loader) decodeTransports(p *problems, c *Config, v any) {
	if v == nil {
		return
	}
	all, ok := v.(map[string]any)
	if !ok {
		p.bad("transports", wantMapping, v)
		return
	}
	for _, name := range slices.Sorted(maps.Keys(all)) {
		key := "transports." + name
		m, ok := all[name].(map[string]any)
		if !ok {
			p.bad(key, wantMapping, all[name])
			continue
		}
		t := TransportConfig{Enabled: true}
		for _, k := range slices.Sorted(maps.Keys(m)) {
			v := m[k]
			switch k {
			case "enabled":
				if t.Enabled, ok = toBool(v); !ok {
					p.bad(key+".enabled", wantBool, v)
				}
			case "listen", "path":
				s, ok := v.(string)
				if !ok {
					p.bad(key+"."+k, wantString, v)
				}
				if k == "listen" {
					t.Listen = s
				} else {
					t.Path = s
				}
			default:
				if t.Options == nil {
					t.Options = map[string]any{}
				}
				t.Options[k] = v
			}
		}
		c.Transports[name] = t
	}
}

// defaultsMap returns Default() as a nested map, without the derived keys.
func defaultsMap() map[string]any {
	d := Default()
	flat := map[string]any{}
	for i := range fields {
		if f := &fields[i]; !f.derived {
			flat[f.key] = f.value(d)
		}
	}
	for name, t := range d.Transports {
		flat["transports."+name+".enabled"] = t.Enabled
		flat["transports."+name+".listen"] = t.Listen
	}
	return kmaps.Unflatten(flat, ".")
}

// dedupEnviron keeps the first of duplicate variables, as os.Getenv does, and
// drops entries without "=".
func dedupEnviron(environ []string) []string {
	seen := map[string]bool{}
	out := make([]string, 0, len(environ))
	for _, kv := range environ {
		name, _, ok := strings.Cut(kv, "=")
		if !ok || seen[name] {
			continue
		}
		seen[name] = true
		out = append(out, kv)
	}
	return out
}

// epicsVar is a configuration key that standard EPICS variables set.
type epicsVar struct {
	key string
	// names are the variables, in order of preference: the first one set wins.
	names []string
	// conv turns the variable's (trimmed, non-blank) text into the key's value,
	// or a badValue.
	conv func(string) any
}

// epicsVars lists every key that an EPICS variable sets, in the order of fields.
var epicsVars = []epicsVar{
	{"ca.server_port", []string{"EPICS_CAS_SERVER_PORT", "EPICS_CA_SERVER_PORT"}, epicsText},
	{"ca.search_port", []string{"EPICS_CA_SERVER_PORT"}, epicsText},
	{"ca.addr_list", []string{"EPICS_CA_ADDR_LIST"}, epicsText},
	{"ca.auto_addr_list", []string{"EPICS_CA_AUTO_ADDR_LIST"}, epicsYesNo},
	{"ca.name_servers", []string{"EPICS_CA_NAME_SERVERS"}, epicsText},
	{"ca.intf_addr_list", []string{"EPICS_CAS_INTF_ADDR_LIST"}, epicsText},
	{"ca.ignore_addr_list", []string{"EPICS_CAS_IGNORE_ADDR_LIST"}, epicsText},
	{"ca.beacon_addr_list", []string{"EPICS_CAS_BEACON_ADDR_LIST"}, epicsText},
	{"ca.auto_beacon_addr_list", []string{"EPICS_CAS_AUTO_BEACON_ADDR_LIST"}, epicsYesNo},
	{"ca.beacon_port", []string{"EPICS_CAS_BEACON_PORT"}, epicsText},
	{"ca.beacon_period", []string{"EPICS_CAS_BEACON_PERIOD", "EPICS_CA_BEACON_PERIOD"}, epicsSeconds(minBeaconPeriod)},
	{"ca.repeater_port", []string{"EPICS_CA_REPEATER_PORT"}, epicsText},
	{"ca.conn_timeout", []string{"EPICS_CA_CONN_TMO"}, epicsSeconds(minConnTimeout)},
	{"ca.max_search_period", []string{"EPICS_CA_MAX_SEARCH_PERIOD"}, epicsSeconds(minMaxSearchPeriod)},
	{"ca.max_array_bytes", []string{"EPICS_CA_MAX_ARRAY_BYTES"}, epicsArrayBytes},
}

// epicsNames returns the EPICS variables that set key, in order of
// preference; none for most keys.
func epicsNames(key string) []string {
	for _, e := range epicsVars {
		if e.key == key {
			return e.names
		}
	}
	return nil
}

// epicsText passes the text on, to be decoded as the key's type.
func epicsText(s string) any { return s }

// epicsYesNo reads a libca YES/NO flag: false when the text contains "no".
func epicsYesNo(s string) any { return !strings.Contains(strings.ToLower(s), "no") }

// epicsSeconds reads a period in seconds, raised to lo as libca does.
func epicsSeconds(lo time.Duration) func(string) any {
	return func(s string) any {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || f <= 0 || f > 1e6 {
			return badValue("must be a positive number of seconds, got " + strconv.Quote(s))
		}
		return max(time.Duration(f*float64(time.Second)), lo)
	}
}

// epicsArrayBytes reads EPICS_CA_MAX_ARRAY_BYTES, raised to libca's minimum.
func epicsArrayBytes(s string) any {
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return badValue("must be a positive integer, got " + strconv.Quote(s))
	}
	return max(n, minMaxArrayBytes)
}

// epicsLayer maps the EPICS variables of environ to configuration keys. It
// returns a flat map and the variable behind each key.
func epicsLayer(environ []string) (map[string]any, map[string]string) {
	vars := map[string]string{}
	for _, kv := range environ {
		if name, v, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "EPICS_CA") {
			if v = strings.TrimSpace(v); v != "" {
				vars[name] = v
			}
		}
	}
	flat, origin := map[string]any{}, map[string]string{}
	for _, e := range epicsVars {
		for _, n := range e.names {
			if v, ok := vars[n]; ok {
				flat[e.key], origin[e.key] = e.conv(v), n
				break
			}
		}
	}
	return flat, origin
}
