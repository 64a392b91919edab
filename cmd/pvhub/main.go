// Command pvhub is the pvhub daemon and its command-line tools.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "pvhub: not yet built")
	os.Exit(2)
}
