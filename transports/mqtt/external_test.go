package mqtt

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pvhub/pvhub/plugins"
)

// TestExternalMosquitto runs the transport against Debian's mosquitto, with mosquitto_sub
// and mosquitto_pub as the clients: the published PVs' states arrive, their updates too, a
// set reaches the host and its result comes back; the broker is killed and started again
// on the same port (its retained messages are lost), and the transport reconnects and
// publishes the newest state of each PV, including updates made while the broker was down.
func TestExternalMosquitto(t *testing.T) {
	brokerBin, subBin, pubBin := requireMosquitto(t)
	mq := startMosquitto(t, brokerBin, 0, "")
	e := startEnv(t, map[string]any{"broker": "mqtt://" + mq.addr(), "publish": "T:double, T:enum",
		"client_id": "pvhub-test", "qos": 1})
	sub := startSub(t, subBin, mq.addr(), []string{"pvhub/#"})
	// The retained messages come in the broker's order.
	isDouble := subState("pvhub/"+pvDouble, map[string]any{"value": 1.5, "units": "mm", "connected": true})
	var online, double bool
	for !online || !double {
		m := sub.next("the status and T:double", func(m subMsg) bool { return m.Topic == "pvhub/status" || isDouble(m) })
		if m.Topic == "pvhub/status" {
			online = true
			if m.Payload != `{"status":"online"}` {
				t.Errorf("status %v", m)
			}
		} else {
			double = true
		}
	}
	e.h.Publish(okValue(pvDouble, plugins.Float64s(2.5), 1001))
	sub.next("the update", subState("pvhub/"+pvDouble, map[string]any{"value": 2.5}))

	// A set from mosquitto_pub: plain, then JSON with an id, then a bad one.
	pubOnce(t, pubBin, mq.addr(), "pvhub/"+pvDouble+"/set", "6.5")
	waitUntil(t, "the host receives the put", func() bool {
		p, _ := e.host.lastPut()
		return p.name == pvDouble && p.data.Kind == plugins.KindFloat64 && p.data.Float64s[0] == 6.5
	})
	r := sub.next("the result", func(m subMsg) bool { return m.Topic == "pvhub/"+pvDouble+"/set/result" })
	if v := r.json(); v["ok"] != true || r.Retain != 0 {
		t.Errorf("result %v", r)
	}
	sub.next("the written value", subState("pvhub/"+pvDouble, map[string]any{"value": 6.5}))
	pubOnce(t, pubBin, mq.addr(), "pvhub/"+pvEnum+"/set", `{"value": "On", "id": 42}`, "-q", "1", "-V", "mqttv5")
	r = sub.next("the result", func(m subMsg) bool { return m.Topic == "pvhub/"+pvEnum+"/set/result" })
	if v := r.json(); v["ok"] != true || v["id"] != 42.0 {
		t.Errorf("result %v", r)
	}
	sub.next("the enum's new state", subState("pvhub/"+pvEnum, map[string]any{"value": 1, "text": "On"}))
	if p, _ := e.host.lastPut(); p.data.Kind != plugins.KindInt64 || p.data.Int64s[0] != 1 {
		t.Errorf("the host got %+v for the label On", p)
	}
	pubOnce(t, pubBin, mq.addr(), "pvhub/"+pvDouble+"/set", `{"value": [1, 2]}`)
	r = sub.next("the error", func(m subMsg) bool { return m.Topic == "pvhub/"+pvDouble+"/set/result" })
	if v := r.json(); v["ok"] != false || !strings.Contains(fmt.Sprint(v["error"]), "at most 1") {
		t.Errorf("error result %v", r)
	}

	// The broker dies; updates go on meanwhile; it comes back empty on the same port.
	mq.kill()
	e.h.Publish(okValue(pvDouble, plugins.Float64s(7), 1002))
	e.h.Publish(okValue(pvDouble, plugins.Float64s(8), 1003), okValue(pvEnum, plugins.Int64s(0), 1003))
	e.h.Publish(okValue(pvDouble, plugins.Float64s(9), 1004))
	mq.start()
	sub2 := startSub(t, subBin, mq.addr(), []string{"pvhub/#"})
	got := map[string]map[string]any{}
	for got["pvhub/"+pvDouble]["value"] != 9.0 || got["pvhub/"+pvEnum]["value"] != 0.0 || got["pvhub/status"]["status"] != "online" {
		m := sub2.next("the newest states after the restart", func(subMsg) bool { return true })
		got[m.Topic] = m.json()
		if m.Topic == "pvhub/"+pvDouble && m.json()["value"] == 6.5 {
			t.Errorf("a stale state after the restart: %v", m)
		}
	}
	waitUntil(t, "the reconnection is logged", func() bool {
		return strings.Contains(e.logs.String(), "reconnected to the MQTT broker")
	})
	// Updates flow again.
	e.h.Publish(okValue(pvDouble, plugins.Float64s(10), 1005))
	sub2.next("an update after the restart", subState("pvhub/"+pvDouble, map[string]any{"value": 10}))
	if strings.Contains(e.logs.String(), "level=ERROR") {
		t.Errorf("errors logged:\n%s", e.logs.String())
	}
}

// TestExternalWill: when pvhub's connection to the broker is cut, the broker publishes its
// will, "offline", on the status topic; pvhub reconnects and says online; at Close it says
// offline itself.
func TestExternalWill(t *testing.T) {
	brokerBin, subBin, _ := requireMosquitto(t)
	mq := startMosquitto(t, brokerBin, 0, "")
	px := startProxy(t, mq.addr())
	e := startEnv(t, map[string]any{"broker": "tcp://" + px.addr(), "publish": []any{pvDouble}})
	sub := startSub(t, subBin, mq.addr(), []string{"pvhub/status"})
	sub.next("online", func(m subMsg) bool { return m.Payload == `{"status":"online"}` })
	px.cut()
	m := sub.next("the will", func(m subMsg) bool { return m.Payload == `{"status":"offline"}` })
	if m.Retain != 0 {
		t.Errorf("a live message with the retain flag: %v", m)
	}
	sub.next("online again", func(m subMsg) bool { return m.Payload == `{"status":"online"}` })
	// A new subscriber sees the retained status.
	sub2 := startSub(t, subBin, mq.addr(), []string{"pvhub/status"})
	if m := sub2.next("the retained status", func(subMsg) bool { return true }); m.Payload != `{"status":"online"}` || m.Retain != 1 {
		t.Errorf("retained status %v", m)
	}
	if err := e.h.Close(); err != nil {
		t.Fatal(err)
	}
	sub.next("offline at close", func(m subMsg) bool { return m.Payload == `{"status":"offline"}` })
	sub3 := startSub(t, subBin, mq.addr(), []string{"pvhub/status"})
	if m := sub3.next("the retained status", func(subMsg) bool { return true }); m.Payload != `{"status":"offline"}` {
		t.Errorf("retained status after close %v", m)
	}
}

// TestExternalTLS: the transport reaches a TLS broker (mosquitto requiring client
// certificates) with ca_file, cert_file and key_file; without its certificate it is refused.
func TestExternalTLS(t *testing.T) {
	brokerBin, subBin, _ := requireMosquitto(t)
	pki := newPKI(t)
	tlsPort := freePort(t)
	mq := startMosquitto(t, brokerBin, 0, fmt.Sprintf("listener %d 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate true\n",
		tlsPort, pki.ca, pki.serverCert, pki.serverKey))
	e := startEnv(t, map[string]any{"broker": fmt.Sprintf("mqtts://127.0.0.1:%d", tlsPort), "publish": pvDouble,
		"ca_file": pki.ca, "cert_file": pki.clientCert, "key_file": pki.clientKey})
	sub := startSub(t, subBin, mq.addr(), []string{"pvhub/#"})
	sub.next("the state over TLS", subState("pvhub/"+pvDouble, map[string]any{"value": 1.5}))
	if !strings.Contains(e.logs.String(), "connected to the MQTT broker") {
		t.Errorf("no connection logged:\n%s", e.logs.String())
	}

	// Without a client certificate: refused, retried, logged once as a warning.
	e2 := startEnv(t, map[string]any{"broker": fmt.Sprintf("tls://127.0.0.1:%d", tlsPort), "ca_file": pki.ca})
	waitUntil(t, "the failed connection is logged", func() bool {
		return strings.Contains(e2.logs.String(), "cannot connect to the MQTT broker; retrying with back-off")
	})
}

// TestEmbeddedTLS: the embedded broker serves TLS with cert_file and key_file, and with
// ca_file requires client certificates.
func TestEmbeddedTLS(t *testing.T) {
	pki := newPKI(t)
	e := startEnv(t, map[string]any{"cert_file": pki.serverCert, "key_file": pki.serverKey, "ca_file": pki.ca})
	c, err := dialTLSClient(e.tr.Addr(), "tls-client", pki, true)
	if err != nil {
		t.Fatal(err)
	}
	c.t = t
	t.Cleanup(c.Close)
	c.mustSubscribe("pvhub/" + pvDouble)
	c.next("the state over TLS", stateIs("pvhub/"+pvDouble, map[string]any{"value": 1.5}))
	if c, err := dialTLSClient(e.tr.Addr(), "no-cert", pki, false); err == nil {
		c.Close()
		t.Error("a client without a certificate was accepted")
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// pki is a test certificate authority with a server certificate for 127.0.0.1 and a client
// certificate, as PEM files.
type pki struct {
	ca, serverCert, serverKey, clientCert, clientKey string
}

func newPKI(t *testing.T) pki {
	t.Helper()
	dir := t.TempDir()
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	now := time.Now()
	caKey := key()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pvhub test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	leaf := func(serial int64, cn string, usage x509.ExtKeyUsage, name string) (string, string) {
		k := key()
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{usage},
			KeyUsage: x509.KeyUsageDigitalSignature, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kd, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return write(name+".pem", "CERTIFICATE", der), write(name+".key", "EC PRIVATE KEY", kd)
	}
	p := pki{ca: write("ca.pem", "CERTIFICATE", caDER)}
	p.serverCert, p.serverKey = leaf(2, "127.0.0.1", x509.ExtKeyUsageServerAuth, "server")
	p.clientCert, p.clientKey = leaf(3, "pvhub", x509.ExtKeyUsageClientAuth, "client")
	return p
}
