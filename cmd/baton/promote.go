package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/baton-gitops/baton/internal/agent"
	"github.com/baton-gitops/baton/internal/config"
	"github.com/baton-gitops/baton/internal/githash"
	"github.com/baton-gitops/baton/promote"
)

func (c *cli) promoteCommand() *cobra.Command {
	var from, to, ref, server, reason, format string
	var override bool
	cmd := &cobra.Command{
		Use:   "promote --from ENV --to ENV [--revision REF] [--server URL] [--override-gates --reason TEXT] [-o table|json|yaml]",
		Short: "promote a revision along a pipeline edge, by the same code as the agent",
		Long: "Evaluates the pipeline edge FROM -> TO once, exactly as the agent does: the source must be\n" +
			"synced and healthy for its soak time and every gate must pass; then the promotion is pushed\n" +
			"(auto edge) or proposed by pull request. The source's state comes from its agent with\n" +
			"--server (which knows how long it has been healthy), else from the cluster (then the soak\n" +
			"cannot be known to have passed). Exits 1 when a gate, hold or freeze blocks.\n\n" +
			"--override-gates skips the soak and metric gates; --reason is required, and who overrode\n" +
			"($BATON_USER, else $USER) and why go into the commit's Baton-Gates-Overridden trailer.\n" +
			"A freeze (an unhealthy or suspended source) and a hold still block.",
		Example: "baton promote --from dev --to staging --server http://baton.baton-system:8080",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			var err error
			if from == "" || to == "" {
				return usageError("--from and --to are required")
			}
			if format != "" {
				if err := checkFormat(format, formatTable, formatJSON, formatYAML); err != nil {
					return err
				}
			}
			var ov *promote.Override
			switch {
			case override:
				if ov, err = gateOverride(reason); err != nil {
					return err
				}
			case reason != "":
				return usageError("--reason is only for --override-gates")
			}
			out, err := c.promote(ctx, from, to, ref, server, ov)
			if err != nil {
				return err
			}
			switch format {
			case formatJSON:
				err = writeJSON(c.stdout, out)
			case formatYAML:
				err = writeYAML(c.stdout, out)
			case formatTable:
				err = table(c.stdout, []string{"EDGE", "REVISION", "OUTCOME", "REASON", "COMMIT", "PULL REQUEST"},
					[][]string{{out.Edge, githash.Short(out.Revision), out.Outcome, dash(out.Reason), dash(githash.Short(out.Commit)), dash(out.PullRequestURL)}})
			default:
				line := fmt.Sprintf("%s %s: %s", out.Edge, githash.Short(out.Revision), out.Outcome)
				if out.Commit != "" {
					line += " " + githash.Short(out.Commit)
				}
				if out.PullRequestURL != "" {
					line += " " + out.PullRequestURL
				}
				_, err = fmt.Fprintln(c.stdout, line)
			}
			if err != nil {
				return err
			}
			switch out.Outcome {
			case agent.PromotionBlocked, agent.PromotionFrozen, agent.PromotionHeld:
				err := fmt.Errorf("promotion %s: %s (%s): %s", out.Outcome, out.Edge, dash(out.Reason), out.Detail)
				if ov != nil {
					err = fmt.Errorf("%w (--override-gates skips the soak and metric gates only)", err)
				}
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "source environment name (required)")
	cmd.Flags().StringVar(&to, "to", "", "target environment name (required)")
	_ = cmd.RegisterFlagCompletionFunc("from", c.completeEnvironments)
	_ = cmd.RegisterFlagCompletionFunc("to", c.completeEnvironments)
	cmd.Flags().StringVar(&ref, "revision", "", "the source's synced commit REF, as a guard (default: whatever it is synced at)")
	cmd.Flags().StringVar(&server, "server", "", "agent URL to read the source's state from (default: the cluster)")
	cmd.Flags().BoolVar(&override, "override-gates", false, "skip the soak and metric gates, recorded in the commit (needs --reason)")
	cmd.Flags().StringVar(&reason, "reason", "", "why the gates are overridden, recorded in the commit")
	outputFlag(cmd, &format, "", formatTable, formatJSON, formatYAML)
	return cmd
}

// promoteOutcome is what promote prints.
type promoteOutcome struct {
	Edge           string `json:"edge"`
	Revision       string `json:"revision"`
	Outcome        string `json:"outcome"`
	Reason         string `json:"reason,omitempty"`
	Detail         string `json:"detail,omitempty"`
	Commit         string `json:"commit,omitempty"`
	PullRequestURL string `json:"pullRequestURL,omitempty"`
}

// gateOverride is who overrides the gates, and why: the person is
// $BATON_USER, else $USER (the git binary is not needed to name them).
func gateOverride(reason string) (*promote.Override, error) {
	if strings.TrimSpace(reason) == "" {
		return nil, usageError(`--override-gates needs --reason "why": the reason is recorded in the promotion commit`)
	}
	by := os.Getenv("BATON_USER")
	if by == "" {
		by = os.Getenv("USER")
	}
	if strings.TrimSpace(by) == "" {
		return nil, usageError("--override-gates: set BATON_USER (or USER) to say who overrides the gates")
	}
	return &promote.Override{By: by, Reason: reason}, nil
}

func (c *cli) promote(ctx context.Context, fromName, toName, ref, server string, override *promote.Override) (promoteOutcome, error) {
	out := promoteOutcome{Edge: fromName + " -> " + toName}
	cfg, err := c.loadConfig()
	if err != nil {
		return out, err
	}
	if cfg.Edge(fromName, toName) == nil {
		return out, fmt.Errorf("no pipeline edge %s in the configuration", out.Edge)
	}
	from, err := environment(cfg, fromName)
	if err != nil {
		return out, err
	}
	cacheDir, err := agent.CacheDir(cfg)
	if err != nil {
		return out, err
	}
	cacheDir = filepath.Join(cacheDir, "cli")
	state, err := c.sourceState(ctx, cfg, from, server, cacheDir)
	if err != nil {
		return out, err
	}
	if state.Synced == nil {
		return out, fmt.Errorf("%s has not synced a revision: nothing to promote", from.Name)
	}
	synced := state.Synced.Commit
	if ref != "" && !strings.HasPrefix(synced, ref) {
		return out, fmt.Errorf("--revision %s: %s is synced at %s; only a synced revision is promoted", ref, from.Name, githash.Short(synced))
	}
	out.Revision = synced
	repo, rev, err := resolveRevision(ctx, cfg, from, synced)
	if err != nil {
		return out, err
	}
	defer repo.Close()
	p, err := agent.NewPipelinePromoter(agent.PipelinePromoterOptions{Config: cfg, CacheDir: cacheDir})
	if err != nil {
		return out, err
	}
	defer p.Close()
	req := agent.PromotionRequest{From: from.Name, To: toName, Revision: rev, SyncedAt: state.SyncedAt,
		Healthy: state.Health.Status == "Healthy" && state.Health.Revision == synced, Reason: state.Health.Cause,
		Override: override}
	if req.Healthy {
		req.HealthySince = state.Health.Since
		if server == "" {
			// Computed from the cluster, health is known as of now only:
			// how long it has held is not, so the soak starts now rather
			// than when the status was computed (seconds ago on a slow
			// machine, enough to pass a short soak).
			req.HealthySince = time.Now()
		}
	} else if req.Reason == "" {
		req.Reason = dash(state.Health.Status)
	}
	if from.Suspend {
		req.Frozen, req.FrozenReason = true, "the environment is suspended"
	}
	res, err := p.Promote(ctx, req)
	if err != nil {
		return out, err
	}
	out.Outcome, out.Reason, out.Detail, out.Commit, out.PullRequestURL = res.Outcome, res.Reason, res.Detail, res.Commit, res.PullRequestURL
	return out, nil
}

// sourceState is the source environment's state from its agent, or
// computed from the cluster. Computed health is as of now: how long it has
// held is unknown, so a soak gate will not pass.
func (c *cli) sourceState(ctx context.Context, cfg *config.Config, env *config.Environment, server, cacheDir string) (agent.EnvironmentStatus, error) {
	var st agent.Status
	var err error
	if server != "" {
		st, err = fetchStatus(ctx, server)
	} else {
		restCfg, rerr := c.restConfig()
		if rerr != nil {
			return agent.EnvironmentStatus{}, rerr
		}
		st, err = agent.ComputeStatus(ctx, agent.ComputeOptions{Config: cfg, REST: restCfg,
			Environments: []string{env.Name}, CacheDir: cacheDir})
	}
	if err != nil {
		return agent.EnvironmentStatus{}, err
	}
	for _, e := range st.Environments {
		if e.Name == env.Name {
			return e, nil
		}
	}
	return agent.EnvironmentStatus{}, fmt.Errorf("the agent at %s does not sync %s", server, env.Name)
}
