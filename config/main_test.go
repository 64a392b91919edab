package config

import (
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// load runs Load with file (written to a temporary file when not empty),
// environ and flags.
func load(t *testing.T, file string, environ []string, flags map[string]string) (*Config, error) {
	t.Helper()
	o := LoadOptions{Environ: environ, Flags: flags}
	if file != "" {
		o.File = writeFile(t, file)
	}
	return Load(o)
}

func mustLoad(t *testing.T, file string, environ []string, flags map[string]string) *Config {
	t.Helper()
	c, err := load(t, file, environ, flags)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return c
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	name := filepath.Join(t.TempDir(), "pvhub.yaml")
	if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return name
}
