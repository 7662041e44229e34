package forge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// APIError is a REST call the forge answered with an error status.
type APIError struct {
	Method, Path string
	Status       int
	Body         string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("forge: %s %s: %d: %s", e.Method, e.Path, e.Status, strings.TrimSpace(e.Body))
}

// API calls the REST API as the admin user: path is below /api/v1 (e.g.
// "/repos/baton/app/pulls"); in, when not nil, is sent as JSON; out, when
// not nil, receives the JSON answer. A status of 400 or more is an
// *APIError.
func (f *Forge) API(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("forge: %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, f.APIURL()+path, body)
	if err != nil {
		return fmt.Errorf("forge: %s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "token "+f.token)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return fmt.Errorf("forge: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("forge: %s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode >= 400 {
		return &APIError{Method: method, Path: path, Status: resp.StatusCode, Body: string(b)}
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("forge: %s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}

// Repo is what the forge says about a repository.
type Repo struct {
	Name          string `json:"name"`
	FullName      string `json:"full_name"`
	CloneURL      string `json:"clone_url"`
	HTMLURL       string `json:"html_url"`
	Empty         bool   `json:"empty"`
	DefaultBranch string `json:"default_branch"`
}

// RepoName returns base with a number this forge has not given before, so
// that a test run twice in one process (go test -count=2) creates a
// repository of its own rather than finding the last run's.
func (f *Forge) RepoName(base string) string {
	return fmt.Sprintf("%s-%d", base, f.repos.Add(1))
}

// CreateRepo creates an empty public repository owned by the admin user and
// returns its clone URL (http://127.0.0.1:PORT/USER/NAME.git, without
// credentials).
func (f *Forge) CreateRepo(ctx context.Context, name string) (string, error) {
	var r Repo
	err := f.API(ctx, http.MethodPost, "/user/repos", map[string]any{
		"name": name, "private": false, "auto_init": false,
	}, &r)
	if err != nil {
		return "", fmt.Errorf("create repository %s: %w", name, err)
	}
	return r.CloneURL, nil
}

// AuthenticatedURL is the clone URL of the admin user's repository with the
// user and token in it, for `git push` and `git clone` in tests. Never log
// it.
func (f *Forge) AuthenticatedURL(repo string) string {
	u := url.URL{Scheme: "http", Host: strings.TrimSuffix(strings.TrimPrefix(f.URL(), "http://"), "/"),
		Path: "/" + f.user + "/" + repo + ".git", User: url.UserPassword(f.user, f.token)}
	return u.String()
}

// CloneURL is the clone URL of the admin user's repository, without
// credentials.
func (f *Forge) CloneURL(repo string) string {
	return f.URL() + f.user + "/" + repo + ".git"
}

// WaitBranch waits until the forge has processed a push that created or
// moved branch of the admin user's repository: the repository no longer
// reports itself empty and the branch exists, at commit when commit is not
// empty. Gitea processes pushes asynchronously, and right after the first
// push it answers 404 to pull-request calls and 500 to branch calls.
func (f *Forge) WaitBranch(ctx context.Context, repo, branch, commit string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		last = f.branchAt(ctx, repo, branch, commit)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("forge: wait for %s@%s: %w", repo, branch, last)
		case <-tick.C:
		}
	}
}

func (f *Forge) branchAt(ctx context.Context, repo, branch, commit string) error {
	var r Repo
	if err := f.API(ctx, http.MethodGet, "/repos/"+f.user+"/"+repo, nil, &r); err != nil {
		return err
	}
	if r.Empty {
		return errors.New("repository still empty")
	}
	var b struct {
		Commit struct {
			ID string `json:"id"`
		} `json:"commit"`
	}
	if err := f.API(ctx, http.MethodGet, "/repos/"+f.user+"/"+repo+"/branches/"+url.PathEscape(branch), nil, &b); err != nil {
		return err
	}
	if commit != "" && b.Commit.ID != commit {
		return fmt.Errorf("branch at %s, want %s", b.Commit.ID, commit)
	}
	return nil
}
