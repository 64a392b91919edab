package wire

// Byte-exact golden tests against every message of every capture listing.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestCaptureHeaders parses every captured header and compares each field with
// the listing's field lines.
func TestCaptureHeaders(t *testing.T) {
	for _, m := range allMessages(t) {
		h, n, err := ParseHeader(m.Bytes)
		if err != nil {
			t.Errorf("%s: ParseHeader: %v", m.Name(), err)
			continue
		}
		want := m.Header()
		if h != want {
			t.Errorf("%s: ParseHeader = %+v, listing says %+v", m.Name(), h, want)
		}
		wantN := HeaderSize
		if m.Extended {
			wantN = ExtHeaderSize
		}
		if n != wantN {
			t.Errorf("%s: header size %d, want %d", m.Name(), n, wantN)
		}
		if h.Extended() != m.Extended || h.Size() != wantN {
			t.Errorf("%s: Extended() = %v, Size() = %d; the sender used the %d-byte form", m.Name(), h.Extended(), h.Size(), wantN)
		}
		if n+int(h.PayloadSize) != len(m.Bytes) {
			t.Errorf("%s: header %d + payload %d != message %d bytes", m.Name(), n, h.PayloadSize, len(m.Bytes))
		}
		if h.PayloadSize%8 != 0 {
			t.Errorf("%s: payload size %d is not padded", m.Name(), h.PayloadSize)
		}
		if h.Command.String() != strings.TrimPrefix(m.CmdName, "CA_PROTO_") {
			t.Errorf("%s: Command.String() = %q, listing names it %q", m.Name(), h.Command.String(), m.CmdName)
		}
		if got := AppendHeader(nil, h); !bytes.Equal(got, m.Bytes[:n]) {
			t.Errorf("%s: AppendHeader = %x, want %x", m.Name(), got, m.Bytes[:n])
		}
		// A truncated header must ask for exactly the bytes it lacks.
		for cut := 0; cut < n; cut++ {
			_, need, err := ParseHeader(m.Bytes[:cut])
			wantNeed := HeaderSize
			if cut >= HeaderSize {
				wantNeed = ExtHeaderSize
			}
			if err != ErrShort || need != wantNeed {
				t.Errorf("%s: ParseHeader of %d bytes = (%d, %v), want (%d, ErrShort)", m.Name(), cut, need, err, wantNeed)
			}
		}
	}
}

// The Go type Decode must return for each kind of message, keyed by the start
// of the listing's first decoded line.
var listingKinds = []struct {
	prefix string
	typ    Message
}{
	{"UDP version header", (*Version)(nil)},
	{"TCP version", (*Version)(nil)},
	{"search request", (*SearchRequest)(nil)},
	{"search reply", (*SearchResponse)(nil)},
	{"user name=", (*ClientName)(nil)},
	{"host name=", (*HostName)(nil)},
	{"create channel request", (*CreateChan)(nil)},
	{"create channel reply", (*CreateChanResponse)(nil)},
	{"access rights", (*AccessRights)(nil)},
	{"read notify request", (*ReadNotify)(nil)},
	{"read notify reply", (*ReadNotifyResponse)(nil)},
	{"clear channel request", (*ClearChannel)(nil)},
	{"clear channel reply", (*ClearChannelResponse)(nil)},
	{"beacon", (*Beacon)(nil)},
	{"event add request", (*EventAdd)(nil)},
	{"event (monitor update)", (*EventAddResponse)(nil)},
	{"event cancel", (*EventCancel)(nil)},
	{"event add reply without payload", (*EventCancelResponse)(nil)},
	{"write request", (*Write)(nil)},
	{"write notify request", (*WriteNotify)(nil)},
	{"write notify reply", (*WriteNotifyResponse)(nil)},
	{"error", (*Error)(nil)},
	{"echo", (*Echo)(nil)},
	{"repeater confirm", (*RepeaterConfirm)(nil)},
}

func listingKind(m *captureMsg) reflect.Type {
	for _, k := range listingKinds {
		if strings.HasPrefix(m.Decoded[0], k.prefix) {
			return reflect.TypeOf(k.typ)
		}
	}
	return nil
}

// TestCaptureDecodeReencode decodes every captured message to its typed form,
// checks the typed fields against the header and the listing, and re-encodes
// it, which must give back the captured bytes exactly.
func TestCaptureDecodeReencode(t *testing.T) {
	seen := map[reflect.Type]int{}
	for _, m := range allMessages(t) {
		msg, err := Decode(m.Frame(), m.Direction())
		if err != nil {
			t.Errorf("%s: Decode: %v", m.Name(), err)
			continue
		}
		want := listingKind(m)
		if want == nil {
			t.Errorf("%s: no expected type for %q", m.Name(), m.Decoded[0])
		} else if got := reflect.TypeOf(msg); got != want {
			t.Errorf("%s: Decode gave %v, want %v (%s)", m.Name(), got, want, m.Decoded[0])
		}
		seen[reflect.TypeOf(msg)]++
		if msg.Command() != Command(m.Cmd) {
			t.Errorf("%s: Command() = %v, want %d", m.Name(), msg.Command(), m.Cmd)
		}
		checkMessageFields(t, m.Name(), msg, m.Frame())
		checkListingFields(t, m, msg)
		if got := msg.AppendTo(nil); !bytes.Equal(got, m.Bytes) {
			t.Errorf("%s: re-encoded\n got %x\nwant %x", m.Name(), head(got), head(m.Bytes))
		}
		// AppendTo appends: a prefix must survive.
		prefix := []byte("prefix")
		if got := msg.AppendTo(prefix); !bytes.Equal(got[:6], []byte("prefix")) || !bytes.Equal(got[6:], m.Bytes) {
			t.Errorf("%s: AppendTo does not append to its argument", m.Name())
		}
		// Beacons mean the same whoever is said to have sent them.
		if m.Cmd == uint64(CmdRsrvIsUp) {
			other, err := Decode(m.Frame(), 1-m.Direction())
			if err != nil || !reflect.DeepEqual(other, msg) {
				t.Errorf("%s: a beacon decodes differently by direction: %+v, %v", m.Name(), other, err)
			}
		}
	}
	if len(seen) != len(listingKinds)-1 { // two kinds of version line
		t.Errorf("the captures exercised %d message types: %v", len(seen), seen)
	}
}

// head shortens long byte slices in failure messages.
func head(b []byte) []byte {
	if len(b) > 96 {
		return b[:96]
	}
	return b
}

// checkMessageFields verifies that every field of a decoded message carries the
// header (and payload) value it was taken from. It is shared with FuzzDecode.
func checkMessageFields(t testing.TB, name string, msg Message, f Frame) {
	t.Helper()
	h := f.Header
	dt := DBRType(h.DataType)
	bad := func(field string, got, want any) {
		t.Helper()
		t.Errorf("%s: %T.%s = %v, header says %v", name, msg, field, got, want)
	}
	eq := func(field string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			bad(field, got, want)
		}
	}
	switch m := msg.(type) {
	case *Version:
		eq("DataType", m.DataType, h.DataType)
		eq("Minor", m.Minor, uint16(h.Count))
		eq("Seq", m.Seq, h.P1)
	case *EventAdd:
		eq("DataType", m.DataType, dt)
		eq("Count", m.Count, h.Count)
		eq("SID", m.SID, h.P1)
		eq("SubID", m.SubID, h.P2)
		p := f.Payload
		eq("Low", math.Float32bits(m.Low), be.Uint32(p[0:]))
		eq("High", math.Float32bits(m.High), be.Uint32(p[4:]))
		eq("Timeout", math.Float32bits(m.Timeout), be.Uint32(p[8:]))
		eq("Mask", m.Mask, be.Uint16(p[12:]))
	case *EventAddResponse:
		eq("DataType", m.DataType, dt)
		eq("Count", m.Count, h.Count)
		eq("Status", m.Status, ECA(h.P1))
		eq("SubID", m.SubID, h.P2)
		eq("Data", m.Data, f.Payload)
	case *EventCancelResponse:
		eq("DataType", m.DataType, dt)
		eq("Count", m.Count, h.Count)
		eq("SID", m.SID, h.P1)
		eq("SubID", m.SubID, h.P2)
	case *EventCancel:
		eq("DataType", m.DataType, dt)
		eq("Count", m.Count, h.Count)
		eq("SID", m.SID, h.P1)
		eq("SubID", m.SubID, h.P2)
	case *Read:
		eq("DataType", m.DataType, dt)
		eq("Count", m.Count, h.Count)
		eq("SID", m.SID, h.P1)
		eq("IOID", m.IOID, h.P2)
	case *ReadResponse:
		eq("DataType", m.DataType, dt)
		eq("Count", m.Count, h.Count)
		eq("CID", m.CID, h.P1)
		eq("IOID", m.IOID, h.P2)
		eq("Data", m.Data, f.Payload)
	case *Write:
		eq("DataType", m.DataType, dt)
		eq("Count", m.Count, h.Count)
		eq("SID", m.SID, h.P1)
		eq("ID", m.ID, h.P2)
		eq("Data", m.Data, f.Payload)
	case *SearchRequest:
		eq("Reply", m.Reply, h.DataType)
		eq("Minor", m.Minor, uint16(h.Count))
		eq("SearchID", m.SearchID, h.P1)
		eq("Name", m.Name, string(cstring(f.Payload)))
	case *SearchResponse:
		eq("Port", m.Port, h.DataType)
		eq("IP", m.IP, h.P1)
		eq("SearchID", m.SearchID, h.P2)
		var minor uint16
		if len(f.Payload) >= 2 {
			minor = be.Uint16(f.Payload)
		}
		eq("Minor", m.Minor, minor)
	case *EventsOff, *EventsOn, *Echo:
	case *ReadSync:
		eq("Header", m.Header, h)
	case *Error:
		eq("CID", m.CID, h.P1)
		eq("Status", m.Status, ECA(h.P2))
		req, n, err := ParseHeader(f.Payload)
		if err != nil {
			t.Errorf("%s: Error decoded from a payload without a request header", name)
			return
		}
		eq("Request", m.Request, req)
		eq("Text", m.Text, string(cstring(f.Payload[n:])))
	case *ClearChannel:
		eq("SID", m.SID, h.P1)
		eq("CID", m.CID, h.P2)
	case *ClearChannelResponse:
		eq("SID", m.SID, h.P1)
		eq("CID", m.CID, h.P2)
	case *Beacon:
		eq("Minor", m.Minor, h.DataType)
		eq("Port", m.Port, uint16(h.Count))
		eq("ID", m.ID, h.P1)
		eq("IP", m.IP, h.P2)
	case *NotFound:
		eq("Reply", m.Reply, h.DataType)
		eq("Minor", m.Minor, uint16(h.Count))
		eq("SearchID", m.SearchID, h.P2)
	case *ReadNotify:
		eq("DataType", m.DataType, dt)
		eq("Count", m.Count, h.Count)
		eq("SID", m.SID, h.P1)
		eq("IOID", m.IOID, h.P2)
	case *ReadNotifyResponse:
		eq("DataType", m.DataType, dt)
		eq("Count", m.Count, h.Count)
		eq("Status", m.Status, ECA(h.P1))
		eq("IOID", m.IOID, h.P2)
		eq("Data", m.Data, f.Payload)
	case *RepeaterConfirm:
		eq("IP", m.IP, h.P2)
	case *CreateChan:
		eq("CID", m.CID, h.P1)
		eq("Minor", m.Minor, h.P2)
		eq("Name", m.Name, string(cstring(f.Payload)))
	case *CreateChanResponse:
		eq("DataType", m.DataType, dt)
		eq("Count", m.Count, h.Count)
		eq("CID", m.CID, h.P1)
		eq("SID", m.SID, h.P2)
	case *WriteNotify:
		eq("DataType", m.DataType, dt)
		eq("Count", m.Count, h.Count)
		eq("SID", m.SID, h.P1)
		eq("IOID", m.IOID, h.P2)
		eq("Data", m.Data, f.Payload)
	case *WriteNotifyResponse:
		eq("DataType", m.DataType, dt)
		eq("Count", m.Count, h.Count)
		eq("Status", m.Status, ECA(h.P1))
		eq("IOID", m.IOID, h.P2)
	case *ClientName:
		eq("Name", m.Name, string(cstring(f.Payload)))
	case *HostName:
		eq("Name", m.Name, string(cstring(f.Payload)))
	case *AccessRights:
		eq("CID", m.CID, h.P1)
		eq("Rights", m.Rights, h.P2)
	case *RepeaterRegister:
		eq("IP", m.IP, h.P2)
	case *CreateChFail:
		eq("CID", m.CID, h.P1)
	case *ServerDisconn:
		eq("CID", m.CID, h.P1)
	case *Snapshot:
		eq("Header", m.Header, h)
		eq("Payload", m.Payload, f.Payload)
	case *Build:
		eq("Header", m.Header, h)
		eq("Payload", m.Payload, f.Payload)
	case *ReadBuild:
		eq("Header", m.Header, h)
		eq("Payload", m.Payload, f.Payload)
	case *Signal:
		eq("Header", m.Header, h)
		eq("Payload", m.Payload, f.Payload)
	default:
		t.Errorf("%s: unexpected message type %T", name, msg)
	}
}

var (
	dbrNameRE    = regexp.MustCompile(`data_type=(\d+) (DBR_\w+)`)
	nativeTypeRE = regexp.MustCompile(`native type (\d+) \(DBF_(\w+)\)`)
	ecaRE        = regexp.MustCompile(`status (\d+) \((ECA_\w+)\)`)
	quotedNameRE = regexp.MustCompile(`name="([^"]*)"`)
	maskRE       = regexp.MustCompile(`mask=0x([0-9a-f]{4})`)
	messageRE    = regexp.MustCompile(`^message="([^"]*)"$`)
	origReqRE    = regexp.MustCompile(`^original request header: cmd=(\d+) (\w+) payload_size=(\d+) data_type=(\d+) count=(\d+) p1=(\d+) p2=(\d+)$`)
	ipv4RE       = regexp.MustCompile(`IPv4 (?:address )?(\d+)\.(\d+)\.(\d+)\.(\d+)`)
	rightsRE     = regexp.MustCompile(`p2=(\d) \(([A-Z|]+)\)`)
	minorRE      = regexp.MustCompile(`server minor protocol version = (\d+)`)
)

// checkListingFields compares a decoded message with the meaning the listing's
// decoded lines give: type names, ECA names, names, masks, addresses.
func checkListingFields(t *testing.T, cm *captureMsg, msg Message) {
	t.Helper()
	for _, d := range cm.Decoded {
		for _, sub := range dbrNameRE.FindAllStringSubmatch(d, -1) {
			if got := DBRType(atoi(sub[1])).String(); got != sub[2] {
				t.Errorf("%s: DBRType(%s).String() = %q, listing says %q", cm.Name(), sub[1], got, sub[2])
			}
		}
		if sub := nativeTypeRE.FindStringSubmatch(d); sub != nil {
			if got := DBRType(atoi(sub[1])).String(); got != "DBR_"+sub[2] {
				t.Errorf("%s: native type %s is %q, listing says DBF_%s", cm.Name(), sub[1], got, sub[2])
			}
		}
		for _, sub := range ecaRE.FindAllStringSubmatch(d, -1) {
			e := ECA(atoi(sub[1]))
			if e.Name() != sub[2] || !e.Known() {
				t.Errorf("%s: ECA(%s).Name() = %q, listing says %q", cm.Name(), sub[1], e.Name(), sub[2])
			}
			if e.Success() != (sub[2] == "ECA_NORMAL") {
				t.Errorf("%s: %s.Success() = %v", cm.Name(), sub[2], e.Success())
			}
		}
	}
	first := cm.Decoded[0]
	switch m := msg.(type) {
	case *SearchRequest, *CreateChan:
		line := first
		if _, isSearch := m.(*SearchRequest); isSearch {
			line, _ = cm.DecodedLine("name=")
		}
		sub := quotedNameRE.FindStringSubmatch(line)
		name := reflect.ValueOf(m).Elem().FieldByName("Name").String()
		if sub == nil || sub[1] != name {
			t.Errorf("%s: name %q, listing says %q", cm.Name(), name, line)
		}
	case *ClientName:
		if sub := quotedNameRE.FindStringSubmatch(first); sub == nil || sub[1] != m.Name {
			t.Errorf("%s: user name %q, listing says %q", cm.Name(), m.Name, first)
		}
	case *HostName:
		if sub := quotedNameRE.FindStringSubmatch(first); sub == nil || sub[1] != m.Name {
			t.Errorf("%s: host name %q, listing says %q", cm.Name(), m.Name, first)
		}
	case *SearchResponse:
		want := 0
		if line, ok := cm.DecodedLine("payload: uint16 server minor"); ok {
			want = atoi(minorRE.FindStringSubmatch(line)[1])
		}
		if int(m.Minor) != want {
			t.Errorf("%s: search reply minor %d, want %d", cm.Name(), m.Minor, want)
		}
		if m.IP != BeaconIPUnknown {
			t.Errorf("%s: search reply IP %#x, want BeaconIPUnknown", cm.Name(), m.IP)
		}
	case *EventAdd:
		line, _ := cm.DecodedLine("mon_info payload:")
		sub := maskRE.FindStringSubmatch(line)
		if sub == nil {
			t.Fatalf("%s: no mask in %q", cm.Name(), line)
		}
		mask, _ := strconv.ParseUint(sub[1], 16, 16)
		if m.Mask != uint16(mask) || m.Mask != DBEValue|DBEAlarm || m.Low != 0 || m.High != 0 || m.Timeout != 0 {
			t.Errorf("%s: EventAdd %+v, listing says %q", cm.Name(), m, line)
		}
	case *AccessRights:
		sub := rightsRE.FindStringSubmatch(first)
		if sub == nil || m.Rights != uint32(atoi(sub[1])) || sub[2] != "READ|WRITE" || m.Rights != AccessRead|AccessWrite {
			t.Errorf("%s: rights %d, listing says %q", cm.Name(), m.Rights, first)
		}
	case *Beacon:
		sub := ipv4RE.FindStringSubmatch(first)
		ip := uint32(atoi(sub[1]))<<24 | uint32(atoi(sub[2]))<<16 | uint32(atoi(sub[3]))<<8 | uint32(atoi(sub[4]))
		if m.IP != ip || m.Minor != MinorVersion || m.Port != 28064 {
			t.Errorf("%s: beacon %+v, listing says %q", cm.Name(), m, first)
		}
	case *RepeaterConfirm:
		sub := ipv4RE.FindStringSubmatch(first)
		ip := uint32(atoi(sub[1]))<<24 | uint32(atoi(sub[2]))<<16 | uint32(atoi(sub[3]))<<8 | uint32(atoi(sub[4]))
		if m.IP != ip {
			t.Errorf("%s: repeater confirm IP %#x, listing says %q", cm.Name(), m.IP, first)
		}
	case *Version:
		if m.Minor != MinorVersion {
			t.Errorf("%s: version minor %d, want %d", cm.Name(), m.Minor, MinorVersion)
		}
	case *Error:
		line, _ := cm.DecodedLine("original request header:")
		sub := origReqRE.FindStringSubmatch(line)
		if sub == nil {
			t.Fatalf("%s: no request header line", cm.Name())
		}
		want := Header{Command: Command(atoi(sub[1])), PayloadSize: uint32(atoi(sub[3])), DataType: uint16(atoi(sub[4])),
			Count: uint32(atoi(sub[5])), P1: uint32(atoi(sub[6])), P2: uint32(atoi(sub[7]))}
		if m.Request != want || m.Request.Command.String() != sub[2] {
			t.Errorf("%s: embedded request %+v, listing says %+v", cm.Name(), m.Request, want)
		}
		line, _ = cm.DecodedLine("message=")
		if sub := messageRE.FindStringSubmatch(line); sub == nil || sub[1] != m.Text {
			t.Errorf("%s: error text %q, listing says %q", cm.Name(), m.Text, line)
		}
	}
}

// dbrData returns the DBR payload a message carries and whether it carries one.
func dbrData(msg Message) ([]byte, bool) {
	switch m := msg.(type) {
	case *ReadNotifyResponse:
		return m.Data, true
	case *EventAddResponse:
		return m.Data, true
	case *ReadResponse:
		return m.Data, true
	case *Write:
		return m.Data, true
	case *WriteNotify:
		return m.Data, true
	}
	return nil, false
}

// TestCaptureDBR decodes every captured DBR payload, compares the values with
// the listing's decoded lines, and re-encodes it with AppendDBR and
// AppendDBRMessage. The re-encoding must equal the captured payload except in
// the bytes the README calls unspecified (RISC pad fields, string bytes after
// the NUL), and the test requires the differing bytes to be exactly the
// non-zero unspecified bytes the listing reports.
func TestCaptureDBR(t *testing.T) {
	types := map[DBRType]int{}
	withUnspecified := 0
	for _, m := range allMessages(t) {
		msg, err := Decode(m.Frame(), m.Direction())
		if err != nil {
			t.Fatalf("%s: %v", m.Name(), err)
		}
		payload, isDBR := dbrData(msg)
		_, listed := m.DecodedLine("DBR_")
		if !isDBR {
			if listed {
				t.Errorf("%s: the listing decodes a DBR payload but %T carries none", m.Name(), msg)
			}
			continue
		}
		if !listed {
			t.Errorf("%s: %T carries no listed DBR payload", m.Name(), msg)
			continue
		}
		typ, count := DBRType(m.DataType), int(m.Count)
		types[typ]++
		var d DBR
		if err := DecodeDBR(&d, typ, count, payload); err != nil {
			t.Errorf("%s: DecodeDBR: %v", m.Name(), err)
			continue
		}
		if d.Type != typ || d.Value.Type != typ.Base() || d.Value.Len() != count {
			t.Errorf("%s: decoded type %v / %v with %d elements", m.Name(), d.Type, d.Value.Type, d.Value.Len())
		}
		unspecified := checkDBRListing(t, m, &d, payload)
		checkDBRReencode(t, m, &d, payload, unspecified)
		if len(unspecified) > 0 {
			withUnspecified++
		}
	}
	// Most RSRV DBR_TIME_DOUBLE replies carry 0x00000003 in their RISC pad and
	// the DBR_STS_STRING reply has garbage after its NUL: the comparison above
	// must really have masked bytes.
	if withUnspecified < 20 {
		t.Errorf("only %d payloads had non-zero unspecified bytes", withUnspecified)
	}
	for _, typ := range []DBRType{DBRString, DBRChar, DBRDouble, DBRStsString, DBRTimeString, DBRTimeChar,
		DBRTimeDouble, DBRGrDouble, DBRCtrlEnum, DBRCtrlLong, DBRCtrlDouble} {
		if types[typ] == 0 {
			t.Errorf("no captured %v payload was checked", typ)
		}
	}
}

// checkDBRReencode re-encodes d and compares it with the captured payload.
func checkDBRReencode(t *testing.T, m *captureMsg, d *DBR, payload []byte, unspecified []int) {
	t.Helper()
	typ, count := d.Type, d.Value.Len()
	need := typ.Size(count)
	enc, err := AppendDBR(nil, typ, count, d)
	if err != nil {
		t.Errorf("%s: AppendDBR: %v", m.Name(), err)
		return
	}
	if len(enc) != need {
		t.Errorf("%s: AppendDBR wrote %d bytes, dbr_size_n is %d", m.Name(), len(enc), need)
		return
	}
	padded, err := AppendPaddedDBR([]byte("x"), typ, count, d)
	if err != nil || len(padded) != 1+Pad8(need) || !bytes.Equal(padded[1:1+need], enc) || !allZero(padded[1+need:]) {
		t.Errorf("%s: AppendPaddedDBR = %x, %v", m.Name(), head(padded), err)
	}
	if len(payload) < need {
		// A libca scalar string write: the text and its NUL, padded to 8.
		// The encoder always writes the full 40-byte field, which must agree
		// with the captured bytes where they overlap and be zero beyond.
		if typ != DBRString || count != 1 {
			t.Fatalf("%s: short payload for %v", m.Name(), typ)
		}
		if !bytes.Equal(enc[:len(payload)], payload) || !allZero(enc[len(payload):]) {
			t.Errorf("%s: short string re-encoded as %x, captured %x", m.Name(), enc, payload)
		}
		return
	}
	var diff []int
	for i := range enc {
		if enc[i] != payload[i] {
			diff = append(diff, i)
		}
	}
	if !slices.Equal(diff, unspecified) {
		t.Errorf("%s: re-encoded payload differs at offsets %v; the listing's non-zero unspecified bytes are at %v\n got %x\nwant %x",
			m.Name(), diff, unspecified, head(enc), head(payload))
	}
	if !allZero(payload[need:]) || len(payload) != Pad8(need) {
		t.Errorf("%s: captured payload has %d bytes after %d bytes of data, or non-zero padding", m.Name(), len(payload)-need, need)
	}
	// The whole message, encoded in one pass, differs from the capture in the
	// same payload bytes and nowhere else.
	full, err := AppendDBRMessage(nil, Command(m.Cmd), typ, count, uint32(m.P1), uint32(m.P2), d)
	if err != nil {
		t.Errorf("%s: AppendDBRMessage: %v", m.Name(), err)
		return
	}
	if len(full) != len(m.Bytes) {
		t.Errorf("%s: AppendDBRMessage wrote %d bytes, captured %d", m.Name(), len(full), len(m.Bytes))
		return
	}
	hsize := len(m.Bytes) - len(payload)
	want := slices.Clone(m.Bytes)
	for _, i := range unspecified {
		want[hsize+i] = 0
	}
	if !bytes.Equal(full, want) {
		t.Errorf("%s: AppendDBRMessage\n got %x\nwant %x", m.Name(), head(full), head(want))
	}
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// nonZeroOffsets returns base+i for every non-zero b[i].
func nonZeroOffsets(base int, b []byte) []int {
	var o []int
	for i, c := range b {
		if c != 0 {
			o = append(o, base+i)
		}
	}
	return o
}

var (
	statusLineRE = regexp.MustCompile(`^status=(\d+) \((\w+)\) severity=(\d+) \((\w+)\)$`)
	stampLineRE  = regexp.MustCompile(`^stamp=(\d+)\.(\d{9}) \(EPICS epoch seconds\.nanoseconds\) = (\S+)$`)
	riscPadRE    = regexp.MustCompile(`^RISC_pad=([0-9a-f]+)$`)
	precisionRE  = regexp.MustCompile(`^precision=(-?\d+) RISC_pad=(\d+) units="([^"]*)"$`)
	unitsRE      = regexp.MustCompile(`^units="([^"]*)"$`)
	limitRE      = regexp.MustCompile(`(\w+)_limit=(\S+)(?: \(bits 0x([0-9a-f]{16})\))?`)
	noStrRE      = regexp.MustCompile(`^no_str=(\d+)$`)
	strsRE       = regexp.MustCompile(`^strs\[(\d+)\.\.(\d+)\]=\[(.*)\]$`)
	strsZeroRE   = regexp.MustCompile(`^strs\[(\d+)\.\.(\d+)\] bytes all zero: yes$`)
	scalarRE     = regexp.MustCompile(`^value \(([\w()]+)\) = (.*)$`)
	arrayRE      = regexp.MustCompile(`^value\[(\d+)\] \((\w+)\) = \[(.*)\]$`)
	partRE       = regexp.MustCompile(`^value\[(\d+)\] \((\w+)\) (first|last) (\d+) = \[(.*)\]$`)
	cStringRE    = regexp.MustCompile(`^as C string: "(.*)"$`)
	paddingRE    = regexp.MustCompile(`^padding after data: (\d+) byte\(s\) \(all zero\)$`)
	garbageRE    = regexp.MustCompile(`^note: string element (\d+) has non-zero bytes after its terminating NUL: ([0-9a-f]+)$`)
)

// limitFields maps the listing's limit names to the Limits fields.
var limitFields = map[string]func(*Limits) float64{
	"upper_disp":    func(l *Limits) float64 { return l.UpperDisp },
	"lower_disp":    func(l *Limits) float64 { return l.LowerDisp },
	"upper_alarm":   func(l *Limits) float64 { return l.UpperAlarm },
	"upper_warning": func(l *Limits) float64 { return l.UpperWarning },
	"lower_warning": func(l *Limits) float64 { return l.LowerWarning },
	"lower_alarm":   func(l *Limits) float64 { return l.LowerAlarm },
	"upper_ctrl":    func(l *Limits) float64 { return l.UpperCtrl },
	"lower_ctrl":    func(l *Limits) float64 { return l.LowerCtrl },
}

// checkDBRListing compares a decoded DBR with every payload line of the
// listing, failing on lines it does not understand. It returns the payload
// offsets of the non-zero bytes the listing reports in unspecified places.
func checkDBRListing(t *testing.T, m *captureMsg, d *DBR, payload []byte) []int {
	t.Helper()
	var unspecified []int
	typ := d.Type
	off := typ.ValueOffset()
	errorf := func(format string, args ...any) {
		t.Helper()
		t.Errorf("%s: %s", m.Name(), fmt.Sprintf(format, args...))
	}
	var in bool
	for _, raw := range m.Decoded {
		if strings.HasPrefix(raw, "DBR_") && strings.HasSuffix(raw, " payload:") {
			if name := strings.TrimSuffix(raw, " payload:"); name != typ.String() {
				errorf("payload listed as %s, header type %v", name, typ)
			}
			in = true
			continue
		}
		if !in || !strings.HasPrefix(raw, "  ") {
			continue
		}
		s := strings.TrimLeft(raw, " ")
		var sub []string
		match := func(re *regexp.Regexp) bool { sub = re.FindStringSubmatch(s); return sub != nil }
		switch {
		case match(statusLineRE):
			if int(d.Status) != atoi(sub[1]) || d.Status.String() != sub[2] ||
				int(d.Severity) != atoi(sub[3]) || d.Severity.String() != sub[4] {
				errorf("alarm %v/%v, listing says %q", d.Status, d.Severity, s)
			}
		case match(stampLineRE):
			const layout = "2006-01-02T15:04:05.000000000Z"
			if d.Stamp.Sec != uint32(atoi(sub[1])) || d.Stamp.Nsec != uint32(atoi(sub[2])) ||
				d.Stamp.Time().Format(layout) != sub[3] {
				errorf("stamp %+v = %s, listing says %q", d.Stamp, d.Stamp.Time().Format(layout), s)
			}
			if d.Stamp.IsZero() != (sub[1] == "0" && sub[2] == "000000000") {
				errorf("stamp %+v: IsZero() = %v", d.Stamp, d.Stamp.IsZero())
			}
			if TimestampOf(d.Stamp.Time()) != d.Stamp {
				errorf("TimestampOf(%v) does not give back %+v", d.Stamp.Time(), d.Stamp)
			}
		case match(riscPadRE):
			pad, _ := hex.DecodeString(sub[1])
			at := off - len(pad)
			if typ.Family() != FamilyTime || !bytes.Equal(payload[at:off], pad) {
				errorf("RISC pad %x in %v, payload has %x", pad, typ, payload[at:off])
			}
			unspecified = append(unspecified, nonZeroOffsets(at, pad)...)
		case match(precisionRE):
			if int(d.Meta.Precision) != atoi(sub[1]) || d.Meta.Units != sub[3] {
				errorf("precision %d units %q, listing says %q", d.Meta.Precision, d.Meta.Units, s)
			}
			var pad [2]byte
			be.PutUint16(pad[:], uint16(atoi(sub[2])))
			if !bytes.Equal(payload[6:8], pad[:]) {
				errorf("precision pad %x, listing says %s", payload[6:8], sub[2])
			}
			unspecified = append(unspecified, nonZeroOffsets(6, pad[:])...)
		case match(unitsRE):
			if d.Meta.Units != sub[1] {
				errorf("units %q, listing says %q", d.Meta.Units, sub[1])
			}
		case strings.Contains(s, "_limit="):
			lims := limitRE.FindAllStringSubmatch(s, -1)
			want := 6
			if typ.Family() == FamilyCtrl {
				want = 8
			}
			if len(lims) != want {
				errorf("%d limits listed for %v", len(lims), typ)
			}
			for _, l := range lims {
				get, ok := limitFields[l[1]]
				if !ok {
					errorf("unknown limit %q", l[1])
					continue
				}
				got := get(&d.Meta.Limits)
				if l[3] != "" {
					bits, _ := strconv.ParseUint(l[3], 16, 64)
					if l[2] != "nan" || math.Float64bits(got) != bits {
						errorf("%s_limit bits %#016x, listing says %s", l[1], math.Float64bits(got), l[0])
					}
					continue
				}
				if v, err := strconv.ParseFloat(l[2], 64); err != nil || v != got {
					errorf("%s_limit = %v, listing says %s", l[1], got, l[2])
				}
			}
		case match(noStrRE):
			if len(d.Meta.EnumStrings) != atoi(sub[1]) || int(be.Uint16(payload[4:])) != atoi(sub[1]) {
				errorf("%d enum strings, listing says %s", len(d.Meta.EnumStrings), sub[1])
			}
		case match(strsRE):
			strs := parseQuotedList(t, m, sub[3])
			if !slices.Equal(d.Meta.EnumStrings[atoi(sub[1]):atoi(sub[2])+1], strs) {
				errorf("enum strings %q, listing says %q", d.Meta.EnumStrings, strs)
			}
		case match(strsZeroRE):
			from, to := 6+atoi(sub[1])*MaxEnumStringSize, 6+(atoi(sub[2])+1)*MaxEnumStringSize
			if !allZero(payload[from:to]) {
				errorf("unused enum string bytes are not zero")
			}
		case match(scalarRE):
			checkValues(t, m, d, sub[1], 0, []string{sub[2]})
			if d.Value.Len() != 1 {
				errorf("scalar listed, %d elements decoded", d.Value.Len())
			}
		case match(arrayRE):
			if atoi(sub[1]) != d.Value.Len() {
				errorf("%s elements listed, %d decoded", sub[1], d.Value.Len())
			}
			checkValues(t, m, d, sub[2], 0, splitList(t, m, sub[2], sub[3]))
		case match(partRE):
			n := atoi(sub[4])
			start := 0
			if sub[3] == "last" {
				start = d.Value.Len() - n
			}
			vals := splitList(t, m, sub[2], sub[5])
			if len(vals) != n || atoi(sub[1]) != d.Value.Len() {
				errorf("bad partial value line %q", s)
			}
			checkValues(t, m, d, sub[2], start, vals)
		case match(ruleRE):
			a, _ := strconv.ParseFloat(sub[2], 64)
			step, _ := strconv.ParseFloat(sub[3], 64)
			if atoi(sub[1]) != len(d.Value.Doubles) {
				errorf("rule covers %s elements, %d decoded", sub[1], len(d.Value.Doubles))
			}
			for i, v := range d.Value.Doubles {
				if v != a+float64(i)*step {
					errorf("element %d = %v, want %v", i, v, a+float64(i)*step)
					break
				}
			}
		case match(cStringRE):
			if got := string(cstring(d.Value.Chars)); got != sub[1] {
				errorf("chars as C string %q, listing says %q", got, sub[1])
			}
		case match(paddingRE):
			if n := len(payload) - typ.Size(d.Value.Len()); n != atoi(sub[1]) || !allZero(payload[len(payload)-n:]) {
				errorf("%d bytes of padding, listing says %s", n, sub[1])
			}
		case strings.HasPrefix(s, "note: payload is shorter than the 40-byte DBR_STRING field"):
			if typ != DBRString || d.Value.Len() != 1 || len(payload) >= MaxStringSize {
				errorf("short string note on a %d-byte %v payload", len(payload), typ)
			}
		case match(garbageRE):
			e := atoi(sub[1])
			garbage, _ := hex.DecodeString(sub[2])
			// The listed bytes are the tail of the 40-byte field, starting
			// at the terminating NUL itself.
			nul := off + e*MaxStringSize + len(d.Value.Strings[e])
			at := off + (e+1)*MaxStringSize - len(garbage)
			if at != nul || payload[nul] != 0 || !bytes.Equal(payload[at:at+len(garbage)], garbage) {
				errorf("string %d garbage %x, payload has %x", e, garbage, payload[nul:off+(e+1)*MaxStringSize])
			}
			unspecified = append(unspecified, nonZeroOffsets(at, garbage)...)
		default:
			errorf("unrecognised payload line %q", s)
		}
	}
	if !in {
		errorf("no payload lines")
	}
	slices.Sort(unspecified)
	return unspecified
}

// splitList splits the inside of a listed array by element type.
func splitList(t *testing.T, m *captureMsg, typ, list string) []string {
	if typ == "string" {
		return parseQuotedList(t, m, list)
	}
	return strings.Split(list, ", ")
}

// parseQuotedList parses `"a", "b"`.
func parseQuotedList(t *testing.T, m *captureMsg, list string) []string {
	t.Helper()
	var out []string
	for list != "" {
		q, err := strconv.QuotedPrefix(list)
		if err != nil {
			t.Fatalf("%s: bad string list %q: %v", m.Name(), list, err)
		}
		s, _ := strconv.Unquote(q)
		out = append(out, s)
		list = strings.TrimPrefix(list[len(q):], ", ")
	}
	return out
}

// checkValues compares decoded elements start.. with the listed texts.
func checkValues(t *testing.T, m *captureMsg, d *DBR, typ string, start int, texts []string) {
	t.Helper()
	v := &d.Value
	for k, text := range texts {
		i := start + k
		var ok bool
		switch typ {
		case "float64":
			f, err := strconv.ParseFloat(text, 64)
			ok = err == nil && v.Type == DBRDouble && v.Doubles[i] == f
		case "string":
			if k == 0 && len(texts) == 1 && strings.HasPrefix(text, `"`) {
				text, _ = strconv.Unquote(text)
			}
			ok = v.Type == DBRString && v.Strings[i] == text
		case "int32":
			n, err := strconv.ParseInt(text, 10, 32)
			ok = err == nil && v.Type == DBRLong && v.Longs[i] == int32(n)
		case "enum(uint16)":
			n, err := strconv.ParseUint(text, 10, 16)
			ok = err == nil && v.Type == DBREnum && v.Enums[i] == uint16(n)
		case "uint8":
			n, err := strconv.ParseUint(text, 10, 8)
			ok = err == nil && v.Type == DBRChar && v.Chars[i] == uint8(n)
		default:
			t.Errorf("%s: unknown element type %q", m.Name(), typ)
			return
		}
		if !ok {
			t.Errorf("%s: element %d of %+v does not match the listed %s %s", m.Name(), i, v, typ, text)
		}
	}
}

// TestCaptureBigArrayEncode rebuilds the 800040-byte DBR_TIME_DOUBLE reply of
// 05 (100000 elements, element i = i) with the encoder alone and checks it
// against the SHA-256 digests in the listing.
func TestCaptureBigArrayEncode(t *testing.T) {
	m := captureMessage(t, "05", 13)
	meta := m.First64
	src := DBR{
		Status:   AlarmStatus(be.Uint16(meta[0:])),
		Severity: AlarmSeverity(be.Uint16(meta[2:])),
		Stamp:    Timestamp{Sec: be.Uint32(meta[4:]), Nsec: be.Uint32(meta[8:])},
		Value:    Value{Type: DBRDouble, Doubles: make([]float64, 100000)},
	}
	for i := range src.Value.Doubles {
		src.Value.Doubles[i] = float64(i)
	}
	if got := src.Stamp.Time().Format(time.RFC3339Nano); got != "2026-11-21T12:27:58.404143345Z" {
		t.Errorf("stamp %s", got)
	}
	msg, err := AppendDBRMessage(nil, CmdReadNotify, DBRTimeDouble, 100000, uint32(ECANormal), 1, &src)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprintf("%x", sha256.Sum256(msg)); got != m.MessageSHA {
		t.Errorf("message sha256 %s, listing says %s", got, m.MessageSHA)
	}
	if got := fmt.Sprintf("%x", sha256.Sum256(msg[ExtHeaderSize:])); got != m.PayloadSHA {
		t.Errorf("payload sha256 %s, listing says %s", got, m.PayloadSHA)
	}
	if !bytes.Equal(msg[:ExtHeaderSize], m.Bytes[:ExtHeaderSize]) {
		t.Errorf("header %x, want %x", msg[:ExtHeaderSize], m.Bytes[:ExtHeaderSize])
	}
	// Encoding into a reused buffer gives the same bytes without growing it.
	buf := make([]byte, 0, len(msg))
	buf, _ = AppendDBRMessage(buf, CmdReadNotify, DBRTimeDouble, 100000, uint32(ECANormal), 1, &src)
	if !bytes.Equal(buf, msg) || cap(buf) != len(msg) {
		t.Errorf("re-encoding into a reused buffer differs or reallocated (cap %d)", cap(buf))
	}
}
