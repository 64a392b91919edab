// Package server is a Channel Access (CA) server: it answers UDP name searches
// for the names its Source claims, announces itself with beacons, and serves
// TCP circuits (channels, reads, writes with completion, subscriptions).
//
// A Source decides which names exist and may create PVs on demand. A PV holds a
// value in its native type with its alarm, time stamp and metadata; the owner
// posts updates with PV.Post and receives client writes through a WriteFunc.
//
// Fan-out never waits for a client: PV.Post only queues. Each subscription
// keeps a short queue of pending updates; when a client falls behind, the
// newest queued update of a subscription is replaced, so memory stays bounded
// and the last value always arrives. Each circuit has one reader goroutine that
// handles requests strictly in order (a read after a write sees the write) and
// one writer goroutine that batches replies and updates into few system calls.
//
// Lifecycle: New does no I/O; Start binds sockets and starts goroutines; Close
// stops them all and is idempotent.
package server
