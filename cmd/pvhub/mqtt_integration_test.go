package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pvhub/pvhub/ca/catest"
)

// mqttSub is a mosquitto_sub process printing each message as a JSON line (-F %j).
type mqttSub struct {
	t    *testing.T
	proc *catest.Proc
}

// mqttMsg is one message mosquitto_sub printed.
type mqttMsg struct {
	Topic   string `json:"topic"`
	Payload string `json:"payload"`
	Retain  int    `json:"retain"`
}

// state decodes the payload as a JSON object (nil when it is not one).
func (m mqttMsg) state() map[string]any {
	var v map[string]any
	if json.Unmarshal([]byte(m.Payload), &v) != nil {
		return nil
	}
	return v
}

// requireMosquittoClients returns the paths of mosquitto_sub and mosquitto_pub, or skips
// the test (fails it under CI=true).
func requireMosquittoClients(t *testing.T) (sub, pub string) {
	t.Helper()
	sub, _ = exec.LookPath("mosquitto_sub")
	pub, _ = exec.LookPath("mosquitto_pub")
	catest.Require(t, "mosquitto_sub and mosquitto_pub", sub != "" && pub != "",
		"install Debian's mosquitto-clients (make test-deps as root)")
	return sub, pub
}

func startMQTTSub(t *testing.T, ctx context.Context, bin string, port int, topics ...string) *mqttSub {
	t.Helper()
	args := []string{"-h", "127.0.0.1", "-p", strconv.Itoa(port), "-F", "%j", "-i", fmt.Sprintf("itest-%d", time.Now().UnixNano())}
	for _, tp := range topics {
		args = append(args, "-t", tp)
	}
	p, err := catest.StartProcess(t, ctx, os.Environ(), bin, args...)
	if err != nil {
		t.Fatalf("mosquitto_sub: %v", err)
	}
	return &mqttSub{t: t, proc: p}
}

// until returns the first message match accepts, failing after 20 s.
func (s *mqttSub) until(what string, match func(mqttMsg) bool) mqttMsg {
	s.t.Helper()
	var last []string
	for {
		l, err := s.proc.Next(20 * time.Second)
		if err != nil {
			s.t.Fatalf("mosquitto_sub waiting for %s: %v (last: %s)\n%s", what, err, strings.Join(last, "; "), s.proc.Stderr())
		}
		b, _ := json.Marshal(l)
		var m mqttMsg
		if json.Unmarshal(b, &m) != nil || m.Topic == "" {
			continue
		}
		if match(m) {
			return m
		}
		if last = append(last, m.Topic+" "+m.Payload); len(last) > 8 {
			last = last[1:]
		}
	}
}

// mqttState matches a message on topic whose state has key equal to want (as printed).
func mqttState(topic, key string, want any) func(mqttMsg) bool {
	return func(m mqttMsg) bool {
		v := m.state()
		return m.Topic == topic && v != nil && fmt.Sprint(v[key]) == fmt.Sprint(want)
	}
}

func mqttPub(t *testing.T, ctx context.Context, bin string, port int, topic, payload string) {
	t.Helper()
	out, err := exec.CommandContext(ctx, bin, "-h", "127.0.0.1", "-p", strconv.Itoa(port), "-t", topic, "-m", payload).CombinedOutput()
	if err != nil {
		t.Fatalf("mosquitto_pub -t %s -m %q: %v\n%s", topic, payload, err, out)
	}
}

// TestIntegrationMQTTPlugin runs pvhub serve with the MQTT transport out of process and its
// embedded broker: mosquitto_sub sees a relay PV that a CA client writes (subscribed on
// demand), and the relay PVs that publish patterns select through RELAY:pvlist; mosquitto_pub
// on a set topic creates a relay PV that a CA get reads; a set the write rules deny gets an
// error naming the rule on the result topic.
func TestIntegrationMQTTPlugin(t *testing.T) {
	subBin, pubBin := requireMosquittoClients(t)
	port := catest.FreePort(t)
	r := newRelay(t,
		"PVHUB_TRANSPORTS__MQTT__ENABLED=true",
		"PVHUB_TRANSPORTS__MQTT__LISTEN=127.0.0.1:"+strconv.Itoa(port),
		"PVHUB_TRANSPORTS__MQTT__PUBLISH=RELAY:pub_*")
	r.start()
	if err := r.proc.WaitForStderr(30*time.Second, `msg="mqtt transport serving its embedded broker"`); err != nil {
		t.Fatal(err)
	}
	ctx := r.ctx

	// A relay PV written by a CA client, subscribed to on demand.
	r.putc("RELAY:mq_f1", "42.5")
	status := startMQTTSub(t, ctx, subBin, port, "pvhub/status")
	status.until("the online status", func(m mqttMsg) bool { return m.Payload == `{"status":"online"}` })
	sub := startMQTTSub(t, ctx, subBin, port, "pvhub/RELAY:mq_f1")
	first := sub.until("the relay PV's state", mqttState("pvhub/RELAY:mq_f1", "value", 42.5))
	if v := first.state(); v["connected"] != true || v["native_type"] != "DBF_DOUBLE" || v["write"] != true {
		t.Errorf("state of RELAY:mq_f1: %s", first.Payload)
	}
	r.putc("RELAY:mq_f1", "43")
	sub.until("the CA client's update", mqttState("pvhub/RELAY:mq_f1", "value", 43))

	// A relay PV selected by the publish pattern, published without any subscription of
	// its own: a watcher of every topic sees it once it exists.
	all := startMQTTSub(t, ctx, subBin, port, "pvhub/#")
	r.putc("RELAY:pub_f1", "7")
	all.until("the pattern-published relay PV", mqttState("pvhub/RELAY:pub_f1", "value", 7))

	// A set creates a relay PV.
	// Answers are not retained: the subscriber must be subscribed before the set. The
	// retained status, subscribed in the same request, says when it is.
	res := startMQTTSub(t, ctx, subBin, port, "pvhub/+/set/result", "pvhub/status")
	res.until("the subscription to the results", func(m mqttMsg) bool { return m.Topic == "pvhub/status" })
	mqttPub(t, ctx, pubBin, port, "pvhub/RELAY:mqnew_f1/set", "3.25")
	ok := res.until("the set's result", func(m mqttMsg) bool { return m.Topic == "pvhub/RELAY:mqnew_f1/set/result" })
	if v := ok.state(); v["ok"] != true {
		t.Fatalf("set of RELAY:mqnew_f1: %s", ok.Payload)
	}
	checkFloats(t, "RELAY:mqnew_f1 after the MQTT set", r.get("RELAY:mqnew_f1"), 3.25)
	// A plain-text set of an existing relay PV.
	mqttPub(t, ctx, pubBin, port, "pvhub/RELAY:mq_f1/set", `{"value": 44, "id": 9}`)
	if v := res.until("the set's result", func(m mqttMsg) bool { return m.Topic == "pvhub/RELAY:mq_f1/set/result" }).state(); v["ok"] != true || v["id"] != 9.0 {
		t.Errorf("set of RELAY:mq_f1: %v", v)
	}
	sub.until("the MQTT set's value", mqttState("pvhub/RELAY:mq_f1", "value", 44))
	checkFloats(t, "RELAY:mq_f1 after the MQTT set", r.get("RELAY:mq_f1"), 44)

	// A set the default write rules (RELAY:* only) deny.
	mqttPub(t, ctx, pubBin, port, "pvhub/OTHER:x/set", "1")
	denied := res.until("the denial", func(m mqttMsg) bool { return m.Topic == "pvhub/OTHER:x/set/result" })
	if v := denied.state(); v["ok"] != false || !strings.Contains(fmt.Sprint(v["error"]), "no write.allow pattern matches") {
		t.Errorf("denied set: %s", denied.Payload)
	}
	r.notFound("OTHER:x")

	r.stop()
	// The status subscriber saw pvhub say offline as it stopped.
	status.until("the offline status", func(m mqttMsg) bool { return m.Payload == `{"status":"offline"}` })
}
