// Package repeater is an embeddable Channel Access (CA) repeater: the per-host
// relay that receives the beacons servers send to the repeater port (5065 by
// default) and hands a copy to every CA client process on the host.
//
// A CA client registers by sending a zero-length datagram, or one that starts
// with REPEATER_REGISTER, to the repeater port from the UDP socket on which
// it wants beacons. The repeater accepts registrations only from addresses of
// this host, answers each with REPEATER_CONFIRM (P2 = the client's address),
// and then sends an all-zero VERSION message to every other client. Every
// other datagram, beacon or not, is forwarded unmodified to every registered
// client except its sender; a beacon whose P2 is zero first gets the sender's
// address written into P2, so that clients learn which server sent it.
//
// Clients that have gone away are forgotten: when a new client registers, and
// when sending to a client fails, the repeater tries to bind the client's
// address and port; if that succeeds, no socket holds the port any more and
// the client is dropped. Each client is served through its own UDP socket
// connected to it, so that the kernel reports a vanished client as a send
// error.
//
// Only one repeater can run per port: Start binds the port without address
// reuse and reports [ErrInUse] when it is taken, which means another
// repeater (caRepeater, or another process's embedded one) already serves the
// host. libca makes the same test before it spawns caRepeater, so libca tools
// on the host use a running [Repeater] as they would use caRepeater.
//
// Lifecycle: [New] does no I/O; [Repeater.Start] binds the port and starts one
// goroutine; [Repeater.Close] stops it, waits for it and is idempotent.
package repeater
