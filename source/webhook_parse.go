package source

import (
	"encoding/json"
	"errors"
	"strings"
)

// PushEvent is what a push webhook tells: the repository (by the URLs the
// forge knows it by) and the branch that moved.
type PushEvent struct {
	// URLs are the repository's clone and web URLs from the payload.
	URLs []string
	// Branch is the pushed branch, or empty when a tag or another kind of
	// reference moved.
	Branch string
}

// branchOf turns "refs/heads/env/dev" into "env/dev"; other references give
// "".
func branchOf(ref string) string {
	b, ok := strings.CutPrefix(ref, "refs/heads/")
	if !ok {
		return ""
	}
	return b
}

func collectURLs(urls ...string) []string {
	var out []string
	seen := map[string]bool{}
	for _, u := range urls {
		u = strings.TrimSpace(u)
		if u != "" && !seen[u] {
			seen[u] = true
			out = append(out, u)
		}
	}
	return out
}

func finish(ref string, urls []string) (PushEvent, error) {
	if ref == "" {
		return PushEvent{}, errors.New("push payload has no ref")
	}
	if len(urls) == 0 {
		return PushEvent{}, errors.New("push payload names no repository URL")
	}
	return PushEvent{URLs: urls, Branch: branchOf(ref)}, nil
}

// githubRepository is the repository of a GitHub (or Gitea) payload.
type githubRepository struct {
	CloneURL string `json:"clone_url"`
	SSHURL   string `json:"ssh_url"`
	HTMLURL  string `json:"html_url"`
	GitURL   string `json:"git_url"`
}

func (r githubRepository) urls() []string {
	return collectURLs(r.CloneURL, r.SSHURL, r.HTMLURL, r.GitURL)
}

// parseGitHubPush reads a GitHub push payload. Gitea sends the same shape.
func parseGitHubPush(body []byte) (PushEvent, error) {
	var p struct {
		Ref        string           `json:"ref"`
		Repository githubRepository `json:"repository"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return PushEvent{}, err
	}
	return finish(p.Ref, p.Repository.urls())
}

// parseGitLabPush reads a GitLab "Push Hook" payload.
func parseGitLabPush(body []byte) (PushEvent, error) {
	type urls struct {
		GitHTTPURL string `json:"git_http_url"`
		GitSSHURL  string `json:"git_ssh_url"`
		WebURL     string `json:"web_url"`
		HTTPURL    string `json:"http_url"`
		SSHURL     string `json:"ssh_url"`
		URL        string `json:"url"`
		Homepage   string `json:"homepage"`
	}
	var p struct {
		Ref        string `json:"ref"`
		Project    urls   `json:"project"`
		Repository urls   `json:"repository"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return PushEvent{}, err
	}
	a, b := p.Project, p.Repository
	return finish(p.Ref, collectURLs(a.GitHTTPURL, a.GitSSHURL, a.WebURL, a.HTTPURL, a.SSHURL,
		b.GitHTTPURL, b.GitSSHURL, b.URL, b.Homepage))
}

// parseGenericPush reads Baton's own payload for the generic webhook, for
// CI systems and forges without a dedicated format:
//
//	{"repository": "https://git.example.com/acme/deploy.git", "ref": "refs/heads/env/dev"}
//
// "branch": "env/dev" may stand instead of "ref".
func parseGenericPush(body []byte) (PushEvent, error) {
	var p struct {
		Repository string `json:"repository"`
		Ref        string `json:"ref"`
		Branch     string `json:"branch"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return PushEvent{}, err
	}
	ref := p.Ref
	if ref == "" && p.Branch != "" {
		ref = "refs/heads/" + p.Branch
	}
	return finish(ref, collectURLs(p.Repository))
}

// PullRequestEvent is what a pull request (merge request) webhook tells:
// the base repository, the pull request and the branch it merges into.
// Nothing else of the payload is trusted: the receiver asks the forge.
type PullRequestEvent struct {
	// URLs are the base repository's clone and web URLs.
	URLs []string
	// Number is the pull request's number (GitLab: the merge request's
	// iid).
	Number int
	// Base is the branch the pull request merges into.
	Base string
	// Action is the forge's word for what happened ("opened",
	// "synchronize", "update", "closed", ...), for logs.
	Action string
}

func finishPR(n int, base, action string, urls []string) (PullRequestEvent, error) {
	switch {
	case n <= 0:
		return PullRequestEvent{}, errors.New("pull request payload has no number")
	case base == "":
		return PullRequestEvent{}, errors.New("pull request payload has no base branch")
	case len(urls) == 0:
		return PullRequestEvent{}, errors.New("pull request payload names no repository URL")
	}
	return PullRequestEvent{URLs: urls, Number: n, Base: base, Action: action}, nil
}

// parseGitHubPullRequest reads a GitHub "pull_request" payload; Gitea
// sends the same shape.
func parseGitHubPullRequest(body []byte) (PullRequestEvent, error) {
	var p struct {
		Action      string `json:"action"`
		Number      int    `json:"number"`
		PullRequest struct {
			Number int `json:"number"`
			Base   struct {
				Ref string `json:"ref"`
			} `json:"base"`
		} `json:"pull_request"`
		Repository githubRepository `json:"repository"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return PullRequestEvent{}, err
	}
	n := p.Number
	if n == 0 {
		n = p.PullRequest.Number
	}
	return finishPR(n, p.PullRequest.Base.Ref, p.Action, p.Repository.urls())
}

// parseGitLabMergeRequest reads a GitLab "Merge Request Hook" payload.
func parseGitLabMergeRequest(body []byte) (PullRequestEvent, error) {
	var p struct {
		Project struct {
			GitHTTPURL string `json:"git_http_url"`
			GitSSHURL  string `json:"git_ssh_url"`
			WebURL     string `json:"web_url"`
		} `json:"project"`
		Attrs struct {
			IID          int    `json:"iid"`
			TargetBranch string `json:"target_branch"`
			Action       string `json:"action"`
			Target       struct {
				GitHTTPURL string `json:"git_http_url"`
				GitSSHURL  string `json:"git_ssh_url"`
			} `json:"target"`
		} `json:"object_attributes"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return PullRequestEvent{}, err
	}
	a := p.Attrs
	return finishPR(a.IID, a.TargetBranch, a.Action, collectURLs(p.Project.GitHTTPURL, p.Project.GitSSHURL, p.Project.WebURL,
		a.Target.GitHTTPURL, a.Target.GitSSHURL))
}
