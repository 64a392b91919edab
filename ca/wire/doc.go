// Package wire is a sans-I/O codec for EPICS Channel Access (CA) protocol 4.13.
//
// It encodes and decodes the 16-byte and extended 24-byte message headers, every
// command from CA_PROTO_VERSION (0) to CA_PROTO_SERVER_DISCONN (27) as a typed
// message, and every DBR payload type from DBR_STRING (0) to DBR_CLASS_NAME (38).
// It converts values between the seven CA value types the way an IOC does.
//
// The package performs no I/O, starts no goroutines, reads no clock and logs
// nothing. Encoders append to a caller-supplied slice, so a caller that reuses
// its buffer encodes without allocating. Decoders are bounded: they check every
// length against the bytes present and against a configurable maximum payload,
// return an error instead of panicking, and never allocate more than the input
// (or the configured maximum) justifies.
//
// Multi-byte fields are big-endian on the wire. Payloads are zero-padded to a
// multiple of 8 bytes and the header carries the padded size.
package wire
