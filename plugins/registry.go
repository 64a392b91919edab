package plugins

import (
	"fmt"
	"slices"
	"sync"
)

// Registry maps the names of built-in transports to their constructors. A
// program builds one and registers what it links in; tests build empty ones.
type Registry struct {
	mu sync.RWMutex
	m  map[string]func() Transport
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{m: map[string]func() Transport{}} }

// Register adds a transport constructor under name; a name registers once.
func (r *Registry) Register(name string, newTransport func() Transport) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.m[name]; ok {
		return fmt.Errorf("plugins: transport %q registered twice", name)
	}
	r.m[name] = newTransport
	return nil
}

// New returns a new transport called name, and whether there is one.
func (r *Registry) New(name string) (Transport, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	f, ok := r.m[name]
	if !ok {
		return nil, false
	}
	return f(), true
}

// Names returns the registered names, sorted.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.m))
	for n := range r.m {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}
