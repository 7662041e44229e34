package agent

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/baton-gitops/baton/internal/config"
	"github.com/baton-gitops/baton/promote"
	"github.com/baton-gitops/baton/promote/forge/gitea"
	"github.com/baton-gitops/baton/promote/forge/github"
	"github.com/baton-gitops/baton/promote/promql"
	"github.com/baton-gitops/baton/source"
)

// PipelinePromoterOptions configure NewPipelinePromoter.
type PipelinePromoterOptions struct {
	// Config is the loaded baton.yaml. Required.
	Config *config.Config
	// CacheDir is the cache folder; the promoter keeps its own git store in
	// a "promote" folder below it. Required.
	CacheDir string
	// Logger receives the promoter's debug detail; nil discards.
	Logger *slog.Logger
	// SourceMetrics receives the git operations' measurements; nil records
	// nothing.
	SourceMetrics source.Metrics
	// Clock tells the time for the soak and commit dates; nil means the
	// system clock.
	Clock Clock
	// Journal keeps which landed promotions were reported, across
	// restarts; nil keeps it in memory (see promote.Options.Journal).
	Journal promote.Journal
}

// PipelinePromoter is the Promoter built from baton.yaml's pipeline, forge
// and Prometheus settings with the promote package. The agent and `baton
// promote` both use it. Close it when done.
type PipelinePromoter struct {
	promoter *promote.Promoter
	repo     *source.Repository
	edges    map[string]promote.Edge
}

// NewPipelinePromoter builds the promoter, or returns nil and no error when
// the configuration has no pipeline edges. It contacts nothing yet.
//
// The promoter follows the pipeline's branches (environment, promotion and
// revert branches) in a store of its own, as the promote package requires.
// That store verifies no signatures: it only reads the target branches'
// heads to build on, while the promoted content comes from the source
// environment's synced (and, where required, verified) revision.
func NewPipelinePromoter(opts PipelinePromoterOptions) (*PipelinePromoter, error) {
	cfg := opts.Config
	if len(cfg.Pipeline.Edges) == 0 {
		return nil, nil
	}
	pl := pipeline(cfg)
	if err := pl.Validate(); err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	// Every environment of the pipeline is in one repository (config
	// validation checks it).
	repoCfg := cfg.Repository(cfg.Environment(cfg.Pipeline.Order[0]).Repository)
	settings := RepositorySettings(*repoCfg, pl.Branches())
	settings.Signatures = nil
	repo, err := source.NewRepository(settings, source.Options{CacheDir: filepath.Join(opts.CacheDir, "promote"),
		Logger: opts.Logger, Metrics: opts.SourceMetrics, Clock: opts.Clock})
	if err != nil {
		return nil, fmt.Errorf("promoter repository: %w", err)
	}
	po := promote.Options{Pipeline: pl, Repo: repo, Logger: opts.Logger, Journal: opts.Journal,
		Author: source.Signature{Name: cfg.Pipeline.Author.Name, Email: cfg.Pipeline.Author.Email}}
	if po.Signer, err = signer(cfg.Pipeline); err != nil {
		repo.Close()
		return nil, err
	}
	if opts.Clock != nil {
		po.Clock = opts.Clock
	}
	if po.Forge, err = forgeClient(cfg.Forge); err != nil {
		repo.Close()
		return nil, err
	}
	if c, ok := po.Forge.(interface{ CompareURL() string }); ok {
		po.CompareURL = c.CompareURL()
	}
	if po.Querier, err = querier(cfg.Pipeline.Prometheus); err != nil {
		repo.Close()
		return nil, err
	}
	p, err := promote.New(po)
	if err != nil {
		repo.Close()
		return nil, fmt.Errorf("promoter: %w", err)
	}
	pp := &PipelinePromoter{promoter: p, repo: repo, edges: map[string]promote.Edge{}}
	for _, e := range p.Edges() {
		pp.edges[e.From+"->"+e.To] = e
	}
	return pp, nil
}

// pipeline converts the configuration's pipeline for the promote package.
// An edge soaks for its source environment's health.soak.
func pipeline(cfg *config.Config) promote.Pipeline {
	var pl promote.Pipeline
	for _, name := range cfg.Pipeline.Order {
		e := cfg.Environment(name)
		pl.Environments = append(pl.Environments, promote.Environment{Name: e.Name, Branch: e.Branch, Overlay: e.Path})
	}
	for _, e := range cfg.Pipeline.Edges {
		edge := promote.Edge{From: e.From, To: e.To, Policy: promote.Policy(e.Policy), RevertOnUnhealthy: e.RevertOnUnhealthy}
		if from := cfg.Environment(e.From); from != nil {
			edge.Soak = from.Health.Soak.Duration
		}
		for _, g := range e.Gates.Metrics {
			edge.Queries = append(edge.Queries, promote.QueryGate{Name: g.Name, Query: g.Query,
				Op: promote.Comparison(g.Op), Threshold: g.Threshold})
		}
		pl.Edges = append(pl.Edges, edge)
	}
	pl.Paths = promote.Paths{Include: cfg.Pipeline.Paths.Include, Exclude: cfg.Pipeline.Paths.Exclude}
	return pl
}

func forgeClient(f config.Forge) (promote.Forge, error) {
	owner, name, _ := strings.Cut(f.Repository, "/")
	switch f.Kind {
	case config.ForgeGitea:
		c, err := gitea.New(gitea.Options{URL: f.URL, Owner: owner, Repo: name, TokenFile: f.TokenFile})
		if err != nil {
			return nil, fmt.Errorf("forge: %w", err)
		}
		return c, nil
	case config.ForgeGitHub:
		c, err := github.New(github.Options{APIURL: f.URL, Owner: owner, Repo: name, TokenFile: f.TokenFile})
		if err != nil {
			return nil, fmt.Errorf("forge: %w", err)
		}
		return c, nil
	}
	return nil, nil
}

// signer reads the pipeline's commit signing key, if one is configured.
func signer(p config.Pipeline) (source.Signer, error) {
	if p.SigningKeyFile == "" {
		return nil, nil
	}
	key, err := os.ReadFile(p.SigningKeyFile)
	if err != nil {
		return nil, fmt.Errorf("pipeline.signingKeyFile: %w", err)
	}
	var passphrase []byte
	if p.SigningKeyPassphraseFile != "" {
		b, err := os.ReadFile(p.SigningKeyPassphraseFile)
		if err != nil {
			return nil, fmt.Errorf("pipeline.signingKeyPassphraseFile: %w", err)
		}
		passphrase = []byte(strings.TrimRight(string(b), "\r\n"))
	}
	s, err := source.OpenPGPSigner(key, passphrase)
	if err != nil {
		return nil, fmt.Errorf("pipeline.signingKeyFile %s: %w", p.SigningKeyFile, err)
	}
	return s, nil
}

func querier(p config.Prometheus) (promote.Querier, error) {
	if p.URL == "" {
		return nil, nil
	}
	var token string
	if p.BearerTokenFile != "" {
		b, err := os.ReadFile(p.BearerTokenFile)
		if err != nil {
			return nil, fmt.Errorf("pipeline.prometheus.bearerTokenFile: %w", err)
		}
		token = strings.TrimRight(string(b), "\r\n")
	}
	c, err := promql.New(p.URL, promql.Options{BearerToken: token})
	if err != nil {
		return nil, fmt.Errorf("pipeline.prometheus.url: %w", err)
	}
	return c, nil
}

// Promote evaluates the edge req.From -> req.To.
func (p *PipelinePromoter) Promote(ctx context.Context, req PromotionRequest) (PromotionResult, error) {
	edge, ok := p.edges[req.From+"->"+req.To]
	if !ok {
		return PromotionResult{}, fmt.Errorf("promote %s -> %s: no such pipeline edge", req.From, req.To)
	}
	out, err := p.promoter.Evaluate(ctx, edge, promote.SourceState{
		Revision: req.Revision, SyncedAt: req.SyncedAt, Healthy: req.Healthy, HealthySince: req.HealthySince,
		Reason: req.Reason, Frozen: req.Frozen, FrozenReason: req.FrozenReason, Override: req.Override,
	})
	if err != nil {
		return PromotionResult{}, err
	}
	return promotionResult(out), nil
}

// Revert reverts the promotion along req.From -> req.To that left req.To
// unhealthy: req describes the target, To, synced at req.Revision. An
// Outcome of "" means there was nothing to revert (the target's head is not
// a promotion of the edge, or moved past what is synced).
func (p *PipelinePromoter) Revert(ctx context.Context, req PromotionRequest) (PromotionResult, error) {
	edge, ok := p.edges[req.From+"->"+req.To]
	if !ok {
		return PromotionResult{}, fmt.Errorf("revert %s -> %s: no such pipeline edge", req.From, req.To)
	}
	out, err := p.promoter.Rollback(ctx, edge, promote.SourceState{
		Revision: req.Revision, SyncedAt: req.SyncedAt, Healthy: req.Healthy, Reason: req.Reason,
	})
	if err != nil {
		return PromotionResult{}, err
	}
	if out.Result == promote.Skipped {
		return PromotionResult{}, nil
	}
	return promotionResult(out), nil
}

// promotionResult maps the promote package's outcome onto the agent's
// vocabulary (the Promotion* constants).
func promotionResult(out promote.Outcome) PromotionResult {
	r := PromotionResult{Commit: out.Commit, Retry: out.Retry}
	switch out.Result {
	case promote.Promoted:
		r.Outcome = PromotionPushed
	case promote.PullRequestOpened, promote.PullRequestUpdated, promote.PullRequestCurrent, promote.BranchPushed:
		r.Outcome = PromotionPullRequest
	case promote.Skipped:
		r.Outcome = PromotionUpToDate
	case promote.Held:
		r.Outcome = PromotionHeld
	case promote.Frozen:
		r.Outcome = PromotionFrozen
	case promote.Reverted:
		r.Outcome = PromotionReverted
	default:
		r.Outcome = PromotionBlocked
	}
	if out.PullRequest != nil {
		r.PullRequestURL = out.PullRequest.URL
	} else if out.CompareURL != "" {
		r.PullRequestURL = out.CompareURL
	}
	if out.Blocker != nil {
		r.Reason, r.Detail = out.Blocker.Gate, out.Blocker.Detail
	}
	for _, e := range out.Events {
		r.Events = append(r.Events, PromotionEvent{Kind: string(e.Kind), Who: e.Who, SourceCommit: e.SourceCommit,
			TargetCommit: e.TargetCommit, PullRequest: e.PullRequest, Time: e.When, Message: e.Message})
	}
	return r
}

// Close releases the promoter's git store.
func (p *PipelinePromoter) Close() error { return p.repo.Close() }

// Rollback reverts promotions into env along the pipeline edge from ->
// env, by hand (`baton rollback`): the last one in effect, or every one
// after req.To; as a commit or a pull request per the edge's policy,
// without gates. The reverted content is then held.
func (p *PipelinePromoter) Rollback(ctx context.Context, from, env string, req promote.RevertRequest) (PromotionResult, error) {
	edge, ok := p.edges[from+"->"+env]
	if !ok {
		return PromotionResult{}, fmt.Errorf("rollback %s: no pipeline edge %s -> %s", env, from, env)
	}
	out, err := p.promoter.Revert(ctx, edge, req)
	if err != nil {
		return PromotionResult{}, err
	}
	r := promotionResult(out)
	r.Outcome = string(out.Result)
	return r, nil
}
