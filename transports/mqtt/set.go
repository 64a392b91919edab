package mqtt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/pvhub/pvhub/plugins"
	"github.com/pvhub/pvhub/transports/internal/eventjson"
)

// maxSetBytes bounds the payload of a set message.
const maxSetBytes = 16 << 20

// setRequest is a parsed set message.
type setRequest struct {
	raw   []byte // the value, as JSON
	id    uint64 // the client's id, when hasID
	hasID bool
}

// parseSet reads the payload of a set message: a JSON object {"value": ..., "id": n}, a bare
// JSON value, or plain text (anything that is not JSON), which is the text value.
func parseSet(payload []byte) (setRequest, error) {
	if len(payload) > maxSetBytes {
		return setRequest{}, fmt.Errorf("the message has %d bytes, more than the %d a set may have", len(payload), maxSetBytes)
	}
	s := bytes.TrimSpace(payload)
	if len(s) == 0 {
		return setRequest{}, errors.New(`the message is empty: send a JSON value, {"value": ...}, or text`)
	}
	if s[0] == '{' {
		return parseSetObject(s)
	}
	if json.Valid(s) {
		return setRequest{raw: s}, nil
	}
	if !utf8.Valid(payload) {
		return setRequest{}, errors.New("the message is neither JSON nor UTF-8 text")
	}
	// Plain text: the whole message, spaces included, as a JSON string.
	return setRequest{raw: eventjson.AppendString(nil, string(payload))}, nil
}

func parseSetObject(s []byte) (setRequest, error) {
	var obj map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(s))
	if err := dec.Decode(&obj); err != nil {
		return setRequest{}, fmt.Errorf("the message starts with { but is not a JSON object: %v", err)
	}
	if dec.More() {
		return setRequest{}, errors.New("the JSON object is followed by more data")
	}
	var r setRequest
	for k, v := range obj {
		switch k {
		case "value":
			r.raw = v
		case "id":
			id, err := parseID(v)
			if err != nil {
				return setRequest{}, err
			}
			r.id, r.hasID = id, true
		default:
			return setRequest{}, fmt.Errorf(`unknown key %q in the set object: it has "value" and optionally "id"`, k)
		}
	}
	if r.raw == nil {
		return setRequest{}, errors.New(`the set object has no "value"`)
	}
	return r, nil
}

func parseID(v json.RawMessage) (uint64, error) {
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil || f < 0 || f != math.Trunc(f) || f > 1<<53 {
		return 0, fmt.Errorf(`"id" is %s: want a whole number from 0 to 2^53`, v)
	}
	return uint64(f), nil
}

// handleSet writes the value of a set message to a PV, and queues the answer: the host's
// result when it comes, at once when the message is bad. reply is the MQTT 5 response topic
// ("" for <prefix>/<pv>/set/result) and corr its correlation data.
func (t *Transport) handleSet(name string, payload []byte, reply string, corr []byte) {
	if reply == "" {
		reply = t.prefix + name + "/set/result"
	} else if checkTopic(reply) != nil {
		t.log.Debug("set with an unusable response topic; answering on the result topic", "pv", name, "response_topic", reply)
		reply = t.prefix + name + "/set/result"
	}
	corr = bytes.Clone(corr)
	req, err := parseSet(payload)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	t.nextID++
	id := t.nextID
	pp := &pendingPut{name: name, clientID: id, reply: reply, corr: corr}
	if req.hasID {
		pp.clientID = req.id
	}
	fail := func(err error) {
		t.queueResult(pp, fmt.Sprintf("%s: %v", name, err))
		t.signal()
	}
	if err != nil {
		fail(err)
		return
	}
	if why := unpublishable(name); why != "" {
		fail(errors.New(why))
		return
	}
	var data plugins.Data
	if p := t.pvs[name]; p != nil && p.meta != nil {
		data, err = eventjson.ParseValue(p.meta, req.raw)
	} else {
		data, err = eventjson.ParseUntyped(req.raw)
	}
	if err != nil {
		fail(err)
		return
	}
	if len(t.puts) >= maxPendingPuts {
		fail(fmt.Errorf("%d writes are waiting for their result; try again later", len(t.puts)))
		return
	}
	timeout := t.opts.putTimeout
	pp.timer = time.AfterFunc(timeout, func() { t.putExpired(id, timeout) })
	t.puts[id] = pp
	t.host.Put(name, data, id)
}

// putExpired answers a put whose result did not come in time.
func (t *Transport) putExpired(id uint64, timeout time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	pp := t.puts[id]
	if pp == nil || t.closed {
		return
	}
	delete(t.puts, id)
	t.queueResult(pp, fmt.Sprintf("%s: no answer within %v", pp.name, timeout))
	t.signal()
}

// maxQueuedResults bounds the answers waiting for the publisher (a flood of bad set
// messages while the broker is slow); more are dropped.
const maxQueuedResults = 4 * maxPendingPuts

// queueResult queues the answer to a put; t.mu is held.
func (t *Transport) queueResult(pp *pendingPut, errText string) {
	if len(t.results) >= maxQueuedResults {
		if t.droppedResults.Add(1) == 1 {
			t.log.Warn("answers to set messages dropped: too many wait for the broker", "pv", pp.name)
		}
		return
	}
	r := plugins.PutResult{Name: pp.name, ID: pp.clientID, Err: errText}
	t.results = append(t.results, job{kind: jobResult, topic: pp.reply,
		payload: eventjson.AppendPutResult(nil, r), corr: pp.corr})
}
