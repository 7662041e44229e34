package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/baton-gitops/baton/internal/agent"
	"github.com/baton-gitops/baton/preview"
	"github.com/baton-gitops/baton/reconciler"
)

// formatDiff is diff's default output: unified diffs.
const formatDiff = "diff"

// worktreeRevision names a working tree's render where a commit would be.
const worktreeRevision = "working-tree"

func (c *cli) diffCommand() *cobra.Command {
	var envName, ref, path, color, format string
	cmd := &cobra.Command{
		Use:   "diff --env NAME [--revision REF | --path DIR] [--color auto|always|never] [-o diff|json|yaml]",
		Short: "show what a sync would change in the cluster (exit 1 when something would)",
		Long: "Renders the environment at REF, or from the working tree with --path (uncommitted changes\n" +
			"included), and asks the API server, through server-side apply dry runs, what a sync would\n" +
			"change: created, configured and pruned objects with the images, replicas and resources\n" +
			"they change, then unified YAML diffs (Secret values masked): the content of the agent's\n" +
			"preview comment on a pull request, as text. Exits 0 when nothing would change, 1 when\n" +
			"something would, 2 when a sync would fail (an object refused) or the diff failed.",
		Example: "baton diff --env staging --revision my-feature-branch\n" +
			"baton diff --path . --env staging\n" +
			"baton diff --env prod -o json",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(format, formatDiff, formatJSON, formatYAML); err != nil {
				return err
			}
			if err := checkFormat(color, "auto", "always", "never"); err != nil {
				return err
			}
			if path != "" && ref != "" {
				return usageError("--revision and --path exclude each other: --path diffs the files on disk")
			}
			report, err := c.diff(cmd.Context(), envName, ref, path)
			if err != nil {
				return &exitError{2, err}
			}
			switch format {
			case formatJSON:
				err = writeJSON(c.stdout, diffReport(report))
			case formatYAML:
				err = writeYAML(c.stdout, diffReport(report))
			default:
				err = report.WriteText(c.stdout, color == "always" || (color == "auto" && isTerminal(c.stdout)))
			}
			if err != nil {
				return &exitError{2, err}
			}
			if !report.Passed() {
				return &exitError{2, fmt.Errorf("a sync would fail: %s", report.Reason())}
			}
			if report.Changes() > 0 {
				return errDifferences
			}
			return nil
		},
	}
	c.envFlag(cmd, &envName, "environment name (required)")
	cmd.Flags().StringVar(&ref, "revision", "", "commit or branch REF (default: the branch head)")
	cmd.Flags().StringVar(&path, "path", "", "diff the environment's overlay in the working tree DIR (uncommitted changes included)")
	_ = cmd.MarkFlagDirname("path")
	cmd.Flags().StringVar(&color, "color", "auto", "colour the diff: auto (when stdout is a terminal), always or never")
	outputFlag(cmd, &format, formatDiff, formatDiff, formatJSON, formatYAML)
	return cmd
}

// diff renders env at ref, or the working tree at path, and dry-runs it
// against the cluster. A render or dry-run failure is part of the report,
// as in a pull request preview; the error is for what kept the diff from
// running at all.
func (c *cli) diff(ctx context.Context, envName, ref, path string) (preview.Report, error) {
	cfg, err := c.loadConfig()
	if err != nil {
		return preview.Report{}, err
	}
	env, err := environment(cfg, envName)
	if err != nil {
		return preview.Report{}, err
	}
	rc, err := c.restConfig()
	if err != nil {
		return preview.Report{}, err
	}
	// No watch cache: one pass reads each object once anyway.
	rec, err := reconciler.New(rc, reconciler.Options{InventoryNamespace: cfg.Agent.Namespace, DisableCache: true})
	if err != nil {
		return preview.Report{}, err
	}
	defer rec.Close()
	if path != "" {
		var res reconciler.Result
		rendered, err := renderTree(ctx, path, cfg, env)
		if err == nil {
			res, err = rec.Diff(ctx, agent.SyncRequest(*env, worktreeRevision, rendered.Objects))
		}
		return preview.NewReport(env.Name, worktreeRevision, "", env.Path, res, err), nil
	}
	repo, rev, err := resolveRevision(ctx, cfg, env, ref)
	if err != nil {
		return preview.Report{}, err
	}
	defer repo.Close()
	r, err := newRenderer(cfg)
	if err != nil {
		return preview.Report{}, err
	}
	// The pull request previews run the same dry run and write the same
	// report.
	res, err := agent.DryRun(ctx, r, rec, *env, rev)
	return preview.NewReport(env.Name, rev.Commit, ref, env.Path, res, err), nil
}

// diffChange is one object of diff -o json|yaml.
type diffChange struct {
	Object     string   `json:"object"`
	Action     string   `json:"action"`
	Diff       string   `json:"diff,omitempty"`
	Message    string   `json:"message,omitempty"`
	Highlights []string `json:"highlights,omitempty"`
}

type diffOutput struct {
	Environment string         `json:"environment"`
	Revision    string         `json:"revision"`
	Differs     bool           `json:"differs"`
	Passes      bool           `json:"passes"`
	Summary     string         `json:"summary"`
	Counts      map[string]int `json:"counts"`
	Changes     []diffChange   `json:"changes"`
}

func diffReport(r preview.Report) diffOutput {
	out := diffOutput{Environment: r.Environment, Revision: r.Revision, Differs: r.Changes() > 0, Passes: r.Passed(),
		Summary: r.Summary(), Counts: map[string]int{}, Changes: []diffChange{}}
	for a, n := range r.Counts {
		out.Counts[string(a)] = n
	}
	for _, o := range r.Objects {
		out.Changes = append(out.Changes, diffChange{Object: o.Ref, Action: string(o.Action), Diff: o.Diff, Message: o.Message, Highlights: o.Highlights})
	}
	return out
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
