package config

import (
	"maps"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// YAML returns the configuration as a YAML document that Load reads back to
// the same Config: every key, in a fixed order, for `pvhub config print`.
func (c *Config) YAML() ([]byte, error) {
	root := mapping()
	for i := range fields {
		f := &fields[i]
		v := f.value(c)
		if d, ok := v.(time.Duration); ok {
			v = d.String()
		}
		if l, ok := v.([]string); ok && l == nil {
			v = []string{}
		}
		parts := strings.Split(f.key, ".")
		n := root
		for _, p := range parts[:len(parts)-1] {
			n = child(n, p)
		}
		if err := set(n, parts[len(parts)-1], v); err != nil {
			return nil, err
		}
		if f.key == "ca.max_array_bytes" {
			if err := c.transportsYAML(child(root, "transports")); err != nil {
				return nil, err
			}
		}
	}
	return yaml.Marshal(root)
}

func (c *Config) transportsYAML(n *yaml.Node) error {
	for _, name := range slices.Sorted(maps.Keys(c.Transports)) {
		t := c.Transports[name]
		tn := child(n, name)
		for _, kv := range []struct {
			k string
			v any
		}{{"enabled", t.Enabled}, {"listen", t.Listen}, {"path", t.Path}} {
			if kv.k == "path" && t.Path == "" {
				continue
			}
			if err := set(tn, kv.k, kv.v); err != nil {
				return err
			}
		}
		for _, k := range slices.Sorted(maps.Keys(t.Options)) {
			if err := set(tn, k, t.Options[k]); err != nil {
				return err
			}
		}
	}
	return nil
}

func mapping() *yaml.Node { return &yaml.Node{Kind: yaml.MappingNode} }

// child returns the mapping under key in n, adding it when missing.
func child(n *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	m := mapping()
	n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: key}, m)
	return m
}

func set(n *yaml.Node, key string, v any) error {
	var vn yaml.Node
	if err := vn.Encode(v); err != nil {
		return err
	}
	if vn.Kind == yaml.SequenceNode {
		vn.Style = yaml.FlowStyle
	}
	n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: key}, &vn)
	return nil
}
