package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/baton-gitops/baton/internal/agent"
	"github.com/baton-gitops/baton/internal/config"
	"github.com/baton-gitops/baton/internal/githash"
	"github.com/baton-gitops/baton/promote"
)

// rollbackOutcome is what rollback prints.
type rollbackOutcome struct {
	Environment    string `json:"environment"`
	Edge           string `json:"edge"`
	Outcome        string `json:"outcome"`
	By             string `json:"by"`
	Commit         string `json:"commit,omitempty"`
	PullRequestURL string `json:"pullRequestURL,omitempty"`
	Message        string `json:"message,omitempty"`
}

func (c *cli) rollbackCommand() *cobra.Command {
	var envName, from, to, reason, format string
	cmd := &cobra.Command{
		Use:   "rollback --env NAME --reason TEXT [--to REV] [--from ENV] [-o table|json|yaml]",
		Short: "revert the last promotion into an environment (or back to a commit), as a commit or pull request",
		Long: "Writes the git revert of the last promotion into the environment that is still in effect\n" +
			"on its branch, or with --to, of every promotion after commit REV (the branch's tree becomes\n" +
			"REV's). No soak or gate is waited for. The edge's policy decides how it lands: pushed to the\n" +
			"branch on an auto edge, else proposed as a pull request (branch baton/revert-FROM-to-ENV).\n" +
			"Once it lands the reverted content is held: Baton promotes only newer content into the\n" +
			"environment, exactly as after a git revert by hand. Who asked (the kubeconfig's identity when\n" +
			"a cluster is reachable, else $BATON_USER or $USER) and why go into the commit.",
		Example: "baton rollback --env prod --reason \"INC-1234: 5xx after the promotion\"\n" +
			"baton rollback --env prod --to 1a2b3c4 --reason \"back to last week\"",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if strings.TrimSpace(reason) == "" {
				return usageError(`--reason "why" is required: it goes into the revert commit`)
			}
			if format != "" {
				if err := checkFormat(format, formatTable, formatJSON, formatYAML); err != nil {
					return err
				}
			}
			cfg, err := c.loadConfig()
			if err != nil {
				return err
			}
			env, err := environment(cfg, envName)
			if err != nil {
				return err
			}
			if from, err = edgeInto(cfg, env.Name, from); err != nil {
				return err
			}
			out, err := c.rollback(cmd, cfg, from, env.Name, to, reason)
			if err != nil {
				return err
			}
			switch format {
			case formatJSON:
				return writeJSON(c.stdout, out)
			case formatYAML:
				return writeYAML(c.stdout, out)
			case formatTable:
				return table(c.stdout, []string{"ENVIRONMENT", "EDGE", "OUTCOME", "BY", "COMMIT", "PULL REQUEST"},
					[][]string{{out.Environment, out.Edge, out.Outcome, out.By, dash(githash.Short(out.Commit)), dash(out.PullRequestURL)}})
			}
			line := fmt.Sprintf("%s: %s", out.Environment, out.Outcome)
			switch {
			case out.Outcome == string(promote.Skipped):
				line += ": the branch already has that content"
			case out.PullRequestURL != "":
				line += " by pull request " + out.PullRequestURL + " (" + githash.Short(out.Commit) + ")"
			case out.Commit != "":
				line += ": pushed " + githash.Short(out.Commit)
			}
			_, err = fmt.Fprintln(c.stdout, line)
			return err
		},
	}
	c.envFlag(cmd, &envName, "environment to roll back (required)")
	cmd.Flags().StringVar(&to, "to", "", "go back to this commit REV of the environment's branch (default: undo the last promotion)")
	cmd.Flags().StringVar(&from, "from", "", "the source environment of the edge, when several edges lead into ENV")
	_ = cmd.RegisterFlagCompletionFunc("from", c.completeEnvironments)
	cmd.Flags().StringVar(&reason, "reason", "", "why, recorded in the revert commit (required)")
	outputFlag(cmd, &format, "", formatTable, formatJSON, formatYAML)
	return cmd
}

// edgeInto returns the source of the one pipeline edge into env (or checks
// the one given).
func edgeInto(cfg *config.Config, env, from string) (string, error) {
	var froms []string
	if p := cfg.PipelineOf(env); p != nil {
		for _, e := range p.Edges {
			if e.To == env {
				froms = append(froms, e.From)
			}
		}
	}
	switch {
	case from != "":
		if cfg.Edge(from, env) == nil {
			return "", fmt.Errorf("no pipeline edge %s -> %s in the configuration", from, env)
		}
		return from, nil
	case len(froms) == 0:
		return "", fmt.Errorf("no pipeline edge leads into %s: only promotions are rolled back (git revert by hand otherwise)", env)
	case len(froms) > 1:
		return "", usageError("several edges lead into %s (from %s): say which with --from", env, strings.Join(froms, ", "))
	}
	return froms[0], nil
}

func (c *cli) rollback(cmd *cobra.Command, cfg *config.Config, from, env, to, reason string) (rollbackOutcome, error) {
	ctx := cmd.Context()
	out := rollbackOutcome{Environment: env, Edge: from + " -> " + env}
	s, serr := c.session(cmd)
	out.By = rollbackUser(ctx, s, serr)
	cacheDir, err := agent.CacheDir(cfg)
	if err != nil {
		return out, err
	}
	p, err := agent.NewPipelinePromoter(agent.PipelinePromoterOptions{Config: cfg, CacheDir: filepath.Join(cacheDir, "cli")})
	if err != nil {
		return out, err
	}
	defer p.Close()
	res, err := p.Rollback(ctx, from, env, promote.RevertRequest{To: to, By: out.By, Reason: reason})
	if err != nil {
		return out, err
	}
	out.Outcome, out.Commit, out.PullRequestURL = res.Outcome, res.Commit, res.PullRequestURL
	for _, e := range res.Events {
		out.Message = e.Message
	}
	if s != nil && out.Message != "" {
		if e, err := s.objects.Get(ctx, env); err == nil {
			s.record(ctx, c, e, reasonRollbackRequested, out.Message)
		}
	}
	return out, nil
}

// rollbackUser is who asks for a rollback: the kubeconfig's identity when
// a cluster is reachable; a rollback is git only, so it works without one.
func rollbackUser(ctx context.Context, s *session, serr error) string {
	if serr == nil {
		return s.whoAmI(ctx)
	}
	for _, v := range []string{"BATON_USER", "USER"} {
		if who := os.Getenv(v); who != "" {
			return who
		}
	}
	return "unknown"
}
