package config

import (
	"sync"
	"testing"
)

func TestWriteAllowed(t *testing.T) {
	for _, tc := range []struct {
		name  string
		w     WriteConfig
		pv    string
		ok    bool
		rule  string
		write string
	}{
		{"default allow", Default().Write, "RELAY:x", true, `write.allow "RELAY:*"`, ""},
		{"default allow, other PV", Default().Write, "SR:current", false, "no write.allow pattern matches", ""},
		{"prefix alone", Default().Write, "RELAY:", true, `write.allow "RELAY:*"`, ""},
		{"deny wins", WriteConfig{Allow: []string{"*"}, Deny: []string{"SR:*"}}, "SR:current", false, `write.deny "SR:*"`, ""},
		{"deny wins over an exact allow", WriteConfig{Allow: []string{"SR:current"}, Deny: []string{"SR:*"}}, "SR:current", false, `write.deny "SR:*"`, ""},
		{"deny does not match", WriteConfig{Allow: []string{"*"}, Deny: []string{"SR:*"}}, "BL:x", true, `write.allow "*"`, ""},
		{"first allow that matches", WriteConfig{Allow: []string{"A:*", "A:b*"}}, "A:bc", true, `write.allow "A:*"`, ""},
		{"question mark", WriteConfig{Allow: []string{"A:?"}}, "A:bc", false, "no write.allow pattern matches", ""},
		{"class", WriteConfig{Allow: []string{"BL[0-9]:*"}}, "BL7:x", true, `write.allow "BL[0-9]:*"`, ""},
		{"star matches slash", WriteConfig{Allow: []string{"*"}, Deny: []string{"SR:*"}}, "SR:a/b", false, `write.deny "SR:*"`, ""},
		{"escaped star", WriteConfig{Allow: []string{`A\*`}}, "A*", true, `write.allow "A\\*"`, ""},
		{"escaped star is literal", WriteConfig{Allow: []string{`A\*`}}, "Ab", false, "no write.allow pattern matches", ""},
		{"empty allow", WriteConfig{}, "RELAY:x", false, "no write.allow pattern matches", ""},
		{"bad deny pattern denies", WriteConfig{Allow: []string{"*"}, Deny: []string{"["}}, "x", false, `write.deny "["`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, rule := tc.w.Allowed(tc.pv)
			if ok != tc.ok || rule != tc.rule {
				t.Fatalf("Allowed(%q) = %v, %s; want %v, %s", tc.pv, ok, rule, tc.ok, tc.rule)
			}
			if ok, rule := NewWriteRules(tc.w).Allowed(tc.pv); ok != tc.ok || rule != tc.rule {
				t.Fatalf("WriteRules.Allowed(%q) = %v, %s", tc.pv, ok, rule)
			}
		})
	}
}

func TestDefaultAllowFollowsPrefix(t *testing.T) {
	c := mustLoad(t, "relay:\n  prefix: \"BL7:\"\n", nil, nil)
	if ok, rule := c.Write.Allowed("BL7:x"); !ok || rule != `write.allow "BL7:*"` {
		t.Errorf("BL7:x: %v, %s", ok, rule)
	}
	if ok, _ := c.Write.Allowed("RELAY:x"); ok {
		t.Error("the old prefix is still writable")
	}
}

func TestWriteRulesReload(t *testing.T) {
	var zero WriteRules
	if ok, _ := zero.Allowed("x"); ok {
		t.Error("the zero WriteRules allows")
	}
	allow := []string{"A:*"}
	r := NewWriteRules(WriteConfig{Allow: allow})
	allow[0] = "B:*"
	if ok, _ := r.Allowed("A:x"); !ok {
		t.Error("WriteRules shares the caller's slice")
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 1000 {
				r.Allowed("A:x")
			}
		})
	}
	r.Set(WriteConfig{Allow: []string{"A:*"}, Deny: []string{"A:x"}})
	wg.Wait()
	if ok, rule := r.Allowed("A:x"); ok || rule != `write.deny "A:x"` {
		t.Errorf("after Set: %v, %s", ok, rule)
	}
	if got := r.Get(); len(got.Deny) != 1 {
		t.Errorf("Get() = %+v", got)
	}
}
