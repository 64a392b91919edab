package config

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestLoadDefaultsAlone(t *testing.T) {
	c := mustLoad(t, "", nil, nil)
	if !reflect.DeepEqual(c, Default()) {
		t.Fatalf("Load with nothing = %+v, want Default() = %+v", c, Default())
	}
	if err := Default().Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
}

func TestPrecedence(t *testing.T) {
	const file = "ca:\n  server_port: 5072\n"
	epics := []string{"EPICS_CAS_SERVER_PORT=5071"}
	env := []string{"PVHUB_CA__SERVER_PORT=5073"}
	flag := map[string]string{"ca.server_port": "5074"}
	for _, tc := range []struct {
		name    string
		file    string
		environ []string
		flags   map[string]string
		want    int
	}{
		{"default", "", nil, nil, 5064},
		{"epics", "", epics, nil, 5071},
		{"file over epics", file, epics, nil, 5072},
		{"env over file", file, append(epics, env...), nil, 5073},
		{"flag over env", file, append(epics, env...), flag, 5074},
		{"flag over epics", "", epics, flag, 5074},
		{"env over epics", "", append(env, epics...), nil, 5073},
		{"flag alone", "", nil, flag, 5074},
		{"file alone", file, nil, nil, 5072},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mustLoad(t, tc.file, tc.environ, tc.flags)
			if c.CA.ServerPort != tc.want {
				t.Fatalf("ca.server_port = %d, want %d", c.CA.ServerPort, tc.want)
			}
		})
	}
}

func TestLayersMergeKeyByKey(t *testing.T) {
	c := mustLoad(t, "relay:\n  prefix: \"F:\"\n  max_pvs: 5\n",
		[]string{"PVHUB_RELAY__MAX_PVS=6"},
		map[string]string{"relay.max_elements": "7"})
	if c.Relay.Prefix != "F:" || c.Relay.MaxPVs != 6 || c.Relay.MaxElements != 7 || !c.Relay.Enabled {
		t.Fatalf("relay = %+v", c.Relay)
	}
	if c.Relay.Autosave.Period != 30*time.Second || c.CA.ServerPort != 5064 {
		t.Fatal("keys no layer set lost their defaults")
	}
}

func TestEnvNesting(t *testing.T) {
	for _, tc := range []struct {
		env   string
		check func(*Config) bool
	}{
		{"PVHUB_RELAY__PREFIX=ENV:", func(c *Config) bool { return c.Relay.Prefix == "ENV:" }},
		{"PVHUB_RELAY__ENABLED=false", func(c *Config) bool { return !c.Relay.Enabled }},
		{"PVHUB_RELAY__MAX_PVS=12", func(c *Config) bool { return c.Relay.MaxPVs == 12 }},
		{"PVHUB_RELAY__AUTOSAVE__PATH=/var/lib/pvhub/autosave.json", func(c *Config) bool { return c.Relay.Autosave.Path == "/var/lib/pvhub/autosave.json" }},
		{"PVHUB_RELAY__AUTOSAVE__PERIOD=2m", func(c *Config) bool { return c.Relay.Autosave.Period == 2*time.Minute }},
		{"PVHUB_CA__ADDR_LIST=10.0.0.1 10.0.0.2:5070,10.0.0.3", func(c *Config) bool {
			return reflect.DeepEqual(c.CA.AddrList, []string{"10.0.0.1", "10.0.0.2:5070", "10.0.0.3"})
		}},
		{"PVHUB_CA__AUTO_ADDR_LIST=yes", func(c *Config) bool { return c.CA.AutoAddrList }},
		{"PVHUB_TRANSPORTS__MQTT__ENABLED=0", func(c *Config) bool { return !c.Transports["mqtt"].Enabled }},
		{"PVHUB_TRANSPORTS__SSE__LISTEN=127.0.0.1:9000", func(c *Config) bool { return c.Transports["sse"].Listen == "127.0.0.1:9000" }},
		{"PVHUB_TRANSPORTS__MQTT__BROKER__URL=tcp://broker:1883", func(c *Config) bool {
			return reflect.DeepEqual(c.Transports["mqtt"].Options, map[string]any{"broker": map[string]any{"url": "tcp://broker:1883"}})
		}},
		{"PVHUB_WRITE__DENY=SR:* BL:*", func(c *Config) bool { return reflect.DeepEqual(c.Write.Deny, []string{"SR:*", "BL:*"}) }},
		{"PVHUB_WRITE__ALLOW=", func(c *Config) bool { return c.Write.Allow == nil }},
		{"PVHUB_LOG__LEVEL=debug", func(c *Config) bool { return c.Log.Level == "debug" }},
	} {
		t.Run(tc.env, func(t *testing.T) {
			c := mustLoad(t, "", []string{tc.env, "HOME=/root", "PVHUBX=1"}, nil)
			if !tc.check(c) {
				t.Fatalf("%s not applied: %+v", tc.env, c)
			}
		})
	}
}

func TestEPICSVariables(t *testing.T) {
	for _, tc := range []struct {
		env   []string
		check func(*Config) bool
	}{
		{[]string{"EPICS_CAS_SERVER_PORT=6064"}, func(c *Config) bool { return c.CA.ServerPort == 6064 && c.CA.SearchPort == 5064 }},
		{[]string{"EPICS_CA_SERVER_PORT=6064"}, func(c *Config) bool { return c.CA.ServerPort == 6064 && c.CA.SearchPort == 6064 }},
		{[]string{"EPICS_CA_SERVER_PORT=6064", "EPICS_CAS_SERVER_PORT=7064"}, func(c *Config) bool { return c.CA.ServerPort == 7064 && c.CA.SearchPort == 6064 }},
		{[]string{"EPICS_CAS_SERVER_PORT=  ", "EPICS_CA_SERVER_PORT=6064"}, func(c *Config) bool { return c.CA.ServerPort == 6064 }},
		{[]string{"EPICS_CA_ADDR_LIST=10.0.0.255 10.0.1.1:5070"}, func(c *Config) bool {
			return reflect.DeepEqual(c.CA.AddrList, []string{"10.0.0.255", "10.0.1.1:5070"})
		}},
		{[]string{"EPICS_CA_AUTO_ADDR_LIST=YES"}, func(c *Config) bool { return c.CA.AutoAddrList }},
		{[]string{"EPICS_CA_AUTO_ADDR_LIST=no"}, func(c *Config) bool { return !c.CA.AutoAddrList }},
		{[]string{"EPICS_CA_AUTO_ADDR_LIST=NO"}, func(c *Config) bool { return !c.CA.AutoAddrList }},
		{[]string{"EPICS_CA_NAME_SERVERS=10.0.0.9:5075"}, func(c *Config) bool { return reflect.DeepEqual(c.CA.NameServers, []string{"10.0.0.9:5075"}) }},
		{[]string{"EPICS_CAS_INTF_ADDR_LIST=0.0.0.0"}, func(c *Config) bool { return reflect.DeepEqual(c.CA.IntfAddrList, []string{"0.0.0.0"}) }},
		{[]string{"EPICS_CAS_IGNORE_ADDR_LIST=10.0.0.66"}, func(c *Config) bool { return reflect.DeepEqual(c.CA.IgnoreAddrList, []string{"10.0.0.66"}) }},
		{[]string{"EPICS_CAS_BEACON_ADDR_LIST=10.0.0.255"}, func(c *Config) bool { return reflect.DeepEqual(c.CA.BeaconAddrList, []string{"10.0.0.255"}) }},
		{[]string{"EPICS_CAS_AUTO_BEACON_ADDR_LIST=YES"}, func(c *Config) bool { return c.CA.AutoBeaconAddrList }},
		{[]string{"EPICS_CA_REPEATER_PORT=6065"}, func(c *Config) bool { return c.CA.RepeaterPort == 6065 && c.CA.BeaconPort == 6065 }},
		{[]string{"EPICS_CA_REPEATER_PORT=6065", "EPICS_CAS_BEACON_PORT=7065"}, func(c *Config) bool { return c.CA.RepeaterPort == 6065 && c.CA.BeaconPort == 7065 }},
		{[]string{"EPICS_CAS_BEACON_PERIOD=2.5"}, func(c *Config) bool { return c.CA.BeaconPeriod == 2500*time.Millisecond }},
		{[]string{"EPICS_CA_BEACON_PERIOD=0.01"}, func(c *Config) bool { return c.CA.BeaconPeriod == 100*time.Millisecond }},
		{[]string{"EPICS_CA_CONN_TMO=5"}, func(c *Config) bool { return c.CA.ConnTimeout == 5*time.Second }},
		{[]string{"EPICS_CA_MAX_SEARCH_PERIOD=10"}, func(c *Config) bool { return c.CA.MaxSearchPeriod == time.Minute }},
		{[]string{"EPICS_CA_MAX_ARRAY_BYTES=100000000"}, func(c *Config) bool { return c.CA.MaxArrayBytes == 100000000 }},
		{[]string{"EPICS_CA_MAX_ARRAY_BYTES=100"}, func(c *Config) bool { return c.CA.MaxArrayBytes == 16384 }},
		{[]string{"EPICS_CA_ADDR_LIST=10.0.0.1", "EPICS_CA_ADDR_LIST=10.0.0.2"}, func(c *Config) bool { return reflect.DeepEqual(c.CA.AddrList, []string{"10.0.0.1"}) }},
		// The file, PVHUB_ variables and flags override EPICS variables.
		{[]string{"EPICS_CA_ADDR_LIST=10.0.0.1", "PVHUB_CA__ADDR_LIST=10.0.0.2"}, func(c *Config) bool { return reflect.DeepEqual(c.CA.AddrList, []string{"10.0.0.2"}) }},
		// A bad EPICS variable that a later layer overrides is not an error.
		{[]string{"EPICS_CA_CONN_TMO=soon", "PVHUB_CA__CONN_TIMEOUT=3s"}, func(c *Config) bool { return c.CA.ConnTimeout == 3*time.Second }},
	} {
		t.Run(strings.Join(tc.env, ","), func(t *testing.T) {
			c := mustLoad(t, "", tc.env, nil)
			if !tc.check(c) {
				t.Fatalf("%v not applied: %+v", tc.env, c.CA)
			}
		})
	}
}

func TestFileNullKeepsDefaults(t *testing.T) {
	c := mustLoad(t, "relay:\n  prefix:\n  autosave:\ntransports:\n  mqtt:\nwrite:\n  allow:\nlog:\n", nil, nil)
	if !reflect.DeepEqual(c, Default()) {
		t.Fatalf("null values changed the configuration: %+v", c)
	}
	if c := mustLoad(t, "", nil, nil); !reflect.DeepEqual(c, Default()) {
		t.Fatal("empty file")
	}
}

func TestDerivedDefaults(t *testing.T) {
	for _, tc := range []struct {
		name       string
		file       string
		env        []string
		flags      map[string]string
		allow      []string
		beaconPort int
	}{
		{"defaults", "", nil, nil, []string{"RELAY:*"}, 5065},
		{"prefix from file", "relay:\n  prefix: \"BL7:\"\n", nil, nil, []string{"BL7:*"}, 5065},
		{"prefix from env", "", []string{"PVHUB_RELAY__PREFIX=E:"}, nil, []string{"E:*"}, 5065},
		{"prefix from flag", "relay:\n  prefix: \"BL7:\"\n", nil, map[string]string{"relay.prefix": "X:"}, []string{"X:*"}, 5065},
		{"glob characters quoted", "", nil, map[string]string{"relay.prefix": "A*[1]"}, []string{`A\*\[1\]*`}, 5065},
		{"allow set", "relay:\n  prefix: \"BL7:\"\nwrite:\n  allow: [\"BL7:ao*\"]\n", nil, nil, []string{"BL7:ao*"}, 5065},
		{"allow set empty", "write:\n  allow: []\n", nil, nil, nil, 5065},
		{"repeater port", "ca:\n  repeater_port: 6000\n", nil, nil, []string{"RELAY:*"}, 6000},
		{"beacon port set", "ca:\n  repeater_port: 6000\n  beacon_port: 7000\n", nil, nil, []string{"RELAY:*"}, 7000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mustLoad(t, tc.file, tc.env, tc.flags)
			if !reflect.DeepEqual(c.Write.Allow, tc.allow) {
				t.Errorf("write.allow = %q, want %q", c.Write.Allow, tc.allow)
			}
			if c.CA.BeaconPort != tc.beaconPort {
				t.Errorf("ca.beacon_port = %d, want %d", c.CA.BeaconPort, tc.beaconPort)
			}
		})
	}
}

func TestTransports(t *testing.T) {
	c := mustLoad(t, `
transports:
  websocket:
    enabled: false
  mqtt:
    listen: 127.0.0.1:1884
    topic_prefix: pvhub/
    qos: 1
    broker: {external: true}
  mine:
    path: /usr/local/bin/pvhub-mine
    rate: 10
`, nil, nil)
	want := map[string]TransportConfig{
		"websocket": {Enabled: false, Listen: "127.0.0.1:8080"},
		"sse":       {Enabled: true, Listen: "127.0.0.1:8081"},
		"mqtt": {Enabled: true, Listen: "127.0.0.1:1884", Options: map[string]any{
			"topic_prefix": "pvhub/", "qos": 1, "broker": map[string]any{"external": true}}},
		"mine": {Enabled: true, Path: "/usr/local/bin/pvhub-mine", Options: map[string]any{"rate": 10}},
	}
	if !reflect.DeepEqual(c.Transports, want) {
		t.Fatalf("transports =\n%#v\nwant\n%#v", c.Transports, want)
	}
	m := c.Transports["mine"].Map()
	if !reflect.DeepEqual(m, map[string]any{"enabled": true, "listen": "", "path": "/usr/local/bin/pvhub-mine", "rate": 10}) {
		t.Fatalf("Map() = %v", m)
	}
}

func TestLoadErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		file  string
		env   []string
		flags map[string]string
		want  []string // lines of the error, in order
	}{
		{"int from env", "", []string{"PVHUB_RELAY__MAX_PVS=ten"}, nil,
			[]string{`relay.max_pvs: must be a positive integer, got "ten" (from PVHUB_RELAY__MAX_PVS)`}},
		{"int from file", "relay:\n  max_pvs: ten\n", nil, nil,
			[]string{`relay.max_pvs: must be a positive integer, got "ten" (from FILE)`}},
		{"negative int", "relay:\n  max_pvs: -3\n", nil, nil,
			[]string{`relay.max_pvs: must be a positive integer, got -3 (from FILE)`}},
		{"zero max_elements", "", nil, map[string]string{"relay.max_elements": "0"},
			[]string{`relay.max_elements: must be a positive integer, got 0 (from flag)`}},
		{"fractional int", "relay:\n  max_pvs: 1.5\n", nil, nil,
			[]string{`relay.max_pvs: must be a positive integer, got 1.5 (from FILE)`}},
		{"unknown key", "relay:\n  prefx: \"X:\"\n", nil, nil,
			[]string{`relay.prefx: unknown key (did you mean relay.prefix?) (from FILE)`}},
		{"unknown env key", "", []string{"PVHUB_RELAY_PREFIX=X:"}, nil,
			[]string{`relay_prefix: unknown key (did you mean relay.prefix?) (from PVHUB_RELAY_PREFIX)`}},
		{"unknown flag key", "", nil, map[string]string{"ca.adr_list": "10.0.0.1"},
			[]string{`ca.adr_list: unknown key (did you mean ca.addr_list?) (from flag)`}},
		{"unknown nested key", "relay:\n  autosave:\n    perod: 10s\n", nil, nil,
			[]string{`relay.autosave.perod: unknown key (did you mean relay.autosave.period?) (from FILE)`}},
		{"unknown transport key typo", "transport:\n  websocket:\n    listen: 0.0.0.0:80\n", nil, nil,
			[]string{`transport.websocket.listen: unknown key (did you mean transports.websocket.listen?) (from FILE)`}},
		{"unknown key without suggestion", "relay:\n  colour: blue\n", nil, nil,
			[]string{`relay.colour: unknown key; relay holds enabled, prefix, autosave, max_pvs, max_elements (from FILE)`}},
		{"unknown top-level key", "", []string{"PVHUB_FOO=1"}, nil,
			[]string{`foo: unknown key; the top level holds relay, ca, transports, write, log, metrics (from PVHUB_FOO)`}},
		{"metrics listen", "metrics:\n  listen: nowhere\n", nil, nil,
			[]string{`metrics.listen: must be host:port, got "nowhere" (from FILE)`}},
		{"metrics listen taken", "metrics:\n  listen: 127.0.0.1:8080\n", nil, nil,
			[]string{`metrics.listen: "127.0.0.1:8080" is also transports.websocket.listen (from FILE)`}},
		{"case matters", "Relay:\n  prefix: \"X:\"\n", nil, nil,
			[]string{`Relay.prefix: unknown key (did you mean relay.prefix?) (from FILE)`}},
		{"bool", "relay:\n  enabled: maybe\n", nil, nil,
			[]string{`relay.enabled: must be true or false, got "maybe" (from FILE)`}},
		{"bool from env", "", []string{"PVHUB_CA__AUTO_ADDR_LIST=sometimes"}, nil,
			[]string{`ca.auto_addr_list: must be true or false, got "sometimes" (from PVHUB_CA__AUTO_ADDR_LIST)`}},
		{"string", "relay:\n  prefix: 12\n", nil, nil,
			[]string{`relay.prefix: must be a string, got 12 (from FILE)`}},
		{"empty prefix", "relay:\n  prefix: \"\"\n", nil, nil,
			[]string{`relay.prefix: must not be empty while relay.enabled is true (from FILE)`}},
		{"prefix with space", "", nil, map[string]string{"relay.prefix": "A B"},
			[]string{`relay.prefix: must be a PV name prefix without spaces or control characters, got "A B" (from flag)`}},
		{"mapping for a value", "relay:\n  prefix: {a: 1}\n", nil, nil,
			[]string{`relay.prefix: must be a string, got a mapping (from FILE)`}},
		{"value for a mapping", "relay: 3\n", nil, nil,
			[]string{`relay: must be a mapping of keys, got 3 (from FILE)`}},
		{"duration", "relay:\n  autosave:\n    period: 30\n", nil, nil,
			[]string{`relay.autosave.period: must be a positive duration such as 30s, got 30 (from FILE)`}},
		{"negative duration", "", nil, map[string]string{"relay.autosave.period": "-1s"},
			[]string{`relay.autosave.period: must be a positive duration such as 30s, got -1s (from flag)`}},
		{"short beacon period", "ca:\n  beacon_period: 1ms\n", nil, nil,
			[]string{`ca.beacon_period: must be a duration of at least 100ms, got 1ms (from FILE)`}},
		{"short conn timeout", "ca:\n  conn_timeout: 0s\n", nil, nil,
			[]string{`ca.conn_timeout: must be a duration of at least 100ms, got 0s (from FILE)`}},
		{"short search period", "ca:\n  max_search_period: 10s\n", nil, nil,
			[]string{`ca.max_search_period: must be a duration of at least 1m, got 10s (from FILE)`}},
		{"bad EPICS seconds", "", []string{"EPICS_CA_CONN_TMO=soon"}, nil,
			[]string{`ca.conn_timeout: must be a positive number of seconds, got "soon" (from EPICS_CA_CONN_TMO)`}},
		{"bad EPICS port", "", []string{"EPICS_CAS_SERVER_PORT=x"}, nil,
			[]string{`ca.server_port: must be a port number (1-65535, or 0 for a free port), got "x" (from EPICS_CAS_SERVER_PORT)`}},
		{"bad EPICS array bytes", "", []string{"EPICS_CA_MAX_ARRAY_BYTES=lots"}, nil,
			[]string{`ca.max_array_bytes: must be a positive integer, got "lots" (from EPICS_CA_MAX_ARRAY_BYTES)`}},
		{"port range", "ca:\n  server_port: 70000\n  repeater_port: 0\n", nil, nil,
			[]string{
				`ca.repeater_port: must be a port number (1-65535), got 0 (from FILE)`,
				`ca.server_port: must be a port number (1-65535, or 0 for a free port), got 70000 (from FILE)`,
			}},
		{"search port", "", nil, map[string]string{"ca.search_port": "-1"},
			[]string{`ca.search_port: must be a port number (1-65535), got -1 (from flag)`}},
		{"max array bytes", "ca:\n  max_array_bytes: 100\n", nil, nil,
			[]string{`ca.max_array_bytes: must be 0 (16 MiB) or an integer of at least 16384, got 100 (from FILE)`}},
		{"address port", "ca:\n  addr_list: [10.0.0.1, \"10.0.0.2:99999\"]\n", nil, nil,
			[]string{`ca.addr_list[1]: bad port in "10.0.0.2:99999": must be 1-65535 (from FILE)`}},
		{"address IPv6", "ca:\n  beacon_addr_list: [\"::1\"]\n", nil, nil,
			[]string{`ca.beacon_addr_list[0]: must be host[:port] with an IPv4 address or a host name, got "::1" (from FILE)`}},
		{"address bad IPv4", "", []string{"EPICS_CA_ADDR_LIST=10.0.0.300"}, nil,
			[]string{`ca.addr_list[0]: must be host[:port] with an IPv4 address or a host name, got "10.0.0.300" (from EPICS_CA_ADDR_LIST)`}},
		{"interface with port", "ca:\n  intf_addr_list: [\"127.0.0.1:5064\"]\n", nil, nil,
			[]string{`ca.intf_addr_list[0]: must be an IPv4 address or a host name, got "127.0.0.1:5064" (from FILE)`}},
		{"interface any with others", "ca:\n  intf_addr_list: [0.0.0.0, 10.0.0.1]\n", nil, nil,
			[]string{`ca.intf_addr_list: 0.0.0.0 (every interface) cannot be combined with other addresses (from FILE)`}},
		{"list of numbers", "write:\n  deny: [1]\n", nil, nil,
			[]string{`write.deny: entry 0 must be a string, got 1 (from FILE)`}},
		{"list as mapping", "write:\n  deny: {a: 1}\n", nil, nil,
			[]string{`write.deny: must be a list of strings, got a mapping (from FILE)`}},
		{"glob", "write:\n  allow: [\"RELAY:[\"]\n  deny: [\"\"]\n", nil, nil,
			[]string{
				`write.allow[0]: bad glob pattern "RELAY:[" (path.Match syntax: * ? [class] \c) (from FILE)`,
				`write.deny[0]: must be a glob pattern, got an empty string (from FILE)`,
			}},
		{"glob from env", "", []string{`PVHUB_WRITE__DENY=SR:* a\`}, nil,
			[]string{`write.deny[1]: bad glob pattern "a\\" (path.Match syntax: * ? [class] \c) (from PVHUB_WRITE__DENY)`}},
		{"listen", "transports:\n  websocket:\n    listen: \"8080\"\n", nil, nil,
			[]string{`transports.websocket.listen: must be host:port, got "8080" (from FILE)`}},
		{"listen port", "", []string{"PVHUB_TRANSPORTS__SSE__LISTEN=127.0.0.1:http"}, nil,
			[]string{`transports.sse.listen: bad port in "127.0.0.1:http": must be 0-65535 (from PVHUB_TRANSPORTS__SSE__LISTEN)`}},
		{"listen host", "", nil, map[string]string{"transports.mqtt.listen": "bad host!:1883"},
			[]string{`transports.mqtt.listen: must be host:port with an IP address or a host name, got "bad host!:1883" (from flag)`}},
		{"listen twice", "transports:\n  sse:\n    listen: 127.0.0.1:8080\n", nil, nil,
			[]string{`transports.websocket.listen: "127.0.0.1:8080" is also transports.sse.listen (from default)`}},
		{"listen type", "transports:\n  sse:\n    listen: 8080\n", nil, nil,
			[]string{`transports.sse.listen: must be a string, got 8080 (from FILE)`}},
		{"transport enabled", "", []string{"PVHUB_TRANSPORTS__MQTT__ENABLED=perhaps"}, nil,
			[]string{`transports.mqtt.enabled: must be true or false, got "perhaps" (from PVHUB_TRANSPORTS__MQTT__ENABLED)`}},
		{"transport typo", "transports:\n  websockets:\n    listen: 0.0.0.0:8080\n", nil, nil,
			[]string{`transports.websockets: unknown transport (did you mean transports.websocket?); a third-party transport needs transports.websockets.path, its plugin executable (from FILE)`}},
		{"transport name", "transports:\n  Web:\n    path: /bin/web\n", nil, nil,
			[]string{`transports.Web: a transport name must start with a lower-case letter and hold only lower-case letters, digits, - and _ (from FILE)`}},
		{"transport not a mapping", "transports:\n  sse: true\n", nil, nil,
			[]string{`transports.sse: must be a mapping of keys, got true (from FILE)`}},
		{"transports not a mapping", "transports: [sse]\n", nil, nil,
			[]string{`transports: must be a mapping of keys, got a list (from FILE)`}},
		{"log level", "log:\n  level: verbose\n  format: xml\n", nil, nil,
			[]string{
				`log.format: must be text or json, got "xml" (from FILE)`,
				`log.level: must be one of debug, info, warn, error, got "verbose" (from FILE)`,
			}},
		{"several at once", "relay:\n  max_pvs: ten\n  prefx: x\n", []string{"PVHUB_LOG__LEVEL=loud"}, nil,
			[]string{
				`log.level: must be one of debug, info, warn, error, got "loud" (from PVHUB_LOG__LEVEL)`,
				`relay.max_pvs: must be a positive integer, got "ten" (from FILE)`,
				`relay.prefx: unknown key (did you mean relay.prefix?) (from FILE)`,
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := LoadOptions{Environ: tc.env, Flags: tc.flags}
			if tc.file != "" {
				o.File = writeFile(t, tc.file)
			}
			c, err := Load(o)
			if err == nil {
				t.Fatalf("Load succeeded: %+v", c)
			}
			if c != nil {
				t.Error("Load returned a configuration with its error")
			}
			want := strings.ReplaceAll(strings.Join(tc.want, "\n"), "(from FILE)", "(from "+o.File+")")
			if err.Error() != want {
				t.Fatalf("error:\n%s\nwant:\n%s", err, want)
			}
			var ke *KeyError
			if !errors.As(err, &ke) || !strings.HasPrefix(tc.want[0], ke.Key+": ") {
				t.Fatalf("errors.As KeyError = %+v", ke)
			}
		})
	}
}

func TestLoadFileErrors(t *testing.T) {
	if _, err := Load(LoadOptions{File: "/nonexistent/pvhub.yaml"}); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	name := writeFile(t, "relay:\n  prefix: RELAY:\n")
	_, err := Load(LoadOptions{File: name})
	if err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("bad YAML: %v", err)
	}
	name = writeFile(t, "- a\n- b\n")
	if _, err := Load(LoadOptions{File: name}); err == nil {
		t.Error("a list as the document loaded")
	}
}

func TestParseFlag(t *testing.T) {
	for _, tc := range []struct {
		in, key, value string
		ok             bool
	}{
		{"relay.prefix=TEST:", "relay.prefix", "TEST:", true},
		{"write.deny=", "write.deny", "", true},
		{"a=b=c", "a", "b=c", true},
		{"relay.prefix", "", "", false},
		{"=x", "", "", false},
	} {
		k, v, err := ParseFlag(tc.in)
		if (err == nil) != tc.ok || k != tc.key || v != tc.value {
			t.Errorf("ParseFlag(%q) = %q, %q, %v", tc.in, k, v, err)
		}
	}
}
