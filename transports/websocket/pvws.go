package websocket

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"slices"
	"strconv"

	"github.com/pvhub/pvhub/plugins"
	"github.com/pvhub/pvhub/transports/internal/eventjson"
)

// pvwsDialect is PVWS's protocol (ornl-epics/pvws).
type pvwsDialect struct{}

type pvwsRequest struct {
	Type  *string         `json:"type"`
	PVs   json.RawMessage `json:"pvs"`
	PV    json.RawMessage `json:"pv"`
	Value json.RawMessage `json:"value"`
	ID    json.RawMessage `json:"id"`
}

// pvwsError builds {"type":"error","pv":..,"message":..} (pv only when known).
func pvwsError(b []byte, pv, text string) []byte {
	b = append(b, `{"type":"error"`...)
	if pv != "" {
		b = append(b, `,"pv":`...)
		b = eventjson.AppendString(b, pv)
	}
	b = append(b, `,"message":`...)
	b = eventjson.AppendString(b, text)
	return append(b, '}')
}

const pvwsTypes = "subscribe, monitor, clear, list, write, ping or echo"

func (d *pvwsDialect) handle(c *client, msg []byte) {
	trimmed := bytes.TrimSpace(msg)
	if !json.Valid(trimmed) {
		c.send(pvwsError(nil, "", "invalid JSON"))
		return
	}
	if len(trimmed) == 0 || trimmed[0] != '{' {
		c.send(pvwsError(nil, "", `expected a JSON object such as {"type":"subscribe","pvs":["IOC:m1"]}`))
		return
	}
	var req pvwsRequest
	if err := json.Unmarshal(trimmed, &req); err != nil {
		c.send(pvwsError(nil, "", "invalid message: "+err.Error()))
		return
	}
	if req.Type == nil {
		c.send(pvwsError(nil, "", `missing "type": expected `+pvwsTypes))
		return
	}
	typ := *req.Type
	switch typ {
	case "subscribe", "monitor", "clear":
		list, ok := names(req.PVs, nil)
		if ok {
			list, ok = names(req.PV, list)
		}
		if !ok || len(list) == 0 {
			c.send(pvwsError(nil, "", typ+` needs "pvs": a list of PV names`))
			return
		}
		if slices.Contains(list, "") {
			c.send(pvwsError(nil, "", typ+": empty PV name"))
			return
		}
		if typ == "clear" {
			c.t.hub.unsubscribe(c, list)
		} else {
			c.t.hub.subscribe(c, list, false, nil, nil, 0)
		}
	case "list":
		l := c.t.hub.subscribed(c)
		slices.Sort(l)
		b := append([]byte(nil), `{"type":"list","pvs":`...)
		b = eventjson.AppendStrings(b, l)
		c.send(append(b, '}'))
	case "write":
		d.write(c, req)
	case "ping":
		c.ping()
	case "echo":
		c.send(append([]byte(nil), trimmed...))
	default:
		c.send(pvwsError(nil, "", "unknown type "+strconv.Quote(typ)+": expected "+pvwsTypes))
	}
}

func (d *pvwsDialect) write(c *client, req pvwsRequest) {
	var name string
	if len(req.PV) == 0 || json.Unmarshal(req.PV, &name) != nil || name == "" {
		c.send(pvwsError(nil, "", `write needs "pv": a PV name`))
		return
	}
	if len(req.Value) == 0 {
		c.send(pvwsError(nil, name, `write needs "value"`))
		return
	}
	tg := c.t.hub.target(c, name)
	switch {
	case !tg.subscribed:
		c.send(pvwsError(nil, name, "Cannot write unknown PV "+name+": subscribe to it first"))
		return
	case tg.haveConn && tg.conn.Connected && !tg.conn.Write:
		c.send(pvwsError(nil, name, "Cannot write PV "+name+": "+denial(tg.conn)))
		return
	case !tg.haveConn || !tg.conn.Connected || tg.meta == nil:
		c.send(pvwsError(nil, name, "Cannot write PV "+name+": not connected"))
		return
	}
	data, err := eventjson.ParseValue(tg.meta, req.Value)
	if err != nil {
		c.send(pvwsError(nil, name, "Cannot write PV "+name+": "+err.Error()))
		return
	}
	id := append(json.RawMessage(nil), req.ID...)
	c.t.hub.put(c, name, data, c.t.opts.putTimeout, func(errText string) []byte {
		if errText != "" {
			b := pvwsError(nil, name, "Cannot write PV "+name+": "+errText)
			if len(id) > 0 {
				b = append(b[:len(b)-1], `,"id":`...)
				b = append(b, id...)
				b = append(b, '}')
			}
			return b
		}
		b := append([]byte(nil), `{"type":"write","pv":`...)
		b = eventjson.AppendString(b, name)
		b = append(b, `,"ok":true`...)
		if len(id) > 0 {
			b = append(b, `,"id":`...)
			b = append(b, id...)
		}
		return append(b, '}')
	})
}

func (d *pvwsDialect) encode(w *writer, e entry) {
	v := w.views[e.name]
	if v == nil {
		return
	}
	switch e.kind {
	case entConn:
		wasConnected := v.haveConn && v.conn.Connected
		v.conn, v.haveConn = e.conn, true
		if e.conn.Connected && wasConnected && v.sentFirst {
			// An access change on a connected PV: PVWS sends readonly when it changes.
			if ro := !e.conn.Write; ro != v.lastRO {
				b := append(w.buf, `{"type":"update","pv":`...)
				b = eventjson.AppendString(b, e.name)
				b = append(b, `,"readonly":`...)
				w.buf = append(eventjson.AppendBool(b, ro), '}')
				w.end()
				v.lastRO = ro
			}
			return
		}
		v.needMeta = true
		if !e.conn.Connected {
			// As PVWS does for a disconnect, severity UNDEFINED; plus an explicit flag.
			b := append(w.buf, `{"type":"update","pv":`...)
			b = eventjson.AppendString(b, e.name)
			b = append(b, `,"connected":false,"severity":"UNDEFINED"}`...)
			w.buf = b
			w.end()
			v.lastSev = "UNDEFINED"
			v.lastConnOK = false
		}
	case entMeta:
		v.meta = e.meta
		v.needMeta = true
	case entValue:
		w.buf = appendPVWSUpdate(w.buf, e.name, v, e.value)
		w.end()
	}
}

func (d *pvwsDialect) flush(*writer) {}

var pvwsSeverity = map[string]string{"NO_ALARM": "NONE", "MINOR": "MINOR", "MAJOR": "MAJOR", "INVALID": "INVALID"}

func severityName(s string) string {
	if n, ok := pvwsSeverity[s]; ok {
		return n
	}
	return "UNDEFINED"
}

var scalarVTypes = [...]string{"VString", "VShort", "VFloat", "VEnum", "VByte", "VInt", "VDouble"}
var arrayVTypes = [...]string{"VStringArray", "VShortArray", "VFloatArray", "VEnumArray", "VByteArray", "VIntArray", "VDoubleArray"}

// vtype returns the PVWS vtype and the native type used to encode d.
func vtype(m *plugins.Metadata, d plugins.Data) (string, plugins.Type, bool) {
	var t plugins.Type
	if m != nil && m.Type <= plugins.TypeDouble && m.Type.Kind() == d.Kind {
		t = m.Type
	} else {
		switch d.Kind {
		case plugins.KindFloat64:
			t = plugins.TypeDouble
		case plugins.KindInt64:
			t = plugins.TypeLong
		case plugins.KindBytes:
			t = plugins.TypeChar
		default:
			t = plugins.TypeString
		}
	}
	arr := isArray(m, d)
	if arr {
		return arrayVTypes[t], t, true
	}
	return scalarVTypes[t], t, false
}

// appendPVWSUpdate appends an update message: metadata when the view needs it (first
// update, after a reconnect or a metadata change), severity and readonly when changed.
func appendPVWSUpdate(b []byte, name string, v *view, val *plugins.Value) []byte {
	vt, t, arr := vtype(v.meta, val.Data)
	b = append(b, `{"type":"update","pv":`...)
	b = eventjson.AppendString(b, name)
	full := v.needMeta || !v.sentFirst
	if full {
		b = append(b, `,"vtype":`...)
		b = eventjson.AppendString(b, vt)
		if m := v.meta; m != nil {
			if m.Units != "" || t != plugins.TypeString && t != plugins.TypeEnum {
				b = append(b, `,"units":`...)
				b = eventjson.AppendString(b, m.Units)
			}
			if m.Description != "" {
				b = append(b, `,"description":`...)
				b = eventjson.AppendString(b, m.Description)
			}
			switch t {
			case plugins.TypeDouble, plugins.TypeFloat, plugins.TypeLong, plugins.TypeShort, plugins.TypeChar:
				b = append(b, `,"precision":`...)
				b = strconv.AppendInt(b, int64(m.Precision), 10)
				b = appendRange(b, "min", "max", m.Display)
				b = appendRange(b, "warn_low", "warn_high", m.Warning)
				b = appendRange(b, "alarm_low", "alarm_high", m.Alarm)
			case plugins.TypeEnum:
				b = append(b, `,"labels":`...)
				b = eventjson.AppendStrings(b, m.EnumLabels)
			}
		}
		b = append(b, `,"connected":true`...)
	} else if !v.lastConnOK {
		b = append(b, `,"connected":true`...)
	}
	v.lastConnOK = true
	sev := severityName(val.Severity)
	if full || sev != v.lastSev {
		b = append(b, `,"severity":`...)
		b = eventjson.AppendString(b, sev)
		v.lastSev = sev
	}
	ro := !v.haveConn || !v.conn.Write
	if full || ro != v.lastRO {
		b = append(b, `,"readonly":`...)
		b = eventjson.AppendBool(b, ro)
		v.lastRO = ro
	}
	v.needMeta, v.sentFirst = false, true
	b = appendPVWSValue(b, t, arr, v.meta, val.Data)
	b = append(b, `,"seconds":`...)
	b = strconv.AppendUint(b, uint64(val.Seconds)+epicsEpoch, 10)
	b = append(b, `,"nanos":`...)
	b = strconv.AppendUint(b, uint64(val.Nanos), 10)
	return append(b, '}')
}

func appendRange(b []byte, lo, hi string, r plugins.Range) []byte {
	b = eventjson.AppendKey(b, lo)
	b = eventjson.AppendFloat(b, r.Low)
	b = eventjson.AppendKey(b, hi)
	return eventjson.AppendFloat(b, r.High)
}

// appendPVWSValue appends the value fields: "value" for numbers (and "text" for an enum's
// label), "text" for a string, "value" as a list for a string array, and b64dbl, b64flt,
// b64srt, b64int or b64byt (little-endian, base64) for numeric arrays.
func appendPVWSValue(b []byte, t plugins.Type, arr bool, m *plugins.Metadata, d plugins.Data) []byte {
	if !arr && d.Len() >= 1 {
		switch t {
		case plugins.TypeString:
			b = append(b, `,"text":`...)
			return eventjson.AppendString(b, d.Strings[0])
		case plugins.TypeEnum:
			idx := d.Int64s[0]
			b = append(b, `,"value":`...)
			b = strconv.AppendInt(b, idx, 10)
			if m != nil && idx >= 0 && idx < int64(len(m.EnumLabels)) {
				b = append(b, `,"text":`...)
				b = eventjson.AppendString(b, m.EnumLabels[idx])
			}
			return b
		}
		b = append(b, `,"value":`...)
		return appendElem(b, d, 0)
	}
	if t == plugins.TypeString {
		b = append(b, `,"value":`...)
		return eventjson.AppendStrings(b, d.Strings)
	}
	var key string
	var raw []byte
	switch t {
	case plugins.TypeDouble:
		key = "b64dbl"
		raw = make([]byte, 0, 8*d.Len())
		for _, f := range d.Float64s {
			raw = binary.LittleEndian.AppendUint64(raw, math.Float64bits(f))
		}
	case plugins.TypeFloat:
		key = "b64flt"
		raw = make([]byte, 0, 4*d.Len())
		for _, f := range d.Float64s {
			raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(float32(f)))
		}
	case plugins.TypeShort:
		key = "b64srt"
		raw = make([]byte, 0, 2*d.Len())
		for _, x := range d.Int64s {
			raw = binary.LittleEndian.AppendUint16(raw, uint16(x))
		}
	case plugins.TypeChar:
		key = "b64byt"
		raw = d.Bytes
	default: // DBF_LONG, enum arrays
		key = "b64int"
		raw = make([]byte, 0, 4*d.Len())
		for _, x := range d.Int64s {
			raw = binary.LittleEndian.AppendUint32(raw, uint32(x))
		}
	}
	b = eventjson.AppendKey(b, key)
	b = append(b, '"')
	b = base64.StdEncoding.AppendEncode(b, raw)
	return append(b, '"')
}
