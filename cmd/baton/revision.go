package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/baton-gitops/baton/internal/agent"
	"github.com/baton-gitops/baton/internal/config"
	"github.com/baton-gitops/baton/source"
)

// historyWindow is how far back --revision looks for a commit hash.
const historyWindow = 90 * 24 * time.Hour

var hexPrefix = regexp.MustCompile(`^[0-9a-f]{4,40}$`)

// openBranch polls the repository of env following branch and returns it
// with the branch head. The CLI keeps its stores in a "cli" folder of the
// cache, apart from a local agent's. Close the repository when done.
func openBranch(ctx context.Context, cfg *config.Config, env *config.Environment, branch string) (*source.Repository, *source.Revision, error) {
	cacheDir, err := agent.CacheDir(cfg)
	if err != nil {
		return nil, nil, err
	}
	settings := agent.RepositorySettings(*cfg.Repository(env.Repository), []string{branch})
	repo, err := source.NewRepository(settings, source.Options{CacheDir: filepath.Join(cacheDir, "cli"), MaxBlobSize: cfg.Limits.MaxBlobSize.Value()})
	if err != nil {
		return nil, nil, err
	}
	res, err := repo.Poll(ctx)
	if err == nil {
		err = res.Err()
	}
	rev := repo.Revision(branch)
	if err != nil {
		repo.Close()
		return nil, nil, err
	}
	if rev == nil {
		repo.Close()
		return nil, nil, fmt.Errorf("%s@%s: no revision", repo.URL(), branch)
	}
	return repo, rev, nil
}

// resolveRevision returns the revision of env to work on: the branch head
// when ref is empty; a commit of the branch's recent history when ref is a
// hash (or a prefix of one); otherwise the head of the branch ref (a pull
// request's branch, for a preview).
func resolveRevision(ctx context.Context, cfg *config.Config, env *config.Environment, ref string) (*source.Repository, *source.Revision, error) {
	repo, head, err := openBranch(ctx, cfg, env, env.Branch)
	if err != nil && (ref == "" || hexPrefix.MatchString(ref)) {
		return nil, nil, err
	}
	switch {
	case ref == "" || (head != nil && strings.HasPrefix(head.Commit, ref)):
		return repo, head, nil
	case hexPrefix.MatchString(ref):
		revs, err := repo.Log(ctx, source.LogRequest{Commit: head.Commit, Since: time.Now().Add(-historyWindow)})
		if err != nil {
			repo.Close()
			return nil, nil, err
		}
		for _, r := range revs {
			if strings.HasPrefix(r.Commit, ref) {
				r.Branch = env.Branch
				return repo, r, nil
			}
		}
		repo.Close()
		return nil, nil, fmt.Errorf("revision %s is not in the last %d days of %s@%s", ref, int(historyWindow.Hours()/24), repo.URL(), env.Branch)
	default:
		if repo != nil {
			repo.Close()
		}
		repo, rev, err := openBranch(ctx, cfg, env, ref)
		if errors.Is(err, source.ErrBranchMissing) {
			return nil, nil, fmt.Errorf("revision %s is neither a commit of %s nor a branch: %w", ref, env.Branch, err)
		}
		return repo, rev, err
	}
}
