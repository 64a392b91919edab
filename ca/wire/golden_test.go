package wire

// Hand-written golden messages: every command, in its request and response
// forms, encoded with known field values. Each hex string was written out by
// hand from the layouts in docs/ca-protocol.md (sections 1 and 2): the 16-byte
// header is cmd(2) size(2) type(2) count(2) p1(4) p2(4), and the extended form
// puts 0xffff in size, 0 in count and appends size(4) count(4).

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// hx decodes hex written with optional blanks between fields.
func hx(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

// seq returns n bytes 0, 1, 2, ... (mod 256).
func seq(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

type goldenMsg struct {
	name string
	msg  Message
	dir  Direction
	hex  string  // the header and payload
	tail []byte  // more payload bytes after hex, for large messages
	want Message // what Decode returns, when it differs from msg (padding)
}

var goldenMessages = []goldenMsg{
	// 0 VERSION.
	{name: "version/tcp-client", dir: ToServer, msg: &Version{DataType: 0, Minor: 13},
		hex: "0000 0000 0000 000d 00000000 00000000"},
	{name: "version/tcp-client-priority-99", dir: ToServer, msg: &Version{DataType: MaxPriority, Minor: 13},
		hex: "0000 0000 0063 000d 00000000 00000000"},
	{name: "version/udp-seq", dir: ToServer, msg: &Version{DataType: 1, Minor: 13, Seq: 0x01020304},
		hex: "0000 0000 0001 000d 01020304 00000000"},
	{name: "version/tcp-server", dir: ToClient, msg: &Version{Minor: 13},
		hex: "0000 0000 0000 000d 00000000 00000000"},
	{name: "version/repeater-zero", dir: ToClient, msg: &Version{},
		hex: "0000 0000 0000 0000 00000000 00000000"},

	// 1 EVENT_ADD: request, update, cancel confirmation.
	{name: "event-add/request", dir: ToServer,
		msg: &EventAdd{DataType: DBRTimeDouble, Count: 0, SID: 0x14, SubID: 1, Mask: DBEValue | DBEAlarm},
		hex: "0001 0010 0014 0000 00000014 00000001  00000000 00000000 00000000 0005 0000"},
	{name: "event-add/request-legacy-fields", dir: ToServer,
		msg: &EventAdd{DataType: DBRCtrlLong, Count: 3, SID: 7, SubID: 0x11223344, Mask: DBEValue | DBELog | DBEAlarm | DBEProperty,
			Low: 1, High: 2, Timeout: 0.5},
		hex: "0001 0010 0021 0003 00000007 11223344  3f800000 40000000 3f000000 000f 0000"},
	{name: "event-add/request-extended-count", dir: ToServer,
		msg: &EventAdd{DataType: DBRDouble, Count: 0xFFFF, SID: 2, SubID: 3, Mask: DBEValue},
		hex: "0001 ffff 0006 0000 00000002 00000003 00000010 0000ffff  00000000 00000000 00000000 0001 0000"},
	{name: "event-add/update", dir: ToClient,
		msg: &EventAddResponse{DataType: DBRDouble, Count: 1, Status: ECANormal, SubID: 9, Data: hx("3ff8000000000000")},
		hex: "0001 0008 0006 0001 00000001 00000009 3ff8000000000000"},
	{name: "event-add/update-no-read-access", dir: ToClient,
		msg:  &EventAddResponse{DataType: DBRShort, Count: 2, Status: ECANoRdAccess, SubID: 9, Data: hx("00000000")},
		hex:  "0001 0008 0001 0002 00000170 00000009 0000000000000000",
		want: &EventAddResponse{DataType: DBRShort, Count: 2, Status: ECANoRdAccess, SubID: 9, Data: hx("0000000000000000")}},
	{name: "event-add/cancel-confirmation", dir: ToClient,
		msg: &EventCancelResponse{DataType: DBRTimeDouble, Count: 0, SID: 0x14, SubID: 1},
		hex: "0001 0000 0014 0000 00000014 00000001"},

	// 2 EVENT_CANCEL.
	{name: "event-cancel", dir: ToServer, msg: &EventCancel{DataType: DBRTimeDouble, Count: 1, SID: 0x14, SubID: 1},
		hex: "0002 0000 0014 0001 00000014 00000001"},

	// 3 READ: request and reply (P1 = CID in the reply).
	{name: "read/request", dir: ToServer, msg: &Read{DataType: DBRDouble, Count: 1, SID: 2, IOID: 3},
		hex: "0003 0000 0006 0001 00000002 00000003"},
	{name: "read/reply-short-string", dir: ToClient,
		msg:  &ReadResponse{DataType: DBRString, Count: 1, CID: 5, IOID: 3, Data: []byte("hi\x00")},
		hex:  "0003 0008 0000 0001 00000005 00000003 6869000000000000",
		want: &ReadResponse{DataType: DBRString, Count: 1, CID: 5, IOID: 3, Data: hx("6869000000000000")}},

	// 4 WRITE (libca's short scalar string).
	{name: "write/short-string", dir: ToServer,
		msg: &Write{DataType: DBRString, Count: 1, SID: 10, ID: 1, Data: hx("322e350000000000")},
		hex: "0004 0008 0000 0001 0000000a 00000001 322e350000000000"},
	{name: "write/long-array", dir: ToServer,
		msg:  &Write{DataType: DBRLong, Count: 3, SID: 10, ID: 1, Data: hx("00000001 00000002 ffffffff")},
		hex:  "0004 0010 0005 0003 0000000a 00000001 00000001 00000002 ffffffff 00000000",
		want: &Write{DataType: DBRLong, Count: 3, SID: 10, ID: 1, Data: hx("00000001 00000002 ffffffff 00000000")}},

	// 5 SNAPSHOT, 7 BUILD, 16 READ_BUILD, 25 SIGNAL: obsolete, kept raw.
	{name: "snapshot", dir: ToServer,
		msg: &Snapshot{RawMessage{Header: Header{Command: CmdSnapshot, DataType: 1, Count: 2, P1: 3, P2: 4}, Payload: []byte{}}},
		hex: "0005 0000 0001 0002 00000003 00000004"},
	{name: "build/with-payload", dir: ToServer,
		msg:  &Build{RawMessage{Header: Header{Command: CmdBuild, P1: 9}, Payload: []byte{0xaa}}},
		hex:  "0007 0008 0000 0000 00000009 00000000 aa00000000000000",
		want: &Build{RawMessage{Header: Header{Command: CmdBuild, PayloadSize: 8, P1: 9}, Payload: hx("aa00000000000000")}}},
	{name: "read-build", dir: ToClient,
		msg: &ReadBuild{RawMessage{Header: Header{Command: CmdReadBuild, DataType: 6, Count: 1, P1: 1, P2: 2}, Payload: []byte{}}},
		hex: "0010 0000 0006 0001 00000001 00000002"},
	{name: "signal", dir: ToClient,
		msg: &Signal{RawMessage{Header: Header{Command: CmdSignal}, Payload: []byte{}}},
		hex: "0019 0000 0000 0000 00000000 00000000"},

	// 6 SEARCH: request (UDP and TCP), UDP reply with the minor version, TCP reply without.
	{name: "search/request", dir: ToServer, msg: &SearchRequest{Reply: SearchDontReply, Minor: 13, SearchID: 1, Name: "CAP:ao"},
		hex: "0006 0008 0005 000d 00000001 00000001 4341503a616f0000"},
	{name: "search/request-name-fills-8", dir: ToServer,
		msg: &SearchRequest{Reply: SearchDoReply, Minor: 13, SearchID: 0x2a, Name: "CAP:abcd"},
		hex: "0006 0010 000a 000d 0000002a 0000002a 4341503a61626364 0000000000000000"},
	{name: "search/reply-udp", dir: ToClient,
		msg: &SearchResponse{Port: 5064, IP: BeaconIPUnknown, SearchID: 1, Minor: 13},
		hex: "0006 0008 13c8 0000 ffffffff 00000001 000d000000000000"},
	{name: "search/reply-udp-with-ip", dir: ToClient,
		msg: &SearchResponse{Port: 28064, IP: 0xc0a8010a, SearchID: 0x01000000, Minor: 12},
		hex: "0006 0008 6da0 0000 c0a8010a 01000000 000c000000000000"},
	{name: "search/reply-tcp", dir: ToClient,
		msg: &SearchResponse{Port: 5064, IP: BeaconIPUnknown, SearchID: 2},
		hex: "0006 0000 13c8 0000 ffffffff 00000002"},

	// 8 EVENTS_OFF, 9 EVENTS_ON.
	{name: "events-off", dir: ToServer, msg: &EventsOff{}, hex: "0008 0000 0000 0000 00000000 00000000"},
	{name: "events-on", dir: ToServer, msg: &EventsOn{}, hex: "0009 0000 0000 0000 00000000 00000000"},

	// 10 READ_SYNC: the server echoes the header.
	{name: "read-sync", dir: ToServer, msg: &ReadSync{Header: Header{Command: CmdReadSync, DataType: 1, Count: 2, P1: 7, P2: 8}},
		hex: "000a 0000 0001 0002 00000007 00000008"},
	{name: "read-sync/echo", dir: ToClient, msg: &ReadSync{Header: Header{Command: CmdReadSync}},
		hex: "000a 0000 0000 0000 00000000 00000000"},

	// 11 ERROR: CID, status, the failed request's header and a text.
	{name: "error/put-fail", dir: ToClient,
		msg: &Error{CID: 1, Status: ECAPutFail, Text: "CAP:ao",
			Request: Header{Command: CmdWrite, PayloadSize: 8, DataType: 0, Count: 1, P1: 1, P2: 1}},
		hex: "000b 0018 0000 0000 00000001 000000a0  0004 0008 0000 0001 00000001 00000001 4341503a616f0000"},
	{name: "error/extended-request", dir: ToClient,
		msg: &Error{CID: 1, Status: ECATooLarge, Text: "too big",
			Request: Header{Command: CmdWriteNotify, PayloadSize: 0x10000, DataType: 6, Count: 8192, P1: 0x19, P2: 1}},
		hex: "000b 0020 0000 0000 00000001 00000048  0013 ffff 0006 0000 00000019 00000001 00010000 00002000 746f6f2062696700"},
	{name: "error/no-text", dir: ToClient,
		msg: &Error{CID: BeaconIPUnknown, Status: ECAInternal, Request: Header{Command: 99}},
		hex: "000b 0018 0000 0000 ffffffff 0000008e  0063 0000 0000 0000 00000000 00000000 0000000000000000"},

	// 12 CLEAR_CHANNEL: request and echoed reply.
	{name: "clear-channel/request", dir: ToServer, msg: &ClearChannel{SID: 2, CID: 1},
		hex: "000c 0000 0000 0000 00000002 00000001"},
	{name: "clear-channel/reply", dir: ToClient, msg: &ClearChannelResponse{SID: 2, CID: 1},
		hex: "000c 0000 0000 0000 00000002 00000001"},

	// 13 RSRV_IS_UP: from the IOC (IP 0) and forwarded by the repeater.
	{name: "beacon/ioc", dir: ToClient, msg: &Beacon{Minor: 13, Port: 5064, ID: 8},
		hex: "000d 0000 000d 13c8 00000008 00000000"},
	{name: "beacon/forwarded", dir: ToClient, msg: &Beacon{Minor: 13, Port: 28064, ID: 0xfffffffe, IP: 0x7f000001},
		hex: "000d 0000 000d 6da0 fffffffe 7f000001"},

	// 14 NOT_FOUND.
	{name: "not-found", dir: ToClient, msg: &NotFound{Reply: SearchDoReply, Minor: 13, SearchID: 5},
		hex: "000e 0000 000a 000d 00000005 00000005"},

	// 15 READ_NOTIFY: request (standard and extended), reply, failed reply.
	{name: "read-notify/request", dir: ToServer, msg: &ReadNotify{DataType: DBRTimeDouble, Count: 1, SID: 2, IOID: 1},
		hex: "000f 0000 0014 0001 00000002 00000001"},
	{name: "read-notify/request-count-0", dir: ToServer, msg: &ReadNotify{DataType: DBRTimeDouble, SID: 2, IOID: 1},
		hex: "000f 0000 0014 0000 00000002 00000001"},
	{name: "read-notify/request-count-fffe", dir: ToServer, msg: &ReadNotify{DataType: DBRDouble, Count: 0xFFFE, SID: 2, IOID: 1},
		hex: "000f 0000 0006 fffe 00000002 00000001"},
	{name: "read-notify/request-count-ffff", dir: ToServer, msg: &ReadNotify{DataType: DBRDouble, Count: 0xFFFF, SID: 2, IOID: 1},
		hex: "000f ffff 0006 0000 00000002 00000001 00000000 0000ffff"},
	{name: "read-notify/request-count-100000", dir: ToServer, msg: &ReadNotify{DataType: DBRTimeDouble, Count: 100000, SID: 0x18, IOID: 1},
		hex: "000f ffff 0014 0000 00000018 00000001 00000000 000186a0"},
	{name: "read-notify/reply", dir: ToClient,
		msg: &ReadNotifyResponse{DataType: DBRTimeDouble, Count: 1, Status: ECANormal, IOID: 1,
			Data: hx("0000 0000 4562edb7 3714844a 00000003 3ff8000000000000")},
		hex: "000f 0018 0014 0001 00000001 00000001 0000 0000 4562edb7 3714844a 00000003 3ff8000000000000"},
	{name: "read-notify/reply-get-fail", dir: ToClient,
		msg: &ReadNotifyResponse{DataType: DBRDouble, Count: 1, Status: ECAGetFail, IOID: 0xdeadbeef, Data: make([]byte, 8)},
		hex: "000f 0008 0006 0001 00000098 deadbeef 0000000000000000"},

	// 17 REPEATER_CONFIRM.
	{name: "repeater-confirm", dir: ToClient, msg: &RepeaterConfirm{IP: 0x7f000001},
		hex: "0011 0000 0000 0000 00000000 7f000001"},

	// 18 CREATE_CHAN: request, reply, extended reply.
	{name: "create-chan/request", dir: ToServer, msg: &CreateChan{CID: 1, Minor: 13, Name: "CAP:ao"},
		hex: "0012 0008 0000 0000 00000001 0000000d 4341503a616f0000"},
	{name: "create-chan/reply", dir: ToClient, msg: &CreateChanResponse{DataType: DBRDouble, Count: 1, CID: 1, SID: 2},
		hex: "0012 0000 0006 0001 00000001 00000002"},
	{name: "create-chan/reply-count-fffe", dir: ToClient, msg: &CreateChanResponse{DataType: DBRChar, Count: 0xFFFE, CID: 1, SID: 2},
		hex: "0012 0000 0004 fffe 00000001 00000002"},
	{name: "create-chan/reply-extended", dir: ToClient, msg: &CreateChanResponse{DataType: DBRDouble, Count: 100000, CID: 1, SID: 0x18},
		hex: "0012 ffff 0006 0000 00000001 00000018 00000000 000186a0"},

	// 19 WRITE_NOTIFY: request (standard up to 0xfff8 payload bytes, extended
	// from 0x10000), reply, failed reply.
	{name: "write-notify/request", dir: ToServer,
		msg: &WriteNotify{DataType: DBRString, Count: 1, SID: 11, IOID: 2, Data: hx("332e350000000000")},
		hex: "0013 0008 0000 0001 0000000b 00000002 332e350000000000"},
	{name: "write-notify/request-payload-fff8", dir: ToServer,
		msg: &WriteNotify{DataType: DBRDouble, Count: 0x1FFF, SID: 11, IOID: 2, Data: seq(0xFFF8)},
		hex: "0013 fff8 0006 1fff 0000000b 00000002", tail: seq(0xFFF8)},
	{name: "write-notify/request-payload-10000", dir: ToServer,
		msg: &WriteNotify{DataType: DBRDouble, Count: 0x2000, SID: 0x19, IOID: 1, Data: seq(0x10000)},
		hex: "0013 ffff 0006 0000 00000019 00000001 00010000 00002000", tail: seq(0x10000)},
	{name: "write-notify/reply", dir: ToClient, msg: &WriteNotifyResponse{DataType: DBRString, Count: 1, Status: ECANormal, IOID: 2},
		hex: "0013 0000 0000 0001 00000001 00000002"},
	{name: "write-notify/reply-put-fail", dir: ToClient, msg: &WriteNotifyResponse{DataType: DBRString, Count: 1, Status: ECAPutFail, IOID: 2},
		hex: "0013 0000 0000 0001 000000a0 00000002"},
	{name: "write-notify/reply-extended-count", dir: ToClient,
		msg: &WriteNotifyResponse{DataType: DBRDouble, Count: 0x10000, Status: ECANormal, IOID: 2},
		hex: "0013 ffff 0006 0000 00000001 00000002 00000000 00010000"},

	// 20 CLIENT_NAME, 21 HOST_NAME.
	{name: "client-name", dir: ToServer, msg: &ClientName{Name: "root"},
		hex: "0014 0008 0000 0000 00000000 00000000 726f6f7400000000"},
	{name: "client-name/empty", dir: ToServer, msg: &ClientName{},
		hex: "0014 0008 0000 0000 00000000 00000000 0000000000000000"},
	{name: "host-name", dir: ToServer, msg: &HostName{Name: "vm"},
		hex: "0015 0008 0000 0000 00000000 00000000 766d000000000000"},
	{name: "host-name/seven-chars", dir: ToServer, msg: &HostName{Name: "abcdefg"},
		hex: "0015 0008 0000 0000 00000000 00000000 6162636465666700"},

	// 22 ACCESS_RIGHTS.
	{name: "access-rights", dir: ToClient, msg: &AccessRights{CID: 1, Rights: AccessRead | AccessWrite},
		hex: "0016 0000 0000 0000 00000001 00000003"},
	{name: "access-rights/none", dir: ToClient, msg: &AccessRights{CID: 0x01020304},
		hex: "0016 0000 0000 0000 01020304 00000000"},

	// 23 ECHO, in both directions.
	{name: "echo/request", dir: ToServer, msg: &Echo{}, hex: "0017 0000 0000 0000 00000000 00000000"},
	{name: "echo/reply", dir: ToClient, msg: &Echo{}, hex: "0017 0000 0000 0000 00000000 00000000"},

	// 24 REPEATER_REGISTER.
	{name: "repeater-register", dir: ToServer, msg: &RepeaterRegister{IP: 0x7f000001},
		hex: "0018 0000 0000 0000 00000000 7f000001"},

	// 26 CREATE_CH_FAIL, 27 SERVER_DISCONN.
	{name: "create-ch-fail", dir: ToClient, msg: &CreateChFail{CID: 7}, hex: "001a 0000 0000 0000 00000007 00000000"},
	{name: "server-disconn", dir: ToClient, msg: &ServerDisconn{CID: 7}, hex: "001b 0000 0000 0000 00000007 00000000"},
}

// TestGoldenMessages encodes every golden message, compares it with the hand
// written hex, and decodes the hex back to the message.
func TestGoldenMessages(t *testing.T) {
	commands := map[Command]bool{}
	for _, g := range goldenMessages {
		want := append(hx(g.hex), g.tail...)
		got := g.msg.AppendTo(nil)
		if !bytes.Equal(got, want) {
			t.Errorf("%s: AppendTo\n got %x\nwant %x", g.name, head(got), head(want))
			continue
		}
		commands[g.msg.Command()] = true
		h, n, err := ParseHeader(want)
		if err != nil || n+int(h.PayloadSize) != len(want) || h.Command != g.msg.Command() {
			t.Errorf("%s: ParseHeader = %+v, %d, %v", g.name, h, n, err)
			continue
		}
		if (n == ExtHeaderSize) != h.Extended() {
			t.Errorf("%s: a %d-byte header for %+v", g.name, n, h)
		}
		dec, err := Decode(Frame{Header: h, Payload: want[n:]}, g.dir)
		if err != nil {
			t.Errorf("%s: Decode: %v", g.name, err)
			continue
		}
		wantMsg := g.want
		if wantMsg == nil {
			wantMsg = g.msg
		}
		if !reflect.DeepEqual(dec, wantMsg) {
			t.Errorf("%s: Decode = %+v, want %+v", g.name, dec, wantMsg)
		}
		checkMessageFields(t, g.name, dec, Frame{Header: h, Payload: want[n:]})
	}
	for c := CmdVersion; c <= MaxCommand; c++ {
		if !commands[c] {
			t.Errorf("no golden message for command %d (%v)", c, c)
		}
	}
}

// TestAppendHeaderForms checks the rule for the extended header: the 24-byte
// form iff the payload size or the count reaches 0xFFFF.
func TestAppendHeaderForms(t *testing.T) {
	tests := []struct {
		h   Header
		hex string
	}{
		{Header{Command: CmdReadNotify, PayloadSize: 0xFFF8, DataType: 6, Count: 0x1FFF, P1: 1, P2: 2},
			"000f fff8 0006 1fff 00000001 00000002"},
		{Header{Command: CmdReadNotify, PayloadSize: 0xFFFE, DataType: 6, Count: 0xFFFE, P1: 1, P2: 2},
			"000f fffe 0006 fffe 00000001 00000002"},
		{Header{Command: CmdReadNotify, PayloadSize: 0xFFFF, DataType: 6, Count: 1, P1: 1, P2: 2},
			"000f ffff 0006 0000 00000001 00000002 0000ffff 00000001"},
		{Header{Command: CmdReadNotify, PayloadSize: 8, DataType: 6, Count: 0xFFFF, P1: 1, P2: 2},
			"000f ffff 0006 0000 00000001 00000002 00000008 0000ffff"},
		{Header{Command: CmdEventAdd, PayloadSize: 0xFFFFFFF8, DataType: 0x26, Count: 0xFFFFFFFF, P1: 0xFFFFFFFF, P2: 0x80000000},
			"0001 ffff 0026 0000 ffffffff 80000000 fffffff8 ffffffff"},
		{Header{Command: 0xFFFF, DataType: 0xFFFF, Count: 0xFFFE, P1: 0xFFFFFFFF, P2: 0xFFFFFFFF},
			"ffff 0000 ffff fffe ffffffff ffffffff"},
	}
	for _, tt := range tests {
		want := hx(tt.hex)
		if got := AppendHeader(nil, tt.h); !bytes.Equal(got, want) {
			t.Errorf("AppendHeader(%+v)\n got %x\nwant %x", tt.h, got, want)
		}
		if tt.h.Size() != len(want) || tt.h.Extended() != (len(want) == ExtHeaderSize) {
			t.Errorf("%+v: Size() = %d, Extended() = %v for a %d-byte header", tt.h, tt.h.Size(), tt.h.Extended(), len(want))
		}
		h, n, err := ParseHeader(want)
		if err != nil || n != len(want) || h != tt.h {
			t.Errorf("ParseHeader(%x) = %+v, %d, %v", want, h, n, err)
		}
	}
}

// TestParseHeaderExtendedFields checks that an extended header takes its size
// and count from the trailing 32-bit fields whatever the 16-bit count says
// (receivers must not require it to be 0), and that a short buffer asks for
// the missing bytes.
func TestParseHeaderExtendedFields(t *testing.T) {
	b := hx("0001 ffff 0014 1234 00000001 00000002 00000018 00000001")
	h, n, err := ParseHeader(b)
	want := Header{Command: CmdEventAdd, PayloadSize: 24, DataType: 20, Count: 1, P1: 1, P2: 2}
	if err != nil || n != ExtHeaderSize || h != want {
		t.Errorf("ParseHeader = %+v, %d, %v; want %+v", h, n, err, want)
	}
	for _, tt := range []struct {
		len, need int
	}{{0, 16}, {1, 16}, {15, 16}, {16, 24}, {23, 24}} {
		if _, need, err := ParseHeader(b[:tt.len]); err != ErrShort || need != tt.need {
			t.Errorf("ParseHeader of %d bytes = %d, %v; want %d, ErrShort", tt.len, need, err, tt.need)
		}
	}
	// A standard header needs only 16 bytes, even in a longer buffer.
	if _, n, err := ParseHeader(hx("0017 0000 0000 0000 00000000 00000000 ffff")); err != nil || n != HeaderSize {
		t.Errorf("ParseHeader of a standard header = %d, %v", n, err)
	}
}

// TestDecodeErrors checks the frames Decode rejects.
func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name    string
		hex     string
		dir     Direction
		unknown bool // ErrUnknownCommand rather than *DecodeError
	}{
		{"event-add request without mon_info", "0001 0008 0014 0000 00000014 00000001 0000000000000000", ToServer, false},
		{"search without a name", "0006 0000 0005 000d 00000001 00000001", ToServer, false},
		{"search with an empty name", "0006 0008 0005 000d 00000001 00000001 0000000000000000", ToServer, false},
		{"create-chan without a name", "0012 0000 0000 0000 00000001 0000000d", ToServer, false},
		{"error without a request header", "000b 0008 0000 0000 00000001 000000a0 0000000000000000", ToClient, false},
		{"error with a truncated extended request header", "000b 0010 0000 0000 00000001 000000a0 0004 ffff 0000 0001 00000001 00000001", ToClient, false},
		{"command 28", "001c 0000 0000 0000 00000000 00000000", ToServer, true},
		{"command 0xffff", "ffff 0000 0000 0000 00000000 00000000", ToClient, true},
	}
	for _, tt := range tests {
		b := hx(tt.hex)
		h, n, err := ParseHeader(b)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		m, err := Decode(Frame{Header: h, Payload: b[n:]}, tt.dir)
		if m != nil || err == nil {
			t.Errorf("%s: Decode = %+v, %v; want an error", tt.name, m, err)
			continue
		}
		var de *DecodeError
		if got := errors.As(err, &de); got == tt.unknown || tt.unknown != errors.Is(err, ErrUnknownCommand) {
			t.Errorf("%s: error %v (%T)", tt.name, err, err)
		}
		if de != nil && (de.Header != h || !strings.Contains(err.Error(), h.Command.String())) {
			t.Errorf("%s: DecodeError %+v / %q", tt.name, de, err)
		}
	}
	// Names at the limits: MaxNameSize-1 characters pass, MaxNameSize do not;
	// client and host names may have MaxClientNameSize characters, not more.
	for _, tt := range []struct {
		cmd  Command
		n    int
		fail bool
	}{
		{CmdSearch, MaxNameSize - 1, false}, {CmdSearch, MaxNameSize, true},
		{CmdCreateChan, MaxNameSize - 1, false}, {CmdCreateChan, MaxNameSize, true},
		{CmdClientName, MaxClientNameSize, false}, {CmdClientName, MaxClientNameSize + 1, true},
		{CmdHostName, MaxClientNameSize, false}, {CmdHostName, MaxClientNameSize + 1, true},
	} {
		name := strings.Repeat("x", tt.n)
		payload := make([]byte, Pad8(tt.n+1))
		copy(payload, name)
		h := Header{Command: tt.cmd, PayloadSize: uint32(len(payload)), Count: 13, P2: 13}
		m, err := Decode(Frame{Header: h, Payload: payload}, ToServer)
		if (err != nil) != tt.fail {
			t.Errorf("%v with a %d-byte name: %v", tt.cmd, tt.n, err)
		}
		if err == nil && reflect.ValueOf(m).Elem().FieldByName("Name").String() != name {
			t.Errorf("%v with a %d-byte name: name not kept", tt.cmd, tt.n)
		}
	}
}

// TestErrorTextLimit checks that Error.AppendTo caps the payload at the 512
// bytes an IOC allows, truncating the text.
func TestErrorTextLimit(t *testing.T) {
	for _, req := range []Header{{Command: CmdWrite, PayloadSize: 8, Count: 1}, {Command: CmdWrite, PayloadSize: 0x10000, Count: 1}} {
		m := &Error{CID: 1, Status: ECAInternal, Request: req, Text: strings.Repeat("y", 2000)}
		b := m.AppendTo(nil)
		h, n, err := ParseHeader(b)
		if err != nil || h.PayloadSize > MaxClientNameSize || n+int(h.PayloadSize) != len(b) || h.PayloadSize%8 != 0 {
			t.Fatalf("payload %d bytes, %v", h.PayloadSize, err)
		}
		dec, err := Decode(Frame{Header: h, Payload: b[n:]}, ToClient)
		if err != nil {
			t.Fatal(err)
		}
		e := dec.(*Error)
		if e.Request != req || len(e.Text) != MaxClientNameSize-ExtHeaderSize-1 || strings.Trim(e.Text, "y") != "" {
			t.Errorf("decoded %+v with a %d-byte text", e.Request, len(e.Text))
		}
	}
}

// TestCommandNames checks the command names and the fallback for unknown codes.
func TestCommandNames(t *testing.T) {
	want := []string{"VERSION", "EVENT_ADD", "EVENT_CANCEL", "READ", "WRITE", "SNAPSHOT", "SEARCH", "BUILD",
		"EVENTS_OFF", "EVENTS_ON", "READ_SYNC", "ERROR", "CLEAR_CHANNEL", "RSRV_IS_UP", "NOT_FOUND", "READ_NOTIFY",
		"READ_BUILD", "REPEATER_CONFIRM", "CREATE_CHAN", "WRITE_NOTIFY", "CLIENT_NAME", "HOST_NAME", "ACCESS_RIGHTS",
		"ECHO", "REPEATER_REGISTER", "SIGNAL", "CREATE_CH_FAIL", "SERVER_DISCONN"}
	for i, w := range want {
		if got := Command(i).String(); got != w {
			t.Errorf("Command(%d) = %q, want %q", i, got, w)
		}
	}
	if len(want) != int(MaxCommand)+1 {
		t.Errorf("MaxCommand = %d", MaxCommand)
	}
	if got := Command(28).String(); got != "CMD(28)" {
		t.Errorf("Command(28) = %q", got)
	}
}

// TestPad8 checks the padding rule.
func TestPad8(t *testing.T) {
	for n, want := range map[int]int{0: 0, 1: 8, 7: 8, 8: 8, 9: 16, 0xFFF1: 0xFFF8, 0xFFF9: 0x10000} {
		if got := Pad8(n); got != want {
			t.Errorf("Pad8(%d) = %d, want %d", n, got, want)
		}
	}
}
