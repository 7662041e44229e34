// Command baton is the Baton GitOps agent and its command-line interface.
package main

import (
	"fmt"
	"os"
)

// version is stamped at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if len(os.Args) > 1 && os.Args[1] == "version" {
		fmt.Println("baton", version)
		return
	}
	fmt.Fprintln(os.Stderr, "usage: baton version")
	os.Exit(2)
}
