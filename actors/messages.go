package actors

import (
	"github.com/asynkron/protoactor-go/actor"

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

// crash makes a relay PV actor panic; tests use it to check that its
// supervisor restarts it with its state intact.
type crash struct{}

// listBoxes asks the supervisor for its relay PVs' boxes (tests).
type listBoxes struct{}

// tick messages drive periodic work inside an actor.
type pvlistTick struct{}

type autosaveTick struct{}

// The event model every transport sees. A subscriber actor receives, for each
// PV it subscribed to, the connection state, then the metadata, then values;
// after a reconnection the three again. Events are values: a subscriber may
// keep them.

// Subscribe adds Subscriber (an actor) to the subscribers of the PV Name. It
// receives the current connection, metadata and value at once, if known.
type Subscribe struct {
	Name       string
	Subscriber *actor.PID
	// Write is set by the router: whether the write rules let transports write
	// this PV. The connection events the subscriber gets reflect it.
	Write bool
	// Denied is set by the router when Write is false: "write denied by" and
	// the rule that decided.
	Denied string
}

// Access tells the actor of the PV Name that the write rules changed for
// Subscriber (the router sends it after a reload of write.allow/write.deny).
// A connected PV sends the subscriber a new connection event.
type Access struct {
	Name       string
	Subscriber *actor.PID
	Write      bool
	Denied     string
}

// RulesChanged asks the router to check every subscription against the write
// rules in force and tell the PVs whose access changed.
type RulesChanged struct{}

// Unsubscribe removes Subscriber from the subscribers of Name.
type Unsubscribe struct {
	Name       string
	Subscriber *actor.PID
}

// ConnectionEvent reports that a PV connected or disconnected, with the access
// rights transports have to it (Write also reflects write.allow/write.deny).
type ConnectionEvent struct {
	Name      string
	Connected bool
	Read      bool
	Write     bool
	// WriteDenied says why Write is false on a connected PV: the write rule
	// ("write denied by write.deny ...") or the server's access rights.
	WriteDenied string
}

// MetadataEvent reports a PV's type, element count and properties.
type MetadataEvent struct {
	Name        string
	Type        wire.DBRType // native type
	Count       int          // native element count
	Meta        wire.Metadata
	Description string
}

// ValueEvent reports a PV's value with its alarm and time stamp.
type ValueEvent struct {
	Name     string
	Value    wire.Value
	Status   wire.AlarmStatus
	Severity wire.AlarmSeverity
	Stamp    wire.Timestamp
}

// Put asks for a write of Value to Name; the reply is a PutResult with the
// same ID.
type Put struct {
	Name  string
	Value wire.Value
	ID    uint64
}

// PutResult answers Put.
type PutResult struct {
	Name string
	ID   uint64
	Err  error
}
