package config

import (
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/pvhub/pvhub/ca/client"
	"github.com/pvhub/pvhub/ca/server"
)

func TestDefaultsAreLoopbackOnly(t *testing.T) {
	c := Default()
	loopback := func(where, s string) {
		host := s
		if h, _, err := net.SplitHostPort(s); err == nil {
			host = h
		}
		if host != "127.0.0.1" {
			t.Errorf("%s: %q is not on 127.0.0.1", where, s)
		}
	}
	// Every address list and flag of CAConfig, found by reflection so that a
	// new one is checked too.
	v := reflect.ValueOf(c.CA)
	for i := range v.NumField() {
		name, f := v.Type().Field(i).Name, v.Field(i)
		switch f.Kind() {
		case reflect.Slice:
			for j := range f.Len() {
				loopback("ca."+name, f.Index(j).String())
			}
		case reflect.Bool:
			if f.Bool() {
				t.Errorf("ca.%s is true by default: it would broadcast", name)
			}
		}
	}
	if len(c.Transports) == 0 {
		t.Fatal("no default transports")
	}
	for name, tr := range c.Transports {
		loopback("transports."+name+".listen", tr.Listen)
	}

	sc, err := c.ServerConfig()
	if err != nil {
		t.Fatal(err)
	}
	if sc.AutoBeaconAddrs {
		t.Error("server beacons to broadcast addresses")
	}
	for _, a := range sc.Interfaces {
		loopback("server interface", a.String())
	}
	for _, a := range sc.BeaconAddrs {
		loopback("server beacon address", a.String())
	}
	cc, err := c.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	if cc.AutoAddrList {
		t.Error("client searches broadcast addresses")
	}
	for _, a := range slices.Concat(cc.AddrList, cc.NameServers) {
		loopback("client search address", a.String())
	}
}

func TestDefaultValues(t *testing.T) {
	c := Default()
	for _, tc := range []struct {
		key       string
		got, want any
	}{
		{"relay.enabled", c.Relay.Enabled, true},
		{"relay.prefix", c.Relay.Prefix, "RELAY:"},
		{"relay.autosave.path", c.Relay.Autosave.Path, ""},
		{"relay.autosave.period", c.Relay.Autosave.Period, 30 * time.Second},
		{"relay.max_pvs", c.Relay.MaxPVs, 10000},
		{"relay.max_elements", c.Relay.MaxElements, 1000000},
		{"ca.server_port", c.CA.ServerPort, 5064},
		{"ca.addr_list", c.CA.AddrList, []string{"127.0.0.1"}},
		{"ca.auto_addr_list", c.CA.AutoAddrList, false},
		{"ca.intf_addr_list", c.CA.IntfAddrList, []string{"127.0.0.1"}},
		{"ca.repeater_port", c.CA.RepeaterPort, 5065},
		{"ca.max_array_bytes", c.CA.MaxArrayBytes, 0},
		{"transports.websocket", c.Transports["websocket"], TransportConfig{Enabled: true, Listen: "127.0.0.1:8080"}},
		{"transports.sse", c.Transports["sse"], TransportConfig{Enabled: true, Listen: "127.0.0.1:8081"}},
		{"transports.mqtt", c.Transports["mqtt"], TransportConfig{Enabled: true, Listen: "127.0.0.1:1883"}},
		{"write.allow", c.Write.Allow, []string{"RELAY:*"}},
		{"write.deny", c.Write.Deny, []string(nil)},
		{"log.level", c.Log.Level, "info"},
		{"log.format", c.Log.Format, "text"},
	} {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s = %#v, want %#v", tc.key, tc.got, tc.want)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"ok", func(*Config) {}, ""},
		{"relay disabled, empty prefix", func(c *Config) { c.Relay.Enabled, c.Relay.Prefix = false, "" }, ""},
		{"free server port", func(c *Config) { c.CA.ServerPort = 0 }, ""},
		{"host names", func(c *Config) { c.CA.AddrList = []string{"ioc-1.example.org:5070", "localhost"} }, ""},
		{"max_pvs", func(c *Config) { c.Relay.MaxPVs = 0 }, "relay.max_pvs: must be a positive integer, got 0"},
		{"third-party transport", func(c *Config) { c.Transports["x"] = TransportConfig{Enabled: true} },
			"transports.x: unknown transport; a third-party transport needs transports.x.path, its plugin executable"},
		{"disabled transports may share", func(c *Config) {
			c.Transports["sse"] = TransportConfig{Listen: "127.0.0.1:8080"}
		}, ""},
		{"port 0 may repeat", func(c *Config) {
			c.Transports["sse"] = TransportConfig{Enabled: true, Listen: "127.0.0.1:0"}
			c.Transports["websocket"] = TransportConfig{Enabled: true, Listen: "127.0.0.1:0"}
		}, ""},
		{"listen on every interface", func(c *Config) { c.Transports["sse"] = TransportConfig{Enabled: true, Listen: ":8081"} }, ""},
		{"listen IPv6", func(c *Config) { c.Transports["sse"] = TransportConfig{Enabled: true, Listen: "[::1]:8081"} }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.change(c)
			err := c.Validate()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || err.Error() != tc.want) {
				t.Fatalf("Validate() = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestServerAndClientConfig(t *testing.T) {
	c := mustLoad(t, `
ca:
  server_port: 6064
  search_port: 6070
  addr_list: [10.0.0.255, "10.0.1.1:5075", localhost]
  auto_addr_list: true
  name_servers: ["10.0.2.1"]
  intf_addr_list: [10.0.0.1, 10.0.0.2]
  ignore_addr_list: [10.0.0.66]
  beacon_addr_list: [10.0.0.255, "10.0.1.255:7000"]
  auto_beacon_addr_list: true
  repeater_port: 6065
  beacon_period: 2s
  conn_timeout: 10s
  max_search_period: 2m
  max_array_bytes: 100000000
`, nil, nil)
	sc, err := c.ServerConfig()
	if err != nil {
		t.Fatal(err)
	}
	ap := netip.MustParseAddrPort
	ip := netip.MustParseAddr
	wantS := server.Config{
		Port:            6064,
		Interfaces:      []netip.Addr{ip("10.0.0.1"), ip("10.0.0.2")},
		IgnoreAddrs:     []netip.Addr{ip("10.0.0.66")},
		BeaconAddrs:     []netip.AddrPort{ap("10.0.0.255:6065"), ap("10.0.1.255:7000")},
		AutoBeaconAddrs: true,
		BeaconPeriod:    2 * time.Second,
		BeaconPort:      6065,
		MaxArrayBytes:   100000000,
	}
	if !reflect.DeepEqual(sc, wantS) {
		t.Errorf("ServerConfig() =\n%+v\nwant\n%+v", sc, wantS)
	}
	cc, err := c.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	wantC := client.Config{
		AddrList:        []netip.AddrPort{ap("10.0.0.255:6070"), ap("10.0.1.1:5075"), ap("127.0.0.1:6070")},
		AutoAddrList:    true,
		NameServers:     []netip.AddrPort{ap("10.0.2.1:6070")},
		ServerPort:      6070,
		RepeaterPort:    6065,
		ConnTimeout:     10 * time.Second,
		MaxSearchPeriod: 2 * time.Minute,
		MaxArrayBytes:   100000000,
	}
	if !reflect.DeepEqual(cc, wantC) {
		t.Errorf("ClientConfig() =\n%+v\nwant\n%+v", cc, wantC)
	}

	c.CA.ServerPort = 0
	if sc, err := c.ServerConfig(); err != nil || sc.Port != -1 {
		t.Errorf("ca.server_port 0: Port = %d, %v; want -1 (a free port)", sc.Port, err)
	}
	c.Relay.MaxPVs = 0
	if _, err := c.ServerConfig(); err == nil {
		t.Error("ServerConfig of an invalid configuration succeeded")
	}
	if _, err := c.ClientConfig(); err == nil {
		t.Error("ClientConfig of an invalid configuration succeeded")
	}
}

// The EPICS variables mean to Load what they mean to ca/server and ca/client.
func TestEPICSVariablesMatchCA(t *testing.T) {
	for _, environ := range [][]string{
		{
			"EPICS_CAS_SERVER_PORT=6064", "EPICS_CA_SERVER_PORT=6070",
			"EPICS_CAS_INTF_ADDR_LIST=10.0.0.1 10.0.0.2", "EPICS_CAS_IGNORE_ADDR_LIST=10.0.0.66",
			"EPICS_CAS_BEACON_ADDR_LIST=10.0.0.255 10.0.1.255:7000", "EPICS_CAS_AUTO_BEACON_ADDR_LIST=YES",
			"EPICS_CAS_BEACON_PERIOD=2.5", "EPICS_CA_REPEATER_PORT=6065", "EPICS_CA_MAX_ARRAY_BYTES=1000",
			"EPICS_CA_ADDR_LIST=10.0.0.255 10.0.1.1:5075", "EPICS_CA_AUTO_ADDR_LIST=yes",
			"EPICS_CA_NAME_SERVERS=10.0.2.1", "EPICS_CA_CONN_TMO=0.01", "EPICS_CA_MAX_SEARCH_PERIOD=30",
		},
		{
			"EPICS_CA_SERVER_PORT=6070", "EPICS_CAS_BEACON_PORT=7000", "EPICS_CA_BEACON_PERIOD=3",
			"EPICS_CAS_INTF_ADDR_LIST=0.0.0.0", "EPICS_CAS_BEACON_ADDR_LIST=10.0.0.255",
			"EPICS_CA_ADDR_LIST=10.0.0.255", "EPICS_CA_AUTO_ADDR_LIST=NO",
		},
	} {
		lookup := func(k string) (string, bool) {
			for _, kv := range environ {
				if name, v, _ := strings.Cut(kv, "="); name == k {
					return v, true
				}
			}
			return "", false
		}
		c := mustLoad(t, "", environ, nil)
		sc, err := c.ServerConfig()
		if err != nil {
			t.Fatal(err)
		}
		want, err := server.ConfigFromEnv(lookup)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(sc, want) {
			t.Errorf("%v:\nServerConfig()        %+v\nserver.ConfigFromEnv  %+v", environ, sc, want)
		}
		cc, err := c.ClientConfig()
		if err != nil {
			t.Fatal(err)
		}
		wantC, err := client.ConfigFromEnv(lookup)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(cc, wantC) {
			t.Errorf("%v:\nClientConfig()        %+v\nclient.ConfigFromEnv  %+v", environ, cc, wantC)
		}
	}
}

func TestYAMLRoundTrip(t *testing.T) {
	rich := mustLoad(t, `
relay:
  enabled: false
  prefix: "BL7:"
  autosave: {path: /var/lib/pvhub/autosave.json, period: 1m30s}
  max_pvs: 5
  max_elements: 6
ca:
  server_port: 0
  search_port: 6070
  addr_list: [10.0.0.255, "10.0.1.1:5075", ioc.example.org]
  auto_addr_list: true
  name_servers: ["10.0.2.1:5064"]
  intf_addr_list: [0.0.0.0]
  ignore_addr_list: [10.0.0.66]
  beacon_addr_list: []
  auto_beacon_addr_list: true
  beacon_port: 7000
  beacon_period: 1.5s
  repeater_port: 6065
  conn_timeout: 10s
  max_search_period: 2m
  max_array_bytes: 100000000
transports:
  websocket: {enabled: false}
  mqtt:
    listen: 0.0.0.0:1883
    qos: 1
    ratio: 0.5
    topic_prefix: "pvhub/"
    number_as_text: "8"
    broker: {external: true, urls: [tcp://a:1883, tcp://b:1883]}
  mine:
    path: /usr/local/bin/pvhub-mine
    listen: "[::1]:9000"
write:
  allow: ["BL7:*", "SR:?"]
  deny: ["BL7:secret*"]
log:
  level: debug
  format: json
`, []string{"PVHUB_TRANSPORTS__SSE__EXTRA=yes", "EPICS_CA_CONN_TMO=3"}, map[string]string{"relay.prefix": "R2:"})
	for name, c := range map[string]*Config{"default": Default(), "rich": rich} {
		t.Run(name, func(t *testing.T) {
			b, err := c.YAML()
			if err != nil {
				t.Fatal(err)
			}
			back, err := Load(LoadOptions{File: writeFile(t, string(b))})
			if err != nil {
				t.Fatalf("Load(YAML()): %v\n%s", err, b)
			}
			if !reflect.DeepEqual(back, c) {
				t.Fatalf("round trip changed the configuration:\n%+v\nwant\n%+v\nYAML:\n%s", back, c, b)
			}
			if d := Diff(c, back); len(d) != 0 {
				t.Fatalf("Diff after round trip: %v", d)
			}
		})
	}
	if rich.Transports["sse"].Options["extra"] != "yes" || rich.Relay.Prefix != "R2:" || rich.CA.ConnTimeout != 10*time.Second {
		t.Fatalf("rich configuration not as meant: %+v", rich)
	}
}

func TestExampleFile(t *testing.T) {
	const name = "pvhub.example.yaml"
	c, err := Load(LoadOptions{File: name})
	if err != nil {
		t.Fatalf("Load(%s): %v", name, err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, Default()) {
		t.Errorf("%s does not hold the defaults:\n%+v\nwant\n%+v", name, c, Default())
	}

	// Every key appears in the file.
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, v := range m {
			keys[prefix+k] = true
			if sub, ok := v.(map[string]any); ok {
				walk(prefix+k+".", sub)
			}
		}
	}
	walk("", doc)
	want := knownKeys(nil)
	for _, k := range want {
		if !keys[k] && !(strings.HasPrefix(k, "transports.") && strings.HasSuffix(k, ".path")) {
			t.Errorf("%s lacks %s", name, k)
		}
	}

	// The commented section that opens pvhub to a beamline network loads.
	text := string(b)
	begin, end := strings.Index(text, "# BEGIN beamline\n"), strings.Index(text, "# END beamline")
	if begin < 0 || end < begin {
		t.Fatal("no beamline section")
	}
	var lines []string
	for _, l := range strings.Split(text[begin:end], "\n") {
		if rest, ok := strings.CutPrefix(l, "# "); ok && !strings.HasPrefix(l, "# BEGIN") {
			lines = append(lines, rest)
		}
	}
	var block []string
	for i, l := range lines {
		if l == "ca:" {
			block = lines[i:]
			break
		}
	}
	bl, err := Load(LoadOptions{File: writeFile(t, strings.Join(block, "\n"))})
	if err != nil {
		t.Fatalf("beamline section: %v\n%s", err, strings.Join(block, "\n"))
	}
	if !reflect.DeepEqual(bl.CA.IntfAddrList, []string{"0.0.0.0"}) || !bl.CA.AutoAddrList || !bl.CA.AutoBeaconAddrList {
		t.Errorf("beamline section: ca = %+v", bl.CA)
	}
	for name, tr := range bl.Transports {
		if !strings.HasPrefix(tr.Listen, "0.0.0.0:") {
			t.Errorf("beamline section: transports.%s.listen = %q", name, tr.Listen)
		}
	}
}

func TestLog(t *testing.T) {
	var sb strings.Builder
	l := LogConfig{Level: "warn", Format: "json"}
	log := slog.New(l.Handler(&sb))
	log.Info("hidden")
	log.Warn("shown")
	if strings.Contains(sb.String(), "hidden") || !strings.Contains(sb.String(), `"msg":"shown"`) {
		t.Errorf("json handler at warn wrote %q", sb.String())
	}
	sb.Reset()
	log = slog.New(LogConfig{Level: "debug", Format: "text"}.Handler(&sb))
	log.Debug("seen")
	if !strings.Contains(sb.String(), "msg=seen") {
		t.Errorf("text handler at debug wrote %q", sb.String())
	}
}

func TestKeyError(t *testing.T) {
	e := &KeyError{Key: "relay.max_pvs", Reason: `must be a positive integer, got "ten"`}
	if e.Error() != `relay.max_pvs: must be a positive integer, got "ten"` {
		t.Error(e.Error())
	}
	e.Source = "flag"
	if e.Error() != `relay.max_pvs: must be a positive integer, got "ten" (from flag)` {
		t.Error(e.Error())
	}
	var ke *KeyError
	if !errors.As(errors.Join(errors.New("x"), e), &ke) || ke != e {
		t.Error("errors.As")
	}
}
