package config

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

var update = flag.Bool("update", false, "rewrite docs/configuration.md from Reference (make docs)")

const referenceFile = "../docs/configuration.md"

// docs/configuration.md is what Reference renders; `make docs` rewrites it.
func TestReferenceUpToDate(t *testing.T) {
	want, err := Reference()
	if err != nil {
		t.Fatalf("Reference: %v", err)
	}
	if *update {
		if err := os.MkdirAll(filepath.Dir(referenceFile), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(referenceFile, want, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", referenceFile)
		return
	}
	got, err := os.ReadFile(referenceFile)
	if err != nil {
		t.Fatalf("docs/configuration.md is missing: run `make docs` (%v)", err)
	}
	if !bytes.Equal(got, want) {
		g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
		i := 0
		for i < len(g) && i < len(w) && g[i] == w[i] {
			i++
		}
		line := func(l []string) string {
			if i < len(l) {
				return l[i]
			}
			return "(end of file)"
		}
		t.Fatalf("docs/configuration.md is out of date: run `make docs`\nfirst difference, line %d:\nfile:      %s\nReference: %s",
			i+1, line(g), line(w))
	}
}

func TestReferenceListsEverything(t *testing.T) {
	b, err := Reference()
	if err != nil {
		t.Fatal(err)
	}
	ref := string(b)
	var want []string
	for _, f := range fields {
		want = append(want, "| `"+f.key+"` | "+f.kind.String()+" | ", "`"+envName(f.key)+"`")
		for _, n := range epicsNames(f.key) {
			want = append(want, "`"+n+"`")
		}
	}
	for _, k := range transportKeys {
		want = append(want, "| `transports.<name>."+k+"` |", "`PVHUB_TRANSPORTS__<NAME>__"+strings.ToUpper(k)+"`")
	}
	for n, listen := range builtinTransports {
		want = append(want, "| `"+n+"` | `"+listen+"` |", "(../transports/"+n+"/README.md)")
	}
	for _, s := range childrenOf("") {
		want = append(want, "\n## "+s+"\n")
	}
	want = append(want, "PVHUB_RELAY__AUTOSAVE__PATH", "-set key=value", "SIGHUP",
		"| `write.allow` | list | `['RELAY:*']` (derived) | `PVHUB_WRITE__ALLOW` | live |",
		"| `ca.max_search_period` | duration | `5m` |",
		"| `ca.server_port` | integer | `5064` | `PVHUB_CA__SERVER_PORT`<br>`EPICS_CAS_SERVER_PORT`, else `EPICS_CA_SERVER_PORT` | restart |",
		"Valid: a port number (1-65535).",
		"| `transports.<name>.enabled` | bool | `true` | `PVHUB_TRANSPORTS__<NAME>__ENABLED` | live |")
	for _, w := range want {
		if !strings.Contains(ref, w) {
			t.Errorf("the reference lacks %q", w)
		}
	}
	// The EPICS variables have a column of their own; descriptions do not repeat them.
	for _, l := range strings.Split(ref, "\n") {
		if strings.HasPrefix(l, "| `") && strings.Contains(l, "(EPICS_") {
			t.Errorf("a description names its EPICS variable: %s", l)
		}
	}
}

// Reference fails, naming the key, when the example lacks a key or its comment.
func TestReferenceNeedsEveryComment(t *testing.T) {
	edit := func(t *testing.T, change func(ex *yaml.Node) bool) []byte {
		t.Helper()
		var doc yaml.Node
		if err := yaml.Unmarshal(exampleYAML, &doc); err != nil {
			t.Fatal(err)
		}
		if !change(doc.Content[0]) {
			t.Fatal("nothing to change")
		}
		b, err := yaml.Marshal(&doc)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	expectErr := func(t *testing.T, example []byte, want string) {
		t.Helper()
		if _, err := reference(example); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("reference() = %v, want an error about %s", err, want)
		}
	}
	// The unchanged example, marshalled again, is fine.
	if _, err := reference(edit(t, func(*yaml.Node) bool { return true })); err != nil {
		t.Fatalf("the example, marshalled again: %v", err)
	}

	keys := childrenOf("")
	for _, f := range fields {
		keys = append(keys, f.key)
	}
	for _, key := range keys {
		t.Run(key, func(t *testing.T) {
			expectErr(t, edit(t, func(ex *yaml.Node) bool {
				k := keyNode(ex, key)
				if k == nil {
					return false
				}
				k.HeadComment = ""
				return true
			}), "comment above "+key)
		})
	}
	for _, k := range transportKeys {
		t.Run("transports.<name>."+k, func(t *testing.T) {
			expectErr(t, edit(t, func(ex *yaml.Node) bool {
				m := valueNode(ex, "transports")
				found := false
				for i := 1; i < len(m.Content); i += 2 {
					if n := keyNode(m.Content[i], k); n != nil {
						n.HeadComment, found = "", true
					}
				}
				return found
			}), "transports.<name>."+k)
		})
	}
	t.Run("missing key", func(t *testing.T) {
		expectErr(t, edit(t, func(ex *yaml.Node) bool {
			m := valueNode(ex, "relay")
			for i := 0; i+1 < len(m.Content); i += 2 {
				if m.Content[i].Value == "max_pvs" {
					m.Content = slices.Delete(m.Content, i, i+2)
					return true
				}
			}
			return false
		}), "lacks the key relay.max_pvs")
	})
}

// A key's comment in the example names the EPICS variables that set it, and
// no others.
func TestExampleCommentsNameTheirEPICSVariables(t *testing.T) {
	var doc yaml.Node
	if err := yaml.Unmarshal(exampleYAML, &doc); err != nil {
		t.Fatal(err)
	}
	epics := regexp.MustCompile(`EPICS_[A-Z0-9_]+`)
	for _, f := range fields {
		k := keyNode(doc.Content[0], f.key)
		if k == nil {
			t.Errorf("%s is not in the example", f.key)
			continue
		}
		names := epicsNames(f.key)
		named := epics.FindAllString(k.HeadComment, -1)
		for _, n := range named {
			if !slices.Contains(names, n) {
				t.Errorf("the comment of %s names %s, which does not set it (%v do)", f.key, n, names)
			}
		}
		if len(names) > 0 && !slices.Contains(named, names[0]) {
			t.Errorf("the comment of %s does not name %s, which sets it", f.key, names[0])
		}
	}
}

func TestReferenceText(t *testing.T) {
	for in, want := range map[string]string{
		"# one\n# two":           "one two",
		"# one\n#\n# two\n#   x": "one\n\ntwo x",
		"#no space":              "no space",
	} {
		if got := commentText(in); got != want {
			t.Errorf("commentText(%q) = %q, want %q", in, got, want)
		}
	}
	if got := mdText(`"<relay.prefix>*" [] a|b \c`); got != `"\<relay.prefix\>\*" \[\] a\|b \\c` {
		t.Errorf("mdText = %s", got)
	}
	for v, want := range map[any]string{
		true: "true", 5064: "5064", "": `""`, "RELAY:": "'RELAY:'", "info": "info",
	} {
		if got := yamlText(v); got != want {
			t.Errorf("yamlText(%#v) = %s, want %s", v, got, want)
		}
	}
	if got := yamlText([]string{"127.0.0.1", "a b"}); got != "[127.0.0.1, a b]" {
		t.Errorf("yamlText(list) = %s", got)
	}
	if got := yamlText([]string(nil)); got != "[]" {
		t.Errorf("yamlText(nil list) = %s", got)
	}
	for d, want := range map[string]string{"30s": "30s", "5m": "5m", "1h": "1h", "1h30m": "1h30m", "90s": "1m30s", "100ms": "100ms"} {
		if got := shortDuration(mustDuration(t, d)); got != want {
			t.Errorf("shortDuration(%s) = %s, want %s", d, got, want)
		}
	}
}

func mustDuration(t *testing.T, s string) time.Duration {
	t.Helper()
	d, ok := toDuration(s)
	if !ok {
		t.Fatalf("bad duration %q", s)
	}
	return d
}
