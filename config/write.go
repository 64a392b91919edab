package config

import (
	"path"
	"strconv"
	"strings"
	"sync/atomic"
)

// WriteConfig decides which PVs the transports may write (keys write.*).
// Patterns use path.Match syntax (* ? [class] \c), except that * and ? also
// match "/". A write is allowed when an allow pattern matches the PV's name and
// no deny pattern does: deny wins.
type WriteConfig struct {
	// Allow lists the patterns of writable PVs (write.allow). Its default is
	// [<relay.prefix>*]: the relay's PVs. An empty list allows nothing.
	Allow []string
	// Deny lists the patterns of PVs never written (write.deny, default none).
	Deny []string
}

// Allowed reports whether the transports may write pv, and the rule that
// decided, for the error that names it: `write.deny "SR:*"`,
// `write.allow "RELAY:*"`, or `no write.allow pattern matches`. A malformed
// deny pattern (which Validate rejects) denies every write.
func (w WriteConfig) Allowed(pv string) (bool, string) {
	for _, g := range w.Deny {
		if m, err := match(g, pv); m || err != nil {
			return false, "write.deny " + strconv.Quote(g)
		}
	}
	for _, g := range w.Allow {
		if m, _ := match(g, pv); m {
			return true, "write.allow " + strconv.Quote(g)
		}
	}
	return false, "no write.allow pattern matches"
}

// match is path.Match with "/" an ordinary character.
func match(pattern, name string) (bool, error) {
	const sep = "\x00"
	return path.Match(strings.ReplaceAll(pattern, "/", sep), strings.ReplaceAll(name, "/", sep))
}

// WriteRules holds the write rules in force and lets a reload replace them
// while writes are checked. Its methods are safe for concurrent use; the zero
// value allows nothing.
type WriteRules struct {
	p atomic.Pointer[WriteConfig]
}

// NewWriteRules returns rules that enforce w.
func NewWriteRules(w WriteConfig) *WriteRules {
	r := &WriteRules{}
	r.Set(w)
	return r
}

// Set replaces the rules (on reload); writes checked afterwards follow w.
func (r *WriteRules) Set(w WriteConfig) {
	w.Allow = append([]string(nil), w.Allow...)
	w.Deny = append([]string(nil), w.Deny...)
	r.p.Store(&w)
}

// Get returns the rules in force.
func (r *WriteRules) Get() WriteConfig {
	if w := r.p.Load(); w != nil {
		return *w
	}
	return WriteConfig{}
}

// Allowed reports whether pv may be written under the rules in force, and the
// rule that decided (see WriteConfig.Allowed).
func (r *WriteRules) Allowed(pv string) (bool, string) {
	return r.Get().Allowed(pv)
}
