package main

import (
	"bytes"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(nil, &out, &errb); code != 2 || !strings.Contains(errb.String(), "Usage") {
		t.Errorf("no arguments: %d %q", code, errb.String())
	}
	if code := run([]string{"frobnicate"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), `unknown command "frobnicate"`) {
		t.Errorf("unknown command: %d %q", code, errb.String())
	}
	if code := run([]string{"version"}, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "pvhub ") {
		t.Errorf("version: %d %q", code, out.String())
	}
	errb.Reset()
	if code := run([]string{"serve", "-log-level", "loud"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "log.level: must be one of") {
		t.Errorf("bad log level: %d %q", code, errb.String())
	}
}
