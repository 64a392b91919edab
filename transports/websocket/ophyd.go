package websocket

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/pvhub/pvhub/plugins"
	"github.com/pvhub/pvhub/transports/internal/eventjson"
)

// epicsEpoch is the EPICS epoch (1990-01-01 UTC) in POSIX seconds.
const epicsEpoch = 631152000

// ophydDialect is ophyd-websocket's pv-socket protocol.
type ophydDialect struct{}

type ophydRequest struct {
	Action  *string         `json:"action"`
	PV      json.RawMessage `json:"pv"`
	PVs     json.RawMessage `json:"pvs"`
	Value   json.RawMessage `json:"value"`
	Timeout json.RawMessage `json:"timeout"`
}

const ophydActions = "Received action: %s, actions must be 'subscribe', 'unsubscribe', 'refresh', 'subscribeSafely', 'subscribeReadOnly', or 'set'. Example msg: {action: 'subscribe', pv: 'IOC:m1'}"

func ophydError(b []byte, text string) []byte {
	b = append(b, `{"error":`...)
	b = eventjson.AppendString(b, text)
	return append(b, '}')
}

func ophydMessage(text string) []byte {
	b := append([]byte(nil), `{"message":`...)
	b = eventjson.AppendString(b, text)
	return append(b, '}')
}

// names reads a "pv" or "pvs" field: a string or a list of strings.
func names(raw json.RawMessage, out []string) ([]string, bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return out, true
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return append(out, s), true
	}
	var list []string
	if json.Unmarshal(raw, &list) == nil {
		return append(out, list...), true
	}
	return out, false
}

func (d *ophydDialect) handle(c *client, msg []byte) {
	trimmed := bytes.TrimSpace(msg)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		if !json.Valid(trimmed) {
			c.send(ophydError(nil, "Invalid JSON format"))
		} else {
			c.send(ophydError(nil, `Invalid message: expected a JSON object such as {"action":"subscribe","pv":"IOC:m1"}`))
		}
		return
	}
	var req ophydRequest
	if err := json.Unmarshal(trimmed, &req); err != nil {
		if !json.Valid(trimmed) {
			c.send(ophydError(nil, "Invalid JSON format"))
		} else {
			c.send(ophydError(nil, "Invalid message: "+err.Error()))
		}
		return
	}
	if req.Action == nil {
		c.send(ophydError(nil, "No action specified. "+ophydExample))
		return
	}
	action := *req.Action
	if action == "refresh" {
		c.t.hub.refresh(c)
		c.send(ophydMessage("Refreshed all PVs"))
		return
	}
	switch action {
	case "subscribe", "subscribeSafely", "subscribeReadOnly", "unsubscribe", "set":
	default:
		c.send(ophydError(nil, fmt.Sprintf(ophydActions, action)))
		return
	}
	list, ok := names(req.PV, nil)
	if ok {
		list, ok = names(req.PVs, list)
	}
	if !ok {
		c.send(ophydError(nil, `"pv" must be a PV name or a list of names, "pvs" a list of names`))
		return
	}
	if len(list) == 0 {
		c.send(ophydError(nil, "No PV specified"))
		return
	}
	for _, n := range list {
		if n == "" {
			c.send(ophydError(nil, "Empty PV name"))
			return
		}
	}
	// The aggregate replies of the multi-PV branch answer a list; a single "pv" string gets
	// the classic per-PV message.
	single := len(list) == 1 && len(req.PVs) == 0 && len(req.PV) > 0 && req.PV[0] == '"'
	switch action {
	case "subscribe", "subscribeReadOnly":
		c.t.hub.subscribe(c, list, action == "subscribeReadOnly", func(r subResult) []byte {
			if single {
				if len(r.already) > 0 {
					return ophydMessage("Already subscribed to " + list[0])
				}
				return ophydMessage("Subscribed to " + list[0])
			}
			return ophydListReply("subscribe", "subscribed", r.subscribed, "already_subscribed", r.already, true)
		}, nil, 0)
	case "subscribeSafely":
		c.t.hub.subscribe(c, list, false, func(r subResult) []byte {
			if len(r.already) == 0 {
				return nil
			}
			if single {
				return ophydMessage("Already subscribed to " + list[0])
			}
			return ophydListReply("subscribe", "subscribed", nil, "already_subscribed", r.already, true)
		}, func(name string, ok bool) []byte {
			if ok {
				return ophydMessage("Subscribed to " + name)
			}
			return ophydError(nil, "Failed to connect to PV "+name+": not connected within "+c.t.opts.connectTimeout.String())
		}, c.t.opts.connectTimeout)
	case "unsubscribe":
		done, missing := c.t.hub.unsubscribe(c, list)
		if single {
			if len(done) > 0 {
				c.send(ophydMessage("Unsubscribed from " + list[0]))
			} else {
				c.send(ophydMessage("Not subscribed to " + list[0]))
			}
			return
		}
		c.send(ophydListReply("unsubscribe", "unsubscribed", done, "not_subscribed", missing, false))
	case "set":
		d.set(c, list, req)
	}
}

const ophydExample = "Example msg: {action: 'subscribe', pv: 'IOC:m1'}"

func ophydListReply(action, k1 string, l1 []string, k2 string, l2 []string, failed bool) []byte {
	b := append([]byte(nil), `{"action":`...)
	b = eventjson.AppendString(b, action)
	b = eventjson.AppendKey(b, k1)
	b = eventjson.AppendStrings(b, l1)
	b = eventjson.AppendKey(b, k2)
	b = eventjson.AppendStrings(b, l2)
	if failed {
		b = append(b, `,"failed":[]`...)
	}
	return append(b, '}')
}

func (d *ophydDialect) set(c *client, list []string, req ophydRequest) {
	if len(list) != 1 {
		c.send(ophydError(nil, "set writes one PV: give \"pv\" as a single name"))
		return
	}
	name := list[0]
	shown := string(bytes.TrimSpace(req.Value))
	if len(req.Value) == 0 {
		c.send(ophydError(nil, "No value specified. Could not set value of "+name))
		return
	}
	timeout := c.t.opts.putTimeout
	if len(req.Timeout) > 0 && string(req.Timeout) != "null" {
		var secs float64
		if json.Unmarshal(req.Timeout, &secs) != nil || secs <= 0 {
			c.send(ophydError(nil, "Timeout must be a number. Could not set value of "+name+" to "+shown))
			return
		}
		timeout = time.Duration(secs * float64(time.Second))
	}
	tg := c.t.hub.target(c, name)
	switch {
	case !tg.subscribed:
		c.send(ophydError(nil, "PV "+name+" is not subscribed. Subscribe to PV before setting value."))
		return
	case tg.readOnly:
		c.send(ophydError(nil, "Write access is not enabled for PV "+name+". Cannot set value: subscribed read-only."))
		return
	case tg.haveConn && tg.conn.Connected && !tg.conn.Write:
		c.send(ophydError(nil, "Write access is not enabled for PV "+name+". Cannot set value: "+denial(tg.conn)+"."))
		return
	case !tg.haveConn || !tg.conn.Connected || tg.meta == nil:
		c.send(ophydError(nil, "PV "+name+" is not connected. Could not set value of "+name+" to "+shown))
		return
	}
	if v := bytes.TrimSpace(req.Value); len(v) > 0 && (v[0] == '{' || string(v) == "null") {
		c.send(ophydError(nil, "Value must be a number. Could not set value of "+name+" to "+shown))
		return
	}
	data, err := eventjson.ParseValue(tg.meta, req.Value)
	if err != nil {
		c.send(ophydError(nil, "Could not set value of "+name+" to "+shown+": "+err.Error()))
		return
	}
	if lo, hi := tg.meta.Control.Low, tg.meta.Control.High; lo < hi && data.Len() == 1 {
		var f float64
		switch data.Kind {
		case plugins.KindFloat64:
			f = data.Float64s[0]
		case plugins.KindInt64:
			f = float64(data.Int64s[0])
		default:
			f = lo
		}
		if f < lo || f > hi {
			c.send(ophydError(nil, fmt.Sprintf("Value %s is outside of limits for PV %s. Low limit: %v, High limit: %v", shown, name, lo, hi)))
			return
		}
	}
	c.t.hub.put(c, name, data, timeout, func(errText string) []byte {
		if errText == "" {
			return ophydMessage("Successfully set " + name + " to " + shown)
		}
		return ophydError(nil, "Could not set value of "+name+" to "+shown+": "+errText)
	})
}

func (d *ophydDialect) encode(w *writer, e entry) {
	v := w.views[e.name]
	if v == nil {
		return
	}
	switch e.kind {
	case entConn:
		if e.conn.Connected && !(v.haveConn && v.conn.Connected) {
			v.metaStale = true // the host sends the metadata next
		}
		v.conn, v.haveConn = e.conn, true
		w.markDirty(e.name, v)
	case entMeta:
		v.meta, v.metaStale = e.meta, false
		w.markDirty(e.name, v)
	case entValue:
		val := e.value
		v.timestamp = posix(val.Seconds, val.Nanos)
		v.haveValue = true
		if val.Status != v.status || val.Severity != v.severity {
			v.status, v.severity = val.Status, val.Severity
			v.dirty = true
		}
		if v.dirty {
			v.dirty = false
			w.buf = appendOphydMeta(w.buf, e.name, v)
			w.end()
		}
		w.buf = appendOphydValue(w.buf, e.name, v, val)
		w.end()
	}
}

func (w *writer) markDirty(name string, v *view) {
	if !v.dirty {
		v.dirty = true
		w.dirty = append(w.dirty, name)
	}
}

func (d *ophydDialect) flush(w *writer) {
	for _, n := range w.dirty {
		if v := w.views[n]; v != nil && v.dirty {
			v.dirty = false
			if v.metaStale && v.conn.Connected {
				// Connected, metadata not here yet: one meta message when it comes
				// (a disconnection is never held back).
				continue
			}
			w.buf = appendOphydMeta(w.buf, n, v)
			w.end()
		}
	}
	w.dirty = w.dirty[:0]
}

func posix(sec, nsec uint32) float64 {
	return float64(uint64(sec)+epicsEpoch) + float64(nsec)/1e9
}

func (v *view) access() (connected, read, write bool) {
	if !v.haveConn {
		return false, false, false
	}
	return v.conn.Connected, v.conn.Read, v.conn.Write && !v.readOnly
}

// appendOphydValue appends a value message:
// {"pv":..,"value":..,"timestamp":..,"connected":..,"read_access":..,"write_access":..}.
func appendOphydValue(b []byte, name string, v *view, val *plugins.Value) []byte {
	b = append(b, `{"pv":`...)
	b = eventjson.AppendString(b, name)
	b = append(b, `,"value":`...)
	b = appendPlainValue(b, v.meta, val.Data)
	b = append(b, `,"timestamp":`...)
	b = eventjson.AppendFloat(b, posix(val.Seconds, val.Nanos))
	conn, read, write := v.access()
	b = append(b, `,"connected":`...)
	b = eventjson.AppendBool(b, conn)
	b = append(b, `,"read_access":`...)
	b = eventjson.AppendBool(b, read)
	b = append(b, `,"write_access":`...)
	b = eventjson.AppendBool(b, write)
	return append(b, '}')
}

// appendOphydMeta appends a sub_type "meta" message with ophyd's keys, plus alarm names,
// the native type and count, description and display limits.
func appendOphydMeta(b []byte, name string, v *view) []byte {
	conn, read, write := v.access()
	b = append(b, `{"sub_type":"meta","pv":`...)
	b = eventjson.AppendString(b, name)
	b = append(b, `,"obj":`...)
	b = eventjson.AppendString(b, name)
	b = append(b, `,"connected":`...)
	b = eventjson.AppendBool(b, conn)
	b = append(b, `,"read_access":`...)
	b = eventjson.AppendBool(b, read)
	b = append(b, `,"write_access":`...)
	b = eventjson.AppendBool(b, write)
	b = append(b, `,"timestamp":`...)
	if v.haveValue {
		b = eventjson.AppendFloat(b, v.timestamp)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(alarmStatusCode(v.status)), 10)
	b = append(b, `,"severity":`...)
	b = strconv.AppendInt(b, int64(severityCode(v.severity)), 10)
	b = append(b, `,"alarm_status":`...)
	b = eventjson.AppendString(b, v.status)
	b = append(b, `,"alarm_severity":`...)
	b = eventjson.AppendString(b, v.severity)
	m := v.meta
	if m == nil {
		b = append(b, `,"precision":null,"units":null,"lower_ctrl_limit":null,"upper_ctrl_limit":null,"enum_strs":null`...)
	} else {
		b = append(b, `,"type":`...)
		b = eventjson.AppendString(b, m.Type.String())
		b = append(b, `,"count":`...)
		b = strconv.AppendInt(b, int64(m.Count), 10)
		b = append(b, `,"precision":`...)
		b = strconv.AppendInt(b, int64(m.Precision), 10)
		b = append(b, `,"units":`...)
		b = eventjson.AppendString(b, m.Units)
		b = append(b, `,"lower_ctrl_limit":`...)
		b = eventjson.AppendFloat(b, m.Control.Low)
		b = append(b, `,"upper_ctrl_limit":`...)
		b = eventjson.AppendFloat(b, m.Control.High)
		b = append(b, `,"lower_disp_limit":`...)
		b = eventjson.AppendFloat(b, m.Display.Low)
		b = append(b, `,"upper_disp_limit":`...)
		b = eventjson.AppendFloat(b, m.Display.High)
		b = append(b, `,"enum_strs":`...)
		if m.Type == plugins.TypeEnum {
			b = eventjson.AppendStrings(b, m.EnumLabels)
		} else {
			b = append(b, "null"...)
		}
		if m.Description != "" {
			b = append(b, `,"description":`...)
			b = eventjson.AppendString(b, m.Description)
		}
	}
	return append(b, `,"setpoint_timestamp":null,"setpoint_status":null,"setpoint_severity":null,"setpoint_precision":null}`...)
}

// isArray reports whether a value of d on a PV with metadata m is sent as an array: when
// the PV's native count is above 1, or (metadata unknown) when d does not hold one element.
func isArray(m *plugins.Metadata, d plugins.Data) bool {
	if m != nil && m.Count > 0 {
		return m.Count > 1
	}
	return d.Len() != 1
}

// appendPlainValue appends a value as JSON: a scalar, or an array for array PVs; a DBF_CHAR
// array as text (up to its first zero byte).
func appendPlainValue(b []byte, m *plugins.Metadata, d plugins.Data) []byte {
	arr := isArray(m, d)
	if d.Kind == plugins.KindBytes && arr && (m == nil || m.Type == plugins.TypeChar) {
		s := d.Bytes
		if i := bytes.IndexByte(s, 0); i >= 0 {
			s = s[:i]
		}
		return eventjson.AppendString(b, string(s))
	}
	n := d.Len()
	if !arr && n == 1 {
		return appendElem(b, d, 0)
	}
	b = append(b, '[')
	for i := 0; i < n; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendElem(b, d, i)
	}
	return append(b, ']')
}

func appendElem(b []byte, d plugins.Data, i int) []byte {
	switch d.Kind {
	case plugins.KindFloat64:
		return eventjson.AppendFloat(b, d.Float64s[i])
	case plugins.KindInt64:
		return strconv.AppendInt(b, d.Int64s[i], 10)
	case plugins.KindString:
		return eventjson.AppendString(b, d.Strings[i])
	case plugins.KindBytes:
		return strconv.AppendInt(b, int64(d.Bytes[i]), 10)
	}
	return append(b, "null"...)
}

var severityCodes = map[string]int{"NO_ALARM": 0, "MINOR": 1, "MAJOR": 2, "INVALID": 3}

func severityCode(s string) int { return severityCodes[s] }

var alarmStatusCodes = map[string]int{"NO_ALARM": 0, "READ": 1, "WRITE": 2, "HIHI": 3, "HIGH": 4,
	"LOLO": 5, "LOW": 6, "STATE": 7, "COS": 8, "COMM": 9, "TIMEOUT": 10, "HWLIMIT": 11, "CALC": 12,
	"SCAN": 13, "LINK": 14, "SOFT": 15, "BAD_SUB": 16, "UDF": 17, "DISABLE": 18, "SIMM": 19,
	"READ_ACCESS": 20, "WRITE_ACCESS": 21}

func alarmStatusCode(s string) int { return alarmStatusCodes[s] }
