package config

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/pvhub/pvhub/ca/client"
	"github.com/pvhub/pvhub/ca/server"
)

// ServerConfig returns the configuration of the relay's CA server, from ca.*.
// The caller sets its Source and Logger. A ca.server_port of 0 becomes Port -1
// (a free port). Host names in the address lists are
// resolved here, with the system resolver; IPv4 literals and "localhost" need
// no lookup. It fails when c does not validate or a host name does not resolve.
func (c *Config) ServerConfig() (server.Config, error) {
	if err := c.Validate(); err != nil {
		return server.Config{}, err
	}
	ca := c.CA
	sc := server.Config{
		Port:            ca.ServerPort,
		AutoBeaconAddrs: ca.AutoBeaconAddrList,
		BeaconPeriod:    ca.BeaconPeriod,
		BeaconPort:      ca.BeaconPort,
		MaxArrayBytes:   ca.MaxArrayBytes,
	}
	if sc.Port == 0 {
		sc.Port = -1
	}
	var p problems
	sc.Interfaces = resolveIPs(&p, "ca.intf_addr_list", ca.IntfAddrList)
	sc.IgnoreAddrs = resolveIPs(&p, "ca.ignore_addr_list", ca.IgnoreAddrList)
	sc.BeaconAddrs = resolveAddrPorts(&p, "ca.beacon_addr_list", ca.BeaconAddrList, ca.BeaconPort)
	return sc, p.err()
}

// ClientConfig returns the configuration of the CA client that reaches
// external PVs, from ca.*. The caller sets its Logger (and User and Host, if
// not the defaults). Host names are resolved as in ServerConfig.
func (c *Config) ClientConfig() (client.Config, error) {
	if err := c.Validate(); err != nil {
		return client.Config{}, err
	}
	ca := c.CA
	cc := client.Config{
		AutoAddrList:    ca.AutoAddrList,
		ServerPort:      ca.SearchPort,
		RepeaterPort:    ca.RepeaterPort,
		ConnTimeout:     ca.ConnTimeout,
		MaxSearchPeriod: ca.MaxSearchPeriod,
		MaxArrayBytes:   ca.MaxArrayBytes,
	}
	var p problems
	cc.AddrList = resolveAddrPorts(&p, "ca.addr_list", ca.AddrList, ca.SearchPort)
	cc.NameServers = resolveAddrPorts(&p, "ca.name_servers", ca.NameServers, ca.SearchPort)
	return cc, p.err()
}

func resolveIPs(p *problems, key string, list []string) []netip.Addr {
	var out []netip.Addr
	for i, s := range list {
		addrs, err := resolve4(s)
		if err != nil {
			p.add(fmt.Sprintf("%s[%d]", key, i), "%v", err)
		}
		for _, a := range addrs {
			if !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
	}
	return out
}

func resolveAddrPorts(p *problems, key string, list []string, defPort int) []netip.AddrPort {
	var out []netip.AddrPort
	for i, s := range list {
		host, port := s, defPort
		if j := strings.LastIndexByte(s, ':'); j >= 0 {
			host = s[:j]
			port, _ = strconv.Atoi(s[j+1:]) // checked by Validate
		}
		addrs, err := resolve4(host)
		if err != nil {
			p.add(fmt.Sprintf("%s[%d]", key, i), "%v", err)
		}
		for _, a := range addrs {
			if ap := netip.AddrPortFrom(a, uint16(port)); !slices.Contains(out, ap) {
				out = append(out, ap)
			}
		}
	}
	return out
}

func resolve4(host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a}, nil
	}
	if strings.EqualFold(host, "localhost") {
		return []netip.Addr{netip.AddrFrom4([4]byte{127, 0, 0, 1})}, nil
	}
	addrs, err := net.DefaultResolver.LookupNetIP(context.Background(), "ip4", host)
	if err != nil {
		return nil, fmt.Errorf("cannot resolve %q: %w", host, err)
	}
	for i, a := range addrs {
		addrs[i] = a.Unmap()
	}
	return addrs, nil
}
