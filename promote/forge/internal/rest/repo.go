package rest

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
)

// Repo is one repository on a forge whose API has GitHub's shape (Gitea's
// follows it): the pull-request calls that are the same on both.
type Repo struct {
	API Client
	// Forge names the provider in errors ("gitea", "github").
	Forge string
	// Path is the API path of the repository, "/repos/OWNER/NAME".
	Path string
	// Name is "OWNER/NAME".
	Name string
}

// NewRepo returns the Repo of owner/name on the forge api serves.
func NewRepo(forge string, api Client, owner, name string) Repo {
	return Repo{API: api, Forge: forge, Path: "/repos/" + url.PathEscape(owner) + "/" + url.PathEscape(name), Name: owner + "/" + name}
}

// EditPull sets the title and body of pull request number and decodes the
// forge's answer into out.
func (r *Repo) EditPull(ctx context.Context, number int, title, body string, out any) error {
	if _, err := r.API.Do(ctx, http.MethodPatch, fmt.Sprintf("%s/pulls/%d", r.Path, number),
		map[string]string{"title": title, "body": body}, out); err != nil {
		return fmt.Errorf("%s %s: edit pull request #%d: %w", r.Forge, r.Name, number, err)
	}
	return nil
}

// ClosePull closes a pull request without merging it.
func (r *Repo) ClosePull(ctx context.Context, number int) error {
	if _, err := r.API.Do(ctx, http.MethodPatch, fmt.Sprintf("%s/pulls/%d", r.Path, number),
		map[string]string{"state": "closed"}, nil); err != nil {
		return fmt.Errorf("%s %s: close pull request #%d: %w", r.Forge, r.Name, number, err)
	}
	return nil
}

// Comment adds a comment to a pull request's conversation (an issue
// comment) and returns its id.
func (r *Repo) Comment(ctx context.Context, number int, body string) (int64, error) {
	var c struct {
		ID int64 `json:"id"`
	}
	if _, err := r.API.Do(ctx, http.MethodPost, fmt.Sprintf("%s/issues/%d/comments", r.Path, number),
		map[string]string{"body": body}, &c); err != nil {
		return 0, fmt.Errorf("%s %s: comment on #%d: %w", r.Forge, r.Name, number, err)
	}
	return c.ID, nil
}

// EditComment replaces the body of a pull request's conversation comment.
func (r *Repo) EditComment(ctx context.Context, id int64, body string) error {
	if _, err := r.API.Do(ctx, http.MethodPatch, fmt.Sprintf("%s/issues/comments/%d", r.Path, id),
		map[string]string{"body": body}, nil); err != nil {
		return fmt.Errorf("%s %s: edit comment %d: %w", r.Forge, r.Name, id, err)
	}
	return nil
}

// SetStatus sets a commit status; state is the forge's own word for it.
func (r *Repo) SetStatus(ctx context.Context, sha, state, context, description, targetURL string) error {
	in := map[string]string{"state": state, "context": context, "description": description}
	if targetURL != "" {
		in["target_url"] = targetURL
	}
	if _, err := r.API.Do(ctx, http.MethodPost, r.Path+"/statuses/"+url.PathEscape(sha), in, nil); err != nil {
		return fmt.Errorf("%s %s: set status %s on %s: %w", r.Forge, r.Name, context, sha, err)
	}
	return nil
}
