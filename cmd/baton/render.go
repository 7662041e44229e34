package main

import (
	"context"
	"flag"

	"github.com/baton-gitops/baton/internal/agent"
	"github.com/baton-gitops/baton/internal/config"
	"github.com/baton-gitops/baton/render"
)

func renderVerb() verb {
	return verb{
		name:    "render",
		summary: "print an environment's rendered objects at a revision",
		usage:   "render --env NAME [--revision REF] [-o yaml|json|table]",
		description: "Renders the environment's overlay with Kustomize, in process, exactly as the agent\n" +
			"would, and prints the objects. REF is a commit (or a prefix) of the environment's\n" +
			"branch, or another branch such as a pull request's; the default is the branch head.",
		example: "baton render --env dev\nbaton render --env prod --revision 1a2b3c4 -o json",
		flags: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
			envName := fs.String("env", "", "environment `name` (required)")
			ref := fs.String("revision", "", "commit or branch `REF` (default: the branch head)")
			format := fs.String("o", formatYAML, "output `format`: yaml, json or table")
			return func(ctx context.Context, c *cli, args []string) error {
				if err := noArgs(args); err != nil {
					return err
				}
				if err := checkFormat(*format, formatYAML, formatJSON, formatTable); err != nil {
					return err
				}
				cfg, err := c.loadConfig()
				if err != nil {
					return err
				}
				env, err := environment(cfg, *envName)
				if err != nil {
					return err
				}
				repo, rev, err := resolveRevision(ctx, cfg, env, *ref)
				if err != nil {
					return err
				}
				defer repo.Close()
				r, err := newRenderer(cfg)
				if err != nil {
					return err
				}
				res, err := r.Render(ctx, rev.Snapshot, env.Path)
				if err != nil {
					return err
				}
				switch *format {
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
		},
	}
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
