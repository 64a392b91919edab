package wire

import (
	"bytes"
	"testing"
)

// benchUpdate is the first camonitor update of 04: a DBR_TIME_DOUBLE EVENT_ADD
// message of 40 bytes (60.5, HIGH/MINOR).
func benchUpdate(b *testing.B) (*captureMsg, *DBR) {
	m := captureMessage(b, "04", 13)
	var d DBR
	if err := DecodeDBR(&d, DBRTimeDouble, 1, m.Payload()); err != nil {
		b.Fatal(err)
	}
	return m, &d
}

// benchEncode measures AppendDBRMessage into a reused buffer and checks the
// result once against want (with the RISC pad zeroed, when want is given).
func benchEncode(b *testing.B, cmd Command, typ DBRType, count int, p1, p2 uint32, src *DBR, want []byte) {
	buf := make([]byte, 0, 64)
	buf, err := AppendDBRMessage(buf, cmd, typ, count, p1, p2, src)
	if err != nil || (want != nil && !bytes.Equal(buf, want)) {
		b.Fatalf("encoded %x, %v\nwant    %x", head(buf), err, head(want))
	}
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		buf, _ = AppendDBRMessage(buf[:0], cmd, typ, count, p1, p2, src)
	}
}

// benchDecode measures Decoder.Feed/Next and DecodeDBR into a reused DBR.
func benchDecode(b *testing.B, msg []byte) {
	d := NewDecoder(0)
	var dbr DBR
	decode := func() {
		d.Feed(msg)
		f, err := d.Next()
		if err != nil {
			b.Fatal(err)
		}
		if err := DecodeDBR(&dbr, DBRType(f.Header.DataType), int(f.Header.Count), f.Payload); err != nil {
			b.Fatal(err)
		}
		if _, err := d.Next(); err != ErrNeedMore {
			b.Fatal(err)
		}
	}
	decode()
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		decode()
	}
}

// BenchmarkEncodeTimeDoubleUpdate encodes a scalar DBR_TIME_DOUBLE EVENT_ADD
// update, the message a server sends most.
func BenchmarkEncodeTimeDoubleUpdate(b *testing.B) {
	m, src := benchUpdate(b)
	want := bytes.Clone(m.Bytes)
	clear(want[HeaderSize+12 : HeaderSize+16]) // RSRV leaves 0x00000003 in the RISC pad
	benchEncode(b, CmdEventAdd, DBRTimeDouble, 1, uint32(ECANormal), 1, src, want)
}

// BenchmarkDecodeTimeDoubleUpdate decodes the same update from a byte stream.
func BenchmarkDecodeTimeDoubleUpdate(b *testing.B) {
	m, _ := benchUpdate(b)
	benchDecode(b, m.Bytes)
}

// bigUpdate is a DBR_TIME_DOUBLE update of 1000 elements.
func bigUpdate() *DBR {
	d := &DBR{Type: DBRTimeDouble, Status: StatHigh, Severity: SevMinor, Stamp: refStamp,
		Value: Value{Type: DBRDouble, Doubles: make([]float64, 1000)}}
	for i := range d.Value.Doubles {
		d.Value.Doubles[i] = float64(i) * 0.5
	}
	return d
}

// BenchmarkEncodeTimeDoubleArray1000 encodes an update of 1000 doubles.
func BenchmarkEncodeTimeDoubleArray1000(b *testing.B) {
	benchEncode(b, CmdEventAdd, DBRTimeDouble, 1000, uint32(ECANormal), 1, bigUpdate(), nil)
}

// BenchmarkDecodeTimeDoubleArray1000 decodes an update of 1000 doubles.
func BenchmarkDecodeTimeDoubleArray1000(b *testing.B) {
	msg, err := AppendDBRMessage(nil, CmdEventAdd, DBRTimeDouble, 1000, uint32(ECANormal), 1, bigUpdate())
	if err != nil {
		b.Fatal(err)
	}
	benchDecode(b, msg)
}

// benchCtrl is the DBR_CTRL_DOUBLE READ_NOTIFY reply of 02 (CAP:ao with units,
// precision and eight limits, two of them NaN).
func benchCtrl(b *testing.B) (*captureMsg, *DBR) {
	m := captureMessage(b, "02", 28)
	var d DBR
	if err := DecodeDBR(&d, DBRCtrlDouble, 1, m.Payload()); err != nil {
		b.Fatal(err)
	}
	return m, &d
}

// BenchmarkEncodeCtrlDoubleReply encodes a DBR_CTRL_DOUBLE read reply.
func BenchmarkEncodeCtrlDoubleReply(b *testing.B) {
	m, src := benchCtrl(b)
	benchEncode(b, CmdReadNotify, DBRCtrlDouble, 1, uint32(ECANormal), 1, src, m.Bytes)
}

// BenchmarkDecodeCtrlDoubleReply decodes it.
func BenchmarkDecodeCtrlDoubleReply(b *testing.B) {
	m, _ := benchCtrl(b)
	benchDecode(b, m.Bytes)
}

// BenchmarkEncodeTimeStringFromDouble measures a server-side conversion: a
// DOUBLE read as DBR_TIME_STRING.
func BenchmarkEncodeTimeStringFromDouble(b *testing.B) {
	_, src := benchUpdate(b)
	src.Meta.Precision = 3
	benchEncode(b, CmdReadNotify, DBRTimeString, 1, uint32(ECANormal), 1, src, nil)
}
