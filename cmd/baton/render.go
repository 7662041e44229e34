package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/baton-gitops/baton/internal/agent"
	"github.com/baton-gitops/baton/internal/config"
	"github.com/baton-gitops/baton/internal/worktree"
	"github.com/baton-gitops/baton/render"
)

func (c *cli) renderCommand() *cobra.Command {
	var envName, ref, path, format string
	cmd := &cobra.Command{
		Use:   "render (--env NAME [--revision REF] | --path DIR [--env NAME])",
		Short: "print an environment's rendered objects, from git or from a working tree",
		Long: "Renders with Kustomize, in process, exactly as the agent does (the same refusals: no\n" +
			"remote bases, no plugins, no path or symbolic link out of the tree) and prints the objects.\n\n" +
			"--env alone renders the environment's branch: REF is a commit (or a prefix) of it, or\n" +
			"another branch such as a pull request's; the default is the branch head.\n\n" +
			"--path renders a working tree, uncommitted changes included (for CI and before a commit):\n" +
			"with --env, the environment's overlay in the git working tree that holds DIR; without,\n" +
			"DIR itself. Files that .gitignore leaves out, and .git, are not read.",
		Example: "baton render --env dev\n" +
			"baton render --env prod --revision 1a2b3c4 -o json\n" +
			"baton render --path . --env staging\n" +
			"baton render --path overlays/dev -o table",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(format, formatYAML, formatJSON, formatTable); err != nil {
				return err
			}
			var res render.Result
			var err error
			if path != "" {
				if ref != "" {
					return usageError("--revision and --path exclude each other: --path renders the files on disk")
				}
				res, err = c.renderPath(cmd.Context(), path, envName)
			} else {
				res, err = c.renderRevision(cmd.Context(), envName, ref)
			}
			if err != nil {
				return err
			}
			return printRender(c, res, format)
		},
	}
	c.envFlag(cmd, &envName, "environment name (required without --path)")
	cmd.Flags().StringVar(&ref, "revision", "", "commit or branch REF (default: the branch head)")
	cmd.Flags().StringVar(&path, "path", "", "render the working tree DIR instead of git (uncommitted changes included)")
	_ = cmd.MarkFlagDirname("path")
	outputFlag(cmd, &format, formatYAML, formatYAML, formatJSON, formatTable)
	return cmd
}

// renderRevision renders env at ref from its repository.
func (c *cli) renderRevision(ctx context.Context, envName, ref string) (render.Result, error) {
	cfg, err := c.loadConfig()
	if err != nil {
		return render.Result{}, err
	}
	env, err := environment(cfg, envName)
	if err != nil {
		return render.Result{}, err
	}
	repo, rev, err := resolveRevision(ctx, cfg, env, ref)
	if err != nil {
		return render.Result{}, err
	}
	defer repo.Close()
	r, err := newRenderer(cfg)
	if err != nil {
		return render.Result{}, err
	}
	return r.Render(ctx, rev.Snapshot, env.Path)
}

// renderPath renders a working tree: env's overlay in the git working
// tree that holds dir, or dir itself without env.
func (c *cli) renderPath(ctx context.Context, dir, envName string) (render.Result, error) {
	var env *config.Environment
	var cfg *config.Config
	if envName != "" {
		var err error
		if cfg, err = c.loadConfig(); err != nil {
			return render.Result{}, err
		}
		if env, err = environment(cfg, envName); err != nil {
			return render.Result{}, err
		}
	}
	return renderTree(ctx, dir, cfg, env)
}

// renderTree renders env's overlay (or, with a nil env, the folder dir) in
// the working tree that holds dir, by the agent's renderer with cfg's
// limits (the defaults without a configuration).
func renderTree(ctx context.Context, dir string, cfg *config.Config, env *config.Environment) (render.Result, error) {
	top, rel, err := worktree.Top(dir)
	if err != nil {
		return render.Result{}, err
	}
	if env != nil {
		rel = env.Path
		if rel == "" {
			rel = "."
		}
	}
	snap, err := worktree.Open(top)
	if err != nil {
		return render.Result{}, err
	}
	defer snap.Close()
	r, err := render.New(render.Options{CacheSize: -1})
	if cfg != nil {
		r, err = newRenderer(cfg)
	}
	if err != nil {
		return render.Result{}, err
	}
	res, err := r.Render(ctx, snap, rel)
	if err != nil {
		return render.Result{}, fmt.Errorf("%s: %w", top, err)
	}
	return res, nil
}

// printRender writes a render's objects as YAML, a JSON List or a table.
func printRender(c *cli, res render.Result, format string) error {
	switch format {
	case formatJSON:
		items := make([]any, len(res.Objects))
		for i, o := range res.Objects {
			items[i] = o.Object
		}
		return writeJSON(c.stdout, map[string]any{"apiVersion": "v1", "kind": "List", "items": items})
	case formatTable:
		var rows [][]string
		for _, o := range res.Objects {
			rows = append(rows, []string{o.GetKind(), dash(o.GetNamespace()), o.GetName()})
		}
		return table(c.stdout, []string{"KIND", "NAMESPACE", "NAME"}, rows)
	}
	b, err := res.YAML()
	if err != nil {
		return err
	}
	_, err = c.stdout.Write(b)
	return err
}

// dash stands in for an empty cell.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// newRenderer renders with the configuration's limits, in this process: a
// command run by hand renders one revision and exits.
func newRenderer(cfg *config.Config) (*render.Renderer, error) {
	opts := agent.RenderOptions(cfg, "")
	opts.CacheSize = -1
	return render.New(opts)
}
