package config

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Config is pvhub's whole configuration. Load returns one that has passed
// Validate. A Config is not modified once it is shared; a reload builds a new one.
type Config struct {
	// Relay configures the relay: the PVs pvhub creates on first put.
	Relay RelayConfig
	// CA configures Channel Access: the relay's CA server and the client that
	// reaches external PVs.
	CA CAConfig
	// Transports configures each transport plugin, by name (websocket, sse,
	// mqtt, or a third-party plugin).
	Transports map[string]TransportConfig
	// Write decides which PVs the transports may write.
	Write WriteConfig
	// Log configures the daemon's log.
	Log LogConfig
	// Metrics configures the metrics and health endpoints.
	Metrics MetricsConfig
}

// MetricsConfig configures the HTTP listener of /metrics, /healthz and
// /readyz (keys metrics.*).
type MetricsConfig struct {
	// Enabled serves them (metrics.enabled, default true).
	Enabled bool
	// Listen is host:port (metrics.listen, default 127.0.0.1:8088).
	Listen string
}

// RelayConfig configures the relay (keys relay.*).
type RelayConfig struct {
	// Enabled runs the relay (relay.enabled, default true).
	Enabled bool
	// Prefix is the start of every relay PV name (relay.prefix, default "RELAY:").
	// Names with this prefix are created on first put; it must not be empty.
	Prefix string
	// Autosave saves and restores the relay's PVs.
	Autosave AutosaveConfig
	// MaxPVs caps the number of relay PVs (relay.max_pvs, default 10000).
	MaxPVs int
	// MaxElements caps the element count of one relay PV (relay.max_elements,
	// default 1000000).
	MaxElements int
}

// AutosaveConfig configures the relay's autosave (keys relay.autosave.*).
type AutosaveConfig struct {
	// Path is the file that holds the saved PVs (relay.autosave.path). Empty,
	// the default, means no autosave: relay PVs do not survive a restart.
	// A relative path is relative to the daemon's working directory.
	Path string
	// Period is the interval between saves (relay.autosave.period, default 30s).
	Period time.Duration
}

// CAConfig configures Channel Access (keys ca.*). Address lists hold IPv4
// addresses or host names; host names are resolved by ServerConfig and
// ClientConfig.
type CAConfig struct {
	// ServerPort is the relay's CA server port, UDP search and TCP
	// (ca.server_port, default 5064). 0 picks a free port (tests).
	ServerPort int
	// SearchPort is the port of the ca.addr_list and ca.name_servers entries
	// that name none: where external servers are searched (ca.search_port,
	// default 5064).
	SearchPort int
	// AddrList receives the client's UDP searches, host[:port] each
	// (ca.addr_list, default ["127.0.0.1"]).
	AddrList []string
	// AutoAddrList adds the broadcast addresses of the machine's interfaces to
	// the searches (ca.auto_addr_list, default false).
	AutoAddrList bool
	// NameServers are searched over TCP, host[:port] each (ca.name_servers,
	// default none).
	NameServers []string
	// IntfAddrList are the addresses the CA server serves on (ca.intf_addr_list,
	// default ["127.0.0.1"]); 0.0.0.0 means every interface and stands alone.
	IntfAddrList []string
	// IgnoreAddrList are client addresses whose searches the server ignores
	// (ca.ignore_addr_list, default none).
	IgnoreAddrList []string
	// BeaconAddrList receives the server's beacons, host[:port] each
	// (ca.beacon_addr_list, default ["127.0.0.1"]).
	BeaconAddrList []string
	// AutoBeaconAddrList adds the broadcast addresses of the served interfaces
	// to the beacons (ca.auto_beacon_addr_list, default false).
	AutoBeaconAddrList bool
	// BeaconPort is the port of the ca.beacon_addr_list entries that name none
	// (ca.beacon_port, default ca.repeater_port).
	BeaconPort int
	// BeaconPeriod is the steady interval between beacons (ca.beacon_period,
	// default 15s, at least 100ms).
	BeaconPeriod time.Duration
	// RepeaterPort is the port of the CA repeater (ca.repeater_port, default 5065).
	RepeaterPort int
	// ConnTimeout is the silence after which the client probes a circuit
	// (ca.conn_timeout, default 30s, at least 100ms).
	ConnTimeout time.Duration
	// MaxSearchPeriod caps the interval between searches for one PV
	// (ca.max_search_period, default 5m, at least 1m).
	MaxSearchPeriod time.Duration
	// MaxArrayBytes bounds every CA payload sent or received
	// (ca.max_array_bytes). 0, the default, means pvhub's bound of 16 MiB;
	// otherwise at least 16384.
	MaxArrayBytes int
}

// TransportConfig configures one transport plugin (keys transports.<name>.*).
// Only enabled, listen and path are typed; every other key under
// transports.<name> is kept in Options for the plugin.
type TransportConfig struct {
	// Enabled runs the transport (transports.<name>.enabled); true when the
	// transport's section leaves it out.
	Enabled bool
	// Listen is the transport's listen address, host:port
	// (transports.<name>.listen); empty when the transport listens nowhere.
	Listen string
	// Path is the plugin executable (transports.<name>.path). Empty runs the
	// built-in transport of that name; a name that is not built in needs a path.
	Path string
	// Options are the transport's other keys, as the YAML file (or the
	// environment, as text) gives them.
	Options map[string]any
}

// LogConfig configures the daemon's log (keys log.*).
type LogConfig struct {
	// Level is the least severe level logged: debug, info, warn or error
	// (log.level, default info).
	Level string
	// Format is text or json (log.format, default text).
	Format string
}

// Map returns the transport's configuration slice as the plugin receives it:
// its options plus enabled, listen and (when set) path.
func (t TransportConfig) Map() map[string]any {
	m := make(map[string]any, len(t.Options)+3)
	maps.Copy(m, t.Options)
	m["enabled"] = t.Enabled
	m["listen"] = t.Listen
	if t.Path != "" {
		m["path"] = t.Path
	}
	return m
}

// SlogLevel returns the level as a slog.Level (info for an unknown level).
func (l LogConfig) SlogLevel() slog.Level {
	switch l.Level {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// Handler returns a slog handler writing to w in the configured format and level.
func (l LogConfig) Handler(w io.Writer) slog.Handler {
	o := &slog.HandlerOptions{Level: l.SlogLevel()}
	if l.Format == "json" {
		return slog.NewJSONHandler(w, o)
	}
	return slog.NewTextHandler(w, o)
}

// Built-in transports and their default listen addresses.
var builtinTransports = map[string]string{
	"websocket": "127.0.0.1:8080",
	"sse":       "127.0.0.1:8081",
	"mqtt":      "127.0.0.1:1883",
}

const (
	defaultServerPort   = 5064
	defaultRepeaterPort = 5065
	minMaxArrayBytes    = 16384
	minBeaconPeriod     = 100 * time.Millisecond
	minConnTimeout      = 100 * time.Millisecond
	minMaxSearchPeriod  = time.Minute
)

// Default returns the default configuration, which keeps every socket and
// every datagram on 127.0.0.1.
func Default() *Config {
	c := &Config{
		Relay: RelayConfig{
			Enabled:     true,
			Prefix:      "RELAY:",
			Autosave:    AutosaveConfig{Period: 30 * time.Second},
			MaxPVs:      10000,
			MaxElements: 1000000,
		},
		CA: CAConfig{
			ServerPort:      defaultServerPort,
			SearchPort:      defaultServerPort,
			AddrList:        []string{"127.0.0.1"},
			IntfAddrList:    []string{"127.0.0.1"},
			BeaconAddrList:  []string{"127.0.0.1"},
			BeaconPeriod:    15 * time.Second,
			RepeaterPort:    defaultRepeaterPort,
			ConnTimeout:     30 * time.Second,
			MaxSearchPeriod: 5 * time.Minute,
		},
		Transports: map[string]TransportConfig{},
		Log:        LogConfig{Level: "info", Format: "text"},
		Metrics:    MetricsConfig{Enabled: true, Listen: "127.0.0.1:8088"},
	}
	for name, listen := range builtinTransports {
		c.Transports[name] = TransportConfig{Enabled: true, Listen: listen}
	}
	c.deriveDefaults(nil)
	return c
}

// deriveDefaults fills the keys whose defaults follow other keys, unless set
// says a layer set them.
func (c *Config) deriveDefaults(set map[string]bool) {
	if !set["write.allow"] {
		c.Write.Allow = []string{escapeGlob(c.Relay.Prefix) + "*"}
	}
	if !set["ca.beacon_port"] {
		c.CA.BeaconPort = c.CA.RepeaterPort
	}
}

// escapeGlob quotes the characters of s that path.Match treats specially.
func escapeGlob(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// KeyError is a problem with one configuration key.
type KeyError struct {
	// Key is the key's path, such as relay.max_pvs or ca.addr_list[1].
	Key string
	// Reason says what is wrong, such as `must be a positive integer, got "ten"`.
	Reason string
	// Source says where the value came from: the file's name, an environment
	// variable's name, "flag", or "default"; empty when unknown.
	Source string
}

// Error returns "key: reason", followed by " (from source)" when the source is known.
func (e *KeyError) Error() string {
	if e.Source == "" {
		return e.Key + ": " + e.Reason
	}
	return e.Key + ": " + e.Reason + " (from " + e.Source + ")"
}

// problems collects KeyErrors.
type problems []*KeyError

func (p *problems) add(key, format string, args ...any) {
	*p = append(*p, &KeyError{Key: key, Reason: fmt.Sprintf(format, args...)})
}

// bad adds "must be <want>, got <got>".
func (p *problems) bad(key, want string, got any) {
	p.add(key, "must be %s, got %s", want, show(got))
}

// err returns the problems joined, sorted by key, or nil.
func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	slices.SortStableFunc(p, func(a, b *KeyError) int { return strings.Compare(a.Key, b.Key) })
	errs := make([]error, len(p))
	for i, e := range p {
		errs[i] = e
	}
	return errors.Join(errs...)
}

// show renders a value in an error message: text quoted, lists and mappings
// named, anything else as Go prints it.
func show(v any) string {
	switch v := v.(type) {
	case nil:
		return "nothing"
	case string:
		return strconv.Quote(v)
	case []any, []string:
		return "a list"
	case map[string]any:
		return "a mapping"
	case time.Duration:
		return v.String()
	}
	return fmt.Sprint(v)
}

// Validate checks every key of c and returns every problem, one *KeyError each
// (joined with errors.Join), or nil.
func (c *Config) Validate() error {
	var p problems
	c.validate(&p)
	return p.err()
}

func (c *Config) validate(p *problems) {
	r := c.Relay
	if r.Enabled && r.Prefix == "" {
		p.add("relay.prefix", "must not be empty while relay.enabled is true")
	}
	if strings.ContainsFunc(r.Prefix, isSpaceOrControl) {
		p.bad("relay.prefix", "a PV name prefix without spaces or control characters", r.Prefix)
	}
	if r.Autosave.Period <= 0 {
		p.bad("relay.autosave.period", wantPositiveDuration, r.Autosave.Period)
	}
	if r.MaxPVs <= 0 {
		p.bad("relay.max_pvs", wantPositiveInt, r.MaxPVs)
	}
	if r.MaxElements <= 0 {
		p.bad("relay.max_elements", wantPositiveInt, r.MaxElements)
	}

	ca := c.CA
	if ca.ServerPort < 0 || ca.ServerPort > 65535 {
		p.bad("ca.server_port", wantServerPort, ca.ServerPort)
	}
	for key, port := range map[string]int{"ca.search_port": ca.SearchPort, "ca.beacon_port": ca.BeaconPort, "ca.repeater_port": ca.RepeaterPort} {
		if port < 1 || port > 65535 {
			p.bad(key, wantPort, port)
		}
	}
	checkHosts(p, "ca.addr_list", ca.AddrList, true)
	checkHosts(p, "ca.name_servers", ca.NameServers, true)
	checkHosts(p, "ca.beacon_addr_list", ca.BeaconAddrList, true)
	checkHosts(p, "ca.ignore_addr_list", ca.IgnoreAddrList, false)
	checkHosts(p, "ca.intf_addr_list", ca.IntfAddrList, false)
	if len(ca.IntfAddrList) > 1 && slices.Contains(ca.IntfAddrList, "0.0.0.0") {
		p.add("ca.intf_addr_list", "0.0.0.0 (every interface) cannot be combined with other addresses")
	}
	if ca.BeaconPeriod < minBeaconPeriod {
		p.bad("ca.beacon_period", wantMin100ms, ca.BeaconPeriod)
	}
	if ca.ConnTimeout < minConnTimeout {
		p.bad("ca.conn_timeout", wantMin100ms, ca.ConnTimeout)
	}
	if ca.MaxSearchPeriod < minMaxSearchPeriod {
		p.bad("ca.max_search_period", wantMin1m, ca.MaxSearchPeriod)
	}
	if ca.MaxArrayBytes != 0 && ca.MaxArrayBytes < minMaxArrayBytes {
		p.bad("ca.max_array_bytes", wantMaxArrayBytes, ca.MaxArrayBytes)
	}

	c.validateTransports(p)

	checkGlobs(p, "write.allow", c.Write.Allow)
	checkGlobs(p, "write.deny", c.Write.Deny)

	if !slices.Contains(logLevels, c.Log.Level) {
		p.bad("log.level", wantLogLevel, c.Log.Level)
	}
	if !slices.Contains(logFormats, c.Log.Format) {
		p.bad("log.format", wantLogFormat, c.Log.Format)
	}
}

func (c *Config) validateTransports(p *problems) {
	listeners := map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(c.Transports)) {
		t := c.Transports[name]
		key := "transports." + name
		if !validTransportName(name) {
			p.add(key, "a transport name must start with a lower-case letter and hold only lower-case letters, digits, - and _")
			continue
		}
		if _, builtin := builtinTransports[name]; !builtin && t.Path == "" {
			reason := "unknown transport"
			if s := suggest(name, slices.Collect(maps.Keys(builtinTransports))); s != "" {
				reason += " (did you mean transports." + s + "?)"
			}
			p.add(key, "%s; a third-party transport needs %s.path, its plugin executable", reason, key)
		}
		if t.Listen == "" {
			continue
		}
		if reason := checkListen(t.Listen); reason != "" {
			p.add(key+".listen", "%s", reason)
			continue
		}
		if !t.Enabled {
			continue
		}
		if _, port, _ := net.SplitHostPort(t.Listen); port != "0" {
			if other, dup := listeners[t.Listen]; dup {
				p.add(key+".listen", "%q is also transports.%s.listen", t.Listen, other)
			}
			listeners[t.Listen] = name
		}
	}
	if l := c.Metrics.Listen; l != "" {
		if reason := checkListen(l); reason != "" {
			p.add("metrics.listen", "%s", reason)
		} else if other, dup := listeners[l]; dup && c.Metrics.Enabled {
			p.add("metrics.listen", "%q is also transports.%s.listen", l, other)
		}
	}
}

func validTransportName(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

func isSpaceOrControl(r rune) bool { return r <= ' ' || r == 0x7f }

// checkHosts checks a list of IPv4 addresses or host names, each with an
// optional :port when withPort is set.
func checkHosts(p *problems, key string, list []string, withPort bool) {
	for i, s := range list {
		if reason := checkHost(s, withPort); reason != "" {
			p.add(fmt.Sprintf("%s[%d]", key, i), "%s", reason)
		}
	}
}

func checkHost(s string, withPort bool) string {
	host := s
	if withPort {
		if i := strings.LastIndexByte(s, ':'); i >= 0 && strings.Count(s, ":") == 1 {
			host = s[:i]
			if p, err := strconv.Atoi(s[i+1:]); err != nil || p < 1 || p > 65535 {
				return fmt.Sprintf("bad port in %q: must be 1-65535", s)
			}
		}
	}
	if reason := checkHostName(host); reason != "" {
		if withPort {
			return fmt.Sprintf("must be host[:port] with an IPv4 address or a host name, got %q", s)
		}
		return fmt.Sprintf("must be an IPv4 address or a host name, got %q", s)
	}
	return ""
}

// checkHostName accepts IPv4 literals and host names.
func checkHostName(h string) string {
	if a, err := netip.ParseAddr(h); err == nil {
		if !a.Is4() {
			return "not IPv4"
		}
		return ""
	}
	if h == "" || len(h) > 253 || strings.Trim(h, "0123456789.") == "" {
		return "bad"
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return "bad"
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return "bad"
			}
		}
	}
	return ""
}

// checkListen accepts host:port with an IP address, a host name or nothing
// (every interface) and a port of 0 to 65535 (0 picks a free port).
func checkListen(s string) string {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Sprintf("must be host:port, got %q", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Sprintf("bad port in %q: must be 0-65535", s)
	}
	if host == "" {
		return ""
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return ""
	}
	if checkHostName(host) != "" {
		return fmt.Sprintf("must be host:port with an IP address or a host name, got %q", s)
	}
	return ""
}

func checkGlobs(p *problems, key string, list []string) {
	for i, g := range list {
		k := fmt.Sprintf("%s[%d]", key, i)
		if g == "" {
			p.add(k, "must be a glob pattern, got an empty string")
		} else if _, err := match(g, ""); err != nil {
			p.add(k, "bad glob pattern %q (path.Match syntax: * ? [class] \\c)", g)
		}
	}
}

// The phrases of "must be ..., got ...".
const (
	wantBool             = "true or false"
	wantPositiveInt      = "a positive integer"
	wantPort             = "a port number (1-65535)"
	wantServerPort       = "a port number (1-65535, or 0 for a free port)"
	wantMaxArrayBytes    = "0 (16 MiB) or an integer of at least 16384"
	wantInt              = "an integer"
	wantString           = "a string"
	wantList             = "a list of strings"
	wantPositiveDuration = "a positive duration such as 30s"
	wantDuration         = "a duration such as 30s"
	wantMin100ms         = "a duration of at least 100ms"
	wantMin1m            = "a duration of at least 1m"
	wantMapping          = "a mapping of keys"
	wantLogLevel         = "one of debug, info, warn, error"
	wantLogFormat        = "text or json"
)

var (
	logLevels  = []string{"debug", "info", "warn", "error"}
	logFormats = []string{"text", "json"}
)
