package mqtt

import (
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/pvhub/pvhub/transports/internal/option"
)

// Default option values.
const (
	DefaultListen      = "127.0.0.1:1883"
	DefaultTopicPrefix = "pvhub"
	DefaultQoS         = 0
	DefaultPutTimeout  = 10 * time.Second
)

// options is the parsed configuration slice (transports.mqtt.*).
type options struct {
	listen string
	// broker is the external broker's URL, nil for the embedded broker.
	broker   *url.URL
	tls      bool // the external broker is reached over TLS
	username string
	password string
	caFile   string
	certFile string
	keyFile  string
	clientID string
	prefix   string
	qos      byte
	retain   bool
	// literal are the publish patterns without wildcards: PV names published as they are.
	literal []string
	// patterns are the publish patterns with wildcards, matched against the relay's PV list.
	patterns    []string
	statusTopic string // "" when there is no status topic
	putTimeout  time.Duration
}

// knownOptions are the keys parseOptions reads, plus the ones the host adds.
var knownOptions = map[string]bool{"listen": true, "broker": true, "username": true, "password": true,
	"ca_file": true, "cert_file": true, "key_file": true, "client_id": true, "topic_prefix": true,
	"qos": true, "retain": true, "publish": true, "status_topic": true, "put_timeout": true,
	"enabled": true, "path": true}

// parseOptions reads the transport's configuration slice. Values may be typed (YAML) or text
// (environment variables and flags). It returns the keys it does not know, for a warning.
func parseOptions(m map[string]any) (options, []string, error) {
	o := options{listen: DefaultListen, prefix: DefaultTopicPrefix, qos: DefaultQoS, retain: true,
		putTimeout: DefaultPutTimeout}
	var unknown []string
	for k := range m {
		if !knownOptions[k] {
			unknown = append(unknown, k)
		}
	}
	var err error
	if o.listen, err = option.String(m, "listen", o.listen); err != nil {
		return o, unknown, err
	}
	if o.listen == "" {
		o.listen = DefaultListen
	}
	if _, _, err := net.SplitHostPort(o.listen); err != nil {
		return o, unknown, fmt.Errorf("listen: %q is not a host:port address: %v", o.listen, err)
	}
	broker, err := option.String(m, "broker", "")
	if err != nil {
		return o, unknown, err
	}
	if broker != "" {
		if o.broker, o.tls, err = parseBroker(broker); err != nil {
			return o, unknown, err
		}
	}
	for _, f := range []struct {
		key string
		dst *string
	}{{"username", &o.username}, {"password", &o.password}, {"ca_file", &o.caFile},
		{"cert_file", &o.certFile}, {"key_file", &o.keyFile}, {"client_id", &o.clientID}} {
		if *f.dst, err = option.String(m, f.key, ""); err != nil {
			return o, unknown, err
		}
	}
	if (o.certFile == "") != (o.keyFile == "") {
		return o, unknown, fmt.Errorf("cert_file and key_file: set both (a certificate and its private key) or neither")
	}
	if o.broker != nil && !o.tls && (o.caFile != "" || o.certFile != "") {
		return o, unknown, fmt.Errorf("ca_file, cert_file, key_file: TLS options need a TLS broker URL (mqtts://host:8883 or tls://host:8883), got %s", o.broker)
	}
	if o.broker == nil && o.caFile != "" && o.certFile == "" {
		return o, unknown, fmt.Errorf("ca_file: the embedded broker verifies client certificates with ca_file only when it serves TLS: set cert_file and key_file too")
	}
	if o.clientID == "" {
		host, _ := os.Hostname()
		if host == "" {
			host = "localhost"
		}
		o.clientID = fmt.Sprintf("pvhub-%s-%d", host, os.Getpid())
	}
	if o.prefix, err = option.String(m, "topic_prefix", o.prefix); err != nil {
		return o, unknown, err
	}
	if err := checkTopic(o.prefix); err != nil {
		return o, unknown, fmt.Errorf("topic_prefix: %q %v", o.prefix, err)
	}
	if strings.HasPrefix(o.prefix, "$") {
		return o, unknown, fmt.Errorf("topic_prefix: %q: topics starting with $ are reserved for brokers", o.prefix)
	}
	qos, err := option.Int(m, "qos", DefaultQoS, math.MinInt)
	if err != nil {
		return o, unknown, err
	}
	if qos != 0 && qos != 1 {
		return o, unknown, fmt.Errorf("qos: %d is not supported: use 0 (at most once) or 1 (at least once)", qos)
	}
	o.qos = byte(qos)
	if o.retain, err = option.Bool(m, "retain", true); err != nil {
		return o, unknown, err
	}
	if v, ok := m["publish"]; ok && v != nil {
		list, err := option.StringList(v)
		if err != nil {
			return o, unknown, fmt.Errorf("publish: %v", err)
		}
		for _, p := range list {
			if p == "" {
				continue
			}
			if _, err := path.Match(p, ""); err != nil {
				return o, unknown, fmt.Errorf("publish: bad pattern %q: %v", p, err)
			}
			if isLiteral(p) {
				o.literal = append(o.literal, p)
			} else {
				o.patterns = append(o.patterns, p)
			}
		}
	}
	o.statusTopic = o.prefix + "/status"
	if v, ok := m["status_topic"]; ok {
		if v == nil {
			o.statusTopic = ""
		} else if o.statusTopic, err = option.String(m, "status_topic", ""); err != nil {
			return o, unknown, err
		}
	}
	if o.statusTopic != "" {
		if err := checkTopic(o.statusTopic); err != nil {
			return o, unknown, fmt.Errorf("status_topic: %q %v", o.statusTopic, err)
		}
	}
	if o.putTimeout, err = option.Duration(m, "put_timeout", o.putTimeout, false); err != nil {
		return o, unknown, err
	}
	return o, unknown, nil
}

// parseBroker reads an external broker's URL: mqtt:// or tcp:// for plain TCP, mqtts://,
// tls:// or ssl:// for TLS. A missing port is the protocol's (1883, 8883).
func parseBroker(s string) (*url.URL, bool, error) {
	bad := func(why string) error {
		return fmt.Errorf("broker: %q %s; want a URL such as mqtt://host:1883 or mqtts://host:8883", s, why)
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, false, bad("is not a URL")
	}
	var secure bool
	switch strings.ToLower(u.Scheme) {
	case "mqtt", "tcp":
	case "mqtts", "tls", "ssl":
		secure = true
	case "":
		return nil, false, bad("has no scheme")
	default:
		return nil, false, bad(fmt.Sprintf("has the unsupported scheme %q (mqtt, tcp, mqtts, tls or ssl)", u.Scheme))
	}
	if u.Hostname() == "" {
		return nil, false, bad("has no host")
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.User != nil {
		return nil, false, bad("has a path, a query or credentials (set username and password as options)")
	}
	port := u.Port()
	if port == "" {
		port = "1883"
		if secure {
			port = "8883"
		}
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return nil, false, bad("has a bad port")
	}
	scheme := "mqtt"
	if secure {
		scheme = "mqtts"
	}
	return &url.URL{Scheme: scheme, Host: net.JoinHostPort(u.Hostname(), port)}, secure, nil
}

// checkTopic checks a topic name pvhub publishes to: not empty, no wildcard, no NUL, no
// empty level at either end, valid UTF-8.
func checkTopic(t string) error {
	switch {
	case t == "":
		return fmt.Errorf("is empty")
	case strings.ContainsAny(t, "+#"):
		return fmt.Errorf("contains an MQTT wildcard (+ or #)")
	case strings.ContainsRune(t, 0):
		return fmt.Errorf("contains a NUL character")
	case strings.HasPrefix(t, "/") || strings.HasSuffix(t, "/"):
		return fmt.Errorf("starts or ends with /")
	case !utf8.ValidString(t):
		return fmt.Errorf("is not valid UTF-8")
	case len(t) > 32767:
		return fmt.Errorf("is too long")
	}
	return nil
}

// isLiteral reports whether a publish pattern has no wildcard: it names one PV.
func isLiteral(p string) bool { return !strings.ContainsAny(p, `*?[\`) }

// matchName is path.Match with "/" an ordinary character, as pvhub's write rules match PV
// names: * and ? also match "/".
func matchName(pattern, name string) bool {
	const sep = "\x00"
	ok, _ := path.Match(strings.ReplaceAll(pattern, "/", sep), strings.ReplaceAll(name, "/", sep))
	return ok
}
