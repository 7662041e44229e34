package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/baton-gitops/baton/internal/agent"
	"github.com/baton-gitops/baton/preview"
	"github.com/baton-gitops/baton/reconciler"
	"github.com/baton-gitops/baton/render"
)

// formatDiff is diff's default output: unified diffs.
const formatDiff = "diff"

func diffVerb() verb {
	return verb{
		name:    "diff",
		summary: "show what a sync would change in the cluster (exit 1 when something would)",
		usage:   "diff --env NAME [--revision REF] [--color auto|always|never] [-o diff|json|yaml]",
		description: "Renders the environment at REF and asks the API server, through server-side apply\n" +
			"dry runs, what a sync would change: created, configured and pruned objects with the\n" +
			"images, replicas and resources they change, then unified YAML diffs (Secret values\n" +
			"masked): the content of the agent's preview comment on a pull request, as text. Exits 0\n" +
			"when nothing would change, 1 when something would, 2 when a sync would fail (an object\n" +
			"refused) or the preview failed.",
		example: "baton diff --env staging --revision my-feature-branch\nbaton diff --env prod -o json",
		flags: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
			envName := fs.String("env", "", "environment `name` (required)")
			ref := fs.String("revision", "", "commit or branch `REF` (default: the branch head)")
			color := fs.String("color", "auto", "colour the diff: auto (when stdout is a terminal), always or never")
			format := fs.String("o", formatDiff, "output `format`: diff, json or yaml")
			return func(ctx context.Context, c *cli, args []string) error {
				if err := noArgs(args); err != nil {
					return err
				}
				if err := checkFormat(*format, formatDiff, formatJSON, formatYAML); err != nil {
					return err
				}
				if err := checkFormat(*color, "auto", "always", "never"); err != nil {
					return err
				}
				report, err := c.diff(ctx, *envName, *ref)
				if err != nil {
					return &exitError{2, err}
				}
				switch *format {
				case formatJSON:
					err = writeJSON(c.stdout, diffReport(report))
				case formatYAML:
					err = writeYAML(c.stdout, diffReport(report))
				default:
					err = report.WriteText(c.stdout, *color == "always" || (*color == "auto" && isTerminal(c.stdout)))
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
			}
		},
	}
}

// diff renders env at ref and dry-runs it against the cluster.
func (c *cli) diff(ctx context.Context, envName, ref string) (preview.Report, error) {
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
	repo, rev, err := resolveRevision(ctx, cfg, env, ref)
	if err != nil {
		return preview.Report{}, err
	}
	defer repo.Close()
	r, err := render.New(render.Options{CacheSize: -1})
	if err != nil {
		return preview.Report{}, err
	}
	// No watch cache: one pass reads each object once anyway.
	rec, err := reconciler.New(rc, reconciler.Options{InventoryNamespace: cfg.Agent.Namespace, DisableCache: true})
	if err != nil {
		return preview.Report{}, err
	}
	defer rec.Close()
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
