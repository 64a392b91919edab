package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Command is a CA command code (the header's first field).
type Command uint16

// The CA commands, named after their CA_PROTO_* constants.
const (
	CmdVersion          Command = 0
	CmdEventAdd         Command = 1
	CmdEventCancel      Command = 2
	CmdRead             Command = 3
	CmdWrite            Command = 4
	CmdSnapshot         Command = 5
	CmdSearch           Command = 6
	CmdBuild            Command = 7
	CmdEventsOff        Command = 8
	CmdEventsOn         Command = 9
	CmdReadSync         Command = 10
	CmdError            Command = 11
	CmdClearChannel     Command = 12
	CmdRsrvIsUp         Command = 13
	CmdNotFound         Command = 14
	CmdReadNotify       Command = 15
	CmdReadBuild        Command = 16
	CmdRepeaterConfirm  Command = 17
	CmdCreateChan       Command = 18
	CmdWriteNotify      Command = 19
	CmdClientName       Command = 20
	CmdHostName         Command = 21
	CmdAccessRights     Command = 22
	CmdEcho             Command = 23
	CmdRepeaterRegister Command = 24
	CmdSignal           Command = 25
	CmdCreateChFail     Command = 26
	CmdServerDisconn    Command = 27
)

// MaxCommand is the highest command code defined by CA 4.13.
const MaxCommand = CmdServerDisconn

var commandNames = [...]string{
	"VERSION", "EVENT_ADD", "EVENT_CANCEL", "READ", "WRITE", "SNAPSHOT", "SEARCH", "BUILD",
	"EVENTS_OFF", "EVENTS_ON", "READ_SYNC", "ERROR", "CLEAR_CHANNEL", "RSRV_IS_UP", "NOT_FOUND",
	"READ_NOTIFY", "READ_BUILD", "REPEATER_CONFIRM", "CREATE_CHAN", "WRITE_NOTIFY", "CLIENT_NAME",
	"HOST_NAME", "ACCESS_RIGHTS", "ECHO", "REPEATER_REGISTER", "SIGNAL", "CREATE_CH_FAIL",
	"SERVER_DISCONN",
}

// String returns the command's CA_PROTO_ name without the prefix, or "CMD(n)".
func (c Command) String() string {
	if int(c) < len(commandNames) {
		return commandNames[c]
	}
	return fmt.Sprintf("CMD(%d)", uint16(c))
}

// Protocol constants.
const (
	// MinorVersion is the CA minor protocol version this package speaks (4.13).
	MinorVersion = 13
	// MinSupportedMinor is the oldest client minor version a current IOC accepts.
	MinSupportedMinor = 4
	// HeaderSize is the size of the standard header.
	HeaderSize = 16
	// ExtHeaderSize is the size of the extended (large array) header.
	ExtHeaderSize = 24
	// DefaultServerPort is the default UDP search and TCP circuit port.
	DefaultServerPort = 5064
	// DefaultRepeaterPort is the default beacon (repeater) port.
	DefaultRepeaterPort = 5065
	// DefaultMaxArrayBytes is the default EPICS_CA_MAX_ARRAY_BYTES.
	DefaultMaxArrayBytes = 16384
	// MaxUDPSend is the largest datagram libca and IOCs send.
	MaxUDPSend = 1024
	// MaxUDPRecv is the receive buffer size that holds any CA datagram.
	MaxUDPRecv = 0xFFFF + 16
	// MaxPriority is the highest circuit priority.
	MaxPriority = 99
	// MaxNameSize is the longest PV name, NUL included, that libca sends.
	MaxNameSize = 1024 - HeaderSize
	// MaxClientNameSize bounds CLIENT_NAME and HOST_NAME payloads, as an IOC does.
	MaxClientNameSize = 512
)

// Header is a decoded CA message header. PayloadSize and Count hold the real values
// whether the message used the standard or the extended form.
type Header struct {
	Command     Command
	PayloadSize uint32
	DataType    uint16
	Count       uint32
	P1          uint32 // the C field m_cid: "parameter 1"
	P2          uint32 // the C field m_available: "parameter 2"
}

// Extended reports whether the header needs the 24-byte extended form: the padded
// payload size or the element count reaches 0xFFFF (the rule libca and IOCs apply).
func (h *Header) Extended() bool {
	return h.PayloadSize >= 0xFFFF || h.Count >= 0xFFFF
}

// Size is the encoded size of the header: 16 or 24 bytes.
func (h *Header) Size() int {
	if h.Extended() {
		return ExtHeaderSize
	}
	return HeaderSize
}

// AppendHeader appends h to b in the standard form, or in the extended form when
// h.Extended() is true. It does not pad or check PayloadSize.
func AppendHeader(b []byte, h Header) []byte {
	if h.Extended() {
		b = binary.BigEndian.AppendUint16(b, uint16(h.Command))
		b = binary.BigEndian.AppendUint16(b, 0xFFFF)
		b = binary.BigEndian.AppendUint16(b, h.DataType)
		b = binary.BigEndian.AppendUint16(b, 0)
		b = binary.BigEndian.AppendUint32(b, h.P1)
		b = binary.BigEndian.AppendUint32(b, h.P2)
		b = binary.BigEndian.AppendUint32(b, h.PayloadSize)
		return binary.BigEndian.AppendUint32(b, h.Count)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(h.Command))
	b = binary.BigEndian.AppendUint16(b, uint16(h.PayloadSize))
	b = binary.BigEndian.AppendUint16(b, h.DataType)
	b = binary.BigEndian.AppendUint16(b, uint16(h.Count))
	b = binary.BigEndian.AppendUint32(b, h.P1)
	return binary.BigEndian.AppendUint32(b, h.P2)
}

// Errors returned by header parsing and the stream decoder.
var (
	// ErrShort means the input ends before the header or payload does.
	ErrShort = errors.New("ca: message truncated")
	// ErrMisaligned means a payload size that is not a multiple of 8; IOCs and libca
	// close the circuit when they see one.
	ErrMisaligned = errors.New("ca: payload size is not a multiple of 8")
	// ErrTooLarge means a payload above the configured maximum.
	ErrTooLarge = errors.New("ca: payload exceeds the maximum array size")
)

// ParseHeader decodes the header at the start of b. It returns the header and its
// encoded size (16 or 24). When b is too short it returns ErrShort and the number
// of bytes the header needs in total.
func ParseHeader(b []byte) (h Header, n int, err error) {
	if len(b) < HeaderSize {
		return h, HeaderSize, ErrShort
	}
	h.Command = Command(binary.BigEndian.Uint16(b[0:]))
	h.PayloadSize = uint32(binary.BigEndian.Uint16(b[2:]))
	h.DataType = binary.BigEndian.Uint16(b[4:])
	h.Count = uint32(binary.BigEndian.Uint16(b[6:]))
	h.P1 = binary.BigEndian.Uint32(b[8:])
	h.P2 = binary.BigEndian.Uint32(b[12:])
	if h.PayloadSize != 0xFFFF {
		return h, HeaderSize, nil
	}
	if len(b) < ExtHeaderSize {
		return h, ExtHeaderSize, ErrShort
	}
	h.PayloadSize = binary.BigEndian.Uint32(b[16:])
	h.Count = binary.BigEndian.Uint32(b[20:])
	return h, ExtHeaderSize, nil
}

// Pad8 rounds n up to a multiple of 8.
func Pad8(n int) int { return (n + 7) &^ 7 }

// appendPad appends zero bytes to b so that len(b)-start is a multiple of 8.
func appendPad(b []byte, start int) []byte {
	for (len(b)-start)&7 != 0 {
		b = append(b, 0)
	}
	return b
}
