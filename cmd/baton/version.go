package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version and commit are stamped at build time with -ldflags "-X
// main.version=... -X main.commit=..." (make build, make image). An
// unstamped build takes the commit the go command recorded, if any.
var (
	version = "dev"
	commit  = ""
)

// buildCommit is the stamped commit, else the one in the build information.
func buildCommit() string {
	if commit != "" {
		return commit
	}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "unknown"
}

func (c *cli) versionCommand() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:     "version [-o json|yaml]",
		Short:   "print the version",
		Long:    "Prints baton's version, the commit it was built from and the Go version it was built with.",
		Example: "baton version\nbaton version -o json",
		Args:    noArgs,
		RunE: func(*cobra.Command, []string) error {
			v := struct {
				Version   string `json:"version"`
				Commit    string `json:"commit"`
				GoVersion string `json:"goVersion"`
			}{version, buildCommit(), runtime.Version()}
			switch format {
			case "":
				_, err := fmt.Fprintf(c.stdout, "baton %s (commit %s, %s)\n", v.Version, v.Commit, v.GoVersion)
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
