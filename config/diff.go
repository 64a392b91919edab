package config

import (
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"
)

// Change is one key whose value differs between two configurations.
type Change struct {
	// Key is the key's path, such as relay.prefix or transports.mqtt.enabled.
	Key string
	// Old and New are the values as YAML flow text (strings quoted); empty
	// when the key is absent on that side (a transport added or removed).
	Old, New string
	// Reloadable says whether the change applies live. It is
	// Config.Reloadable(Key), except that every change under a transport that
	// is disabled (or absent) on either side applies live too, since that
	// transport is started or stopped anyway.
	Reloadable bool
}

// String describes the change for the log.
func (c Change) String() string {
	old, new := c.Old, c.New
	if old == "" {
		old = "(none)"
	}
	if new == "" {
		new = "(none)"
	}
	s := c.Key + ": " + old + " -> " + new
	if c.Reloadable {
		return s + " (applied live)"
	}
	return s + " (needs a restart)"
}

// Diff returns the keys whose values differ between old and new, in the order
// YAML prints them, for a reload.
func Diff(old, new *Config) []Change {
	d := &differ{old: old}
	for i := range fields {
		f := &fields[i]
		d.add(f.key, f.value(old), f.value(new), true, true)
		if f.key == "ca.max_array_bytes" {
			d.transports(old, new)
		}
	}
	return d.out
}

type differ struct {
	old *Config
	out []Change
}

func (d *differ) add(key string, a, b any, hasA, hasB bool) {
	if hasA == hasB && reflect.DeepEqual(a, b) {
		return
	}
	ch := Change{Key: key, Reloadable: d.old.Reloadable(key)}
	if hasA {
		ch.Old = flow(a)
	}
	if hasB {
		ch.New = flow(b)
	}
	d.out = append(d.out, ch)
}

func (d *differ) transports(old, new *Config) {
	names := slices.Sorted(maps.Keys(old.Transports))
	for n := range new.Transports {
		if _, ok := old.Transports[n]; !ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		a, hasA := old.Transports[n]
		b, hasB := new.Transports[n]
		start := len(d.out)
		prefix := "transports." + n + "."
		d.add(prefix+"enabled", a.Enabled, b.Enabled, hasA, hasB)
		d.add(prefix+"listen", a.Listen, b.Listen, hasA, hasB)
		d.add(prefix+"path", a.Path, b.Path, hasA && a.Path != "", hasB && b.Path != "")
		opts := slices.Sorted(maps.Keys(a.Options))
		for k := range b.Options {
			if _, ok := a.Options[k]; !ok {
				opts = append(opts, k)
			}
		}
		slices.Sort(opts)
		for _, k := range opts {
			va, inA := a.Options[k]
			vb, inB := b.Options[k]
			d.add(prefix+k, va, vb, inA, inB)
		}
		if !a.Enabled || !b.Enabled {
			for i := start; i < len(d.out); i++ {
				d.out[i].Reloadable = true
			}
		}
	}
}

// Reloadable reports whether a change of key applies live, without a restart:
// true for write.allow, write.deny and transports.<name>.enabled.
func (c *Config) Reloadable(key string) bool {
	switch key {
	case "write.allow", "write.deny":
		return true
	}
	name, ok := strings.CutPrefix(key, "transports.")
	if !ok {
		return false
	}
	name, ok = strings.CutSuffix(name, ".enabled")
	return ok && name != "" && !strings.Contains(name, ".")
}

// flow renders a value as YAML flow text.
func flow(v any) string {
	if d, ok := v.(time.Duration); ok {
		return d.String()
	}
	if l, ok := v.([]string); ok && l == nil {
		return "[]"
	}
	b, err := json.Marshal(v)
	if err != nil {
		return show(v)
	}
	return string(b)
}
