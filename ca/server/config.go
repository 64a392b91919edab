package server

import (
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"time"

	"github.com/pvhub/pvhub/ca/internal/caenv"
	"github.com/pvhub/pvhub/ca/wire"
)

// Loopback is 127.0.0.1, the default interface of the server.
var Loopback = netip.AddrFrom4([4]byte{127, 0, 0, 1})

// Config configures a Server. The zero value (with a Source) serves on
// 127.0.0.1 at the standard port and sends beacons to 127.0.0.1 only.
type Config struct {
	// Source decides which names exist. Required.
	Source Source
	// Logger receives one line per significant event; nil discards.
	Logger *slog.Logger
	// Port is the UDP search port and the preferred TCP port (EPICS_CAS_SERVER_PORT).
	// 0 means the standard 5064. -1 picks a free port for both (tests).
	// When the TCP port is taken, another one is chosen and advertised.
	Port int
	// Interfaces are the addresses to serve on (EPICS_CAS_INTF_ADDR_LIST);
	// empty means 127.0.0.1. 0.0.0.0 means every interface.
	Interfaces []netip.Addr
	// IgnoreAddrs are client addresses whose searches are ignored (EPICS_CAS_IGNORE_ADDR_LIST).
	IgnoreAddrs []netip.Addr
	// BeaconAddrs receive beacons (EPICS_CAS_BEACON_ADDR_LIST). When it is empty
	// and AutoBeaconAddrs is false, beacons go to 127.0.0.1.
	BeaconAddrs []netip.AddrPort
	// AutoBeaconAddrs adds the broadcast addresses of the served interfaces
	// (EPICS_CAS_AUTO_BEACON_ADDR_LIST). Off by default: pvhub stays on loopback
	// unless configured otherwise.
	AutoBeaconAddrs bool
	// BeaconPeriod is the steady beacon interval (EPICS_CAS_BEACON_PERIOD); 15 s by default.
	BeaconPeriod time.Duration
	// BeaconPort is the default destination port of beacons (EPICS_CAS_BEACON_PORT); 5065 by default.
	BeaconPort int
	// MaxArrayBytes bounds every payload received and sent (EPICS_CA_MAX_ARRAY_BYTES);
	// wire.DefaultMaxPayload by default. Reads that would exceed it fail with ECA_TOLARGE.
	MaxArrayBytes int
}

// ConfigFromEnv returns a configuration from the EPICS_CAS_* and EPICS_CA_*
// variables found by lookup (os.LookupEnv when nil), with pvhub's loopback
// defaults for anything unset. The Source and Logger are left empty.
func ConfigFromEnv(lookup func(string) (string, bool)) (Config, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	env := caenv.Lookup(lookup)
	var c Config
	var err error
	if c.Port, err = env.Port(wire.DefaultServerPort, "EPICS_CAS_SERVER_PORT", "EPICS_CA_SERVER_PORT"); err != nil {
		return c, err
	}
	if v, k, ok := env.Get("EPICS_CAS_INTF_ADDR_LIST"); ok {
		if c.Interfaces, err = caenv.ParseIPList(v); err != nil {
			return c, fmt.Errorf("%s: %w", k, err)
		}
	}
	if v, k, ok := env.Get("EPICS_CAS_IGNORE_ADDR_LIST"); ok {
		if c.IgnoreAddrs, err = caenv.ParseIPList(v); err != nil {
			return c, fmt.Errorf("%s: %w", k, err)
		}
	}
	if c.BeaconPort, err = env.Port(wire.DefaultRepeaterPort, "EPICS_CAS_BEACON_PORT", "EPICS_CA_REPEATER_PORT"); err != nil {
		return c, err
	}
	if v, k, ok := env.Get("EPICS_CAS_BEACON_ADDR_LIST"); ok {
		if c.BeaconAddrs, err = caenv.ParseAddrList(v, c.BeaconPort); err != nil {
			return c, fmt.Errorf("%s: %w", k, err)
		}
	}
	c.AutoBeaconAddrs = env.Bool(false, "EPICS_CAS_AUTO_BEACON_ADDR_LIST")
	if c.BeaconPeriod, err = env.Seconds(15*time.Second, 100*time.Millisecond, "EPICS_CAS_BEACON_PERIOD", "EPICS_CA_BEACON_PERIOD"); err != nil {
		return c, err
	}
	if c.MaxArrayBytes, err = env.Int(0, "EPICS_CA_MAX_ARRAY_BYTES"); err != nil {
		return c, err
	}
	if c.MaxArrayBytes > 0 && c.MaxArrayBytes < wire.DefaultMaxArrayBytes {
		c.MaxArrayBytes = wire.DefaultMaxArrayBytes
	}
	return c, nil
}

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Port == 0 {
		c.Port = wire.DefaultServerPort
	}
	if len(c.Interfaces) == 0 {
		c.Interfaces = []netip.Addr{Loopback}
	}
	if c.BeaconPort == 0 {
		c.BeaconPort = wire.DefaultRepeaterPort
	}
	if c.BeaconPeriod <= 0 {
		c.BeaconPeriod = 15 * time.Second
	}
	if c.MaxArrayBytes <= 0 {
		c.MaxArrayBytes = wire.DefaultMaxPayload
	}
}
