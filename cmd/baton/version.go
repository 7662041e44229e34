package main

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"
)

// version is stamped at build time with -ldflags "-X main.version=...".
var version = "dev"

func (c *cli) versionCommand() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:     "version [-o json|yaml]",
		Short:   "print the version",
		Long:    "Prints baton's version and the Go version it was built with.",
		Example: "baton version\nbaton version -o json",
		Args:    noArgs,
		RunE: func(*cobra.Command, []string) error {
			v := struct {
				Version   string `json:"version"`
				GoVersion string `json:"goVersion"`
			}{version, runtime.Version()}
			switch format {
			case "":
				_, err := fmt.Fprintf(c.stdout, "baton %s (%s)\n", v.Version, v.GoVersion)
				return err
			case formatJSON:
				return writeJSON(c.stdout, v)
			case formatYAML:
				return writeYAML(c.stdout, v)
			}
			return checkFormat(format, formatJSON, formatYAML)
		},
	}
	outputFlag(cmd, &format, "", formatJSON, formatYAML)
	return cmd
}
