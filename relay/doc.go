// Package relay is the domain logic of pvhub's relay: a Channel Access server
// that starts empty and creates a process variable the first time a client
// creates a channel to, or writes to, a name of the form
//
//	<prefix><name>_<dtype><count>[.FIELD]
//
// It replaces the pcaspy relay (mennodoor/epics-relay) and fixes its bugs:
// counts of 0 and counts with leading zeros are not relay names, a buffer needs
// at least two elements, buffers start empty instead of with a spurious 0,
// scalar puts append to buffers, a put of more elements than the count is
// refused, and every PV keeps attributes (units, precision, limits, alarm
// limits and severities, description) and computes its alarm as an EPICS ai
// record does.
//
// The package holds no actors, sockets, goroutines or clock: callers pass the
// time in, and own each State from one goroutine. It has three parts:
//
//   - names: ParseName, ParseService, Name and Kind;
//   - the state of one relay PV: New, State and its Put, PutField, Field,
//     Value, Alarm, Stamp and Metadata methods, and Error, the error type
//     every refused write returns;
//   - autosave: Save, Load and KeepAside write and read an atomic JSON file of
//     every PV's name, value, attributes, alarm and time stamp, converted with
//     State.Save and Restore.
//
// A State is compact, about a hundred bytes for a scalar PV that has no
// attributes, so that a daemon can hold 100,000 relay PVs.
package relay
