package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"

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

// usageError is an exit code 2 error: the command line is wrong.
func usageError(format string, args ...any) error {
	return &exitError{2, fmt.Errorf(format, args...)}
}

// errDifferences is what diff returns when it found differences: exit code
// 1 without an error message.
var errDifferences = errors.New("differences found")

// errSilentUsage ends a command with exit code 2 after it printed its own
// help (baton with no command).
var errSilentUsage = &exitError{2, errors.New("")}

// defaultAgentNamespace is where the agent runs when neither --namespace
// nor a configuration says otherwise (manifests/ installs it there).
const defaultAgentNamespace = "baton-system"

// cli is one invocation: its streams, the configuration file and the
// Kubernetes connection flags.
type cli struct {
	stdout, stderr io.Writer
	configPath     string
	// kube holds kubectl's connection flags (--kubeconfig, --context,
	// --namespace, --as, --request-timeout, ...), resolved with kubectl's
	// loading rules.
	kube *genericclioptions.ConfigFlags
}

// run executes one command line and returns the process exit code: 0 for
// success, 1 for a failure (or, for diff and validate, differences or
// problems), 2 for a usage error (and a diff that failed). Errors are
// written to stderr, one line each, prefixed with the command.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := &cli{stdout: stdout, stderr: stderr}
	root := c.rootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
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
	if err == errSilentUsage {
		return code
	}
	msg := err.Error()
	if strings.HasPrefix(msg, "unknown command ") {
		// cobra: `unknown command "x" for "baton"` plus suggestions.
		first, _, _ := strings.Cut(msg, "\n")
		what, _, _ := strings.Cut(strings.TrimPrefix(first, "unknown command "), " for ")
		fmt.Fprintf(stderr, "baton: unknown command %s (see baton --help)\n", what)
		return 2
	}
	name := "baton"
	if cmd != nil {
		name = cmd.CommandPath()
	}
	for _, line := range strings.Split(msg, "\n") {
		fmt.Fprintf(stderr, "%s: %s\n", name, line)
	}
	return code
}

// rootCommand builds the command tree: every verb, the global flags and
// shell completion (cobra's `completion bash|zsh|fish|powershell`).
func (c *cli) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "baton",
		Short: "Carry releases from dev through staging to prod, with git as the only source of truth",
		Long: "baton carries releases from dev through staging to prod, with git as the only source of truth.\n\n" +
			"In CI:       baton validate; baton render --path .; baton diff --path . --env staging\n" +
			"On call:     baton status; baton suspend --env prod --reason ...; baton rollback --env prod\n" +
			"In cluster:  baton agent",
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SetOut(c.stderr)
			_ = cmd.Help()
			return errSilentUsage
		},
		// Completion scripts stay out of the way of --help's list.
		CompletionOptions: cobra.CompletionOptions{HiddenDefaultCmd: false},
	}
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return usageError("%v (see %s --help)", err, cmd.CommandPath())
	})
	def := os.Getenv("BATON_CONFIG")
	if def == "" {
		def = "baton.yaml"
	}
	c.configPath = def
	pf := root.PersistentFlags()
	pf.StringVar(&c.configPath, "config", def, "configuration file ($BATON_CONFIG, else baton.yaml)")
	c.kube = genericclioptions.NewConfigFlags(false)
	// --server is the agent's address in baton (status, promote), as
	// in the flux and argocd CLIs; the API server comes from the
	// kubeconfig.
	c.kube.APIServer = nil
	// No discovery cache on disk: baton asks for a handful of kinds.
	c.kube.CacheDir = nil
	c.kube.AddFlags(pf)
	_ = root.RegisterFlagCompletionFunc("context", c.completeContexts)
	_ = root.RegisterFlagCompletionFunc("config", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"yaml", "yml"}, cobra.ShellCompDirectiveFilterFileExt
	})

	root.AddGroup(&cobra.Group{ID: "ci", Title: "For CI pipelines:"},
		&cobra.Group{ID: "oncall", Title: "For the on-call engineer:"},
		&cobra.Group{ID: "agent", Title: "In the cluster:"})
	for _, cmd := range []*cobra.Command{c.validateCommand(), c.renderCommand(), c.diffCommand(), c.setImageCommand()} {
		cmd.GroupID = "ci"
		root.AddCommand(cmd)
	}
	for _, cmd := range []*cobra.Command{c.statusCommand(), c.historyCommand(), c.suspendCommand(), c.resumeCommand(),
		c.syncCommand(), c.rollbackCommand(), c.promoteCommand()} {
		cmd.GroupID = "oncall"
		root.AddCommand(cmd)
	}
	agent := c.agentCommand()
	agent.GroupID = "agent"
	root.AddCommand(agent, c.versionCommand())
	// cobra prints examples as written; kubectl's convention indents them.
	for _, cmd := range root.Commands() {
		if cmd.Example != "" {
			cmd.Example = "  " + strings.ReplaceAll(cmd.Example, "\n", "\n  ")
		}
	}
	return root
}

// loadConfig reads the configuration named by --config.
func (c *cli) loadConfig() (*config.Config, error) {
	return config.Load(c.configPath)
}

// optionalConfig reads the configuration when there is one: the on-call
// verbs that act on Environment objects work from a kubeconfig alone. A
// file named by --config or $BATON_CONFIG must exist.
func (c *cli) optionalConfig(cmd *cobra.Command) (*config.Config, error) {
	explicit := cmd.Flags().Changed("config") || os.Getenv("BATON_CONFIG") != ""
	if !explicit {
		if _, err := os.Stat(c.configPath); errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
	}
	return c.loadConfig()
}

// environment returns the named environment or an error naming the known
// ones.
func environment(cfg *config.Config, name string) (*config.Environment, error) {
	if name == "" {
		return nil, usageError("--env is required")
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
func noArgs(_ *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError("unexpected argument %q", args[0])
	}
	return nil
}

// envFlag registers --env with completion from the configuration.
func (c *cli) envFlag(cmd *cobra.Command, p *string, usage string) {
	cmd.Flags().StringVar(p, "env", "", usage)
	_ = cmd.RegisterFlagCompletionFunc("env", c.completeEnvironments)
}

// outputFlag registers -o with its formats and their completion.
func outputFlag(cmd *cobra.Command, p *string, def string, formats ...string) {
	usage := "output format: " + strings.Join(formats, ", ")
	cmd.Flags().StringVarP(p, "output", "o", def, usage)
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(formats, cobra.ShellCompDirectiveNoFileComp))
}

// completeEnvironments lists the configuration's environments.
func (c *cli) completeEnvironments(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	cfg, err := c.loadConfig()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var names []string
	for _, e := range cfg.Environments {
		names = append(names, e.Name)
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}

// completeContexts lists the kubeconfig's contexts.
func (c *cli) completeContexts(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	raw, err := c.kube.ToRawKubeConfigLoader().RawConfig()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var names []string
	for name := range raw.Contexts {
		names = append(names, name)
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}
