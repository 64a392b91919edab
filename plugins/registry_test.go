package plugins_test

import (
	"testing"

	"github.com/pvhub/pvhub/plugins"
	"github.com/pvhub/pvhub/plugins/plugintest/echotransport"
)

func TestRegistry(t *testing.T) {
	r := plugins.NewRegistry()
	if _, ok := r.New("echo"); ok || len(r.Names()) != 0 {
		t.Fatal("a new registry is not empty")
	}
	if err := r.Register("echo", func() plugins.Transport { return echotransport.New() }); err != nil {
		t.Fatal(err)
	}
	if err := r.Register("echo", func() plugins.Transport { return echotransport.New() }); err == nil {
		t.Error("a second registration of the same name was accepted")
	}
	if tr, ok := r.New("echo"); !ok || tr == nil {
		t.Error("registered transport not found")
	}
	if got := r.Names(); len(got) != 1 || got[0] != "echo" {
		t.Errorf("names %v", got)
	}
}
