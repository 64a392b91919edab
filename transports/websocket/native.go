package websocket

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"

	"github.com/pvhub/pvhub/plugins"
	"github.com/pvhub/pvhub/transports/internal/eventjson"
)

// NativePath is the endpoint of pvhub's own dialect: the event model as JSON, the same
// objects the SSE and MQTT transports send (package eventjson). The web page uses it.
const NativePath = "/api/v1/ws"

// nativeDialect is pvhub's own protocol.
//
// Client → server:
//
//	{"type":"subscribe","pvs":["A","B"]}      (or "pv":"A")
//	{"type":"unsubscribe","pvs":["A"]}
//	{"type":"put","pv":"A","value":1.5,"id":7} (id: optional, a whole number ≥ 0, echoed)
//	{"type":"list"}
//
// Server → client: connection, metadata, value and put_result objects, then
// {"type":"list","pvs":[..]} and {"type":"error","error":"..","pv":".."} (pv when known).
type nativeDialect struct{}

type nativeRequest struct {
	Type  *string         `json:"type"`
	PVs   json.RawMessage `json:"pvs"`
	PV    json.RawMessage `json:"pv"`
	Value json.RawMessage `json:"value"`
	ID    json.RawMessage `json:"id"`
}

const nativeTypes = "subscribe, unsubscribe, put or list"

func nativeError(pv, text string) []byte {
	b := append([]byte(nil), `{"type":"error","error":`...)
	b = eventjson.AppendString(b, text)
	if pv != "" {
		b = append(b, `,"pv":`...)
		b = eventjson.AppendString(b, pv)
	}
	return append(b, '}')
}

func (d *nativeDialect) handle(c *client, msg []byte) {
	trimmed := bytes.TrimSpace(msg)
	if !json.Valid(trimmed) {
		c.send(nativeError("", "invalid JSON"))
		return
	}
	if len(trimmed) == 0 || trimmed[0] != '{' {
		c.send(nativeError("", `expected a JSON object such as {"type":"subscribe","pvs":["IOC:m1"]}`))
		return
	}
	var req nativeRequest
	if err := json.Unmarshal(trimmed, &req); err != nil {
		c.send(nativeError("", "invalid message: "+err.Error()))
		return
	}
	if req.Type == nil {
		c.send(nativeError("", `missing "type": expected `+nativeTypes))
		return
	}
	switch typ := *req.Type; typ {
	case "subscribe", "unsubscribe":
		list, ok := names(req.PVs, nil)
		if ok {
			list, ok = names(req.PV, list)
		}
		if !ok || len(list) == 0 {
			c.send(nativeError("", typ+` needs "pvs": a list of PV names (or "pv": one name)`))
			return
		}
		if slices.Contains(list, "") {
			c.send(nativeError("", typ+": empty PV name"))
			return
		}
		if typ == "unsubscribe" {
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
	case "put":
		d.put(c, req)
	default:
		c.send(nativeError("", "unknown type "+strconv.Quote(typ)+": expected "+nativeTypes))
	}
}

func (d *nativeDialect) put(c *client, req nativeRequest) {
	var name string
	if len(req.PV) == 0 || json.Unmarshal(req.PV, &name) != nil || name == "" {
		c.send(nativeError("", `put needs "pv": a PV name`))
		return
	}
	var id uint64
	if len(req.ID) > 0 && string(req.ID) != "null" {
		if err := json.Unmarshal(req.ID, &id); err != nil {
			c.send(nativeError(name, `"id" must be a whole number from 0 to 18446744073709551615`))
			return
		}
	}
	reply := func(text string) {
		c.send(eventjson.AppendPutResult(nil, plugins.PutResult{Name: name, ID: id, Err: text}))
	}
	if len(req.Value) == 0 {
		reply(`put needs "value"`)
		return
	}
	tg := c.t.hub.target(c, name)
	switch {
	case !tg.subscribed:
		reply("subscribe to " + name + " before writing it")
		return
	case !tg.haveConn || !tg.conn.Connected || tg.meta == nil:
		reply(name + " is not connected")
		return
	case !tg.conn.Write:
		reply(denial(tg.conn))
		return
	}
	data, err := eventjson.ParseValue(tg.meta, req.Value)
	if err != nil {
		reply(err.Error())
		return
	}
	c.t.hub.put(c, name, data, c.t.opts.putTimeout, func(errText string) []byte {
		return eventjson.AppendPutResult(nil, plugins.PutResult{Name: name, ID: id, Err: errText})
	})
}

func (d *nativeDialect) encode(w *writer, e entry) {
	v := w.views[e.name]
	if v == nil {
		return
	}
	switch e.kind {
	case entConn:
		v.conn, v.haveConn = e.conn, true
		w.buf = eventjson.AppendConnection(w.buf, e.conn)
	case entMeta:
		v.meta = e.meta
		w.buf = eventjson.AppendMetadata(w.buf, *e.meta)
	case entValue:
		w.buf = eventjson.AppendValue(w.buf, *e.value, v.meta)
	default:
		return
	}
	w.end()
}

func (d *nativeDialect) flush(*writer) {}
