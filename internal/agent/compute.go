package agent

import (
	"context"
	"fmt"

	"k8s.io/client-go/rest"

	"github.com/baton-gitops/baton/health"
	"github.com/baton-gitops/baton/internal/config"
	"github.com/baton-gitops/baton/promote"
	"github.com/baton-gitops/baton/reconciler"
	"github.com/baton-gitops/baton/render"
	"github.com/baton-gitops/baton/source"
)

// RoleComputed marks a Status computed by ComputeStatus rather than served
// by an agent.
const RoleComputed = "computed"

// ComputeOptions configure ComputeStatus.
type ComputeOptions struct {
	// Config is the loaded baton.yaml. Required.
	Config *config.Config
	// REST reaches the cluster the environments are applied to. Required.
	REST *rest.Config
	// Environments to compute; empty means Config.Sync, or every
	// environment when Sync is empty.
	Environments []string
	// CacheDir holds the git stores. Required. Use a folder no running
	// agent uses.
	CacheDir string
}

// ComputeStatus works out what an agent would report, from git and the
// cluster, without an agent: the branch head, the synced revision (from the
// inventory), the health of the synced objects, the objects drifted from
// the synced revision (when it is the branch head; drift against an older
// revision cannot be told from a change in git) and open promotion pull
// requests. What only a running agent knows stays empty: the last sync's
// time and outcome, and promotions that are blocked rather than proposed.
func ComputeStatus(ctx context.Context, opts ComputeOptions) (Status, error) {
	cfg := opts.Config
	names := opts.Environments
	if len(names) == 0 {
		names = cfg.Sync
	}
	if len(names) == 0 {
		for _, e := range cfg.Environments {
			names = append(names, e.Name)
		}
	}
	rec, err := reconciler.New(opts.REST, reconciler.Options{InventoryNamespace: cfg.Agent.Namespace, DisableCache: true})
	if err != nil {
		return Status{}, err
	}
	defer rec.Close()
	own, err := health.NewChecker(opts.REST, health.CheckerOptions{})
	if err != nil {
		return Status{}, err
	}
	envCheckers := &checkers{rest: opts.REST, own: own}
	ropts := RenderOptions(cfg, "")
	ropts.CacheSize = -1
	renderer, err := render.New(ropts)
	if err != nil {
		return Status{}, err
	}

	heads, err := branchHeads(ctx, cfg, names, opts.CacheDir)
	if err != nil {
		return Status{}, err
	}
	st := Status{Role: RoleComputed, Environments: []EnvironmentStatus{}}
	for _, name := range names {
		env := cfg.Environment(name)
		if env == nil {
			return Status{}, fmt.Errorf("no environment %q in the configuration", name)
		}
		h := heads[name]
		es := EnvironmentStatus{Name: env.Name, Repository: cfg.Repository(env.Repository).URL, Branch: env.Branch,
			Path: env.Path, Suspended: env.Suspend, Head: revisionInfo(h.rev), SourceError: errString(h.err)}
		inv, err := rec.Inventory(ctx, env.Name)
		if err != nil {
			return Status{}, fmt.Errorf("environment %s: %w", env.Name, err)
		}
		if inv.Revision != "" {
			es.Synced = &RevisionInfo{Commit: inv.Revision}
			if h.rev != nil && h.rev.Commit == inv.Revision {
				es.Synced = revisionInfo(h.rev)
			}
			var refs []health.ObjectRef
			for _, e := range inv.Entries {
				refs = append(refs, health.ObjectRef{Group: e.Group, Version: e.Version, Kind: e.Kind, Namespace: e.Namespace, Name: e.Name})
			}
			checker, err := envCheckers.forEnvironment(*env)
			if err != nil {
				return Status{}, err
			}
			report := checker.Check(ctx, refs, evalOptions(env.Health))
			es.Health = HealthInfo{Status: string(report.Overall), Cause: string(report.Cause), Message: report.Message,
				Since: report.Since, Revision: inv.Revision}
			if h.rev != nil && h.rev.Commit == inv.Revision {
				if es.Drifted, err = drifted(ctx, renderer, rec, *env, h.rev); err != nil {
					return Status{}, fmt.Errorf("environment %s: drift: %w", env.Name, err)
				}
			}
		}
		es.Pipeline = cfg.PipelineName(env.Name)
		forge, err := promoteForge(cfg.ForgeOf(cfg.PipelineOf(env.Name)))
		if err != nil {
			return Status{}, err
		}
		for _, e := range cfg.EdgesFrom(env.Name) {
			info := PromotionInfo{To: e.To, Policy: e.Policy}
			if forge != nil && e.Policy == config.PolicyPullRequest {
				to := cfg.Environment(e.To)
				prs, err := forge.PullRequests(ctx, promote.PromotionBranch(promote.Edge{From: e.From, To: e.To}), to.Branch, "open")
				if err != nil {
					return Status{}, fmt.Errorf("promotion %s -> %s: %w", e.From, e.To, err)
				}
				if len(prs) > 0 {
					info.Outcome, info.PullRequestURL, info.Commit = PromotionPullRequest, prs[0].URL, prs[0].HeadSHA
				}
			}
			es.Promotions = append(es.Promotions, info)
		}
		st.Environments = append(st.Environments, es)
	}
	return st, nil
}

// headResult is a branch's head or why it could not be read.
type headResult struct {
	rev *source.Revision
	err error
}

// branchHeads polls each repository once for the branches of the named
// environments.
func branchHeads(ctx context.Context, cfg *config.Config, names []string, cacheDir string) (map[string]headResult, error) {
	byRepo := map[string][]*config.Environment{}
	var order []string
	for _, n := range names {
		e := cfg.Environment(n)
		if e == nil {
			return nil, fmt.Errorf("no environment %q in the configuration", n)
		}
		if _, ok := byRepo[e.Repository]; !ok {
			order = append(order, e.Repository)
		}
		byRepo[e.Repository] = append(byRepo[e.Repository], e)
	}
	out := map[string]headResult{}
	for _, name := range order {
		var branches []string
		for _, e := range byRepo[name] {
			if !contains(branches, e.Branch) {
				branches = append(branches, e.Branch)
			}
		}
		repo, err := source.NewRepository(RepositorySettings(*cfg.Repository(name), branches), source.Options{CacheDir: cacheDir, MaxBlobSize: cfg.Limits.MaxBlobSize.Value()})
		if err != nil {
			return nil, err
		}
		res, pollErr := repo.Poll(ctx)
		for _, e := range byRepo[name] {
			h := headResult{rev: repo.Revision(e.Branch), err: pollErr}
			for _, br := range res.Branches {
				if br.Branch == e.Branch && br.Err != nil {
					h.err = br.Err
				}
			}
			out[e.Name] = h
		}
		if err := repo.Close(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// drifted renders rev and lists the objects a dry-run pass finds drifted.
func drifted(ctx context.Context, r *render.Renderer, rec *reconciler.Reconciler, env config.Environment, rev *source.Revision) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, env.Timeout.Duration)
	defer cancel()
	res, err := r.Render(ctx, rev.Snapshot, env.Path)
	if err != nil {
		return nil, err
	}
	diff, err := rec.Diff(ctx, SyncRequest(env, rev.Commit, res.Objects))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, ref := range diff.Drifted {
		out = append(out, ref.String())
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
