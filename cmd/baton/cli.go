package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/baton-gitops/baton/internal/config"
)

// exitError is an error that carries its own exit code (diff: 1 means
// differences, 2 a failure).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// errDifferences is what diff returns when it found differences: exit code
// 1 without an error message.
var errDifferences = errors.New("differences found")

// verb is one subcommand.
type verb struct {
	name    string
	summary string
	// usage is the synopsis after "baton"; example is shown by --help.
	usage, example string
	// description explains the verb in a few lines.
	description string
	// flags registers the verb's own flags; run does the work.
	flags func(fs *flag.FlagSet) func(ctx context.Context, c *cli, args []string) error
}

// cli is one invocation: its streams and the global flags.
type cli struct {
	stdout, stderr io.Writer
	configPath     string
	kubeconfig     string
}

// verbs lists the subcommands in the order help shows them.
func verbs() []verb {
	return []verb{agentVerb(), renderVerb(), diffVerb(), statusVerb(), promoteVerb(), setImageVerb(), versionVerb()}
}

// run executes one command line and returns the process exit code: 0 for
// success, 1 for a failure (or, for diff, differences), 2 for a usage
// error (and a diff that failed). Errors are written to stderr, one line
// each.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := &cli{stdout: stdout, stderr: stderr}
	// Global flags may also come before the verb: baton --config x render.
	global := flag.NewFlagSet("baton", flag.ContinueOnError)
	global.SetOutput(io.Discard)
	c.globalFlags(global)
	if err := global.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			c.help()
			return 0
		}
		fmt.Fprintf(stderr, "baton: %v (see baton --help)\n", err)
		return 2
	}
	args = global.Args()
	if len(args) == 0 || args[0] == "help" {
		if len(args) > 1 {
			args = []string{args[1], "--help"}
		} else {
			c.help()
			if len(args) == 0 {
				return 2
			}
			return 0
		}
	}
	var v *verb
	for _, candidate := range verbs() {
		if candidate.name == args[0] {
			v = &candidate
			break
		}
	}
	if v == nil {
		fmt.Fprintf(stderr, "baton: unknown command %q (see baton --help)\n", args[0])
		return 2
	}
	fs := flag.NewFlagSet("baton "+v.name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.globalFlags(fs)
	do := v.flags(fs)
	fs.Usage = func() { c.verbHelp(v, fs) }
	positional, err := parseInterspersed(fs, args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2 // the flag package has printed the error and the usage
	}
	err = do(ctx, c, positional)
	if err == nil {
		return 0
	}
	if errors.Is(err, errDifferences) {
		return 1
	}
	code := 1
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	for _, line := range strings.Split(err.Error(), "\n") {
		fmt.Fprintf(stderr, "baton %s: %s\n", v.name, line)
	}
	return code
}

// parseInterspersed parses flags wherever they appear among the
// positional arguments, as kubectl does (`set-image app=x:1 --env dev`);
// the flag package alone stops at the first positional one. "--" ends the
// flags.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(positional, rest...), nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// globalFlags registers the flags every verb takes.
func (c *cli) globalFlags(fs *flag.FlagSet) {
	def := os.Getenv("BATON_CONFIG")
	if def == "" {
		def = "baton.yaml"
	}
	if c.configPath == "" {
		c.configPath = def
	}
	fs.StringVar(&c.configPath, "config", c.configPath, "configuration `file` ($BATON_CONFIG, else baton.yaml)")
	fs.StringVar(&c.kubeconfig, "kubeconfig", c.kubeconfig, "kubeconfig `file` (default: in-cluster, then $KUBECONFIG, then ~/.kube/config)")
}

func (c *cli) help() {
	w := c.stderr
	fmt.Fprintln(w, "baton carries releases from dev through staging to prod, with git as the only source of truth.")
	fmt.Fprintln(w, "\nUsage: baton COMMAND [flags]\n\nCommands:")
	for _, v := range verbs() {
		fmt.Fprintf(w, "  %-10s %s\n", v.name, v.summary)
	}
	fmt.Fprintln(w, "\nGlobal flags (every command):\n  --config FILE      configuration file ($BATON_CONFIG, else baton.yaml)")
	fmt.Fprintln(w, "  --kubeconfig FILE  kubeconfig (default: in-cluster, then $KUBECONFIG, then ~/.kube/config)")
	fmt.Fprintln(w, "\nRun 'baton COMMAND --help' for a command's flags and an example.")
}

func (c *cli) verbHelp(v *verb, fs *flag.FlagSet) {
	w := c.stderr
	fmt.Fprintf(w, "Usage: baton %s\n\n%s\n\nExample:\n", v.usage, v.description)
	for _, line := range strings.Split(v.example, "\n") {
		fmt.Fprintf(w, "  %s\n", line)
	}
	fmt.Fprintln(w, "\nFlags:")
	// Own flags first, then the global ones, each group sorted.
	var own, global []*flag.Flag
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name == "config" || f.Name == "kubeconfig" {
			global = append(global, f)
		} else {
			own = append(own, f)
		}
	})
	sort.Slice(own, func(i, j int) bool { return own[i].Name < own[j].Name })
	for _, f := range append(own, global...) {
		name, usage := flag.UnquoteUsage(f)
		dash := "--"
		if len(f.Name) == 1 {
			dash = "-"
		}
		line := "  " + dash + f.Name
		if name != "" {
			line += " " + name
		}
		if f.DefValue != "" && f.DefValue != "false" && f.Name != "config" {
			usage += fmt.Sprintf(" (default %q)", f.DefValue)
		}
		fmt.Fprintf(w, "%-28s %s\n", line, usage)
	}
}

// loadConfig reads the configuration named by --config.
func (c *cli) loadConfig() (*config.Config, error) {
	return config.Load(c.configPath)
}

// environment returns the named environment or an error naming the known
// ones.
func environment(cfg *config.Config, name string) (*config.Environment, error) {
	if name == "" {
		return nil, &exitError{2, errors.New("--env is required")}
	}
	if e := cfg.Environment(name); e != nil {
		return e, nil
	}
	var names []string
	for _, e := range cfg.Environments {
		names = append(names, e.Name)
	}
	return nil, fmt.Errorf("no environment %q in the configuration (known: %s)", name, strings.Join(names, ", "))
}

// noArgs refuses positional arguments for verbs that take none.
func noArgs(args []string) error {
	if len(args) > 0 {
		return &exitError{2, fmt.Errorf("unexpected argument %q", args[0])}
	}
	return nil
}
