// Package gitea opens and updates promotion pull requests on Gitea (and
// Forgejo) through its REST API (/api/v1), with plain net/http.
package gitea

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/baton-gitops/baton/promote"
	"github.com/baton-gitops/baton/promote/forge/internal/rest"
)

// Options configures a Client.
type Options struct {
	// URL is the Gitea root, e.g. "https://git.example.com". Required.
	URL string
	// Owner and Repo name the repository. Required.
	Owner, Repo string
	// Token is an access token with repository write scope; TokenFile
	// names a file holding it instead (read at every call, so a rotated
	// Secret is picked up). One of them is required.
	Token, TokenFile string
	// HTTPClient sends the requests; nil means one with a 30 second
	// timeout.
	HTTPClient *http.Client
	// CreateWait bounds how long opening a pull request is retried while
	// Gitea has not yet registered a just-pushed branch (it processes
	// pushes asynchronously and answers 404 meanwhile); zero means 15
	// seconds.
	CreateWait time.Duration
}

// Client is a promote.Forge for one Gitea repository. It is safe for
// concurrent use.
type Client struct {
	repo       rest.Repo
	web        string
	createWait time.Duration
}

var _ promote.Forge = (*Client)(nil)

// New validates the options and returns a client. It does not contact the
// server.
func New(opts Options) (*Client, error) {
	u, err := url.Parse(opts.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("gitea: url %q: want the http or https root of the server", opts.URL)
	}
	if opts.Owner == "" || opts.Repo == "" {
		return nil, errors.New("gitea: owner and repo are required")
	}
	if (opts.Token == "") == (opts.TokenFile == "") {
		return nil, errors.New("gitea: set token or tokenFile (one of them)")
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if opts.CreateWait == 0 {
		opts.CreateWait = 15 * time.Second
	}
	root := strings.TrimSuffix(u.String(), "/")
	return &Client{
		repo: rest.NewRepo("gitea", rest.Client{
			Base: root + "/api/v1", HTTP: opts.HTTPClient, Token: opts.Token, TokenFile: opts.TokenFile,
			Auth:   func(r *http.Request, t string) { r.Header.Set("Authorization", "token "+t) },
			Header: http.Header{"Accept": {"application/json"}},
		}, opts.Owner, opts.Repo),
		web:        root,
		createWait: opts.CreateWait,
	}, nil
}

// CompareURL is the compare page template for promote.Options.CompareURL.
func (c *Client) CompareURL() string {
	return c.web + "/" + c.repo.Name + "/compare/{base}...{head}"
}

// pull is the part of Gitea's pull request JSON the promoter uses.
type pull struct {
	Number   int    `json:"number"`
	HTMLURL  string `json:"html_url"`
	Title    string `json:"title"`
	Body     string `json:"body"`
	State    string `json:"state"`
	Merged   bool   `json:"merged"`
	MergedBy *struct {
		Login string `json:"login"`
	} `json:"merged_by"`
	MergeCommit string `json:"merge_commit_sha"`
	Head        struct {
		Ref string `json:"ref"`
		// Label is the branch name; it stays when the branch is deleted
		// after the merge, while Ref becomes refs/pull/N/head.
		Label string `json:"label"`
		SHA   string `json:"sha"`
		Repo  *struct {
			FullName string `json:"full_name"`
		} `json:"repo"`
	} `json:"head"`
	Base struct {
		Ref string `json:"ref"`
	} `json:"base"`
}

// headBranch is the head branch's name, also once the branch is deleted.
func (p pull) headBranch() string {
	if strings.HasPrefix(p.Head.Ref, "refs/pull/") && p.Head.Label != "" {
		return p.Head.Label
	}
	return p.Head.Ref
}

func (c *Client) convert(p pull) promote.PullRequest {
	out := promote.PullRequest{
		Number: p.Number, URL: p.HTMLURL, Title: p.Title, Body: p.Body,
		Head: p.headBranch(), Base: p.Base.Ref, HeadSHA: p.Head.SHA, State: p.State,
		Merged: p.Merged, MergeCommit: p.MergeCommit,
		// A deleted fork leaves no head repository: not this one either.
		Fork: p.Head.Repo == nil || p.Head.Repo.FullName != c.repo.Name,
	}
	if p.MergedBy != nil {
		out.MergedBy = p.MergedBy.Login
	}
	return out
}

// pageSize is Gitea's default maximum page size.
const pageSize = 50

// maxClosedPages bounds how far back closed pull requests are listed.
const maxClosedPages = 2

// maxMergedLookups bounds the extra requests made to learn who merged
// closed pull requests.
const maxMergedLookups = 5

// PullRequests lists the repository's pull requests from head into base in
// state "open" or "closed", newest first; closed ones are the most
// recently closed few pages.
func (c *Client) PullRequests(ctx context.Context, head, base, state string) ([]promote.PullRequest, error) {
	if state != "open" && state != "closed" {
		return nil, fmt.Errorf("gitea: pull request state %q: want open or closed", state)
	}
	sort := "recentupdate"
	if state == "closed" {
		sort = "recentclose"
	}
	var out []promote.PullRequest
	lookups := 0
	for page := 1; ; page++ {
		q := url.Values{"state": {state}, "base_branch": {base}, "sort": {sort},
			"limit": {fmt.Sprint(pageSize)}, "page": {fmt.Sprint(page)}}
		var list []pull
		if _, err := c.repo.API.Do(ctx, http.MethodGet, c.repo.Path+"/pulls?"+q.Encode(), nil, &list); err != nil {
			return nil, fmt.Errorf("gitea %s: list pull requests: %w", c.repo.Name, err)
		}
		for _, p := range list {
			// Only branches of this repository, not forks' of the same name.
			if p.headBranch() != head || p.Base.Ref != base || (p.Head.Repo != nil && p.Head.Repo.FullName != c.repo.Name) {
				continue
			}
			pr := c.convert(p)
			if pr.Merged && pr.MergedBy == "" && lookups < maxMergedLookups {
				// The list leaves the merger out; the single pull request
				// has it.
				lookups++
				var full pull
				if _, err := c.repo.API.Do(ctx, http.MethodGet, fmt.Sprintf("%s/pulls/%d", c.repo.Path, p.Number), nil, &full); err == nil {
					// The single pull request reports the head branch's
					// commit of now, which moves when the branch is reused;
					// the list's is the commit that was merged.
					full.Head.SHA = p.Head.SHA
					pr = c.convert(full)
				}
			}
			out = append(out, pr)
		}
		if len(list) < pageSize || (state == "closed" && page >= maxClosedPages) {
			return out, nil
		}
	}
}

// CreatePullRequest opens a pull request. An open one for the same head
// and base gives promote.ErrPullRequestExists.
func (c *Client) CreatePullRequest(ctx context.Context, pr promote.NewPullRequest) (promote.PullRequest, error) {
	deadline := time.Now().Add(c.createWait)
	in := map[string]string{"head": pr.Head, "base": pr.Base, "title": pr.Title, "body": pr.Body}
	for wait := 50 * time.Millisecond; ; wait = min(2*wait, 250*time.Millisecond) {
		var p pull
		_, err := c.repo.API.Do(ctx, http.MethodPost, c.repo.Path+"/pulls", in, &p)
		switch status := rest.StatusOf(err); {
		case err == nil:
			return c.convert(p), nil
		case status == http.StatusConflict:
			return promote.PullRequest{}, fmt.Errorf("gitea %s: %s into %s: %w", c.repo.Name, pr.Head, pr.Base, promote.ErrPullRequestExists)
		case status == http.StatusNotFound && time.Now().Before(deadline):
			// The branch was pushed a moment ago and Gitea has not
			// registered it yet.
		default:
			return promote.PullRequest{}, fmt.Errorf("gitea %s: open pull request %s into %s: %w", c.repo.Name, pr.Head, pr.Base, err)
		}
		select {
		case <-ctx.Done():
			return promote.PullRequest{}, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// EditPullRequest sets the title and body of a pull request.
func (c *Client) EditPullRequest(ctx context.Context, number int, title, body string) (promote.PullRequest, error) {
	var p pull
	if err := c.repo.EditPull(ctx, number, title, body, &p); err != nil {
		return promote.PullRequest{}, err
	}
	return c.convert(p), nil
}

// ClosePullRequest closes a pull request without merging it.
func (c *Client) ClosePullRequest(ctx context.Context, number int) error {
	return c.repo.ClosePull(ctx, number)
}

// Comment adds a comment to a pull request.
func (c *Client) Comment(ctx context.Context, number int, body string) error {
	_, err := c.repo.Comment(ctx, number, body)
	return err
}

// CreateComment adds a comment to a pull request and returns its id.
func (c *Client) CreateComment(ctx context.Context, number int, body string) (int64, error) {
	return c.repo.Comment(ctx, number, body)
}

// Comments returns the bodies of a pull request's comments, oldest first.
// Gitea's endpoint is not paged: one request returns them all.
func (c *Client) Comments(ctx context.Context, number int) ([]string, error) {
	list, err := c.PullRequestComments(ctx, number)
	if err != nil {
		return nil, err
	}
	return promote.CommentBodies(list), nil
}

// OpenPullRequests lists the open pull requests into base, from any
// branch, oldest first.
func (c *Client) OpenPullRequests(ctx context.Context, base string) ([]promote.PullRequest, error) {
	var out []promote.PullRequest
	for page := 1; ; page++ {
		q := url.Values{"state": {"open"}, "base_branch": {base}, "sort": {"oldest"},
			"limit": {fmt.Sprint(pageSize)}, "page": {fmt.Sprint(page)}}
		var list []pull
		if _, err := c.repo.API.Do(ctx, http.MethodGet, c.repo.Path+"/pulls?"+q.Encode(), nil, &list); err != nil {
			return nil, fmt.Errorf("gitea %s: list open pull requests into %s: %w", c.repo.Name, base, err)
		}
		for _, p := range list {
			if p.Base.Ref == base {
				out = append(out, c.convert(p))
			}
		}
		if len(list) < pageSize {
			return out, nil
		}
	}
}

// PullRequestComments returns a pull request's comments with their ids,
// oldest first.
func (c *Client) PullRequestComments(ctx context.Context, number int) ([]promote.Comment, error) {
	var list []struct {
		ID   int64  `json:"id"`
		Body string `json:"body"`
	}
	if _, err := c.repo.API.Do(ctx, http.MethodGet, fmt.Sprintf("%s/issues/%d/comments", c.repo.Path, number), nil, &list); err != nil {
		return nil, fmt.Errorf("gitea %s: comments of #%d: %w", c.repo.Name, number, err)
	}
	out := make([]promote.Comment, len(list))
	for i, cm := range list {
		out[i] = promote.Comment{ID: cm.ID, Body: cm.Body}
	}
	return out, nil
}

// EditComment replaces a comment's body.
func (c *Client) EditComment(ctx context.Context, _ int, id int64, body string) error {
	return c.repo.EditComment(ctx, id, body)
}

// SetCommitStatus sets a status on a commit.
func (c *Client) SetCommitStatus(ctx context.Context, sha string, st promote.CommitStatus) error {
	return c.repo.SetStatus(ctx, sha, string(st.State), st.Context, promote.ShortDescription(st.Description), st.TargetURL)
}
