// Package actors holds pvhub's protoactor-go actors and their messages.
//
// The relay supervisor decides whether a name is a relay name, spawns one relay
// PV actor per PV on its first channel creation or put, enforces the caps, and
// keeps the service PVs <prefix>pvlist and <prefix>delpv. A relay PV actor owns
// its relay.State and the ca/server PVs that serve it (the value and, on demand,
// its attribute fields), applies every put, and hands its state to the autosave
// actor. Its state lives outside the actor value, so a restart after a failure
// keeps it intact.
//
// Requests that need an answer use protoactor futures; every reply is a struct
// (never a bare nil). Messages are plain structs in messages.go.
package actors
