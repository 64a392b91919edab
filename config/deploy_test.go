package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const (
	deployConfig = "../deploy/pvhub.yaml"
	deployUnit   = "../deploy/pvhub.service"
)

// deploy/pvhub.yaml loads, as it stands and with its network section
// uncommented, and fits deploy/pvhub.service.
func TestDeployConfig(t *testing.T) {
	c, err := Load(LoadOptions{File: deployConfig})
	if err != nil {
		t.Fatalf("Load(%s): %v", deployConfig, err)
	}
	if c.Log.Format != "json" || c.Relay.Autosave.Path == "" {
		t.Errorf("%s: log.format %q, relay.autosave.path %q; want json and a file", deployConfig, c.Log.Format, c.Relay.Autosave.Path)
	}
	for name, tr := range c.Transports {
		if !strings.HasPrefix(tr.Listen, "127.0.0.1:") {
			t.Errorf("%s: transports.%s.listen = %q; the network section is meant to be commented", deployConfig, name, tr.Listen)
		}
	}

	// The network section, uncommented.
	b, err := os.ReadFile(deployConfig)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	begin, end := strings.Index(text, "# BEGIN network\n"), strings.Index(text, "# END network")
	if begin < 0 || end < begin {
		t.Fatalf("%s: no network section", deployConfig)
	}
	var lines []string
	for _, l := range strings.Split(text[begin:end], "\n") {
		if rest, ok := strings.CutPrefix(l, "# "); ok && (rest == "ca:" || len(lines) > 0) {
			lines = append(lines, rest)
		}
	}
	opened, err := Load(LoadOptions{File: writeFile(t, text[:begin]+strings.Join(lines, "\n")+"\n")})
	if err != nil {
		t.Fatalf("%s with its network section uncommented: %v", deployConfig, err)
	}
	if !reflect.DeepEqual(opened.CA.IntfAddrList, []string{"0.0.0.0"}) || !opened.CA.AutoAddrList || !opened.CA.AutoBeaconAddrList {
		t.Errorf("network section: ca = %+v", opened.CA)
	}
	for name, tr := range opened.Transports {
		if !strings.HasPrefix(tr.Listen, "0.0.0.0:") {
			t.Errorf("network section: transports.%s.listen = %q", name, tr.Listen)
		}
	}
	if opened.Relay.Autosave.Path != c.Relay.Autosave.Path || opened.Log.Format != "json" {
		t.Errorf("network section: the rest of the file was lost: %+v", opened)
	}

	// The unit reads this file, and gives the service a writable directory
	// for the autosave file.
	u, err := os.ReadFile(deployUnit)
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string][]string{}
	for _, l := range strings.Split(string(u), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok && !strings.HasPrefix(l, "#") {
			settings[k] = append(settings[k], v)
		}
	}
	one := func(k string) string {
		if len(settings[k]) != 1 {
			t.Errorf("%s: %s is set %d times, want once", deployUnit, k, len(settings[k]))
			return ""
		}
		return settings[k][0]
	}
	if exec := one("ExecStart"); !strings.HasSuffix(exec, " serve -config /etc/pvhub/pvhub.yaml") {
		t.Errorf("%s: ExecStart=%s does not read /etc/pvhub/pvhub.yaml", deployUnit, exec)
	}
	if reload := one("ExecReload"); !strings.Contains(reload, "-HUP $MAINPID") {
		t.Errorf("%s: ExecReload=%s does not send SIGHUP", deployUnit, reload)
	}
	if dir := filepath.Join("/var/lib", one("StateDirectory")); filepath.Dir(c.Relay.Autosave.Path) != dir {
		t.Errorf("relay.autosave.path %s is not in the unit's StateDirectory %s", c.Relay.Autosave.Path, dir)
	}
}
