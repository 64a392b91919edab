package eventjson

import (
	"testing"

	"github.com/pvhub/pvhub/plugins"
)

// BenchmarkAppendState is the encoding of one MQTT state message (and of a
// REST answer): connection, metadata and value of a double PV.
func BenchmarkAppendState(b *testing.B) {
	conn := plugins.Connection{Name: "BL1:temp", Connected: true, Read: true, Write: true}
	meta := plugins.Metadata{Name: "BL1:temp", Type: plugins.TypeDouble, Count: 1, Units: "degC", Precision: 2,
		Display: plugins.Range{Low: -50, High: 150}, Control: plugins.Range{Low: -50, High: 150}}
	v := plugins.Value{Name: "BL1:temp", Data: plugins.Float64s(21.5), Seconds: 1_000_000_000, Nanos: 123456789, Status: "NO_ALARM", Severity: "NO_ALARM"}
	var buf []byte
	b.ReportAllocs()
	for i := range b.N {
		v.Data.Float64s[0] = float64(i)
		buf = AppendState(buf[:0], State{Name: v.Name, Conn: &conn, Meta: &meta, Value: &v})
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkAppendValue is one SSE or WebSocket (pvhub dialect) value event.
func BenchmarkAppendValue(b *testing.B) {
	meta := plugins.Metadata{Name: "BL1:temp", Type: plugins.TypeDouble, Count: 1}
	v := plugins.Value{Name: "BL1:temp", Data: plugins.Float64s(21.5), Seconds: 1_000_000_000, Status: "NO_ALARM", Severity: "NO_ALARM"}
	var buf []byte
	b.ReportAllocs()
	for i := range b.N {
		v.Data.Float64s[0] = float64(i)
		buf = AppendValue(buf[:0], v, &meta)
	}
	b.SetBytes(int64(len(buf)))
}
