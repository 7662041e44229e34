package promote

import (
	"context"
	"errors"
)

// Forge opens and updates pull requests on the forge hosting the
// repository. promote/forge/gitea and promote/forge/github implement it;
// with no Forge the promoter only pushes the promotion branch and returns
// its compare URL.
type Forge interface {
	// PullRequests lists the pull requests from head into base in the
	// given state ("open" or "closed"; closed includes merged ones),
	// newest first. Closed ones may be limited to the recent ones.
	PullRequests(ctx context.Context, head, base, state string) ([]PullRequest, error)
	// CreatePullRequest opens a pull request. It fails with an error
	// matching ErrPullRequestExists when one is open for the same head and
	// base already.
	CreatePullRequest(ctx context.Context, pr NewPullRequest) (PullRequest, error)
	// EditPullRequest sets an open pull request's title and body.
	EditPullRequest(ctx context.Context, number int, title, body string) (PullRequest, error)
	// ClosePullRequest closes a pull request without merging it.
	ClosePullRequest(ctx context.Context, number int) error
	// Comment adds a comment to a pull request.
	Comment(ctx context.Context, number int, body string) error
	// Comments returns the bodies of a pull request's comments, oldest
	// first.
	Comments(ctx context.Context, number int) ([]string, error)
}

// ErrPullRequestExists is returned by Forge.CreatePullRequest when an open
// pull request with the same head and base exists.
var ErrPullRequestExists = errors.New("pull request exists")

// NewPullRequest is a pull request to open.
type NewPullRequest struct {
	// Head is the branch with the changes, Base the branch to merge into.
	Head, Base  string
	Title, Body string
}

// PullRequest is a pull request as the forge reports it.
type PullRequest struct {
	Number int
	// URL is the web page of the pull request.
	URL         string
	Title, Body string
	Head, Base  string
	// HeadSHA is the commit at the head branch when the forge last looked.
	HeadSHA string
	// State is "open" or "closed".
	State  string
	Merged bool
	// MergedBy is the login of whoever merged it, when the forge says.
	MergedBy string
	// MergeCommit is the commit the merge made on Base.
	MergeCommit string
}
