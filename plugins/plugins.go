// Package plugins is the contract between pvhub and its transports (WebSocket, SSE, MQTT and
// third-party ones), in plain Go types.
//
// A transport implements [Transport]. The host (pvhub's runtime) starts it with its configuration
// slice and a [Host] to call back, then delivers [Event] values to it in batches, in order:
// [Connection], [Metadata], [Value] and [PutResult]. The transport asks for PVs with
// Host.Subscribe and Host.Unsubscribe and writes them with Host.Put; the answer to a put is a
// PutResult event carrying the same request id.
//
// The same Transport runs in-process (package plugintest, tests and benchmarks) or in a plugin
// process: the plugin's main calls [Serve], and the host calls [Launch] (or runs a [Supervisor])
// with the plugin's command. Between the two processes there is one long-lived bidirectional gRPC
// stream, opened by the host: event batches go down, requests come up. No RPC per update. The
// wire format is plugins/proto/pvhub/transport/v1/transport.proto; its generated code stays
// internal, and no dependency type appears in this package's API.
package plugins

import (
	"context"
	"log/slog"
)

// Transport is what a transport plugin implements.
//
// Lifecycle: the host calls Start once, then Events any number of times, then Close.
//   - Start does the I/O (listening sockets, broker connections). It returns once the transport
//     serves, or with the reason it cannot; it must not block for the transport's lifetime. ctx
//     bounds start-up only. The transport keeps host and calls it from any goroutine, also
//     from within Events and after Start returned.
//   - Events delivers a batch of events, in the order the host produced them. Calls never
//     overlap. The transport must not keep the batch slice after the call returns (the events
//     in it, and the slices inside them, it may keep but must not modify). Events should return
//     quickly: while it runs, the host coalesces newer updates (keeping the newest value per PV),
//     so a slow transport sees fewer intermediate values, never a lost final one. A host may
//     split what it produced into several calls; order is always kept.
//   - Close releases everything Start acquired and returns when the transport's goroutines
//     have exited. It is idempotent, and may be called without Start or after a failed Start.
//     No Events call follows Close.
type Transport interface {
	Start(ctx context.Context, cfg Config, host Host) error
	Events(batch []Event)
	Close() error
}

// Config is what a transport receives at Start.
type Config struct {
	// Name is the transport's name ("websocket"); it is also its configuration key
	// (transports.<name>).
	Name string
	// Options is the transport's configuration slice (the keys under transports.<name>),
	// as decoded from YAML or JSON: map[string]any, []any, string, float64, bool, nil. In a
	// plugin process, numbers arrive as float64.
	Options map[string]any
	// Logger is the transport's logger. In a plugin process its records go to the host's
	// log, tagged with the plugin's name. Never nil when the host calls Start.
	Logger *slog.Logger
	// RelayPrefix is the prefix of the relay's PV names ("RELAY:"), empty when the relay
	// is disabled. <RelayPrefix>pvlist lists the relay PVs; a put to a relay name that
	// does not exist creates it.
	RelayPrefix string
}

// Host is what a transport calls. Its methods are safe for concurrent use, never wait for an
// Events call to finish, and return once the request is queued (results arrive as events).
type Host interface {
	// Subscribe asks for events about the named PVs. For each name the transport receives
	// the current connection state, then metadata and the latest value once known, then
	// every change. Subscribing twice to a name is the same as once.
	Subscribe(names ...string)
	// Unsubscribe stops the events about the named PVs. Events already queued may still
	// arrive.
	Unsubscribe(names ...string)
	// Put asks for a write of value to the PV name. Exactly one PutResult with the same
	// name and id answers it. The transport chooses ids; the host only echoes them.
	Put(name string, value Data, id uint64)
}

// Event is one of Connection, Metadata, Value and PutResult.
type Event interface {
	// PVName returns the name of the PV the event is about.
	PVName() string
	isEvent()
}

// Connection reports that a PV connected or disconnected, with the access rights the
// transport has to it (Write also reflects the host's write rules).
type Connection struct {
	Name      string
	Connected bool
	Read      bool
	Write     bool
	// WriteDenied says why Write is false on a connected PV, for the transport's
	// error messages: the write rule ("write denied by write.deny \"X:*\"") or
	// the server's access rights.
	WriteDenied string
}

// Metadata reports a PV's native type, element count and properties. Fields the PV does not
// have are zero (no units: ""; a string PV has no limits).
type Metadata struct {
	Name      string
	Type      Type // native (DBF) type
	Count     int  // native element count
	Units     string
	Precision int
	Display   Range // display limits (LOPR/HOPR)
	Control   Range // control limits (DRVL/DRVH)
	Warning   Range // warning limits (LOW/HIGH)
	Alarm     Range // alarm limits (LOLO/HIHI)
	// EnumLabels are the state strings of an enum PV, indexed by the value.
	EnumLabels  []string
	Description string
}

// Range is a pair of limits.
type Range struct{ Low, High float64 }

// Value reports a PV's value with its time stamp and alarm.
type Value struct {
	Name string
	// Data is the value. Its kind follows the native type: KindFloat64 for DBF_DOUBLE and
	// DBF_FLOAT, KindInt64 for DBF_LONG, DBF_SHORT and DBF_ENUM (the state index),
	// KindString for DBF_STRING, KindBytes for DBF_CHAR. A scalar is an array of one.
	Data Data
	// Seconds and Nanos are the EPICS time stamp: since 1990-01-01 00:00:00 UTC.
	Seconds uint32
	Nanos   uint32
	// Status and Severity are the alarm names as EPICS spells them: "NO_ALARM", "HIHI",
	// "UDF"...; "NO_ALARM", "MINOR", "MAJOR", "INVALID".
	Status   string
	Severity string
}

// PutResult answers Host.Put: Err is "" when the write succeeded, otherwise the specific
// reason (a denied write names the rule, an unknown PV says so).
type PutResult struct {
	Name string
	ID   uint64
	Err  string
}

// OK reports whether the write succeeded.
func (r PutResult) OK() bool { return r.Err == "" }

// PVName returns c.Name.
func (c Connection) PVName() string { return c.Name }

// PVName returns m.Name.
func (m Metadata) PVName() string { return m.Name }

// PVName returns v.Name.
func (v Value) PVName() string { return v.Name }

// PVName returns r.Name.
func (r PutResult) PVName() string { return r.Name }

func (Connection) isEvent() {}
func (Metadata) isEvent()   {}
func (Value) isEvent()      {}
func (PutResult) isEvent()  {}

var (
	_ Event = Connection{}
	_ Event = Metadata{}
	_ Event = Value{}
	_ Event = PutResult{}
)

// Type is a PV's native (DBF) type. The values are the CA type codes, 0 to 6.
type Type uint8

// The native types, numbered as in Channel Access.
const (
	TypeString Type = 0
	TypeShort  Type = 1
	TypeFloat  Type = 2
	TypeEnum   Type = 3
	TypeChar   Type = 4
	TypeLong   Type = 5
	TypeDouble Type = 6
)

var typeNames = [...]string{"DBF_STRING", "DBF_SHORT", "DBF_FLOAT", "DBF_ENUM", "DBF_CHAR", "DBF_LONG", "DBF_DOUBLE"}

// String returns the EPICS name of t ("DBF_DOUBLE"), or "DBF_INVALID".
func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "DBF_INVALID"
}

// Kind returns the kind of Data that carries values of type t.
func (t Type) Kind() Kind {
	switch t {
	case TypeString:
		return KindString
	case TypeShort, TypeEnum, TypeLong:
		return KindInt64
	case TypeChar:
		return KindBytes
	default:
		return KindFloat64
	}
}

// Kind says which slice of a Data holds its elements.
type Kind uint8

// The kinds of Data.
const (
	KindFloat64 Kind = iota
	KindInt64
	KindString
	KindBytes
)

var kindNames = [...]string{"float64", "int64", "string", "bytes"}

// String returns "float64", "int64", "string" or "bytes".
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "invalid"
}

// Data is a typed array of elements: only the slice named by Kind is meaningful. Build one with
// Float64s, Int64s, Strings or Bytes.
type Data struct {
	Kind     Kind
	Float64s []float64
	Int64s   []int64
	Strings  []string
	Bytes    []byte
}

// Float64s returns a KindFloat64 Data holding v (not copied).
func Float64s(v ...float64) Data { return Data{Kind: KindFloat64, Float64s: v} }

// Int64s returns a KindInt64 Data holding v (not copied).
func Int64s(v ...int64) Data { return Data{Kind: KindInt64, Int64s: v} }

// Strings returns a KindString Data holding v (not copied).
func Strings(v ...string) Data { return Data{Kind: KindString, Strings: v} }

// Bytes returns a KindBytes Data holding v (not copied): the elements of a DBF_CHAR PV,
// often text.
func Bytes(v []byte) Data { return Data{Kind: KindBytes, Bytes: v} }

// Len returns the number of elements.
func (d Data) Len() int {
	switch d.Kind {
	case KindFloat64:
		return len(d.Float64s)
	case KindInt64:
		return len(d.Int64s)
	case KindString:
		return len(d.Strings)
	case KindBytes:
		return len(d.Bytes)
	}
	return 0
}
