package promote

import (
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/baton-gitops/baton/source"
)

// DefaultSoak is how long a source environment must have been healthy at
// the synced commit before it is promoted, when an edge sets no soak.
const DefaultSoak = 2 * time.Minute

// Policy says how a promotion reaches the target branch.
type Policy string

const (
	// PolicyPullRequest opens (or updates) a pull request from a promotion
	// branch; a person merging it is the approval. The default.
	PolicyPullRequest Policy = "pull-request"
	// PolicyAuto pushes the promotion commit to the target branch.
	PolicyAuto Policy = "auto"
)

// Environment is one stage of a pipeline.
type Environment struct {
	// Name is short and used in branch names and messages, e.g. "dev".
	Name string
	// Branch is the environment branch, e.g. "env/dev".
	Branch string
	// Overlay is the folder of the environment's Kustomize overlay, e.g.
	// "overlays/dev". It is never promoted; its images: tags are carried.
	Overlay string
}

// Edge is a promotion from one environment into another.
type Edge struct {
	// From and To are environment names.
	From, To string
	// Policy is PolicyAuto or PolicyPullRequest; empty means
	// PolicyPullRequest.
	Policy Policy
	// Soak is how long From must have been healthy at the synced commit;
	// zero means DefaultSoak. Negative is refused.
	Soak time.Duration
	// Queries are PromQL gates, all of which must pass.
	Queries []QueryGate
	// RevertOnUnhealthy, when set, makes Rollback revert a promotion of
	// this edge that left To unhealthy: by pull request, or by a direct
	// push when Policy is PolicyAuto. Off by default: a revert is a
	// decision people usually want to make.
	RevertOnUnhealthy bool
}

// Name is "from->to", as events and errors name an edge.
func (e Edge) Name() string { return e.From + "->" + e.To }

// Paths selects the promotable paths: those carried from the source
// commit to the target branch. Overlay folders of every environment are
// never promotable.
type Paths struct {
	// Include lists glob patterns of promotable paths; empty means every
	// path. A pattern matches a path or any folder above it; "*" matches
	// within one path segment and "**" any number of segments.
	Include []string
	// Exclude lists glob patterns of paths that are not promotable even
	// when included.
	Exclude []string
}

// Pipeline is the ordered environments and the edges between them.
type Pipeline struct {
	// Name names the pipeline (the application or team) in pull request
	// titles and descriptions; empty or "default" leaves it out, as for an
	// agent with one pipeline.
	Name string
	// Environments in promotion order, e.g. dev, staging, prod.
	Environments []Environment
	// Edges between environments; each must go from an earlier to a later
	// environment. Empty means one edge between each pair of consecutive
	// environments, with the default policy and gates.
	Edges []Edge
	// Paths selects what is promoted.
	Paths Paths
}

// Validate checks the pipeline and names the faulty field.
func (p Pipeline) Validate() error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{field}, args...)...))
	}
	if len(p.Environments) < 2 {
		add("environments", "at least two environments are needed to promote")
	}
	index := map[string]int{}
	branches := map[string]bool{}
	for i, e := range p.Environments {
		field := fmt.Sprintf("environments[%d]", i)
		switch {
		case e.Name == "" || strings.ContainsAny(e.Name, " /\t\n@:"):
			add(field+".name", "%q: want a short name without spaces, slashes, '@' or ':'", e.Name)
		case index[e.Name] > 0:
			add(field+".name", "%q is listed twice", e.Name)
		}
		index[e.Name] = i + 1
		if err := source.ValidBranch(e.Branch); err != nil {
			add(field+".branch", "%v", err)
		} else if branches[e.Branch] {
			add(field+".branch", "%q is used by two environments", e.Branch)
		}
		branches[e.Branch] = true
		if err := ValidOverlay(e.Overlay); err != nil {
			add(field+".overlay", "%v", err)
		}
	}
	seen := map[string]bool{}
	for i, e := range p.Edges {
		field := fmt.Sprintf("edges[%d]", i)
		from, to := index[e.From], index[e.To]
		switch {
		case from == 0:
			add(field+".from", "%q is not an environment", e.From)
		case to == 0:
			add(field+".to", "%q is not an environment", e.To)
		case from >= to:
			add(field, "%s comes after %s: promotions go forward", e.From, e.To)
		case seen[e.Name()]:
			add(field, "%s is listed twice", e.Name())
		}
		seen[e.Name()] = true
		if e.Policy != "" && e.Policy != PolicyAuto && e.Policy != PolicyPullRequest {
			add(field+".policy", "%q: want %q or %q", e.Policy, PolicyAuto, PolicyPullRequest)
		}
		if e.Soak < 0 {
			add(field+".soak", "must not be negative")
		}
		for j, q := range e.Queries {
			// Each problem is "<field>: <problem>"; prefix the gate's path.
			if joined, ok := q.Validate().(interface{ Unwrap() []error }); ok {
				for _, err := range joined.Unwrap() {
					errs = append(errs, fmt.Errorf("%s.queries[%d].%w", field, j, err))
				}
			}
		}
	}
	for i, pat := range p.Paths.Include {
		if err := ValidGlob(pat); err != nil {
			add(fmt.Sprintf("paths.include[%d]", i), "%v", err)
		}
	}
	for i, pat := range p.Paths.Exclude {
		if err := ValidGlob(pat); err != nil {
			add(fmt.Sprintf("paths.exclude[%d]", i), "%v", err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("pipeline: %w", errors.Join(errs...))
	}
	return nil
}

// ValidOverlay checks an environment's overlay folder: a clean path to a
// folder below the repository root, never the root itself, since overlays
// are never promoted. internal/config checks the pipeline's environments'
// paths with it.
func ValidOverlay(dir string) error {
	if clean := path.Clean(dir); dir == "" || clean == "." || clean != dir || path.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") {
		return fmt.Errorf("%q: want a relative folder below the repository root, such as overlays/dev (an overlay is never promoted)", dir)
	}
	return nil
}

// label is the pipeline's name as titles show it: "[shop] ", or nothing
// for an unnamed or default pipeline.
func (p Pipeline) label() string {
	if p.Name == "" || p.Name == "default" {
		return ""
	}
	return "[" + p.Name + "] "
}

// edges returns the configured edges with defaults applied.
func (p Pipeline) edges() []Edge {
	edges := p.Edges
	if len(edges) == 0 {
		for i := 0; i+1 < len(p.Environments); i++ {
			edges = append(edges, Edge{From: p.Environments[i].Name, To: p.Environments[i+1].Name})
		}
	}
	out := make([]Edge, len(edges))
	for i, e := range edges {
		if e.Policy == "" {
			e.Policy = PolicyPullRequest
		}
		if e.Soak == 0 {
			e.Soak = DefaultSoak
		}
		out[i] = e
	}
	return out
}

func (p Pipeline) environment(name string) (Environment, bool) {
	for _, e := range p.Environments {
		if e.Name == name {
			return e, true
		}
	}
	return Environment{}, false
}

// PromotionBranch is the branch that carries the promotion commit of a
// pull-request edge: baton/promote-<from>-to-<to>.
func PromotionBranch(e Edge) string { return "baton/promote-" + e.From + "-to-" + e.To }

// RevertBranch is the branch that carries a revert pull request of an
// edge's promotion: baton/revert-<from>-to-<to>.
func RevertBranch(e Edge) string { return "baton/revert-" + e.From + "-to-" + e.To }

// Branches lists every branch the promoter's repository must follow: the
// environment branches, then the promotion and revert branches of every
// edge. Give the promoter a source.Repository of its own following these
// (a separate cache folder): its polls must not consume the change
// notifications the agent's sync loop relies on.
func (p Pipeline) Branches() []string {
	var out []string
	for _, e := range p.Environments {
		out = append(out, e.Branch)
	}
	for _, e := range p.edges() {
		out = append(out, PromotionBranch(e), RevertBranch(e))
	}
	return out
}
