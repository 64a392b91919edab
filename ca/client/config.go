package client

import (
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/user"
	"time"

	"github.com/pvhub/pvhub/ca/internal/caenv"
	"github.com/pvhub/pvhub/ca/wire"
)

// Loopback is 127.0.0.1, where searches go when nothing else is configured.
var Loopback = netip.AddrFrom4([4]byte{127, 0, 0, 1})

// Config configures a Client. The zero value searches 127.0.0.1 at the standard
// port and never broadcasts.
type Config struct {
	// AddrList receives UDP searches (EPICS_CA_ADDR_LIST).
	AddrList []netip.AddrPort
	// AutoAddrList adds the broadcast addresses of the machine's interfaces
	// (EPICS_CA_AUTO_ADDR_LIST). Off by default: pvhub never broadcasts unless
	// configured to.
	AutoAddrList bool
	// NameServers are searched over TCP (EPICS_CA_NAME_SERVERS).
	NameServers []netip.AddrPort
	// ServerPort is the default server port for addresses without one
	// (EPICS_CA_SERVER_PORT); 5064 by default.
	ServerPort int
	// RepeaterPort is where beacons are collected (EPICS_CA_REPEATER_PORT); 5065 by default.
	RepeaterPort int
	// NoRepeater disables registering with (or starting) a repeater; restarted
	// servers are then found by the search schedule alone.
	NoRepeater bool
	// ConnTimeout is the silence after which a circuit is probed with an echo
	// (EPICS_CA_CONN_TMO); 30 s by default.
	ConnTimeout time.Duration
	// EchoTimeout is how long an echo may stay unanswered before the circuit is
	// declared dead; 5 s by default.
	EchoTimeout time.Duration
	// MaxSearchPeriod caps the interval between searches for one channel
	// (EPICS_CA_MAX_SEARCH_PERIOD); 300 s by default, at least 60 s.
	MaxSearchPeriod time.Duration
	// MaxArrayBytes bounds every payload received (EPICS_CA_MAX_ARRAY_BYTES);
	// wire.DefaultMaxPayload by default.
	MaxArrayBytes int
	// User and Host identify the client to servers (CLIENT_NAME, HOST_NAME);
	// the login name and host name by default.
	User, Host string
	// Logger receives one line per significant event; nil discards.
	Logger *slog.Logger
}

// ConfigFromEnv returns a configuration from the EPICS_CA_* variables found by
// lookup (os.LookupEnv when nil), with pvhub's loopback defaults for anything unset.
func ConfigFromEnv(lookup func(string) (string, bool)) (Config, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	env := caenv.Lookup(lookup)
	var c Config
	var err error
	if c.ServerPort, err = env.Port(wire.DefaultServerPort, "EPICS_CA_SERVER_PORT"); err != nil {
		return c, err
	}
	if c.RepeaterPort, err = env.Port(wire.DefaultRepeaterPort, "EPICS_CA_REPEATER_PORT"); err != nil {
		return c, err
	}
	if v, k, ok := env.Get("EPICS_CA_ADDR_LIST"); ok {
		if c.AddrList, err = caenv.ParseAddrList(v, c.ServerPort); err != nil {
			return c, fmt.Errorf("%s: %w", k, err)
		}
	}
	if v, k, ok := env.Get("EPICS_CA_NAME_SERVERS"); ok {
		if c.NameServers, err = caenv.ParseAddrList(v, c.ServerPort); err != nil {
			return c, fmt.Errorf("%s: %w", k, err)
		}
	}
	c.AutoAddrList = env.Bool(false, "EPICS_CA_AUTO_ADDR_LIST")
	if c.ConnTimeout, err = env.Seconds(30*time.Second, 100*time.Millisecond, "EPICS_CA_CONN_TMO"); err != nil {
		return c, err
	}
	if c.MaxSearchPeriod, err = env.Seconds(300*time.Second, 60*time.Second, "EPICS_CA_MAX_SEARCH_PERIOD"); err != nil {
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
	if c.ServerPort == 0 {
		c.ServerPort = wire.DefaultServerPort
	}
	if c.RepeaterPort == 0 {
		c.RepeaterPort = wire.DefaultRepeaterPort
	}
	if c.ConnTimeout <= 0 {
		c.ConnTimeout = 30 * time.Second
	}
	if c.EchoTimeout <= 0 {
		c.EchoTimeout = 5 * time.Second
	}
	if c.MaxSearchPeriod <= 0 {
		c.MaxSearchPeriod = 300 * time.Second
	}
	if c.MaxArrayBytes <= 0 {
		c.MaxArrayBytes = wire.DefaultMaxPayload
	}
	if c.User == "" {
		c.User = os.Getenv("USER")
		if c.User == "" {
			if u, err := user.Current(); err == nil {
				c.User = u.Username
			}
		}
	}
	if c.Host == "" {
		c.Host, _ = os.Hostname()
	}
}
