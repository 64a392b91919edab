// Package eventjson encodes pvhub's event model as JSON for the transports that
// speak plain JSON (SSE and REST, MQTT), and parses the values clients write.
//
// The encoders append to a byte slice and allocate nothing of their own. NaN and
// the infinities, which JSON lacks, are the strings "NaN", "Infinity" and
// "-Infinity". Time stamps are POSIX: "seconds" and "nanos", and "time" in
// RFC 3339 with nanoseconds, UTC.
//
//	{"type":"connection","pv":"X","connected":true,"read":true,"write":false,"write_denied":"write denied by no write.allow pattern matches"}
//	{"type":"metadata","pv":"X","native_type":"DBF_DOUBLE","count":1,"units":"mm","precision":3,
//	 "display":{"low":-10,"high":10},"control":{...},"warning":{...},"alarm":{...}}
//	{"type":"metadata","pv":"E","native_type":"DBF_ENUM","count":1,"enum_labels":["Off","On"]}
//	{"type":"value","pv":"X","value":1.5,"status":"NO_ALARM","severity":"NO_ALARM","seconds":1663920701,"nanos":367890532,"time":"2022-09-23T08:11:41.367890532Z"}
//	{"type":"put_result","pv":"X","id":7,"ok":false,"error":"X: write denied by write.deny \"X*\""}
//
// A value is a JSON scalar for a PV of one element and an array otherwise; an
// enum also has "text", its label; a DBF_CHAR array is text (up to its first zero
// byte). The state of a PV (AppendState) merges the three kinds into one object.
package eventjson

import (
	"strconv"
	"time"

	"github.com/pvhub/pvhub/plugins"
)

// EPICSEpoch is the EPICS epoch, 1990-01-01 00:00:00 UTC, in POSIX seconds.
const EPICSEpoch = 631152000

// AppendConnection appends a connection event.
func AppendConnection(b []byte, c plugins.Connection) []byte {
	b = append(b, `{"type":"connection","pv":`...)
	b = AppendString(b, c.Name)
	b = appendConnFields(b, c)
	return append(b, '}')
}

func appendConnFields(b []byte, c plugins.Connection) []byte {
	b = append(b, `,"connected":`...)
	b = AppendBool(b, c.Connected)
	b = append(b, `,"read":`...)
	b = AppendBool(b, c.Read)
	b = append(b, `,"write":`...)
	b = AppendBool(b, c.Write)
	if c.WriteDenied != "" && !c.Write {
		b = append(b, `,"write_denied":`...)
		b = AppendString(b, c.WriteDenied)
	}
	return b
}

// AppendMetadata appends a metadata event.
func AppendMetadata(b []byte, m plugins.Metadata) []byte {
	b = append(b, `{"type":"metadata","pv":`...)
	b = AppendString(b, m.Name)
	b = appendMetaFields(b, &m)
	return append(b, '}')
}

// appendMetaFields appends the fields a PV of m's type has: units, precision and
// limits for numbers, labels for an enum.
func appendMetaFields(b []byte, m *plugins.Metadata) []byte {
	b = append(b, `,"native_type":`...)
	b = AppendString(b, m.Type.String())
	b = append(b, `,"count":`...)
	b = strconv.AppendInt(b, int64(m.Count), 10)
	switch m.Type {
	case plugins.TypeString:
	case plugins.TypeEnum:
		b = append(b, `,"enum_labels":`...)
		b = AppendStrings(b, m.EnumLabels)
	default:
		b = append(b, `,"units":`...)
		b = AppendString(b, m.Units)
		b = append(b, `,"precision":`...)
		b = strconv.AppendInt(b, int64(m.Precision), 10)
		b = appendRange(b, "display", m.Display)
		b = appendRange(b, "control", m.Control)
		b = appendRange(b, "warning", m.Warning)
		b = appendRange(b, "alarm", m.Alarm)
	}
	if m.Description != "" {
		b = append(b, `,"description":`...)
		b = AppendString(b, m.Description)
	}
	return b
}

func appendRange(b []byte, key string, r plugins.Range) []byte {
	b = AppendKey(b, key)
	b = append(b, `{"low":`...)
	b = AppendFloat(b, r.Low)
	b = append(b, `,"high":`...)
	b = AppendFloat(b, r.High)
	return append(b, '}')
}

// AppendValue appends a value event. m, the PV's metadata, may be nil; it decides
// between a scalar and an array (its element count) and gives an enum its label.
func AppendValue(b []byte, v plugins.Value, m *plugins.Metadata) []byte {
	b = append(b, `{"type":"value","pv":`...)
	b = AppendString(b, v.Name)
	b = appendValueFields(b, &v, m)
	return append(b, '}')
}

func appendValueFields(b []byte, v *plugins.Value, m *plugins.Metadata) []byte {
	d := &v.Data
	n := d.Len()
	array := n != 1
	if m != nil && m.Count > 1 {
		array = true
	}
	b = append(b, `,"value":`...)
	switch d.Kind {
	case plugins.KindFloat64:
		if !array {
			b = AppendFloat(b, d.Float64s[0])
			break
		}
		b = append(b, '[')
		for i, f := range d.Float64s {
			if i > 0 {
				b = append(b, ',')
			}
			b = AppendFloat(b, f)
		}
		b = append(b, ']')
	case plugins.KindInt64:
		if !array {
			b = strconv.AppendInt(b, d.Int64s[0], 10)
			if m != nil && m.Type == plugins.TypeEnum {
				if i := d.Int64s[0]; i >= 0 && i < int64(len(m.EnumLabels)) {
					b = append(b, `,"text":`...)
					b = AppendString(b, m.EnumLabels[i])
				}
			}
			break
		}
		b = append(b, '[')
		for i, x := range d.Int64s {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, x, 10)
		}
		b = append(b, ']')
	case plugins.KindString:
		if !array {
			b = AppendString(b, d.Strings[0])
			break
		}
		b = AppendStrings(b, d.Strings)
	case plugins.KindBytes:
		if !array {
			b = strconv.AppendInt(b, int64(d.Bytes[0]), 10)
			break
		}
		text := d.Bytes
		for i, c := range text {
			if c == 0 {
				text = text[:i]
				break
			}
		}
		b = AppendString(b, string(text))
	default:
		b = append(b, "null"...)
	}
	b = append(b, `,"status":`...)
	b = AppendString(b, v.Status)
	b = append(b, `,"severity":`...)
	b = AppendString(b, v.Severity)
	sec := int64(v.Seconds) + EPICSEpoch
	b = append(b, `,"seconds":`...)
	b = strconv.AppendInt(b, sec, 10)
	b = append(b, `,"nanos":`...)
	b = strconv.AppendUint(b, uint64(v.Nanos), 10)
	b = append(b, `,"time":"`...)
	b = time.Unix(sec, int64(v.Nanos)).UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// AppendPutResult appends the answer to a put.
func AppendPutResult(b []byte, r plugins.PutResult) []byte {
	b = append(b, `{"type":"put_result","pv":`...)
	b = AppendString(b, r.Name)
	b = append(b, `,"id":`...)
	b = strconv.AppendUint(b, r.ID, 10)
	b = append(b, `,"ok":`...)
	b = AppendBool(b, r.OK())
	if !r.OK() {
		b = append(b, `,"error":`...)
		b = AppendString(b, r.Err)
	}
	return append(b, '}')
}

// State is what is known of one PV; a nil part is not known (yet).
type State struct {
	Name  string
	Conn  *plugins.Connection
	Meta  *plugins.Metadata
	Value *plugins.Value
}

// AppendState appends the state of a PV as one object: "pv", then the fields of
// the connection, metadata and value events that are known (no "type").
//
//	{"pv":"X","connected":true,"read":true,"write":true,"native_type":"DBF_DOUBLE","count":1,
//	 "units":"mm",...,"value":1.5,"status":"NO_ALARM","severity":"NO_ALARM","seconds":...,"nanos":...,"time":"..."}
func AppendState(b []byte, s State) []byte {
	b = append(b, `{"pv":`...)
	b = AppendString(b, s.Name)
	if s.Conn != nil {
		b = appendConnFields(b, *s.Conn)
	}
	if s.Meta != nil {
		b = appendMetaFields(b, s.Meta)
	}
	if s.Value != nil {
		b = appendValueFields(b, s.Value, s.Meta)
	}
	return append(b, '}')
}
