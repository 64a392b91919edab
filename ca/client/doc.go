// Package client is a Channel Access (CA) client: it finds PVs by name over UDP
// (or over TCP name servers), shares one TCP circuit per server among all the
// channels to it, and reads, writes and monitors PVs in any DBR type.
//
// Channels reconnect by themselves. When a circuit dies (the server closed it,
// or left an echo unanswered) every channel on it reports disconnected at once
// and starts searching again, on libca's back-off schedule; a beacon from a
// restarted server makes the search fast again. When the channel reconnects its
// monitors are re-established without any call by the user, so the user sees
// connected, disconnected, connected, and then fresh values.
//
// Callbacks (connection events and monitor updates) run on the client's
// goroutines, one at a time per circuit, and must not block: hand the data to
// another goroutine if the work is slow. A callback must not call the blocking
// methods (Get, Put, WaitConnected) of a channel of the same client.
//
// Lifecycle: New does no I/O; Start binds the search socket and starts the
// client's goroutines; Close stops every goroutine the client started and is
// idempotent.
package client
