// Command testhost launches the plugin given as its argument, prints
// "PLUGIN_PID=<pid>" and waits, so that a test can kill it and check that the
// plugin dies with it.
package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"

	"github.com/pvhub/pvhub/plugins"
)

type nopHost struct{}

func (nopHost) Subscribe(...string)              {}
func (nopHost) Unsubscribe(...string)            {}
func (nopHost) Put(string, plugins.Data, uint64) {}

func main() {
	p, err := plugins.Launch(context.Background(), exec.Command(os.Args[1]), plugins.Config{Name: "orphan-check"}, nopHost{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("PLUGIN_PID=%d\n", p.Pid())
	select {}
}
