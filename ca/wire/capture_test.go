package wire

// This file parses the golden capture listings in testdata/captures (see the
// README.md there for the format) into messages, datagram notes and TCP
// segment notes that the golden, streaming, fuzz and benchmark code use.

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// captureMsg is one `[msg N]` block of a listing.
type captureMsg struct {
	File      string // the listing's base name without extension, e.g. "01-caget-ao"
	N         int    // the message number within the file
	Frames    []int  // the pcap frames that carried the message
	Transport string // "TCP" or "UDP"
	Dir       string // "client->server", "server->client", "server->repeater", ...
	Src, Dst  string // endpoints, "ip:port"
	Length    int    // the `length:` line: the complete message size

	// Bytes is the complete message. For the one message whose listing holds
	// only the header (the 800040-byte reply in 05) it is rebuilt from the
	// listing's description and verified against its SHA-256 digests.
	Bytes []byte
	// HeaderOnly reports that the listing's hex holds only the header.
	HeaderOnly bool
	First64    []byte // hex_payload_first_64
	Last64     []byte // hex_payload_last_64
	PayloadSHA string // payload_sha256
	MessageSHA string // message_sha256

	HasHeader   bool // false for a zero-length datagram, which has no header lines
	Cmd         uint64
	CmdName     string // e.g. "CA_PROTO_READ_NOTIFY"
	Extended    bool   // a `header: extended` line is present
	PayloadSize uint64
	DataType    uint64
	Count       uint64
	P1, P2      uint64
	Decoded     []string // the text of the `decoded:` lines, without the prefix
}

// Name identifies the message in test output.
func (m *captureMsg) Name() string { return fmt.Sprintf("%s/msg%03d", m.File, m.N) }

// Direction maps the listing's direction to the codec's: anything sent by a
// client (to a server or to a repeater) is ToServer, anything sent by a server
// or a repeater is ToClient.
func (m *captureMsg) Direction() Direction {
	if strings.HasPrefix(m.Dir, "client->") {
		return ToServer
	}
	return ToClient
}

// Circuit names the TCP byte stream (one direction of one connection) or the
// UDP flow the message belongs to.
func (m *captureMsg) Circuit() string { return m.Transport + " " + m.Src + " -> " + m.Dst }

// Payload returns the bytes after the header.
func (m *captureMsg) Payload() []byte {
	if m.Extended {
		return m.Bytes[ExtHeaderSize:]
	}
	return m.Bytes[HeaderSize:]
}

// Header returns the header the listing's field lines describe.
func (m *captureMsg) Header() Header {
	return Header{Command: Command(m.Cmd), PayloadSize: uint32(m.PayloadSize), DataType: uint16(m.DataType),
		Count: uint32(m.Count), P1: uint32(m.P1), P2: uint32(m.P2)}
}

// Frame returns the message as the stream decoder would.
func (m *captureMsg) Frame() Frame { return Frame{Header: m.Header(), Payload: m.Payload()} }

// DecodedLine returns the first decoded line that starts with prefix (after
// leading blanks are removed), and whether there is one.
func (m *captureMsg) DecodedLine(prefix string) (string, bool) {
	for _, d := range m.Decoded {
		if s := strings.TrimLeft(d, " "); strings.HasPrefix(s, prefix) {
			return s, true
		}
	}
	return "", false
}

// datagramNote is a `# frame N: UDP datagram ... carries K CA messages` note.
type datagramNote struct {
	Frame       int
	First, Last int // message numbers
	Bytes       []byte
}

// segmentNote is a `# frame N t=... : TCP <dir> segment, K payload bytes` note.
type segmentNote struct {
	Frame int
	Dir   string
	Size  int
}

// capture is one parsed listing.
type capture struct {
	Name      string
	Msgs      []*captureMsg
	Datagrams []datagramNote
	Segments  []segmentNote
}

var (
	msgLineRE  = regexp.MustCompile(`^\[msg (\d+)\] frames? ([\d,]+)\s+t=\+[\d.]+ s\s+(TCP|UDP)\s+(\S+)\s+(\S+) -> (\S+)$`)
	lengthRE   = regexp.MustCompile(`^(\d+) bytes`)
	datagramRE = regexp.MustCompile(`^# frame (\d+): UDP datagram of (\d+) bytes carries (\d+) CA messages \(msg (\d+)\.\.(\d+)\); datagram hex: ([0-9a-f]+)$`)
	segmentRE  = regexp.MustCompile(`^# frame (\d+) t=\+[\d.]+ s: TCP (\S+) segment, (\d+) payload bytes: `)
	ruleRE     = regexp.MustCompile(`all (\d+) elements follow element\[i\] = (\S+) \+ i \* (\S+) \(checked\)`)
)

// parseCapture parses one listing.
func parseCapture(path string) (*capture, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	c := &capture{Name: strings.TrimSuffix(filepath.Base(path), ".txt")}
	var cur *captureMsg
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	line := 0
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%s:%d: %s", path, line, fmt.Sprintf(format, args...))
	}
	for sc.Scan() {
		line++
		s := sc.Text()
		switch {
		case s == "":
			cur = nil
		case strings.HasPrefix(s, "#"):
			if sub := datagramRE.FindStringSubmatch(s); sub != nil {
				b, err := hex.DecodeString(sub[6])
				if err != nil {
					return nil, fail("datagram hex: %v", err)
				}
				if n, _ := strconv.Atoi(sub[2]); n != len(b) {
					return nil, fail("datagram of %d bytes has %d bytes of hex", n, len(b))
				}
				c.Datagrams = append(c.Datagrams, datagramNote{Frame: atoi(sub[1]), First: atoi(sub[4]), Last: atoi(sub[5]), Bytes: b})
			} else if sub := segmentRE.FindStringSubmatch(s); sub != nil {
				c.Segments = append(c.Segments, segmentNote{Frame: atoi(sub[1]), Dir: sub[2], Size: atoi(sub[3])})
			}
		case strings.HasPrefix(s, "[msg "):
			sub := msgLineRE.FindStringSubmatch(s)
			if sub == nil {
				return nil, fail("unrecognised message line %q", s)
			}
			cur = &captureMsg{File: c.Name, N: atoi(sub[1]), Transport: sub[3], Dir: sub[4], Src: sub[5], Dst: sub[6]}
			for _, fr := range strings.Split(sub[2], ",") {
				cur.Frames = append(cur.Frames, atoi(fr))
			}
			if cur.N != len(c.Msgs)+1 {
				return nil, fail("message %d follows message %d", cur.N, len(c.Msgs))
			}
			c.Msgs = append(c.Msgs, cur)
		default:
			if cur == nil {
				return nil, fail("field line outside a message block: %q", s)
			}
			key, val, ok := strings.Cut(s, ":")
			if !ok {
				return nil, fail("unrecognised line %q", s)
			}
			val = strings.TrimPrefix(val, " ")
			if err := cur.setField(key, val); err != nil {
				return nil, fail("%s: %v", key, err)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for _, m := range c.Msgs {
		if err := m.finish(); err != nil {
			return nil, fmt.Errorf("%s: %v", m.Name(), err)
		}
	}
	return c, nil
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		panic(err)
	}
	return n
}

// firstUint parses the leading unsigned decimal of a field value such as
// "4294967295 (0xffffffff)".
func firstUint(val string) (uint64, error) {
	tok, _, _ := strings.Cut(val, " ")
	return strconv.ParseUint(tok, 10, 64)
}

func (m *captureMsg) setField(key, val string) error {
	var err error
	switch key {
	case "length":
		sub := lengthRE.FindStringSubmatch(val)
		if sub == nil {
			return fmt.Errorf("bad length %q", val)
		}
		m.Length = atoi(sub[1])
	case "hex":
		tok, _, _ := strings.Cut(val, " ")
		m.Bytes, err = hex.DecodeString(tok)
	case "hex_payload_first_64":
		m.First64, err = hex.DecodeString(val)
	case "hex_payload_last_64":
		m.Last64, err = hex.DecodeString(val)
	case "payload_sha256":
		m.PayloadSHA = val
	case "message_sha256":
		m.MessageSHA = val
	case "cmd":
		m.HasHeader = true
		num, name, _ := strings.Cut(val, " ")
		m.CmdName = name
		m.Cmd, err = strconv.ParseUint(num, 10, 16)
	case "header":
		if !strings.HasPrefix(val, "extended") {
			return fmt.Errorf("unknown header form %q", val)
		}
		m.Extended = true
	case "payload_size":
		m.PayloadSize, err = firstUint(val)
	case "data_type":
		m.DataType, err = firstUint(val)
	case "count":
		m.Count, err = firstUint(val)
	case "p1":
		m.P1, err = firstUint(val)
	case "p2":
		m.P2, err = firstUint(val)
	case "decoded":
		m.Decoded = append(m.Decoded, val)
	default:
		return fmt.Errorf("unknown field")
	}
	return err
}

// finish checks the block's consistency and rebuilds a message whose listing
// holds only its header.
func (m *captureMsg) finish() error {
	if len(m.Bytes) == m.Length {
		return nil
	}
	hsize := HeaderSize
	if m.Extended {
		hsize = ExtHeaderSize
	}
	if len(m.Bytes) != hsize || m.First64 == nil || m.Last64 == nil || m.PayloadSHA == "" || m.MessageSHA == "" {
		return fmt.Errorf("hex holds %d of %d bytes and the digest lines are incomplete", len(m.Bytes), m.Length)
	}
	m.HeaderOnly = true
	payload, err := m.rebuildPayload()
	if err != nil {
		return err
	}
	if got := fmt.Sprintf("%x", sha256.Sum256(payload)); got != m.PayloadSHA {
		return fmt.Errorf("rebuilt payload has sha256 %s, the listing says %s", got, m.PayloadSHA)
	}
	m.Bytes = append(m.Bytes[:hsize:hsize], payload...)
	if got := fmt.Sprintf("%x", sha256.Sum256(m.Bytes)); got != m.MessageSHA {
		return fmt.Errorf("rebuilt message has sha256 %s, the listing says %s", got, m.MessageSHA)
	}
	if len(m.Bytes) != m.Length {
		return fmt.Errorf("rebuilt message has %d bytes, want %d", len(m.Bytes), m.Length)
	}
	return nil
}

// rebuildPayload reconstructs an elided DBR_TIME_DOUBLE array payload from the
// first 64 bytes (which hold the 16 bytes of metadata) and the listing's
// "all N elements follow element[i] = a + i * b (checked)" line. It uses
// no codec function, so the result can serve as an independent reference.
func (m *captureMsg) rebuildPayload() ([]byte, error) {
	if m.DataType != uint64(DBRTimeDouble) {
		return nil, fmt.Errorf("cannot rebuild an elided payload of data type %d", m.DataType)
	}
	var rule []string
	for _, d := range m.Decoded {
		if sub := ruleRE.FindStringSubmatch(d); sub != nil {
			rule = sub
		}
	}
	if rule == nil {
		return nil, fmt.Errorf("no element rule for the elided payload")
	}
	n := atoi(rule[1])
	a, err1 := strconv.ParseFloat(rule[2], 64)
	step, err2 := strconv.ParseFloat(rule[3], 64)
	if err1 != nil || err2 != nil || uint64(n) != m.Count {
		return nil, fmt.Errorf("bad element rule %q", rule[0])
	}
	const meta = 16 // status, severity, stamp, RISC pad
	p := make([]byte, 0, m.PayloadSize)
	p = append(p, m.First64[:meta]...)
	for i := range n {
		p = binary.BigEndian.AppendUint64(p, math.Float64bits(a+float64(i)*step))
	}
	for uint64(len(p)) < m.PayloadSize {
		p = append(p, 0)
	}
	if !bytes.Equal(p[:64], m.First64) || !bytes.Equal(p[len(p)-64:], m.Last64) {
		return nil, fmt.Errorf("rebuilt payload does not match the listed first/last 64 bytes")
	}
	return p, nil
}

// captureDir is where the listings live, inside the module so that a clean
// clone can run the tests.
const captureDir = "testdata/captures"

var loadCapturesOnce = sync.OnceValues(func() ([]*capture, error) {
	paths, err := filepath.Glob(filepath.Join(captureDir, "*.txt"))
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	var cs []*capture
	for _, p := range paths {
		c, err := parseCapture(p)
		if err != nil {
			return nil, err
		}
		cs = append(cs, c)
	}
	return cs, nil
})

// loadCaptures returns every parsed listing; the parse runs once per process.
func loadCaptures(tb testing.TB) []*capture {
	tb.Helper()
	cs, err := loadCapturesOnce()
	if err != nil {
		tb.Fatal(err)
	}
	return cs
}

// allMessages returns every message of every capture that has a header.
func allMessages(tb testing.TB) []*captureMsg {
	var ms []*captureMsg
	for _, c := range loadCaptures(tb) {
		for _, m := range c.Msgs {
			if m.HasHeader {
				ms = append(ms, m)
			}
		}
	}
	return ms
}

// captureMessage returns message n of the capture whose name starts with prefix.
func captureMessage(tb testing.TB, prefix string, n int) *captureMsg {
	tb.Helper()
	for _, c := range loadCaptures(tb) {
		if strings.HasPrefix(c.Name, prefix) {
			if n < 1 || n > len(c.Msgs) {
				tb.Fatalf("%s has no message %d", c.Name, n)
			}
			return c.Msgs[n-1]
		}
	}
	tb.Fatalf("no capture %q", prefix)
	return nil
}

// tcpStream is the byte stream of one direction of one TCP connection.
type tcpStream struct {
	Key      string
	Msgs     []*captureMsg
	Bytes    []byte
	Segments []int // the sizes of the TCP segments that carried it, in order
}

// tcpStreams splits a capture's TCP messages into per-direction streams and
// attaches the captured segmentation to each.
func tcpStreams(tb testing.TB, c *capture) []*tcpStream {
	tb.Helper()
	byKey := map[string]*tcpStream{}
	frameKey := map[int]string{}
	var order []*tcpStream
	for _, m := range c.Msgs {
		if m.Transport != "TCP" {
			continue
		}
		s := byKey[m.Circuit()]
		if s == nil {
			s = &tcpStream{Key: c.Name + " " + m.Circuit()}
			byKey[m.Circuit()] = s
			order = append(order, s)
		}
		s.Msgs = append(s.Msgs, m)
		s.Bytes = append(s.Bytes, m.Bytes...)
		for _, f := range m.Frames {
			frameKey[f] = m.Circuit()
		}
	}
	for _, seg := range c.Segments {
		k, ok := frameKey[seg.Frame]
		if !ok {
			tb.Fatalf("%s: TCP segment in frame %d carries no listed message", c.Name, seg.Frame)
		}
		byKey[k].Segments = append(byKey[k].Segments, seg.Size)
	}
	for _, s := range order {
		total := 0
		for _, n := range s.Segments {
			total += n
		}
		if total != len(s.Bytes) {
			tb.Fatalf("%s: segments add up to %d bytes, the messages to %d", s.Key, total, len(s.Bytes))
		}
	}
	return order
}

// udpDatagram is one captured UDP datagram.
type udpDatagram struct {
	Name  string
	Msgs  []*captureMsg
	Bytes []byte
}

// udpDatagrams groups a capture's UDP messages by the frame that carried them
// and checks multi-message datagrams against the listing's datagram notes.
func udpDatagrams(tb testing.TB, c *capture) []*udpDatagram {
	tb.Helper()
	var ds []*udpDatagram
	byFrame := map[int]*udpDatagram{}
	for _, m := range c.Msgs {
		if m.Transport != "UDP" {
			continue
		}
		d := byFrame[m.Frames[0]]
		if d == nil {
			d = &udpDatagram{Name: fmt.Sprintf("%s/frame%d", c.Name, m.Frames[0])}
			byFrame[m.Frames[0]] = d
			ds = append(ds, d)
		}
		d.Msgs = append(d.Msgs, m)
		d.Bytes = append(d.Bytes, m.Bytes...)
	}
	for _, n := range c.Datagrams {
		d := byFrame[n.Frame]
		if d == nil || d.Msgs[0].N != n.First || d.Msgs[len(d.Msgs)-1].N != n.Last || !bytes.Equal(d.Bytes, n.Bytes) {
			tb.Fatalf("%s: datagram note for frame %d does not match its messages", c.Name, n.Frame)
		}
	}
	return ds
}

// TestCaptureListings checks the parsed listings against their own summary
// lines, so that a parser bug cannot silently drop messages.
func TestCaptureListings(t *testing.T) {
	countRE := regexp.MustCompile(`\((\d+) frames, (\d+) CA messages\)`)
	cs := loadCaptures(t)
	if len(cs) != 11 {
		t.Fatalf("found %d listings in %s, want 11", len(cs), captureDir)
	}
	total := 0
	for _, c := range cs {
		raw, err := os.ReadFile(filepath.Join(captureDir, c.Name+".txt"))
		if err != nil {
			t.Fatal(err)
		}
		sub := countRE.FindSubmatch(raw)
		if sub == nil {
			t.Fatalf("%s: no message count line", c.Name)
		}
		if want := atoi(string(sub[2])); len(c.Msgs) != want {
			t.Errorf("%s: parsed %d messages, the listing says %d", c.Name, len(c.Msgs), want)
		}
		for _, m := range c.Msgs {
			if m.HasHeader != (m.Length > 0) {
				t.Errorf("%s: has header lines %v but length %d", m.Name(), m.HasHeader, m.Length)
			}
			if len(m.Bytes) != m.Length {
				t.Errorf("%s: %d bytes, length line says %d", m.Name(), len(m.Bytes), m.Length)
			}
			if len(m.Decoded) == 0 {
				t.Errorf("%s: no decoded lines", m.Name())
			}
		}
		total += len(c.Msgs)
		// Building the streams and datagrams checks the segment and datagram
		// notes against the messages.
		tcpStreams(t, c)
		udpDatagrams(t, c)
	}
	if total != 441+2 {
		t.Errorf("parsed %d messages in all, want 443 (441 with a header and 2 zero-length datagrams)", total)
	}
	big := captureMessage(t, "05", 13)
	if !big.HeaderOnly || len(big.Bytes) != 800040 {
		t.Errorf("05 msg 13: header only %v, %d bytes; want a rebuilt 800040-byte message", big.HeaderOnly, len(big.Bytes))
	}
}
