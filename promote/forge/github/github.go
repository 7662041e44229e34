// Package github opens and updates promotion pull requests on GitHub (or
// GitHub Enterprise Server) through its REST API, with plain net/http.
package github

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/baton-gitops/baton/promote"
	"github.com/baton-gitops/baton/promote/forge/internal/rest"
)

// DefaultAPIURL is GitHub.com's API root.
const DefaultAPIURL = "https://api.github.com"

// apiVersion pins the REST API version the client was written against.
const apiVersion = "2022-11-28"

// Options configures a Client.
type Options struct {
	// APIURL is the API root; empty means DefaultAPIURL. GitHub Enterprise
	// Server uses "https://HOST/api/v3".
	APIURL string
	// WebURL is the web root for compare links; empty means
	// https://github.com (or, for an Enterprise APIURL, its host).
	WebURL string
	// Owner and Repo name the repository. Required.
	Owner, Repo string
	// Token is a token with pull-request and contents write permission;
	// TokenFile names a file holding it instead (read at every call). One
	// of them is required.
	Token, TokenFile string
	// HTTPClient sends the requests; nil means one with a 30 second
	// timeout.
	HTTPClient *http.Client
}

// Client is a promote.Forge for one GitHub repository. It is safe for
// concurrent use.
type Client struct {
	repo  rest.Repo
	web   string
	owner string
}

var _ promote.Forge = (*Client)(nil)

// New validates the options and returns a client. It does not contact the
// server.
func New(opts Options) (*Client, error) {
	if opts.APIURL == "" {
		opts.APIURL = DefaultAPIURL
	}
	u, err := url.Parse(opts.APIURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("github: apiURL %q: want an http or https URL", opts.APIURL)
	}
	if opts.Owner == "" || opts.Repo == "" {
		return nil, errors.New("github: owner and repo are required")
	}
	if (opts.Token == "") == (opts.TokenFile == "") {
		return nil, errors.New("github: set token or tokenFile (one of them)")
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if opts.WebURL == "" {
		opts.WebURL = "https://github.com"
		if u.Host != "api.github.com" {
			opts.WebURL = u.Scheme + "://" + u.Host
		}
	}
	return &Client{
		repo: rest.NewRepo("github", rest.Client{
			Base: strings.TrimSuffix(u.String(), "/"), HTTP: opts.HTTPClient, Token: opts.Token, TokenFile: opts.TokenFile,
			Auth: func(r *http.Request, t string) { r.Header.Set("Authorization", "Bearer "+t) },
			Header: http.Header{
				"Accept":               {"application/vnd.github+json"},
				"X-Github-Api-Version": {apiVersion},
			},
		}, opts.Owner, opts.Repo),
		web:   strings.TrimSuffix(opts.WebURL, "/"),
		owner: opts.Owner,
	}, nil
}

// CompareURL is the compare page template for promote.Options.CompareURL.
func (c *Client) CompareURL() string {
	return c.web + "/" + c.repo.Name + "/compare/{base}...{head}"
}

// pull is the part of GitHub's pull request JSON the promoter uses.
type pull struct {
	Number   int     `json:"number"`
	HTMLURL  string  `json:"html_url"`
	Title    string  `json:"title"`
	Body     *string `json:"body"`
	State    string  `json:"state"`
	MergedAt *string `json:"merged_at"`
	MergedBy *struct {
		Login string `json:"login"`
	} `json:"merged_by"`
	MergeCommit *string `json:"merge_commit_sha"`
	Head        struct {
		Ref  string `json:"ref"`
		SHA  string `json:"sha"`
		Repo *struct {
			FullName string `json:"full_name"`
		} `json:"repo"`
	} `json:"head"`
	Base struct {
		Ref string `json:"ref"`
	} `json:"base"`
}

func (c *Client) convert(p pull) promote.PullRequest {
	out := promote.PullRequest{
		Number: p.Number, URL: p.HTMLURL, Title: p.Title,
		Head: p.Head.Ref, Base: p.Base.Ref, HeadSHA: p.Head.SHA, State: p.State,
		Merged: p.MergedAt != nil,
		// head.repo is null when the fork was deleted.
		Fork: p.Head.Repo == nil || !strings.EqualFold(p.Head.Repo.FullName, c.repo.Name),
	}
	if p.Body != nil {
		out.Body = *p.Body
	}
	if p.MergedBy != nil {
		out.MergedBy = p.MergedBy.Login
	}
	if out.Merged && p.MergeCommit != nil {
		out.MergeCommit = *p.MergeCommit
	}
	return out
}

const perPage = 100

// maxMergedLookups bounds the extra requests made to learn who merged
// closed pull requests: the list endpoint leaves merged_by out.
const maxMergedLookups = 5

// PullRequests lists the repository's pull requests from head into base in
// state "open" or "closed", newest first (closed: the most recently
// updated page).
func (c *Client) PullRequests(ctx context.Context, head, base, state string) ([]promote.PullRequest, error) {
	if state != "open" && state != "closed" {
		return nil, fmt.Errorf("github: pull request state %q: want open or closed", state)
	}
	q := url.Values{"state": {state}, "head": {c.owner + ":" + head}, "base": {base},
		"sort": {"updated"}, "direction": {"desc"}, "per_page": {fmt.Sprint(perPage)}}
	var list []pull
	hdr, err := c.repo.API.Do(ctx, http.MethodGet, c.repo.Path+"/pulls?"+q.Encode(), nil, &list)
	if err != nil {
		return nil, fmt.Errorf("github %s: list pull requests: %w", c.repo.Name, err)
	}
	// Open pull requests for one head and base are one or two; further
	// pages matter only for open ones.
	for next := c.nextLink(hdr); next != "" && state == "open"; {
		var more []pull
		h, err := c.repo.API.DoURL(ctx, http.MethodGet, next, c.repo.Path+"/pulls", nil, &more)
		if err != nil {
			return nil, fmt.Errorf("github %s: list pull requests: %w", c.repo.Name, err)
		}
		list = append(list, more...)
		next = c.nextLink(h)
	}
	out := make([]promote.PullRequest, 0, len(list))
	lookups := 0
	for _, p := range list {
		pr := c.convert(p)
		if pr.Merged && pr.MergedBy == "" && lookups < maxMergedLookups {
			lookups++
			var full pull
			if _, err := c.repo.API.Do(ctx, http.MethodGet, fmt.Sprintf("%s/pulls/%d", c.repo.Path, p.Number), nil, &full); err == nil {
				pr = c.convert(full)
			}
		}
		out = append(out, pr)
	}
	return out, nil
}

// CreatePullRequest opens a pull request. An open one for the same head
// and base gives promote.ErrPullRequestExists.
func (c *Client) CreatePullRequest(ctx context.Context, pr promote.NewPullRequest) (promote.PullRequest, error) {
	var p pull
	_, err := c.repo.API.Do(ctx, http.MethodPost, c.repo.Path+"/pulls",
		map[string]any{"head": pr.Head, "base": pr.Base, "title": pr.Title, "body": pr.Body}, &p)
	if err != nil {
		var re *rest.Error
		if errors.As(err, &re) && re.Status == http.StatusUnprocessableEntity && strings.Contains(re.Body, "already exists") {
			return promote.PullRequest{}, fmt.Errorf("github %s: %s into %s: %w", c.repo.Name, pr.Head, pr.Base, promote.ErrPullRequestExists)
		}
		return promote.PullRequest{}, fmt.Errorf("github %s: open pull request %s into %s: %w", c.repo.Name, pr.Head, pr.Base, err)
	}
	return c.convert(p), nil
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

// Comments returns the bodies of a pull request's conversation comments,
// oldest first, following the pages.
func (c *Client) Comments(ctx context.Context, number int) ([]string, error) {
	list, err := c.PullRequestComments(ctx, number)
	if err != nil {
		return nil, err
	}
	return promote.CommentBodies(list), nil
}

// PullRequestComments returns a pull request's conversation comments with
// their ids, oldest first, following the pages.
func (c *Client) PullRequestComments(ctx context.Context, number int) ([]promote.Comment, error) {
	path := fmt.Sprintf("%s/issues/%d/comments", c.repo.Path, number)
	next := c.repo.API.Base + path + "?per_page=" + fmt.Sprint(perPage)
	var out []promote.Comment
	for next != "" {
		var list []struct {
			ID   int64  `json:"id"`
			Body string `json:"body"`
		}
		hdr, err := c.repo.API.DoURL(ctx, http.MethodGet, next, path, nil, &list)
		if err != nil {
			return nil, fmt.Errorf("github %s: comments of #%d: %w", c.repo.Name, number, err)
		}
		for _, cm := range list {
			out = append(out, promote.Comment{ID: cm.ID, Body: cm.Body})
		}
		next = c.nextLink(hdr)
	}
	return out, nil
}

// EditComment replaces a conversation comment's body.
func (c *Client) EditComment(ctx context.Context, _ int, id int64, body string) error {
	return c.repo.EditComment(ctx, id, body)
}

// OpenPullRequests lists the open pull requests into base, from any
// branch (forks' included, marked Fork), oldest first.
func (c *Client) OpenPullRequests(ctx context.Context, base string) ([]promote.PullRequest, error) {
	q := url.Values{"state": {"open"}, "base": {base}, "sort": {"created"}, "direction": {"asc"}, "per_page": {fmt.Sprint(perPage)}}
	path := c.repo.Path + "/pulls"
	next := c.repo.API.Base + path + "?" + q.Encode()
	var out []promote.PullRequest
	for next != "" {
		var list []pull
		hdr, err := c.repo.API.DoURL(ctx, http.MethodGet, next, path, nil, &list)
		if err != nil {
			return nil, fmt.Errorf("github %s: list open pull requests into %s: %w", c.repo.Name, base, err)
		}
		for _, p := range list {
			out = append(out, c.convert(p))
		}
		next = c.nextLink(hdr)
	}
	return out, nil
}

// SetCommitStatus sets a status on a commit.
func (c *Client) SetCommitStatus(ctx context.Context, sha string, st promote.CommitStatus) error {
	return c.repo.SetStatus(ctx, sha, string(st.State), st.Context, promote.ShortDescription(st.Description), st.TargetURL)
}

var reNext = regexp.MustCompile(`<([^>]+)>;\s*rel="next"`)

// nextLink returns the rel="next" URL of a Link header, or "". A link
// away from the API root is ignored: the token must not follow it.
func (c *Client) nextLink(h http.Header) string {
	if h == nil {
		return ""
	}
	m := reNext.FindStringSubmatch(h.Get("Link"))
	if m == nil || !strings.HasPrefix(m[1], c.repo.API.Base+"/") {
		return ""
	}
	return m[1]
}
