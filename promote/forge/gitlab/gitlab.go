// Package gitlab opens and updates promotion merge requests, comments on
// them with notes and sets commit statuses on GitLab (gitlab.com or
// self-managed) through its REST API v4, with plain net/http.
//
// GitLab's words map onto the promote package's: a merge request (by its
// project-scoped iid) is a pull request, a note is a comment, and a commit
// status's "failed" is StatusFailure.
package gitlab

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/baton-gitops/baton/promote"
	"github.com/baton-gitops/baton/promote/forge/internal/rest"
)

// DefaultURL is gitlab.com's root.
const DefaultURL = "https://gitlab.com"

// Options configures a Client.
type Options struct {
	// URL is the GitLab root, e.g. "https://gitlab.example.com"; empty
	// means DefaultURL. The API is below /api/v4.
	URL string
	// Project is the project's full path, "group/subgroup/name". Required.
	Project string
	// Token is a personal, project or group access token with the api
	// scope; TokenFile names a file holding it instead (read at every
	// call). One of them is required.
	Token, TokenFile string
	// HTTPClient sends the requests; nil means one with a 30 second
	// timeout.
	HTTPClient *http.Client
}

// Client is a promote.Forge for one GitLab project. It is safe for
// concurrent use.
type Client struct {
	api     rest.Client
	path    string // "/projects/<url-encoded full path>"
	project string
	web     string
}

var _ promote.Forge = (*Client)(nil)

// New validates the options and returns a client. It does not contact the
// server.
func New(opts Options) (*Client, error) {
	if opts.URL == "" {
		opts.URL = DefaultURL
	}
	u, err := url.Parse(opts.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("gitlab: url %q: want the http or https root of the server", opts.URL)
	}
	if p := strings.Trim(opts.Project, "/"); p == "" || !strings.Contains(p, "/") {
		return nil, fmt.Errorf("gitlab: project %q: want the full path, \"group/name\"", opts.Project)
	}
	if (opts.Token == "") == (opts.TokenFile == "") {
		return nil, errors.New("gitlab: set token or tokenFile (one of them)")
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	root := strings.TrimSuffix(u.String(), "/")
	project := strings.Trim(opts.Project, "/")
	return &Client{
		api: rest.Client{
			Base: root + "/api/v4", HTTP: opts.HTTPClient, Token: opts.Token, TokenFile: opts.TokenFile,
			Auth:   func(r *http.Request, t string) { r.Header.Set("PRIVATE-TOKEN", t) },
			Header: http.Header{"Accept": {"application/json"}},
		},
		// The full path is one path segment, its slashes encoded.
		path:    "/projects/" + url.PathEscape(project),
		project: project,
		web:     root,
	}, nil
}

// CompareURL is the compare page template for promote.Options.CompareURL.
func (c *Client) CompareURL() string {
	return c.web + "/" + c.project + "/-/compare/{base}...{head}"
}

// mergeRequest is the part of GitLab's merge request JSON the client
// uses.
type mergeRequest struct {
	IID             int     `json:"iid"`
	WebURL          string  `json:"web_url"`
	Title           string  `json:"title"`
	Description     *string `json:"description"`
	State           string  `json:"state"` // opened, closed, locked, merged
	SourceBranch    string  `json:"source_branch"`
	TargetBranch    string  `json:"target_branch"`
	SourceProjectID int64   `json:"source_project_id"`
	TargetProjectID int64   `json:"target_project_id"`
	SHA             string  `json:"sha"`
	MergeCommitSHA  *string `json:"merge_commit_sha"`
	SquashCommitSHA *string `json:"squash_commit_sha"`
	MergeUser       *user   `json:"merge_user"`
	MergedBy        *user   `json:"merged_by"` // deprecated by merge_user
}

type user struct {
	Username string `json:"username"`
}

func (m mergeRequest) convert() promote.PullRequest {
	out := promote.PullRequest{
		Number: m.IID, URL: m.WebURL, Title: m.Title,
		Head: m.SourceBranch, Base: m.TargetBranch, HeadSHA: m.SHA,
		State: "open", Merged: m.State == "merged",
		Fork: m.SourceProjectID != m.TargetProjectID,
	}
	if m.Description != nil {
		out.Body = *m.Description
	}
	if m.State != "opened" {
		out.State = "closed"
	}
	switch {
	case m.MergeUser != nil:
		out.MergedBy = m.MergeUser.Username
	case m.MergedBy != nil:
		out.MergedBy = m.MergedBy.Username
	}
	if out.Merged {
		// A merge commit, else the squash commit, else (a fast-forward
		// merge) the head itself is what landed on the target.
		switch {
		case m.MergeCommitSHA != nil && *m.MergeCommitSHA != "":
			out.MergeCommit = *m.MergeCommitSHA
		case m.SquashCommitSHA != nil && *m.SquashCommitSHA != "":
			out.MergeCommit = *m.SquashCommitSHA
		default:
			out.MergeCommit = m.SHA
		}
	}
	return out
}

const perPage = 100

// list reads every page of a list endpoint; GitLab names the next page
// in the X-Next-Page header (empty on the last one).
func list[T any](ctx context.Context, c *Client, path string, q url.Values, maxPages int) ([]T, error) {
	var out []T
	q.Set("per_page", strconv.Itoa(perPage))
	for page := 1; page <= maxPages; {
		q.Set("page", strconv.Itoa(page))
		var items []T
		hdr, err := c.api.Do(ctx, http.MethodGet, path+"?"+q.Encode(), nil, &items)
		if err != nil {
			return nil, err
		}
		out = append(out, items...)
		next, err := strconv.Atoi(hdr.Get("X-Next-Page"))
		if err != nil || next <= page {
			break
		}
		page = next
	}
	return out, nil
}

// maxPages bounds the pages read from one list.
const maxPages = 20

// PullRequests lists the project's merge requests from head into base in
// state "open" or "closed" (closed and merged ones, the most recently
// updated page), newest first. Merge requests from forks are left out.
func (c *Client) PullRequests(ctx context.Context, head, base, state string) ([]promote.PullRequest, error) {
	q := url.Values{"source_branch": {head}, "target_branch": {base}, "order_by": {"updated_at"}, "sort": {"desc"}}
	pages := maxPages
	switch state {
	case "open":
		q.Set("state", "opened")
	case "closed":
		q.Set("state", "all")
		pages = 1
	default:
		return nil, fmt.Errorf("gitlab: pull request state %q: want open or closed", state)
	}
	mrs, err := list[mergeRequest](ctx, c, c.path+"/merge_requests", q, pages)
	if err != nil {
		return nil, fmt.Errorf("gitlab %s: list merge requests: %w", c.project, err)
	}
	var out []promote.PullRequest
	for _, m := range mrs {
		pr := m.convert()
		if pr.Fork || (state == "closed") != (pr.State == "closed") {
			continue
		}
		out = append(out, pr)
	}
	return out, nil
}

// CreatePullRequest opens a merge request. An open one for the same
// source branch gives promote.ErrPullRequestExists (GitLab answers 409).
func (c *Client) CreatePullRequest(ctx context.Context, pr promote.NewPullRequest) (promote.PullRequest, error) {
	var m mergeRequest
	_, err := c.api.Do(ctx, http.MethodPost, c.path+"/merge_requests",
		map[string]any{"source_branch": pr.Head, "target_branch": pr.Base, "title": pr.Title, "description": pr.Body}, &m)
	if rest.StatusOf(err) == http.StatusConflict {
		return promote.PullRequest{}, fmt.Errorf("gitlab %s: %s into %s: %w", c.project, pr.Head, pr.Base, promote.ErrPullRequestExists)
	}
	if err != nil {
		return promote.PullRequest{}, fmt.Errorf("gitlab %s: open merge request %s into %s: %w", c.project, pr.Head, pr.Base, err)
	}
	return m.convert(), nil
}

// EditPullRequest sets the title and description of a merge request.
func (c *Client) EditPullRequest(ctx context.Context, number int, title, body string) (promote.PullRequest, error) {
	var m mergeRequest
	if _, err := c.api.Do(ctx, http.MethodPut, fmt.Sprintf("%s/merge_requests/%d", c.path, number),
		map[string]string{"title": title, "description": body}, &m); err != nil {
		return promote.PullRequest{}, fmt.Errorf("gitlab %s: edit merge request !%d: %w", c.project, number, err)
	}
	return m.convert(), nil
}

// ClosePullRequest closes a merge request without merging it.
func (c *Client) ClosePullRequest(ctx context.Context, number int) error {
	if _, err := c.api.Do(ctx, http.MethodPut, fmt.Sprintf("%s/merge_requests/%d", c.path, number),
		map[string]string{"state_event": "close"}, nil); err != nil {
		return fmt.Errorf("gitlab %s: close merge request !%d: %w", c.project, number, err)
	}
	return nil
}

// Comment adds a note to a merge request.
func (c *Client) Comment(ctx context.Context, number int, body string) error {
	_, err := c.CreateComment(ctx, number, body)
	return err
}

// CreateComment adds a note to a merge request and returns its id.
func (c *Client) CreateComment(ctx context.Context, number int, body string) (int64, error) {
	var n struct {
		ID int64 `json:"id"`
	}
	if _, err := c.api.Do(ctx, http.MethodPost, fmt.Sprintf("%s/merge_requests/%d/notes", c.path, number),
		map[string]string{"body": body}, &n); err != nil {
		return 0, fmt.Errorf("gitlab %s: note on !%d: %w", c.project, number, err)
	}
	return n.ID, nil
}

// Comments returns the bodies of a merge request's notes, oldest first.
func (c *Client) Comments(ctx context.Context, number int) ([]string, error) {
	notes, err := c.PullRequestComments(ctx, number)
	if err != nil {
		return nil, err
	}
	return promote.CommentBodies(notes), nil
}

// PullRequestComments returns a merge request's notes written by people
// and bots (not GitLab's system notes) with their ids, oldest first.
func (c *Client) PullRequestComments(ctx context.Context, number int) ([]promote.Comment, error) {
	notes, err := list[struct {
		ID     int64  `json:"id"`
		Body   string `json:"body"`
		System bool   `json:"system"`
	}](ctx, c, fmt.Sprintf("%s/merge_requests/%d/notes", c.path, number), url.Values{"sort": {"asc"}, "order_by": {"created_at"}}, maxPages)
	if err != nil {
		return nil, fmt.Errorf("gitlab %s: notes of !%d: %w", c.project, number, err)
	}
	var out []promote.Comment
	for _, n := range notes {
		if !n.System {
			out = append(out, promote.Comment{ID: n.ID, Body: n.Body})
		}
	}
	return out, nil
}

// EditComment replaces a merge request note's body.
func (c *Client) EditComment(ctx context.Context, number int, id int64, body string) error {
	if _, err := c.api.Do(ctx, http.MethodPut, fmt.Sprintf("%s/merge_requests/%d/notes/%d", c.path, number, id),
		map[string]string{"body": body}, nil); err != nil {
		return fmt.Errorf("gitlab %s: edit note %d of !%d: %w", c.project, id, number, err)
	}
	return nil
}

// OpenPullRequests lists the open merge requests into base, from any
// branch (forks' included, marked Fork), oldest first.
func (c *Client) OpenPullRequests(ctx context.Context, base string) ([]promote.PullRequest, error) {
	mrs, err := list[mergeRequest](ctx, c, c.path+"/merge_requests",
		url.Values{"state": {"opened"}, "target_branch": {base}, "order_by": {"created_at"}, "sort": {"asc"}}, maxPages)
	if err != nil {
		return nil, fmt.Errorf("gitlab %s: list open merge requests into %s: %w", c.project, base, err)
	}
	out := make([]promote.PullRequest, 0, len(mrs))
	for _, m := range mrs {
		out = append(out, m.convert())
	}
	return out, nil
}

// SetCommitStatus sets a status on a commit (GitLab: an external job in
// the commit's pipeline, named by the context).
func (c *Client) SetCommitStatus(ctx context.Context, sha string, st promote.CommitStatus) error {
	state := map[promote.StatusState]string{promote.StatusPending: "pending", promote.StatusSuccess: "success",
		promote.StatusFailure: "failed"}[st.State]
	if state == "" {
		return fmt.Errorf("gitlab: commit status state %q", st.State)
	}
	in := map[string]string{"state": state, "name": st.Context, "description": promote.ShortDescription(st.Description)}
	if st.TargetURL != "" {
		in["target_url"] = st.TargetURL
	}
	_, err := c.api.Do(ctx, http.MethodPost, c.path+"/statuses/"+url.PathEscape(sha), in, nil)
	// GitLab refuses to set a status to the state it is in already
	// ("Cannot transition status via :enqueue from :pending"): it holds.
	var re *rest.Error
	if errors.As(err, &re) && re.Status == http.StatusBadRequest && strings.Contains(re.Body, "Cannot transition status") {
		return nil
	}
	if err != nil {
		return fmt.Errorf("gitlab %s: set status %s on %s: %w", c.project, st.Context, sha, err)
	}
	return nil
}
