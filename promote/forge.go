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
	// Fork is set when Head is a branch of another repository (a fork),
	// not of the forge's repository.
	Fork bool
}

// Comment is a pull request comment and the id that edits it.
type Comment struct {
	ID   int64
	Body string
}

// CommentBodies returns the comments' bodies, in order: Forge.Comments
// from the comments with their ids.
func CommentBodies(list []Comment) []string {
	out := make([]string, len(list))
	for i, c := range list {
		out[i] = c.Body
	}
	return out
}

// StatusState is a commit status's state. Forges that name states
// otherwise (GitLab's "failed") are mapped by their provider.
type StatusState string

// The states of a commit status.
const (
	StatusPending StatusState = "pending"
	StatusSuccess StatusState = "success"
	StatusFailure StatusState = "failure"
)

// MaxStatusDescription is the longest description a commit status takes
// on every forge (GitHub's limit); providers cut longer ones.
const MaxStatusDescription = 140

// CommitStatus is a status set on a commit, shown with a pull request's
// checks: one per Context ("baton/staging"), the last one set wins.
type CommitStatus struct {
	Context     string
	State       StatusState
	Description string
	// TargetURL links the details, when there is a page for them.
	TargetURL string
}

// ShortDescription returns d cut to MaxStatusDescription runes.
func ShortDescription(d string) string {
	r := []rune(d)
	if len(r) <= MaxStatusDescription {
		return d
	}
	return string(r[:MaxStatusDescription-1]) + "…"
}
