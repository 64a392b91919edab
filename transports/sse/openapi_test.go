package sse

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
)

// TestOpenAPI checks the served description: valid JSON, OpenAPI 3, every route the mux
// serves described with each of its methods (and nothing else), every reference resolved.
func TestOpenAPI(t *testing.T) {
	f := start(t, nil)
	r := f.do("GET", OpenAPIPath, "")
	r.expect(t, 200, "")
	if r.body != string(openAPI) {
		t.Fatal("the served description is not the embedded one")
	}
	var raw map[string]any
	if err := json.Unmarshal(openAPI, &raw); err != nil {
		t.Fatalf("openapi.json is not JSON: %v", err)
	}
	if v, _ := raw["openapi"].(string); !strings.HasPrefix(v, "3.") {
		t.Fatalf("openapi version %q", v)
	}
	paths, _ := raw["paths"].(map[string]any)
	methodKeys := []string{"get", "put", "post", "delete", "patch", "head", "options", "trace"}
	served := map[string]bool{}
	for _, rt := range routes {
		served[rt.openapi] = true
		item, ok := paths[rt.openapi].(map[string]any)
		if !ok {
			t.Errorf("%s is served but not described", rt.openapi)
			continue
		}
		var described []string
		for _, m := range methodKeys {
			if _, ok := item[m]; ok {
				described = append(described, strings.ToUpper(m))
			}
		}
		if !slices.Equal(described, rt.methods) {
			t.Errorf("%s: methods %v described, %v served", rt.openapi, described, rt.methods)
		}
		for _, m := range rt.methods {
			op, _ := item[strings.ToLower(m)].(map[string]any)
			resp, _ := op["responses"].(map[string]any)
			if resp["200"] == nil || resp["405"] == nil {
				t.Errorf("%s %s: responses %v lack 200 or 405", m, rt.openapi, slices.Sorted(maps.Keys(resp)))
			}
		}
	}
	for p := range paths {
		if !served[p] {
			t.Errorf("%s is described but not served", p)
		}
	}
	// Every $ref points into the document.
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				if k == "$ref" {
					ref, _ := e.(string)
					if !resolves(raw, ref) {
						t.Errorf("unresolved $ref %q", ref)
					}
					continue
				}
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(raw)
	// The routes' patterns match their description's paths.
	for _, rt := range routes {
		if strings.ReplaceAll(rt.pattern, "{name...}", "{name}") != rt.openapi {
			t.Errorf("pattern %s described as %s", rt.pattern, rt.openapi)
		}
	}
}

func resolves(doc map[string]any, ref string) bool {
	p, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return false
	}
	var cur any = doc
	for _, part := range strings.Split(p, "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return false
		}
		if cur, ok = m[part]; !ok {
			return false
		}
	}
	return true
}
