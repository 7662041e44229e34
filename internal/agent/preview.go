package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/baton-gitops/baton/internal/config"
	"github.com/baton-gitops/baton/preview"
	"github.com/baton-gitops/baton/promote"
	"github.com/baton-gitops/baton/reconciler"
	"github.com/baton-gitops/baton/render"
	"github.com/baton-gitops/baton/source"
)

// wireForge adds what the forge does beyond promotions: deploy statuses
// (a Recorder) and pull request previews. It runs in New, after the
// renderer and reconciler are built and before the loops are.
func (a *Agent) wireForge(cacheDir string, metrics source.Metrics, clock Clock) error {
	cfg := a.cfg
	forge, err := newForgeClient(cfg.Forge)
	if err != nil || forge == nil {
		return err
	}
	recs := recorders{a.recorder}
	previewed := previewedEnvironments(cfg)
	if cfg.Forge.DeployStatusesEnabled() {
		d := newDeployStatuses(forge, a.log, clock)
		// Only commits of the forge's repository: another pipeline's
		// repository is on a forge of its own.
		d.only = map[string]bool{}
		for _, e := range previewed {
			d.only[e.Name] = true
		}
		a.closers = append(a.closers, d.close)
		recs = append(recs, d)
	}
	if cfg.Forge.Preview.IsEnabled() {
		p, heads, err := newPreviewer(cfg, previewed, forge, a.parts.renderer, a.parts.reconciler, cacheDir, a.log, metrics)
		if err != nil {
			return fmt.Errorf("previews: %w", err)
		}
		if p != nil {
			a.previewer = p
			a.closers = append(a.closers, heads.close)
			recs = append(recs, &liveWatcher{previewer: p, last: map[string]string{}})
		}
	}
	a.recorder = recs
	a.parts.recorder = recs
	return nil
}

// previewedEnvironments are the synced environments whose repository is
// the forge's (forge.repository is the end of its URL's path): pull
// requests into their branches get previews.
func previewedEnvironments(cfg *config.Config) []config.Environment {
	suffix := "/" + strings.ToLower(strings.Trim(cfg.Forge.Repository, "/"))
	var out []config.Environment
	for _, name := range cfg.Sync {
		e := cfg.Environment(name)
		if strings.HasSuffix(source.NormalizeURL(cfg.Repository(e.Repository).URL), suffix) {
			out = append(out, *e)
		}
	}
	return out
}

// newPreviewer builds the previewer of the environments in envs, or nil
// when there is none.
func newPreviewer(cfg *config.Config, envs []config.Environment, forge forgeClient, renderer *render.Renderer,
	rec *reconciler.Reconciler, cacheDir string, log *slog.Logger, metrics source.Metrics) (*preview.Previewer, *prHeads, error) {
	if len(envs) == 0 {
		return nil, nil, nil
	}
	byName := map[string]config.Environment{}
	var penvs []preview.Environment
	for _, e := range envs {
		byName[e.Name] = e
		penvs = append(penvs, preview.Environment{Name: e.Name, Branch: e.Branch, Path: e.Path})
	}
	repo := *cfg.Repository(envs[0].Repository)
	heads := &prHeads{repo: repo, dir: filepath.Join(cacheDir, "preview"), log: log, metrics: metrics, repos: map[string]*source.Repository{}}
	p, err := preview.New(preview.Options{
		Environments: penvs,
		Forge:        previewForge{forge},
		Heads:        heads,
		DryRun: func(ctx context.Context, env string, rev *source.Revision) (reconciler.Result, error) {
			return DryRun(ctx, renderer, rec, byName[env], rev)
		},
		Follows: func(urls []string) bool {
			want := source.NormalizeURL(repo.URL)
			for _, u := range urls {
				if source.NormalizeURL(u) == want {
					return true
				}
			}
			return false
		},
		Interval:        cfg.Forge.Preview.Interval.Duration,
		MaxCommentBytes: cfg.Forge.Preview.MaxCommentBytes,
		Logger:          log,
	})
	if err != nil {
		return nil, nil, err
	}
	return p, heads, nil
}

// previewForge adapts the forge client to the previewer's Forge.
type previewForge struct{ c forgeClient }

func (f previewForge) OpenPullRequests(ctx context.Context, base string) ([]preview.PullRequest, error) {
	prs, err := f.c.OpenPullRequests(ctx, base)
	if err != nil {
		return nil, err
	}
	out := make([]preview.PullRequest, len(prs))
	for i, pr := range prs {
		out[i] = preview.PullRequest{Number: pr.Number, Head: pr.Head, HeadSHA: pr.HeadSHA, Fork: pr.Fork}
	}
	return out, nil
}

func (f previewForge) Comments(ctx context.Context, number int) ([]preview.Comment, error) {
	list, err := f.c.PullRequestComments(ctx, number)
	if err != nil {
		return nil, err
	}
	out := make([]preview.Comment, len(list))
	for i, c := range list {
		out[i] = preview.Comment{ID: c.ID, Body: c.Body}
	}
	return out, nil
}

func (f previewForge) CreateComment(ctx context.Context, number int, body string) (int64, error) {
	return f.c.CreateComment(ctx, number, body)
}

func (f previewForge) EditComment(ctx context.Context, number int, id int64, body string) error {
	return f.c.EditComment(ctx, number, id, body)
}

func (f previewForge) SetStatus(ctx context.Context, sha string, st preview.Status) error {
	return f.c.SetCommitStatus(ctx, sha, promote.CommitStatus{Context: st.Context, State: promote.StatusState(st.State), Description: st.Description})
}

// prHeads fetches pull request branches, each into a git store of its
// own below dir (a branch's store is removed when its last pull request
// closes). Signatures are not required: a preview applies nothing, and the
// merge commit faces the environment's policy when it is synced.
type prHeads struct {
	repo    config.Repository
	dir     string
	log     *slog.Logger
	metrics source.Metrics

	mu    sync.Mutex // guards repos
	repos map[string]*source.Repository
}

// Head fetches branch and returns its head.
func (h *prHeads) Head(ctx context.Context, branch string) (*source.Revision, error) {
	repo, err := h.open(branch)
	if err != nil {
		return nil, err
	}
	res, err := repo.Poll(ctx)
	for _, b := range res.Branches {
		if b.Err != nil {
			err = b.Err
		}
	}
	if err != nil {
		return nil, err
	}
	rev := repo.Revision(branch)
	if rev == nil {
		return nil, fmt.Errorf("%s@%s: no revision", repo.URL(), branch)
	}
	return rev, nil
}

func (h *prHeads) open(branch string) (*source.Repository, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if r := h.repos[branch]; r != nil {
		return r, nil
	}
	settings := RepositorySettings(h.repo, []string{branch})
	settings.Signatures = nil
	r, err := source.NewRepository(settings, source.Options{CacheDir: h.branchDir(branch), Logger: h.log, Metrics: h.metrics})
	if err != nil {
		return nil, fmt.Errorf("preview store for %s: %w", branch, err)
	}
	h.repos[branch] = r
	return r, nil
}

// branchDir names a branch's store by a hash: any branch name makes a
// safe folder name.
func (h *prHeads) branchDir(branch string) string {
	sum := sha256.Sum256([]byte(branch))
	return filepath.Join(h.dir, hex.EncodeToString(sum[:8]))
}

// Forget closes and removes branch's store.
func (h *prHeads) Forget(branch string) {
	h.mu.Lock()
	r := h.repos[branch]
	delete(h.repos, branch)
	h.mu.Unlock()
	if r != nil {
		_ = r.Close()
	}
	if err := os.RemoveAll(h.branchDir(branch)); err != nil && !errors.Is(err, os.ErrNotExist) {
		h.log.Warn("preview store not removed", "branch", branch, "error", err)
	}
}

// close closes every store (they stay on disk for the next leadership).
func (h *prHeads) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for b, r := range h.repos {
		_ = r.Close()
		delete(h.repos, b)
	}
}

// liveWatcher tells the previewer when an environment's live state
// changes: a sync of another commit (the base moved), or a sync that
// changed, corrected or pruned objects.
type liveWatcher struct {
	previewer *preview.Previewer

	mu   sync.Mutex // guards last
	last map[string]string
}

func (w *liveWatcher) SyncDone(r SyncRecord) {
	w.mu.Lock()
	moved := r.Revision != "" && w.last[r.Environment] != r.Revision
	if r.Revision != "" {
		w.last[r.Environment] = r.Revision
	}
	w.mu.Unlock()
	changed := false
	for _, a := range []string{string(reconciler.ActionCreated), string(reconciler.ActionConfigured), string(reconciler.ActionDeleted),
		string(reconciler.ActionRecreated), string(reconciler.ActionDrifted)} {
		changed = changed || r.Counts[a] > 0
	}
	if moved || changed {
		w.previewer.LiveChanged(r.Environment)
	}
}

func (w *liveWatcher) HealthChanged(HealthRecord)    {}
func (w *liveWatcher) PromotionDone(PromotionRecord) {}
func (w *liveWatcher) LeaderChanged(bool)            {}

// EnvironmentReleased forgets env's revision: another replica syncs it.
func (w *liveWatcher) EnvironmentReleased(env string) {
	w.mu.Lock()
	delete(w.last, env)
	w.mu.Unlock()
}
