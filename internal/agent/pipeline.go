package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/baton-gitops/baton/internal/config"
	"github.com/baton-gitops/baton/promote"
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

// PipelinePromoter is the Promoter built from baton.yaml's pipelines, forge
// and Prometheus settings with the promote package: one promote.Promoter
// per pipeline, each with its own edges, gates, paths, author and forge
// repository. The agent and `baton promote` both use it. Close it when
// done.
type PipelinePromoter struct {
	repos []*source.Repository
	// edges maps "from->to" to its pipeline's promoter and edge: an
	// environment is in one pipeline at most, so the ends name the edge.
	edges map[string]pipelineEdge
}

type pipelineEdge struct {
	promoter *promote.Promoter
	edge     promote.Edge
}

// NewPipelinePromoter builds the promoter, or returns nil and no error when
// no pipeline has edges. It contacts nothing yet.
//
// The promoters follow the pipelines' branches (environment, promotion and
// revert branches) in stores of their own, as the promote package requires,
// one per repository shared by the pipelines in it (a poll reads every
// followed branch; the pipelines' branches never overlap). Each store
// applies its repository's signature policy to the environment branches,
// the heads promotions are built on: a target whose head fails it blocks
// its promotions. Promotion and revert branches are Baton's own and are
// checked by content instead. The promoted content comes from the source
// environment's synced (and, where required, verified) revision.
func NewPipelinePromoter(opts PipelinePromoterOptions) (pp *PipelinePromoter, err error) {
	cfg := opts.Config
	pp = &PipelinePromoter{edges: map[string]pipelineEdge{}}
	defer func() {
		if err != nil {
			_ = pp.Close()
		}
	}()
	// Every environment of a pipeline is in one repository (config
	// validation checks it).
	byRepo := map[string][]string{}
	envBranches := map[string][]string{}
	var repoOrder []string
	var pls []*config.Pipeline
	for i := range cfg.Pipelines {
		cp := &cfg.Pipelines[i]
		if len(cp.Edges) == 0 {
			continue
		}
		pls = append(pls, cp)
		repo := cfg.Environment(cp.Order[0]).Repository
		if _, seen := byRepo[repo]; !seen {
			repoOrder = append(repoOrder, repo)
		}
		pl := pipeline(cfg, cp)
		byRepo[repo] = append(byRepo[repo], pl.Branches()...)
		for _, e := range pl.Environments {
			envBranches[repo] = append(envBranches[repo], e.Branch)
		}
	}
	if len(pls) == 0 {
		return nil, nil
	}
	repos := map[string]*source.Repository{}
	for i, name := range repoOrder {
		settings := promoterSettings(*cfg.Repository(name), byRepo[name], envBranches[name])
		// The first repository keeps the folder of the one-pipeline
		// agent, so that an upgrade reuses its store.
		dir := filepath.Join(opts.CacheDir, "promote")
		if i > 0 {
			dir = filepath.Join(dir, name)
		}
		repo, err := source.NewRepository(settings, source.Options{CacheDir: dir, MaxBlobSize: cfg.Limits.MaxBlobSize.Value(),
			Logger: opts.Logger, Metrics: opts.SourceMetrics, Clock: opts.Clock})
		if err != nil {
			return nil, fmt.Errorf("promoter repository %s: %w", name, err)
		}
		pp.repos = append(pp.repos, repo)
		repos[name] = repo
	}
	for _, cp := range pls {
		p, err := newPromoter(opts, cp, repos[cfg.Environment(cp.Order[0]).Repository])
		if err != nil {
			return nil, err
		}
		for _, e := range p.Edges() {
			pp.edges[e.From+"->"+e.To] = pipelineEdge{promoter: p, edge: e}
		}
	}
	return pp, nil
}

// newPromoter builds the promoter of one pipeline on repo.
func newPromoter(opts PipelinePromoterOptions, cp *config.Pipeline, repo *source.Repository) (*promote.Promoter, error) {
	cfg := opts.Config
	pl := pipeline(cfg, cp)
	if err := pl.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", cp.Path(), err)
	}
	po := promote.Options{Pipeline: pl, Repo: repo, Logger: opts.Logger, Journal: opts.Journal,
		Author: source.Signature{Name: cp.Author.Name, Email: cp.Author.Email}}
	var err error
	if po.Signer, err = signer(*cp); err != nil {
		return nil, err
	}
	if opts.Clock != nil {
		po.Clock = opts.Clock
	}
	if po.Forge, err = promoteForge(cfg.ForgeOf(cp)); err != nil {
		return nil, fmt.Errorf("%s: %w", cp.Path(), err)
	}
	if c, ok := po.Forge.(interface{ CompareURL() string }); ok {
		po.CompareURL = c.CompareURL()
	}
	if po.Querier, err = querier(cp.Path(), cp.Prometheus); err != nil {
		return nil, err
	}
	p, err := promote.New(po)
	if err != nil {
		return nil, fmt.Errorf("promoter: %w", err)
	}
	return p, nil
}

// promoterSettings are the source settings of a promoter's store: every
// branch of the repository's pipelines, with the signature policy kept for
// the environment branches it covers.
func promoterSettings(repo config.Repository, branches, envBranches []string) source.RepositorySettings {
	settings := RepositorySettings(repo, branches)
	sig := repo.Signatures
	if sig == nil {
		return settings
	}
	var signed []string
	for _, b := range envBranches {
		if len(sig.Branches) == 0 || contains(sig.Branches, b) {
			signed = append(signed, b)
		}
	}
	settings.Signatures = nil
	if len(signed) > 0 {
		settings.Signatures = &source.SignatureSettings{KeyringFile: sig.KeyringFile, Branches: signed}
	}
	return settings
}

// pipeline converts one of the configuration's pipelines for the promote
// package. An edge soaks for its source environment's health.soak.
func pipeline(cfg *config.Config, cp *config.Pipeline) promote.Pipeline {
	pl := promote.Pipeline{Name: cp.Name}
	for _, name := range cp.Order {
		e := cfg.Environment(name)
		pl.Environments = append(pl.Environments, promote.Environment{Name: e.Name, Branch: e.Branch, Overlay: path.Clean(e.Path)})
	}
	for _, e := range cp.Edges {
		edge := promote.Edge{From: e.From, To: e.To, Policy: promote.Policy(e.Policy), RevertOnUnhealthy: e.RevertOnUnhealthy}
		if from := cfg.Environment(e.From); from != nil {
			edge.Soak = from.Health.Soak.Duration
		}
		for _, g := range e.Gates.Metrics {
			edge.Queries = append(edge.Queries, g.QueryGate())
		}
		pl.Edges = append(pl.Edges, edge)
	}
	pl.Paths = promote.Paths{Include: cp.Paths.Include, Exclude: cp.Paths.Exclude}
	return pl
}

// signer reads the pipeline's commit signing key, if one is configured.
func signer(p config.Pipeline) (source.Signer, error) {
	if p.SigningKeyFile == "" {
		return nil, nil
	}
	key, err := os.ReadFile(p.SigningKeyFile)
	if err != nil {
		return nil, fmt.Errorf("%s.signingKeyFile: %w", p.Path(), err)
	}
	var passphrase []byte
	if p.SigningKeyPassphraseFile != "" {
		b, err := os.ReadFile(p.SigningKeyPassphraseFile)
		if err != nil {
			return nil, fmt.Errorf("%s.signingKeyPassphraseFile: %w", p.Path(), err)
		}
		passphrase = []byte(strings.TrimRight(string(b), "\r\n"))
	}
	s, err := source.OpenPGPSigner(key, passphrase)
	if err != nil {
		return nil, fmt.Errorf("%s.signingKeyFile %s: %w", p.Path(), p.SigningKeyFile, err)
	}
	return s, nil
}

func querier(at string, p config.Prometheus) (promote.Querier, error) {
	if p.URL == "" {
		return nil, nil
	}
	var token string
	if p.BearerTokenFile != "" {
		b, err := os.ReadFile(p.BearerTokenFile)
		if err != nil {
			return nil, fmt.Errorf("%s.prometheus.bearerTokenFile: %w", at, err)
		}
		token = strings.TrimRight(string(b), "\r\n")
	}
	c, err := promql.New(p.URL, promql.Options{BearerToken: token})
	if err != nil {
		return nil, fmt.Errorf("%s.prometheus.url: %w", at, err)
	}
	return c, nil
}

// Promote evaluates the edge req.From -> req.To.
func (p *PipelinePromoter) Promote(ctx context.Context, req PromotionRequest) (PromotionResult, error) {
	out, err := p.onEdge(ctx, "promote", req, (*promote.Promoter).Evaluate)
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
	out, err := p.onEdge(ctx, "revert", req, (*promote.Promoter).Rollback)
	if err != nil {
		return PromotionResult{}, err
	}
	if out.Result == promote.Skipped {
		return PromotionResult{}, nil
	}
	return promotionResult(out), nil
}

// onEdge runs op (Evaluate or Rollback) on the edge req names, by its
// pipeline's promoter, with req's state.
func (p *PipelinePromoter) onEdge(ctx context.Context, verb string, req PromotionRequest,
	op func(*promote.Promoter, context.Context, promote.Edge, promote.SourceState) (promote.Outcome, error)) (promote.Outcome, error) {
	pe, ok := p.edges[req.From+"->"+req.To]
	if !ok {
		return promote.Outcome{}, fmt.Errorf("%s %s -> %s: no such pipeline edge", verb, req.From, req.To)
	}
	return op(pe.promoter, ctx, pe.edge, promote.SourceState{
		Revision: req.Revision, SyncedAt: req.SyncedAt, Healthy: req.Healthy, HealthySince: req.HealthySince,
		Reason: req.Reason, Frozen: req.Frozen, FrozenReason: req.FrozenReason, Override: req.Override,
	})
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

// Close releases the promoters' git stores.
func (p *PipelinePromoter) Close() error {
	var errs []error
	for _, r := range p.repos {
		errs = append(errs, r.Close())
	}
	return errors.Join(errs...)
}

// Rollback reverts promotions into env along the pipeline edge from ->
// env, by hand (`baton rollback`): the last one in effect, or every one
// after req.To; as a commit or a pull request per the edge's policy,
// without gates. The reverted content is then held.
func (p *PipelinePromoter) Rollback(ctx context.Context, from, env string, req promote.RevertRequest) (PromotionResult, error) {
	pe, ok := p.edges[from+"->"+env]
	if !ok {
		return PromotionResult{}, fmt.Errorf("rollback %s: no pipeline edge %s -> %s", env, from, env)
	}
	out, err := pe.promoter.Revert(ctx, pe.edge, req)
	if err != nil {
		return PromotionResult{}, err
	}
	r := promotionResult(out)
	r.Outcome = string(out.Result)
	return r, nil
}
