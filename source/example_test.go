package source_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/baton-gitops/baton/source"
)

// Follow the environment branches of a repository: poll at the interval and
// whenever a signed push webhook arrives, and hand each new revision on.
func Example_followABranch() {
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	repo, err := source.NewRepository(source.RepositorySettings{
		URL:      "https://git.example.com/acme/deploy.git",
		Branches: []string{"env/dev", "env/staging", "env/prod"},
		Auth:     source.AuthSettings{TokenFile: "/var/run/secrets/git/token"},
		Interval: source.Duration{Duration: time.Minute},
	}, source.Options{CacheDir: "/var/cache/baton", Logger: logger})
	if err != nil {
		logger.Error("bad repository settings", "error", err)
		return
	}
	defer repo.Close()

	poller := source.NewPoller(repo, source.PollerOptions{})
	hooks, err := source.NewWebhookHandler(source.WebhookOptions{
		GitHubSecret: []byte(os.Getenv("WEBHOOK_SECRET")),
		Targets:      []source.WebhookTarget{poller},
		Logger:       logger,
	})
	if err != nil {
		logger.Error("webhook", "error", err)
		return
	}
	go func() { _ = http.ListenAndServe(":8080", hooks) }()

	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	_ = poller.Run(ctx, func(res source.PollResult, err error) {
		if err != nil {
			// Auth, host key, unreachable, timeout: the last good revisions
			// in res stay in effect.
			logger.Warn("poll failed", "kind", source.KindName(err), "error", err)
		}
		for _, b := range res.Branches {
			if b.ForcePush != nil {
				logger.Warn("history rewritten", "branch", b.Branch, "old", b.ForcePush.Old, "new", b.ForcePush.New)
			}
			if b.Err != nil {
				logger.Warn("branch not advanced", "branch", b.Branch, "error", b.Err)
			}
			if b.Changed {
				// b.Revision.Snapshot is an fs.FS of the commit's tree.
				logger.Info("new revision", "branch", b.Branch, "commit", b.Revision.Commit)
			}
		}
	})
}

// Write a promotion commit on top of the staging head and push it with a
// lease, retrying when somebody else moved the branch first.
func ExampleRepository_Push() {
	ctx := context.Background()
	repo, err := source.NewRepository(source.RepositorySettings{
		URL:      "git@git.example.com:acme/deploy.git",
		Branches: []string{"env/dev", "env/staging"},
		Auth: source.AuthSettings{SSHKeyFile: "/var/run/secrets/git/id_ed25519",
			KnownHostsFile: "/var/run/secrets/git/known_hosts"},
	}, source.Options{CacheDir: "/var/cache/baton"})
	if err != nil {
		return
	}
	defer repo.Close()
	for attempt := 0; attempt < 3; attempt++ {
		if _, err := repo.Poll(ctx); err != nil {
			return
		}
		dev, staging := repo.Revision("env/dev"), repo.Revision("env/staging")
		overlay, err := dev.Snapshot.TreeHash("overlays/app")
		if err != nil {
			return
		}
		commit, err := repo.Commit(ctx, source.CommitRequest{
			Branch:  "env/staging",
			Parent:  staging.Commit,
			Trees:   map[string]string{"overlays/app": overlay},
			Author:  source.Signature{Name: "Baton", Email: "baton@example.com"},
			Message: "Promote env/dev to env/staging\n\nBaton-Promoted-From: env/dev@" + dev.Commit,
		})
		if err != nil {
			return
		}
		err = repo.Push(ctx, source.PushRequest{Branch: "env/staging", Commit: commit, ExpectedOld: staging.Commit})
		if !errors.Is(err, source.ErrLeaseLost) {
			return // pushed, or failed for another reason
		}
	}
}
