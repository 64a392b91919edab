package wire

import (
	"errors"
	"fmt"
	"math"
)

// Message is a typed CA message. AppendTo appends its complete encoding: the
// header (extended when needed) and the payload padded to 8 bytes.
type Message interface {
	Command() Command
	AppendTo(b []byte) []byte
}

// Direction tells Decode who sent a frame; several commands mean different
// things in a request and in a reply.
type Direction uint8

// The directions.
const (
	ToServer Direction = iota // sent by a client (or to a repeater)
	ToClient                  // sent by a server (or by a repeater)
)

// Search reply flags carried in a SEARCH request's data type.
const (
	SearchDoReply   = 10
	SearchDontReply = 5
)

// Event mask bits for EVENT_ADD.
const (
	DBEValue    = 1
	DBELog      = 2
	DBEArchive  = DBELog
	DBEAlarm    = 4
	DBEProperty = 8
)

// Access rights bits in ACCESS_RIGHTS.
const (
	AccessRead  = 1
	AccessWrite = 2
)

// BeaconIPUnknown in a search reply's P1 tells the client to use the reply's
// source address.
const BeaconIPUnknown = 0xFFFFFFFF

// appendMsg appends a header and a payload padded to 8 bytes.
func appendMsg(b []byte, cmd Command, dataType uint16, count, p1, p2 uint32, payload []byte) []byte {
	h := Header{Command: cmd, PayloadSize: uint32(Pad8(len(payload))), DataType: dataType, Count: count, P1: p1, P2: p2}
	b = AppendHeader(b, h)
	start := len(b)
	b = append(b, payload...)
	return appendPad(b, start)
}

// appendName appends a message whose payload is a NUL-terminated string.
func appendName(b []byte, cmd Command, dataType uint16, count, p1, p2 uint32, name string) []byte {
	size := Pad8(len(name) + 1)
	b = AppendHeader(b, Header{Command: cmd, PayloadSize: uint32(size), DataType: dataType, Count: count, P1: p1, P2: p2})
	b = append(b, name...)
	return appendZeros(b, size-len(name))
}

// AppendDBRMessage appends a message carrying a DBR payload of type t with count
// elements converted from src: a READ_NOTIFY or READ reply, an EVENT_ADD
// update, or a WRITE or WRITE_NOTIFY request. The header's data type is t and
// its count is count; p1 and p2 go to the header unchanged. The payload size is
// known before encoding, so the message is written in one pass with no copying.
// On a conversion error b is returned unchanged.
func AppendDBRMessage(b []byte, cmd Command, t DBRType, count int, p1, p2 uint32, src *DBR) ([]byte, error) {
	if !t.Valid() {
		return b, ErrBadType
	}
	start := len(b)
	size := Pad8(t.Size(count))
	b = AppendHeader(b, Header{Command: cmd, PayloadSize: uint32(size), DataType: uint16(t), Count: uint32(count), P1: p1, P2: p2})
	pstart := len(b)
	b, err := AppendDBR(b, t, count, src)
	if err != nil {
		return b[:start], err
	}
	return appendPad(b, pstart), nil
}

// AppendZeroDBRMessage appends a message with a zeroed DBR payload of type t and
// count elements, as a server sends with a failure status.
func AppendZeroDBRMessage(b []byte, cmd Command, t DBRType, count int, p1, p2 uint32) []byte {
	size := Pad8(t.Size(count))
	b = AppendHeader(b, Header{Command: cmd, PayloadSize: uint32(size), DataType: uint16(t), Count: uint32(count), P1: p1, P2: p2})
	return appendZeros(b, size)
}

// RawMessage is a message kept as its header and payload: the obsolete commands,
// and whatever a caller wants to pass through untouched.
type RawMessage struct {
	Header  Header
	Payload []byte
}

// Command returns the header's command.
func (m *RawMessage) Command() Command { return m.Header.Command }

// AppendTo appends the header with the payload padded to 8 bytes.
func (m *RawMessage) AppendTo(b []byte) []byte {
	h := m.Header
	return appendMsg(b, h.Command, h.DataType, h.Count, h.P1, h.P2, m.Payload)
}

// Version is CA_PROTO_VERSION. On TCP DataType is the circuit priority (client)
// or 0 (server); on UDP it is 1, meaning Seq holds the datagram's sequence number.
type Version struct {
	DataType uint16
	Minor    uint16
	Seq      uint32
}

func (*Version) Command() Command { return CmdVersion }
func (m *Version) AppendTo(b []byte) []byte {
	return appendMsg(b, CmdVersion, m.DataType, uint32(m.Minor), m.Seq, 0, nil)
}

// EventAdd is a subscription request (CA_PROTO_EVENT_ADD from a client).
type EventAdd struct {
	DataType DBRType
	Count    uint32 // 0 asks for the current length with every update
	SID      uint32
	SubID    uint32
	Mask     uint16
	Low      float32 // legacy deadband fields, sent as 0
	High     float32
	Timeout  float32
}

func (*EventAdd) Command() Command { return CmdEventAdd }
func (m *EventAdd) AppendTo(b []byte) []byte {
	var p [16]byte
	be.PutUint32(p[0:], math.Float32bits(m.Low))
	be.PutUint32(p[4:], math.Float32bits(m.High))
	be.PutUint32(p[8:], math.Float32bits(m.Timeout))
	be.PutUint16(p[12:], m.Mask)
	return appendMsg(b, CmdEventAdd, uint16(m.DataType), m.Count, m.SID, m.SubID, p[:])
}

// EventAddResponse is a subscription update (CA_PROTO_EVENT_ADD from a server).
// Data is the DBR payload; decode it with DecodeDBR(…, DataType, Count, Data).
type EventAddResponse struct {
	DataType DBRType
	Count    uint32
	Status   ECA
	SubID    uint32
	Data     []byte
}

func (*EventAddResponse) Command() Command { return CmdEventAdd }
func (m *EventAddResponse) AppendTo(b []byte) []byte {
	return appendMsg(b, CmdEventAdd, uint16(m.DataType), m.Count, uint32(m.Status), m.SubID, m.Data)
}

// EventCancel is CA_PROTO_EVENT_CANCEL. DataType and Count repeat the
// subscription's and are informational.
type EventCancel struct {
	DataType DBRType
	Count    uint32
	SID      uint32
	SubID    uint32
}

func (*EventCancel) Command() Command { return CmdEventCancel }
func (m *EventCancel) AppendTo(b []byte) []byte {
	return appendMsg(b, CmdEventCancel, uint16(m.DataType), m.Count, m.SID, m.SubID, nil)
}

// EventCancelResponse confirms a cancel: an EVENT_ADD with no payload, carrying
// the subscription's type, count, SID and ID.
type EventCancelResponse struct {
	DataType DBRType
	Count    uint32
	SID      uint32
	SubID    uint32
}

func (*EventCancelResponse) Command() Command { return CmdEventAdd }
func (m *EventCancelResponse) AppendTo(b []byte) []byte {
	return appendMsg(b, CmdEventAdd, uint16(m.DataType), m.Count, m.SID, m.SubID, nil)
}

// Read is the obsolete CA_PROTO_READ request.
type Read struct {
	DataType DBRType
	Count    uint32
	SID      uint32
	IOID     uint32
}

func (*Read) Command() Command { return CmdRead }
func (m *Read) AppendTo(b []byte) []byte {
	return appendMsg(b, CmdRead, uint16(m.DataType), m.Count, m.SID, m.IOID, nil)
}

// ReadResponse is the reply to the obsolete READ: P1 is the channel's CID.
type ReadResponse struct {
	DataType DBRType
	Count    uint32
	CID      uint32
	IOID     uint32
	Data     []byte
}

func (*ReadResponse) Command() Command { return CmdRead }
func (m *ReadResponse) AppendTo(b []byte) []byte {
	return appendMsg(b, CmdRead, uint16(m.DataType), m.Count, m.CID, m.IOID, m.Data)
}

// Write is CA_PROTO_WRITE: a put without completion. ID is whatever the client
// put in P2 (libca puts the channel's CID there); errors are reported with it.
type Write struct {
	DataType DBRType
	Count    uint32
	SID      uint32
	ID       uint32
	Data     []byte
}

func (*Write) Command() Command { return CmdWrite }
func (m *Write) AppendTo(b []byte) []byte {
	return appendMsg(b, CmdWrite, uint16(m.DataType), m.Count, m.SID, m.ID, m.Data)
}

// SearchRequest is CA_PROTO_SEARCH from a client.
type SearchRequest struct {
	Reply    uint16 // SearchDontReply, or SearchDoReply (TCP only)
	Minor    uint16
	SearchID uint32
	Name     string
}

func (*SearchRequest) Command() Command { return CmdSearch }
func (m *SearchRequest) AppendTo(b []byte) []byte {
	return appendName(b, CmdSearch, m.Reply, uint32(m.Minor), m.SearchID, m.SearchID, m.Name)
}

// SearchResponse is CA_PROTO_SEARCH from a server. IP is BeaconIPUnknown when
// the client should use the reply's source address. Minor is carried in an
// 8-byte payload over UDP; it is 0 (no payload) in a TCP reply.
type SearchResponse struct {
	Port     uint16
	IP       uint32
	SearchID uint32
	Minor    uint16
}

func (*SearchResponse) Command() Command { return CmdSearch }
func (m *SearchResponse) AppendTo(b []byte) []byte {
	if m.Minor == 0 {
		return appendMsg(b, CmdSearch, m.Port, 0, m.IP, m.SearchID, nil)
	}
	var p [8]byte
	be.PutUint16(p[0:], m.Minor)
	return appendMsg(b, CmdSearch, m.Port, 0, m.IP, m.SearchID, p[:])
}

// EventsOff is CA_PROTO_EVENTS_OFF: the client asks for flow control.
type EventsOff struct{}

func (*EventsOff) Command() Command         { return CmdEventsOff }
func (*EventsOff) AppendTo(b []byte) []byte { return appendMsg(b, CmdEventsOff, 0, 0, 0, 0, nil) }

// EventsOn is CA_PROTO_EVENTS_ON: the client ends flow control.
type EventsOn struct{}

func (*EventsOn) Command() Command         { return CmdEventsOn }
func (*EventsOn) AppendTo(b []byte) []byte { return appendMsg(b, CmdEventsOn, 0, 0, 0, 0, nil) }

// ReadSync is the obsolete CA_PROTO_READ_SYNC; servers echo its header.
type ReadSync struct{ Header Header }

func (*ReadSync) Command() Command { return CmdReadSync }
func (m *ReadSync) AppendTo(b []byte) []byte {
	h := m.Header
	return appendMsg(b, CmdReadSync, h.DataType, h.Count, h.P1, h.P2, nil)
}

// Error is CA_PROTO_ERROR: a server's report that a request failed. Request is
// the header of the failed request; Text explains the failure.
type Error struct {
	CID     uint32
	Status  ECA
	Request Header
	Text    string
}

func (*Error) Command() Command { return CmdError }
func (m *Error) AppendTo(b []byte) []byte {
	text := m.Text
	if len(text) > MaxClientNameSize-ExtHeaderSize-1 {
		text = text[:MaxClientNameSize-ExtHeaderSize-1]
	}
	size := Pad8(m.Request.Size() + len(text) + 1)
	b = AppendHeader(b, Header{Command: CmdError, PayloadSize: uint32(size), P1: m.CID, P2: uint32(m.Status)})
	start := len(b)
	b = AppendHeader(b, m.Request)
	b = append(b, text...)
	return appendZeros(b, size-(len(b)-start))
}

// ClearChannel is CA_PROTO_CLEAR_CHANNEL from a client.
type ClearChannel struct {
	SID uint32
	CID uint32
}

func (*ClearChannel) Command() Command { return CmdClearChannel }
func (m *ClearChannel) AppendTo(b []byte) []byte {
	return appendMsg(b, CmdClearChannel, 0, 0, m.SID, m.CID, nil)
}

// ClearChannelResponse confirms a CLEAR_CHANNEL.
type ClearChannelResponse struct {
	SID uint32
	CID uint32
}

func (*ClearChannelResponse) Command() Command { return CmdClearChannel }
func (m *ClearChannelResponse) AppendTo(b []byte) []byte {
	return appendMsg(b, CmdClearChannel, 0, 0, m.SID, m.CID, nil)
}

// Beacon is CA_PROTO_RSRV_IS_UP. IP is 0 when sent by a server on all
// interfaces; a repeater fills in the source address before forwarding.
type Beacon struct {
	Minor uint16
	Port  uint16
	ID    uint32
	IP    uint32
}

func (*Beacon) Command() Command { return CmdRsrvIsUp }
func (m *Beacon) AppendTo(b []byte) []byte {
	return appendMsg(b, CmdRsrvIsUp, m.Minor, uint32(m.Port), m.ID, m.IP, nil)
}

// NotFound is CA_PROTO_NOT_FOUND: the negative answer to a TCP search with
// SearchDoReply.
type NotFound struct {
	Reply    uint16
	Minor    uint16
	SearchID uint32
}

func (*NotFound) Command() Command { return CmdNotFound }
func (m *NotFound) AppendTo(b []byte) []byte {
	return appendMsg(b, CmdNotFound, m.Reply, uint32(m.Minor), m.SearchID, m.SearchID, nil)
}

// ReadNotify is CA_PROTO_READ_NOTIFY from a client.
type ReadNotify struct {
	DataType DBRType
	Count    uint32 // 0 asks for the current length
	SID      uint32
	IOID     uint32
}

func (*ReadNotify) Command() Command { return CmdReadNotify }
func (m *ReadNotify) AppendTo(b []byte) []byte {
	return appendMsg(b, CmdReadNotify, uint16(m.DataType), m.Count, m.SID, m.IOID, nil)
}

// ReadNotifyResponse is CA_PROTO_READ_NOTIFY from a server.
type ReadNotifyResponse struct {
	DataType DBRType
	Count    uint32
	Status   ECA
	IOID     uint32
	Data     []byte
}

func (*ReadNotifyResponse) Command() Command { return CmdReadNotify }
func (m *ReadNotifyResponse) AppendTo(b []byte) []byte {
	return appendMsg(b, CmdReadNotify, uint16(m.DataType), m.Count, uint32(m.Status), m.IOID, m.Data)
}

// RepeaterConfirm is REPEATER_CONFIRM: the repeater accepted a registration
// from the client at IP.
type RepeaterConfirm struct{ IP uint32 }

func (*RepeaterConfirm) Command() Command { return CmdRepeaterConfirm }
func (m *RepeaterConfirm) AppendTo(b []byte) []byte {
	return appendMsg(b, CmdRepeaterConfirm, 0, 0, 0, m.IP, nil)
}

// CreateChan is CA_PROTO_CREATE_CHAN from a client.
type CreateChan struct {
	CID   uint32
	Minor uint32 // the client's minor version, at least 4
	Name  string
}

func (*CreateChan) Command() Command { return CmdCreateChan }
func (m *CreateChan) AppendTo(b []byte) []byte {
	return appendName(b, CmdCreateChan, 0, 0, m.CID, m.Minor, m.Name)
}

// CreateChanResponse is CA_PROTO_CREATE_CHAN from a server: the channel's native
// type and element count (its capacity).
type CreateChanResponse struct {
	DataType DBRType
	Count    uint32
	CID      uint32
	SID      uint32
}

func (*CreateChanResponse) Command() Command { return CmdCreateChan }
func (m *CreateChanResponse) AppendTo(b []byte) []byte {
	return appendMsg(b, CmdCreateChan, uint16(m.DataType), m.Count, m.CID, m.SID, nil)
}

// WriteNotify is CA_PROTO_WRITE_NOTIFY: a put with completion.
type WriteNotify struct {
	DataType DBRType
	Count    uint32
	SID      uint32
	IOID     uint32
	Data     []byte
}

func (*WriteNotify) Command() Command { return CmdWriteNotify }
func (m *WriteNotify) AppendTo(b []byte) []byte {
	return appendMsg(b, CmdWriteNotify, uint16(m.DataType), m.Count, m.SID, m.IOID, m.Data)
}

// WriteNotifyResponse reports the completion of a WRITE_NOTIFY.
type WriteNotifyResponse struct {
	DataType DBRType
	Count    uint32
	Status   ECA
	IOID     uint32
}

func (*WriteNotifyResponse) Command() Command { return CmdWriteNotify }
func (m *WriteNotifyResponse) AppendTo(b []byte) []byte {
	return appendMsg(b, CmdWriteNotify, uint16(m.DataType), m.Count, uint32(m.Status), m.IOID, nil)
}

// ClientName is CA_PROTO_CLIENT_NAME: the user name of the client.
type ClientName struct{ Name string }

func (*ClientName) Command() Command { return CmdClientName }
func (m *ClientName) AppendTo(b []byte) []byte {
	return appendName(b, CmdClientName, 0, 0, 0, 0, m.Name)
}

// HostName is CA_PROTO_HOST_NAME: the host name of the client.
type HostName struct{ Name string }

func (*HostName) Command() Command { return CmdHostName }
func (m *HostName) AppendTo(b []byte) []byte {
	return appendName(b, CmdHostName, 0, 0, 0, 0, m.Name)
}

// AccessRights is CA_PROTO_ACCESS_RIGHTS: AccessRead and AccessWrite bits.
type AccessRights struct {
	CID    uint32
	Rights uint32
}

func (*AccessRights) Command() Command { return CmdAccessRights }
func (m *AccessRights) AppendTo(b []byte) []byte {
	return appendMsg(b, CmdAccessRights, 0, 0, m.CID, m.Rights, nil)
}

// Echo is CA_PROTO_ECHO, in either direction.
type Echo struct{}

func (*Echo) Command() Command         { return CmdEcho }
func (*Echo) AppendTo(b []byte) []byte { return appendMsg(b, CmdEcho, 0, 0, 0, 0, nil) }

// RepeaterRegister is REPEATER_REGISTER: a client asks the repeater for beacons.
type RepeaterRegister struct{ IP uint32 }

func (*RepeaterRegister) Command() Command { return CmdRepeaterRegister }
func (m *RepeaterRegister) AppendTo(b []byte) []byte {
	return appendMsg(b, CmdRepeaterRegister, 0, 0, 0, m.IP, nil)
}

// CreateChFail is CA_PROTO_CREATE_CH_FAIL: the server does not host the name.
type CreateChFail struct{ CID uint32 }

func (*CreateChFail) Command() Command { return CmdCreateChFail }
func (m *CreateChFail) AppendTo(b []byte) []byte {
	return appendMsg(b, CmdCreateChFail, 0, 0, m.CID, 0, nil)
}

// ServerDisconn is CA_PROTO_SERVER_DISCONN: the server destroyed the channel.
type ServerDisconn struct{ CID uint32 }

func (*ServerDisconn) Command() Command { return CmdServerDisconn }
func (m *ServerDisconn) AppendTo(b []byte) []byte {
	return appendMsg(b, CmdServerDisconn, 0, 0, m.CID, 0, nil)
}

// Obsolete commands, kept as raw messages so that they can be encoded, decoded
// and rejected with a precise error.
type (
	// Snapshot is the obsolete CA_PROTO_SNAPSHOT.
	Snapshot struct{ RawMessage }
	// Build is the obsolete CA_PROTO_BUILD.
	Build struct{ RawMessage }
	// ReadBuild is the obsolete CA_PROTO_READ_BUILD.
	ReadBuild struct{ RawMessage }
	// Signal is the obsolete CA_PROTO_SIGNAL.
	Signal struct{ RawMessage }
)

// DecodeError reports a frame that is well framed but not a valid message.
type DecodeError struct {
	Header Header
	Why    string
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("ca: bad %s message: %s", e.Header.Command, e.Why)
}

// ErrUnknownCommand is wrapped by Decode's error for a command code above 27.
var ErrUnknownCommand = errors.New("ca: unknown command")

// decodeName returns the NUL-terminated text of a payload.
func decodeName(f *Frame, limit int) (string, error) {
	s := cstring(f.Payload)
	if len(s) == 0 {
		return "", &DecodeError{Header: f.Header, Why: "empty name"}
	}
	if len(s) >= limit {
		return "", &DecodeError{Header: f.Header, Why: fmt.Sprintf("name of %d bytes exceeds %d", len(s), limit-1)}
	}
	return string(s), nil
}

// Decode returns the typed message in f, as sent in direction dir. Payload
// slices (Data fields) alias f.Payload. Names and texts are copied.
func Decode(f Frame, dir Direction) (Message, error) {
	h := f.Header
	t := DBRType(h.DataType)
	switch h.Command {
	case CmdVersion:
		return &Version{DataType: h.DataType, Minor: uint16(h.Count), Seq: h.P1}, nil
	case CmdEventAdd:
		if dir == ToServer {
			if len(f.Payload) < 16 {
				return nil, &DecodeError{Header: h, Why: fmt.Sprintf("payload of %d bytes, need 16", len(f.Payload))}
			}
			p := f.Payload
			return &EventAdd{DataType: t, Count: h.Count, SID: h.P1, SubID: h.P2,
				Low: math.Float32frombits(be.Uint32(p[0:])), High: math.Float32frombits(be.Uint32(p[4:])),
				Timeout: math.Float32frombits(be.Uint32(p[8:])), Mask: be.Uint16(p[12:])}, nil
		}
		if h.PayloadSize == 0 {
			return &EventCancelResponse{DataType: t, Count: h.Count, SID: h.P1, SubID: h.P2}, nil
		}
		return &EventAddResponse{DataType: t, Count: h.Count, Status: ECA(h.P1), SubID: h.P2, Data: f.Payload}, nil
	case CmdEventCancel:
		return &EventCancel{DataType: t, Count: h.Count, SID: h.P1, SubID: h.P2}, nil
	case CmdRead:
		if dir == ToServer {
			return &Read{DataType: t, Count: h.Count, SID: h.P1, IOID: h.P2}, nil
		}
		return &ReadResponse{DataType: t, Count: h.Count, CID: h.P1, IOID: h.P2, Data: f.Payload}, nil
	case CmdWrite:
		return &Write{DataType: t, Count: h.Count, SID: h.P1, ID: h.P2, Data: f.Payload}, nil
	case CmdSearch:
		if dir == ToServer {
			name, err := decodeName(&f, MaxNameSize)
			if err != nil {
				return nil, err
			}
			return &SearchRequest{Reply: h.DataType, Minor: uint16(h.Count), SearchID: h.P1, Name: name}, nil
		}
		m := &SearchResponse{Port: h.DataType, IP: h.P1, SearchID: h.P2}
		if len(f.Payload) >= 2 {
			m.Minor = be.Uint16(f.Payload)
		}
		return m, nil
	case CmdEventsOff:
		return &EventsOff{}, nil
	case CmdEventsOn:
		return &EventsOn{}, nil
	case CmdReadSync:
		return &ReadSync{Header: h}, nil
	case CmdError:
		req, n, err := ParseHeader(f.Payload)
		if err != nil {
			return nil, &DecodeError{Header: h, Why: "payload too short for the embedded request header"}
		}
		return &Error{CID: h.P1, Status: ECA(h.P2), Request: req, Text: string(cstring(f.Payload[n:]))}, nil
	case CmdClearChannel:
		if dir == ToServer {
			return &ClearChannel{SID: h.P1, CID: h.P2}, nil
		}
		return &ClearChannelResponse{SID: h.P1, CID: h.P2}, nil
	case CmdRsrvIsUp:
		return &Beacon{Minor: h.DataType, Port: uint16(h.Count), ID: h.P1, IP: h.P2}, nil
	case CmdNotFound:
		return &NotFound{Reply: h.DataType, Minor: uint16(h.Count), SearchID: h.P2}, nil
	case CmdReadNotify:
		if dir == ToServer {
			return &ReadNotify{DataType: t, Count: h.Count, SID: h.P1, IOID: h.P2}, nil
		}
		return &ReadNotifyResponse{DataType: t, Count: h.Count, Status: ECA(h.P1), IOID: h.P2, Data: f.Payload}, nil
	case CmdRepeaterConfirm:
		return &RepeaterConfirm{IP: h.P2}, nil
	case CmdCreateChan:
		if dir == ToServer {
			name, err := decodeName(&f, MaxNameSize)
			if err != nil {
				return nil, err
			}
			return &CreateChan{CID: h.P1, Minor: h.P2, Name: name}, nil
		}
		return &CreateChanResponse{DataType: t, Count: h.Count, CID: h.P1, SID: h.P2}, nil
	case CmdWriteNotify:
		if dir == ToServer {
			return &WriteNotify{DataType: t, Count: h.Count, SID: h.P1, IOID: h.P2, Data: f.Payload}, nil
		}
		return &WriteNotifyResponse{DataType: t, Count: h.Count, Status: ECA(h.P1), IOID: h.P2}, nil
	case CmdClientName, CmdHostName:
		s := cstring(f.Payload)
		if len(s) > MaxClientNameSize {
			return nil, &DecodeError{Header: h, Why: fmt.Sprintf("name of %d bytes exceeds %d", len(s), MaxClientNameSize)}
		}
		if h.Command == CmdClientName {
			return &ClientName{Name: string(s)}, nil
		}
		return &HostName{Name: string(s)}, nil
	case CmdAccessRights:
		return &AccessRights{CID: h.P1, Rights: h.P2}, nil
	case CmdEcho:
		return &Echo{}, nil
	case CmdRepeaterRegister:
		return &RepeaterRegister{IP: h.P2}, nil
	case CmdCreateChFail:
		return &CreateChFail{CID: h.P1}, nil
	case CmdServerDisconn:
		return &ServerDisconn{CID: h.P1}, nil
	case CmdSnapshot:
		return &Snapshot{RawMessage{Header: h, Payload: f.Payload}}, nil
	case CmdBuild:
		return &Build{RawMessage{Header: h, Payload: f.Payload}}, nil
	case CmdReadBuild:
		return &ReadBuild{RawMessage{Header: h, Payload: f.Payload}}, nil
	case CmdSignal:
		return &Signal{RawMessage{Header: h, Payload: f.Payload}}, nil
	}
	return nil, fmt.Errorf("%w %d", ErrUnknownCommand, uint16(h.Command))
}
