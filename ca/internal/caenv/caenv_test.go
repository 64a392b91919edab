package caenv

import (
	"net/netip"
	"testing"
	"time"
)

func lookup(m map[string]string) Lookup {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestParseAddrList(t *testing.T) {
	got, err := ParseAddrList(" 127.0.0.1  10.0.0.1:7064\tlocalhost 127.0.0.1 ", 5064)
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.AddrPort{
		netip.MustParseAddrPort("127.0.0.1:5064"),
		netip.MustParseAddrPort("10.0.0.1:7064"),
	}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("got %v, want %v (localhost and the repeat are duplicates)", got, want)
	}
	for _, bad := range []string{"127.0.0.1:x", "127.0.0.1:70000", "::1", "[::1]:5064"} {
		if _, err := ParseAddrList(bad, 5064); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestLookup(t *testing.T) {
	l := lookup(map[string]string{"A": "  ", "B": "7", "YES": "YES", "NO": "no", "MIXED": "No thanks", "T": "0.5", "BAD": "x"})
	if v, k, ok := l.Get("A", "B"); !ok || v != "7" || k != "B" {
		t.Errorf("blank values must count as unset: %q %q %v", v, k, ok)
	}
	if !l.Bool(false, "YES") || l.Bool(true, "NO") || l.Bool(true, "MIXED") || !l.Bool(true, "UNSET") {
		t.Error("YES/NO rules")
	}
	if d, err := l.Seconds(time.Second, 0, "T"); err != nil || d != 500*time.Millisecond {
		t.Errorf("seconds %v %v", d, err)
	}
	if _, err := l.Seconds(time.Second, 0, "BAD"); err == nil {
		t.Error("bad seconds accepted")
	}
	if p, err := l.Port(5064, "B"); err != nil || p != 7 {
		t.Errorf("port %v %v", p, err)
	}
	if _, err := l.Port(5064, "BAD"); err == nil {
		t.Error("bad port accepted")
	}
}

func TestInterfaces(t *testing.T) {
	ifs, err := Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	lo := false
	for _, it := range ifs {
		lo = lo || it.Loopback && it.Addr == netip.MustParseAddr("127.0.0.1")
	}
	if !lo {
		t.Errorf("no loopback interface in %v", ifs)
	}
	bcs, err := BroadcastAddrs(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bcs {
		if b.IsLoopback() {
			t.Errorf("loopback broadcast address %v", b)
		}
	}
}
