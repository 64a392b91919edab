package actors

import (
	"github.com/pvhub/pvhub/ca/server"
	"github.com/pvhub/pvhub/ca/wire"
	"github.com/pvhub/pvhub/relay"
)

// OpenRelay asks the relay supervisor for the CA server PV serving Name (a relay
// PV, one of its fields, or a service PV), creating the relay PV if needed.
// The reply is an Opened.
type OpenRelay struct{ Name string }

// Opened answers OpenRelay.
type Opened struct {
	PV  *server.PV
	Err error
}

// PutRelay writes Value to the relay PV (or field) Name, creating the PV if
// needed, as a put from a transport does. The reply is a Result.
type PutRelay struct {
	Name  string
	Value wire.Value
}

// DeleteRelay deletes the relay PV Name (with or without the prefix): its
// clients are disconnected and a later put creates it anew. The reply is a Result.
type DeleteRelay struct{ Name string }

// RestoreRelay recreates relay PVs from autosaved states before the CA server
// answers its first search. The reply is a Restored.
type RestoreRelay struct{ Saved []relay.Saved }

// Restored answers RestoreRelay.
type Restored struct {
	Count int
	Errs  []error
}

// ListRelay asks for the names of the relay PVs, sorted. The reply is a Names.
type ListRelay struct{}

// Names answers ListRelay.
type Names struct{ Names []string }

// Result answers a request that only succeeds or fails.
type Result struct{ Err error }

// putValue and putField are the writes a relay PV actor applies; openField asks
// it for the server PV of an attribute. They answer with Result and Opened.
type putValue struct{ raw wire.Value }

type putField struct {
	field string
	raw   wire.Value
}

type openField struct{ field string }

// savedState and deletedState keep the autosave actor up to date.
type savedState struct{ s relay.Saved }

type deletedState struct{ name string }

// Flush asks the autosave actor to write the file now; the reply is a Result.
type Flush struct{}

// tick messages drive periodic work inside an actor.
type pvlistTick struct{}

type autosaveTick struct{}
