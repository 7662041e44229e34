package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/baton-gitops/baton/internal/agent"
	"github.com/baton-gitops/baton/reconciler"
)

// formatDiff is diff's default output: unified diffs.
const formatDiff = "diff"

func diffVerb() verb {
	return verb{
		name:    "diff",
		summary: "show what a sync would change in the cluster (exit 1 when something would)",
		usage:   "diff --env NAME [--revision REF] [--color auto|always|never] [-o diff|json|yaml]",
		description: "Renders the environment at REF and asks the API server, through server-side apply\n" +
			"dry runs, what a sync would change: created, changed and pruned objects, with unified\n" +
			"YAML diffs (Secret values masked). Exits 0 when nothing would change, 1 when something\n" +
			"would, 2 on failure: usable in CI to preview a pull request.",
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
				res, err := c.diff(ctx, *envName, *ref)
				if err != nil {
					return &exitError{2, err}
				}
				switch *format {
				case formatJSON:
					err = writeJSON(c.stdout, diffReport(res))
				case formatYAML:
					err = writeYAML(c.stdout, diffReport(res))
				default:
					err = printDiff(c.stdout, res, *color == "always" || (*color == "auto" && isTerminal(c.stdout)))
				}
				if err != nil {
					return &exitError{2, err}
				}
				if differs(res) {
					return errDifferences
				}
				return nil
			}
		},
	}
}

// diff renders env at ref and dry-runs it against the cluster.
func (c *cli) diff(ctx context.Context, envName, ref string) (reconciler.Result, error) {
	cfg, err := c.loadConfig()
	if err != nil {
		return reconciler.Result{}, err
	}
	env, err := environment(cfg, envName)
	if err != nil {
		return reconciler.Result{}, err
	}
	rc, err := c.restConfig()
	if err != nil {
		return reconciler.Result{}, err
	}
	repo, rev, err := resolveRevision(ctx, cfg, env, ref)
	if err != nil {
		return reconciler.Result{}, err
	}
	defer repo.Close()
	r, err := newRenderer(cfg)
	if err != nil {
		return reconciler.Result{}, err
	}
	rendered, err := r.Render(ctx, rev.Snapshot, env.Path)
	if err != nil {
		return reconciler.Result{}, err
	}
	// No watch cache: one pass reads each object once anyway.
	rec, err := reconciler.New(rc, reconciler.Options{InventoryNamespace: cfg.Agent.Namespace, DisableCache: true})
	if err != nil {
		return reconciler.Result{}, err
	}
	defer rec.Close()
	req := agent.SyncRequest(*env, rev.Commit, rendered.Objects)
	req.SourceOf = r.Sources(rev.Snapshot, env.Path)
	return rec.Diff(ctx, req)
}

// differs reports whether a sync would change anything.
func differs(res reconciler.Result) bool {
	for _, ch := range res.Changes {
		switch ch.Action {
		case reconciler.ActionCreated, reconciler.ActionConfigured, reconciler.ActionDeleted,
			reconciler.ActionRecreated, reconciler.ActionDrifted:
			return true
		}
	}
	return false
}

// diffChange is one object of diff -o json|yaml.
type diffChange struct {
	Object  string `json:"object"`
	Action  string `json:"action"`
	Diff    string `json:"diff,omitempty"`
	Message string `json:"message,omitempty"`
}

type diffOutput struct {
	Environment string         `json:"environment"`
	Revision    string         `json:"revision"`
	Differs     bool           `json:"differs"`
	Counts      map[string]int `json:"counts"`
	Changes     []diffChange   `json:"changes"`
}

func diffReport(res reconciler.Result) diffOutput {
	out := diffOutput{Environment: res.Environment, Revision: res.Revision, Differs: differs(res),
		Counts: map[string]int{}, Changes: []diffChange{}}
	for a, n := range res.Counts {
		out.Counts[string(a)] = n
	}
	for _, ch := range res.Changes {
		if ch.Action == reconciler.ActionUnchanged {
			continue
		}
		out.Changes = append(out.Changes, diffChange{Object: ch.Ref.String(), Action: string(ch.Action), Diff: ch.Diff, Message: ch.Message})
	}
	return out
}

// ANSI colours for a terminal.
const (
	ansiReset = "\x1b[0m"
	ansiBold  = "\x1b[1m"
	ansiRed   = "\x1b[31m"
	ansiGreen = "\x1b[32m"
	ansiCyan  = "\x1b[36m"
)

// printDiff writes every object that would change, with its diff, then a
// summary line.
func printDiff(w io.Writer, res reconciler.Result, color bool) error {
	paint := func(code, s string) string {
		if !color {
			return s
		}
		return code + s + ansiReset
	}
	for _, ch := range res.Changes {
		if ch.Action == reconciler.ActionUnchanged {
			continue
		}
		header := fmt.Sprintf("# %s %s", ch.Ref, ch.Action)
		if ch.Message != "" {
			header += ": " + ch.Message
		}
		fmt.Fprintln(w, paint(ansiBold, header))
		for _, line := range strings.SplitAfter(ch.Diff, "\n") {
			if line == "" {
				continue
			}
			switch {
			case strings.HasPrefix(line, "+++") || strings.HasPrefix(line, "---"):
				line = paint(ansiBold, strings.TrimSuffix(line, "\n")) + "\n"
			case strings.HasPrefix(line, "+"):
				line = paint(ansiGreen, strings.TrimSuffix(line, "\n")) + "\n"
			case strings.HasPrefix(line, "-"):
				line = paint(ansiRed, strings.TrimSuffix(line, "\n")) + "\n"
			case strings.HasPrefix(line, "@@"):
				line = paint(ansiCyan, strings.TrimSuffix(line, "\n")) + "\n"
			}
			if _, err := io.WriteString(w, line); err != nil {
				return err
			}
		}
	}
	_, err := fmt.Fprintln(w, summary(res))
	return err
}

// summary is one line: "2 objects would change: 1 created, 1 configured
// (3 unchanged)" or "no differences (3 unchanged)". Skipped objects (kept
// by the prune safety rules) are listed but are no difference.
func summary(res reconciler.Result) string {
	var parts []string
	changed := 0
	for _, a := range []reconciler.Action{reconciler.ActionCreated, reconciler.ActionConfigured, reconciler.ActionRecreated,
		reconciler.ActionDrifted, reconciler.ActionDeleted, reconciler.ActionSkipped} {
		if n := res.Counts[a]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, a))
			if a != reconciler.ActionSkipped {
				changed += n
			}
		}
	}
	unchanged := fmt.Sprintf("(%d unchanged)", res.Counts[reconciler.ActionUnchanged])
	if changed == 0 {
		if len(parts) > 0 {
			return "no differences: " + strings.Join(parts, ", ") + " " + unchanged
		}
		return "no differences " + unchanged
	}
	noun := "objects"
	if changed == 1 {
		noun = "object"
	}
	return fmt.Sprintf("%d %s would change: %s %s", changed, noun, strings.Join(parts, ", "), unchanged)
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
