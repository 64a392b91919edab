// Package caenv reads the EPICS_CA_* and EPICS_CAS_* environment variables and
// finds interface broadcast addresses, for the CA client and server.
package caenv

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Lookup returns an environment variable; empty values count as unset, as in EPICS.
type Lookup func(key string) (string, bool)

// Get returns the first of keys that is set to a non-blank value.
func (l Lookup) Get(keys ...string) (string, string, bool) {
	for _, k := range keys {
		if v, ok := l(k); ok && strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v), k, true
		}
	}
	return "", "", false
}

// Bool reads a YES/NO variable: a value containing "no" (any case) is false, as
// libca reads EPICS_CA_AUTO_ADDR_LIST; anything else set is true.
func (l Lookup) Bool(def bool, keys ...string) bool {
	v, _, ok := l.Get(keys...)
	if !ok {
		return def
	}
	return !strings.Contains(strings.ToLower(v), "no")
}

// Port reads a port number.
func (l Lookup) Port(def int, keys ...string) (int, error) {
	v, k, ok := l.Get(keys...)
	if !ok {
		return def, nil
	}
	p, err := strconv.Atoi(v)
	if err != nil || p < 1 || p > 65535 {
		return 0, fmt.Errorf("%s=%q: not a port number (1..65535)", k, v)
	}
	return p, nil
}

// Seconds reads a duration in (fractional) seconds, at least min.
func (l Lookup) Seconds(def time.Duration, min time.Duration, keys ...string) (time.Duration, error) {
	v, k, ok := l.Get(keys...)
	if !ok {
		return def, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f != f || f <= 0 || f > 1e6 {
		return 0, fmt.Errorf("%s=%q: not a positive number of seconds", k, v)
	}
	d := time.Duration(f * float64(time.Second))
	if d < min {
		d = min
	}
	return d, nil
}

// Int reads a positive integer.
func (l Lookup) Int(def int, keys ...string) (int, error) {
	v, k, ok := l.Get(keys...)
	if !ok {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s=%q: not a positive integer", k, v)
	}
	return n, nil
}

// ParseAddrList parses a whitespace-separated list of host[:port] entries (IPv4
// literals or host names), using defPort where an entry has none.
func ParseAddrList(s string, defPort int) ([]netip.AddrPort, error) {
	var out []netip.AddrPort
	for _, f := range strings.Fields(s) {
		host, port := f, defPort
		if i := strings.LastIndexByte(f, ':'); i >= 0 {
			p, err := strconv.Atoi(f[i+1:])
			if err != nil || p < 1 || p > 65535 {
				return nil, fmt.Errorf("address %q: bad port", f)
			}
			host, port = f[:i], p
		}
		addrs, err := resolve4(host)
		if err != nil {
			return nil, fmt.Errorf("address %q: %w", f, err)
		}
		for _, a := range addrs {
			out = appendUnique(out, netip.AddrPortFrom(a, uint16(port)))
		}
	}
	return out, nil
}

// ParseIPList parses a whitespace-separated list of IPv4 addresses or host names.
func ParseIPList(s string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, f := range strings.Fields(s) {
		addrs, err := resolve4(f)
		if err != nil {
			return nil, fmt.Errorf("address %q: %w", f, err)
		}
		for _, a := range addrs {
			dup := false
			for _, o := range out {
				dup = dup || o == a
			}
			if !dup {
				out = append(out, a)
			}
		}
	}
	return out, nil
}

func resolve4(host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		if !a.Is4() {
			return nil, fmt.Errorf("only IPv4 addresses are used by Channel Access")
		}
		return []netip.Addr{a}, nil
	}
	if host == "localhost" {
		return []netip.Addr{netip.AddrFrom4([4]byte{127, 0, 0, 1})}, nil
	}
	ips, err := net.LookupIP(host)
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, ip := range ips {
		if ip4 := ip.To4(); ip4 != nil {
			out = append(out, netip.AddrFrom4([4]byte(ip4)))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no IPv4 address")
	}
	return out, nil
}

func appendUnique(l []netip.AddrPort, a netip.AddrPort) []netip.AddrPort {
	for _, o := range l {
		if o == a {
			return l
		}
	}
	return append(l, a)
}

// Interface is an IPv4 address of a network interface.
type Interface struct {
	Name      string
	Addr      netip.Addr
	Broadcast netip.Addr // invalid when the interface has none
	Loopback  bool
}

// Interfaces lists the IPv4 addresses of the interfaces that are up.
func Interfaces() ([]Interface, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	var out []Interface
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagUp == 0 {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip4, mask := ipn.IP.To4(), ipn.Mask
			if ip4 == nil || len(mask) != 4 {
				continue
			}
			it := Interface{Name: ifc.Name, Addr: netip.AddrFrom4([4]byte(ip4)), Loopback: ifc.Flags&net.FlagLoopback != 0}
			if ifc.Flags&net.FlagBroadcast != 0 {
				var b [4]byte
				for i := range b {
					b[i] = ip4[i] | ^mask[i]
				}
				it.Broadcast = netip.AddrFrom4(b)
			}
			out = append(out, it)
		}
	}
	return out, nil
}

// BroadcastAddrs returns the broadcast addresses of the up, broadcast-capable,
// non-loopback interfaces; when only is non-empty, only of the interfaces that
// carry one of those addresses.
func BroadcastAddrs(only []netip.Addr) ([]netip.Addr, error) {
	ifs, err := Interfaces()
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, it := range ifs {
		if it.Loopback || !it.Broadcast.IsValid() {
			continue
		}
		if len(only) > 0 {
			match := false
			for _, a := range only {
				match = match || a == it.Addr || a.IsUnspecified()
			}
			if !match {
				continue
			}
		}
		out = append(out, it.Broadcast)
	}
	return out, nil
}
