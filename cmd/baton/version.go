package main

import (
	"context"
	"flag"
	"fmt"
	"runtime"
)

// version is stamped at build time with -ldflags "-X main.version=...".
var version = "dev"

func versionVerb() verb {
	return verb{
		name:        "version",
		summary:     "print the version",
		usage:       "version [-o json|yaml]",
		description: "Prints baton's version and the Go version it was built with.",
		example:     "baton version\nbaton version -o json",
		flags: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
			format := fs.String("o", "", "output `format`: json or yaml (default: one line)")
			return func(_ context.Context, c *cli, args []string) error {
				if err := noArgs(args); err != nil {
					return err
				}
				v := struct {
					Version   string `json:"version"`
					GoVersion string `json:"goVersion"`
				}{version, runtime.Version()}
				switch *format {
				case "":
					_, err := fmt.Fprintf(c.stdout, "baton %s (%s)\n", v.Version, v.GoVersion)
					return err
				case formatJSON:
					return writeJSON(c.stdout, v)
				case formatYAML:
					return writeYAML(c.stdout, v)
				}
				return checkFormat(*format, formatJSON, formatYAML)
			}
		},
	}
}
