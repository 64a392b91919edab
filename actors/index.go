package actors

import (
	"sync"

	"github.com/pvhub/pvhub/ca/server"
)

// Index maps the names the relay serves (relay PVs, their opened fields, the
// service PVs) to their CA server PVs. The relay supervisor writes it; the CA
// server's Source reads it on every search and channel creation without
// asking an actor.
type Index struct {
	mu    sync.RWMutex
	pvs   map[string]*server.PV
	relay int // relay PVs (not fields or service PVs)
}

// NewIndex returns an empty index.
func NewIndex() *Index { return &Index{pvs: map[string]*server.PV{}} }

// Get returns the PV serving name, or nil.
func (x *Index) Get(name string) *server.PV {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.pvs[name]
}

// Len returns the number of relay PVs.
func (x *Index) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.relay
}

func (x *Index) add(name string, pv *server.PV, isRelay bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if _, ok := x.pvs[name]; !ok && isRelay {
		x.relay++
	}
	x.pvs[name] = pv
}

func (x *Index) remove(name string, isRelay bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if _, ok := x.pvs[name]; ok && isRelay {
		x.relay--
	}
	delete(x.pvs, name)
}
