package config

import (
	_ "embed"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// exampleYAML is pvhub.example.yaml: every key set to its default, each with a
// comment that describes it. Reference takes its descriptions from there.
//
//go:embed pvhub.example.yaml
var exampleYAML []byte

// Reference returns the configuration reference, docs/configuration.md, as
// Markdown: how the layers combine, then one table per section (relay, ca,
// transports, write, log) with every key's type, default, environment
// variables, reload behaviour and description.
//
// The keys come from the typed fields and the transport keys, so none can be
// left out; the defaults from Default; the EPICS variables from the EPICS layer
// of Load; the reload behaviour from Config.Reloadable; and the descriptions
// from the comments of pvhub.example.yaml. Reference returns an error when the
// example lacks a key or a key's comment.
func Reference() ([]byte, error) {
	return reference(exampleYAML)
}

// exampleFile names the example in Reference's errors and in the reference.
const exampleFile = "config/pvhub.example.yaml"

// epicsParen matches " (EPICS_NAME)" in a description: the reference lists
// the variables in a column of their own.
var epicsParen = regexp.MustCompile(`\s*\(EPICS_[A-Z0-9_]+\)`)

func reference(example []byte) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(example, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", exampleFile, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: not a mapping of keys", exampleFile)
	}
	ex := doc.Content[0]
	comment := func(key string) (string, error) {
		k := keyNode(ex, key)
		if k == nil {
			return "", fmt.Errorf("%s lacks the key %s", exampleFile, key)
		}
		if k.HeadComment == "" {
			return "", fmt.Errorf("%s has no comment above %s: write one, it is the key's description in the reference", exampleFile, key)
		}
		return commentText(k.HeadComment), nil
	}

	d := Default()
	var b strings.Builder
	b.WriteString(referenceIntro)
	for _, section := range childrenOf("") {
		intro, err := comment(section)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&b, "\n## %s\n\n%s\n\n", section, mdText(intro))
		if section == "transports" {
			if err := transportsReference(&b, ex, d); err != nil {
				return nil, err
			}
			continue
		}
		b.WriteString(tableHead)
		for i := range fields {
			f := &fields[i]
			if !strings.HasPrefix(f.key, section+".") {
				continue
			}
			desc, err := comment(f.key)
			if err != nil {
				return nil, err
			}
			desc = strings.TrimSpace(epicsParen.ReplaceAllString(desc, ""))
			// A key's own rule, unless the description already states it.
			if f.want != kindWant[f.kind] && !strings.Contains(desc, f.want) {
				desc += " Valid: " + f.want + "."
			}
			desc = mdText(desc)
			def := code(yamlText(f.value(d)))
			if f.derived {
				def += " (derived)"
			}
			env := []string{code(envName(f.key))}
			if names := epicsNames(f.key); len(names) > 0 {
				env = append(env, epicsCell(names))
			}
			row(&b, code(f.key), f.kind.String(), def, strings.Join(env, "<br>"), reloadText(d, f.key), desc)
		}
	}
	return []byte(b.String()), nil
}

// transportsReference writes the transports.<name> keys and the built-in
// transports.
func transportsReference(b *strings.Builder, ex *yaml.Node, d *Config) error {
	names := slices.Sorted(maps.Keys(builtinTransports))
	some := d.Transports[names[0]]
	b.WriteString(tableHead)
	for _, k := range transportKeys {
		desc, err := transportComment(ex, k)
		if err != nil {
			return err
		}
		var def string
		var kd kind
		switch k {
		case "enabled":
			kd, def = kindBool, code(yamlText(some.Enabled))
		case "listen":
			kd, def = kindString, "per transport, below"
		case "path":
			kd, def = kindString, code(yamlText(some.Path))
		default:
			return fmt.Errorf("config: the reference lacks the type and default of transports.<name>.%s", k)
		}
		row(b, code("transports.<name>."+k), kd.String(), def,
			code(EnvPrefix+"TRANSPORTS__<NAME>__"+strings.ToUpper(k)), reloadText(d, "transports."+names[0]+"."+k), mdText(desc))
	}

	b.WriteString("\nThe built-in transports run as processes of the pvhub executable (`pvhub plugin <name>`); each is enabled by default:\n\n")
	b.WriteString("| transport | default listen | options |\n|---|---|---|\n")
	for _, n := range names {
		readme := "transports/" + n + "/README.md"
		row(b, code(n), code(d.Transports[n].Listen), "["+readme+"](../"+readme+")")
	}
	b.WriteString(transportsOutro)
	return nil
}

// transportComment returns the comment above transports.<name>.<key> for the
// first transport of the example that has one.
func transportComment(ex *yaml.Node, key string) (string, error) {
	m := valueNode(ex, "transports")
	for i := 0; m != nil && m.Kind == yaml.MappingNode && i+1 < len(m.Content); i += 2 {
		if k := keyNode(m.Content[i+1], key); k != nil && k.HeadComment != "" {
			return commentText(k.HeadComment), nil
		}
	}
	return "", fmt.Errorf("%s has no comment above transports.<name>.%s in any transport: write one under the first, it is the key's description in the reference", exampleFile, key)
}

// keyNode returns the key node of a dotted key in the mapping m, or nil.
func keyNode(m *yaml.Node, key string) *yaml.Node {
	parts := strings.Split(key, ".")
	for i, p := range parts {
		if m == nil || m.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for j := 0; j+1 < len(m.Content); j += 2 {
			if m.Content[j].Value == p {
				if i == len(parts)-1 {
					return m.Content[j]
				}
				next = m.Content[j+1]
				break
			}
		}
		m = next
	}
	return nil
}

// valueNode returns the value node of a top-level key of the mapping m, or nil.
func valueNode(m *yaml.Node, key string) *yaml.Node {
	for j := 0; j+1 < len(m.Content); j += 2 {
		if m.Content[j].Value == key {
			return m.Content[j+1]
		}
	}
	return nil
}

// commentText turns a YAML comment into text: the "#" marks removed, lines
// joined with spaces, and a line holding "#" alone kept as a paragraph break.
func commentText(c string) string {
	var paras []string
	var cur []string
	for l := range strings.SplitSeq(c, "\n") {
		l = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "#"))
		if l == "" {
			if len(cur) > 0 {
				paras = append(paras, strings.Join(cur, " "))
				cur = nil
			}
			continue
		}
		cur = append(cur, l)
	}
	if len(cur) > 0 {
		paras = append(paras, strings.Join(cur, " "))
	}
	return strings.Join(paras, "\n\n")
}

// mdText escapes the characters that Markdown would read as markup (or as a
// table's cell boundary), so that text renders as written.
func mdText(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune("\\`*[]<>|", r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// code renders s as Markdown code, in a table cell.
func code(s string) string {
	return "`" + strings.ReplaceAll(s, "|", `\|`) + "`"
}

// yamlText renders a value as YAML flow text, as `pvhub config print` would
// write it, with durations in their shortest form (5m rather than 5m0s).
func yamlText(v any) string {
	switch v := v.(type) {
	case time.Duration:
		return shortDuration(v)
	case []string:
		if len(v) == 0 {
			return "[]"
		}
		var n yaml.Node
		if err := n.Encode(v); err == nil {
			n.Style = yaml.FlowStyle
			if out, err := yaml.Marshal(&n); err == nil {
				return strings.TrimSpace(string(out))
			}
		}
	case bool:
		return strconv.FormatBool(v)
	case int:
		return strconv.Itoa(v)
	}
	out, err := yaml.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return strings.TrimSpace(string(out))
}

// shortDuration is d.String() without zero trailing units: 5m, 1h, 1h30m.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// envName is the PVHUB_ variable that sets key.
func envName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "__"))
}

// epicsCell lists EPICS variables, the preferred first.
func epicsCell(names []string) string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = code(n)
	}
	return strings.Join(out, ", else ")
}

func reloadText(c *Config, key string) string {
	if c.Reloadable(key) {
		return "live"
	}
	return "restart"
}

const tableHead = "| key | type | default | environment | reload | description |\n|---|---|---|---|---|---|\n"

func row(b *strings.Builder, cells ...string) {
	b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
}

const referenceIntro = `<!-- Generated from package config by ` + "`make docs`" + `; do not edit. The descriptions
     are the comments of config/pvhub.example.yaml; the keys, types, defaults and
     variables come from the code. TestReferenceUpToDate fails when this file is stale. -->

# Configuration reference

This page lists every configuration key of ` + "`pvhub serve`" + `: its type, its default, the
environment variables that set it, whether a change applies on reload, and what it does.
[` + exampleFile + `](../` + exampleFile + `) holds every key set to its default, with the same
descriptions. ` + "`pvhub config print`" + ` shows the configuration in effect, ` + "`pvhub config check FILE`" + `
validates a file, and ` + "`pvhub config reference`" + ` prints this page.

## Layers

pvhub builds its configuration from these layers, each overriding the ones before it, key by key:

1. the defaults (the **default** column);
2. the standard EPICS variables (` + "`EPICS_CA_*`, `EPICS_CAS_*`" + `) of the **environment** column, where set;
3. the YAML file given with ` + "`pvhub serve -config FILE`" + `;
4. the ` + "`PVHUB_`" + ` variables of the **environment** column;
5. the command-line flags: ` + "`-set key=value`" + `, repeatable, such as ` + "`-set relay.max_pvs=50000`" + `,
   and ` + "`-log-level LEVEL`" + `, which sets ` + "`log.level`" + `.

A key that a layer leaves out, or that the file sets to null (` + "`key:`" + ` with no value), keeps the value
of the layers below. Unknown keys and bad values stop start-up; every problem is reported at once,
with the key, the reason and where the value came from:

` + "```" + `
relay.max_pvs: must be a positive integer, got "ten" (from PVHUB_RELAY__MAX_PVS)
` + "```" + `

A default marked *derived* follows another key when no layer sets it; the description says which.

## Environment variables and flags

A ` + "`PVHUB_`" + ` variable names a key in upper case, with ` + "`__`" + ` (two underscores) between its parts:
` + "`PVHUB_RELAY__AUTOSAVE__PATH`" + ` sets ` + "`relay.autosave.path`" + `, and ` + "`PVHUB_TRANSPORTS__MQTT__LISTEN`" + ` sets
` + "`transports.mqtt.listen`" + `. A single underscore stays part of a name: ` + "`PVHUB_RELAY__MAX_PVS`" + ` sets
` + "`relay.max_pvs`" + `.

Values from variables and from ` + "`-set`" + ` are text, read according to the key's type:

| type | in the file | as text |
|---|---|---|
| bool | ` + "`true`, `false`" + ` | ` + "`true`/`false`, `yes`/`no`, `on`/`off`, `1`/`0`" + `, in any case |
| integer | ` + "`10000`" + ` | ` + "`10000`" + ` |
| text | ` + "`\"RELAY:\"`" + ` (quote a trailing colon) | ` + "`RELAY:`" + ` |
| duration | ` + "`30s`, `1m30s`, `500ms`" + ` | the same |
| list | ` + "`[10.0.0.255, \"10.0.1.1:5070\"]`" + ` | entries separated by spaces or commas: ` + "`10.0.0.255 10.0.1.1:5070`" + ` |

An empty value sets an empty text or an empty list: ` + "`PVHUB_WRITE__ALLOW=`" + ` lets the transports
write nothing.

The EPICS variables are read as libca reads them: a blank value counts as unset, a YES/NO flag is
false when its value contains "no" in any case, periods are numbers of seconds
(` + "`EPICS_CA_CONN_TMO=30`" + `), and values below libca's minimums are raised to them. Where two EPICS
variables set one key, the first one set wins.

## Reload

On SIGHUP (` + "`systemctl reload pvhub`" + ` with [deploy/pvhub.service](../deploy/pvhub.service)), pvhub loads
every layer again and compares the result with the running configuration. A change to a key marked
**live** applies at once; any other change is logged as needing a restart and keeps its running
value until then. A change under a transport that is disabled before or after the reload counts as
live too, since that transport is stopped or started anyway. An invalid configuration is refused
as a whole: the running one stays, and the problems are logged. The environment and the flags are
those of the start.
`

const transportsOutro = `
The other keys of a transport, its options, are documented in ` + "`transports/<name>/README.md`" + `; pvhub
passes them to the plugin without checking them. Set through the environment or ` + "`-set`" + `, an
option reaches the plugin as text, under its name in lower case:
` + "`PVHUB_TRANSPORTS__WEBSOCKET__QUEUE_LIMIT=50000`" + ` sets ` + "`transports.websocket.queue_limit`" + `.

A transport that is not built in is run from ` + "`path`" + `, a plugin executable (see
[plugins/README.md](../plugins/README.md)):

` + "```yaml" + `
transports:
  mytransport:
    path: /usr/local/bin/pvhub-mytransport
    listen: 127.0.0.1:9000
` + "```" + `
`
