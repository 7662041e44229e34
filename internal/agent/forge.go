package agent

import (
	"context"
	"fmt"
	"strings"

	"github.com/baton-gitops/baton/internal/config"
	"github.com/baton-gitops/baton/promote"
	"github.com/baton-gitops/baton/promote/forge/gitea"
	"github.com/baton-gitops/baton/promote/forge/github"
	"github.com/baton-gitops/baton/promote/forge/gitlab"
)

// forgeClient is everything the agent asks of a forge: promotion pull
// requests (promote.Forge), previews and commit statuses. The gitea,
// github and gitlab clients are each one.
type forgeClient interface {
	promote.Forge
	// OpenPullRequests lists the open pull requests into base.
	OpenPullRequests(ctx context.Context, base string) ([]promote.PullRequest, error)
	// PullRequestComments returns a pull request's comments with ids.
	PullRequestComments(ctx context.Context, number int) ([]promote.Comment, error)
	// CreateComment adds a comment and returns its id.
	CreateComment(ctx context.Context, number int, body string) (int64, error)
	// EditComment replaces the body of comment id of pull request number.
	EditComment(ctx context.Context, number int, id int64, body string) error
	// SetCommitStatus sets a status on a commit.
	SetCommitStatus(ctx context.Context, sha string, st promote.CommitStatus) error
}

// newForgeClient builds the configured forge's client, or returns nil for
// forge.kind none.
func newForgeClient(f config.Forge) (forgeClient, error) {
	owner, name, _ := strings.Cut(f.Repository, "/")
	var (
		c   forgeClient
		err error
	)
	switch f.Kind {
	case config.ForgeGitea:
		c, err = gitea.New(gitea.Options{URL: f.URL, Owner: owner, Repo: name, TokenFile: f.TokenFile})
	case config.ForgeGitHub:
		c, err = github.New(github.Options{APIURL: f.URL, Owner: owner, Repo: name, TokenFile: f.TokenFile})
	case config.ForgeGitLab:
		c, err = gitlab.New(gitlab.Options{URL: f.URL, Project: f.Repository, TokenFile: f.TokenFile})
	default:
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("forge: %w", err)
	}
	return c, nil
}

// promoteForge returns the configured forge as a promote.Forge, or nil.
func promoteForge(f config.Forge) (promote.Forge, error) {
	c, err := newForgeClient(f)
	if c == nil || err != nil {
		return nil, err
	}
	return c, nil
}
