package source

import (
	"strings"
	"testing"
)

// FuzzParsePush feeds arbitrary bodies to every webhook payload parser. The
// seed corpus below runs in every plain `go test`; `go test -fuzz
// FuzzParsePush ./source/` explores further.
func FuzzParsePush(f *testing.F) {
	seeds := []string{
		githubBody("https://git.example.com/acme/deploy.git", "refs/heads/env/dev"),
		gitlabBody("https://gitlab.example.com/acme/deploy.git", "refs/heads/env/prod"),
		genericBody("git@git.example.com:acme/deploy.git", "refs/tags/v1.0.0"),
		`{"repository":"https://h/r.git","branch":"env/staging"}`,
		`{"ref":"refs/heads/x","project":{"git_ssh_url":"git@h:a/b.git"},"repository":{"homepage":"https://h/a/b"}}`,
		`{"ref":"refs/heads/","repository":{"clone_url":" "}}`,
		`{"ref":7}`,
		`[]`,
		`null`,
		``,
		`{"ref":"refs/heads/a","repository":{"clone_url":"\u0000"}}`,
		strings.Repeat(`{"a":`, 100) + strings.Repeat(`}`, 100),
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	parsers := map[string]func([]byte) (PushEvent, error){
		"github": parseGitHubPush, "gitlab": parseGitLabPush, "generic": parseGenericPush,
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for name, parse := range parsers {
			ev, err := parse(body)
			if err != nil {
				if ev.Branch != "" || ev.URLs != nil {
					t.Fatalf("%s: error %v with a partial event %+v", name, err, ev)
				}
				continue
			}
			if len(ev.URLs) == 0 {
				t.Fatalf("%s: event without URLs from %q", name, body)
			}
			for _, u := range ev.URLs {
				if u == "" || u != strings.TrimSpace(u) {
					t.Fatalf("%s: untrimmed or empty URL %q", name, u)
				}
			}
			if strings.HasPrefix(ev.Branch, "refs/") {
				t.Fatalf("%s: branch %q keeps its refs/ prefix", name, ev.Branch)
			}
			// Whatever the payload says, matching it must not panic.
			_ = NormalizeURL(ev.URLs[0])
		}
	})
}

// FuzzParsePullRequest does the same for the pull request payload parsers.
func FuzzParsePullRequest(f *testing.F) {
	for _, s := range []string{
		`{"action":"opened","number":3,"pull_request":{"base":{"ref":"env/prod"}},"repository":{"clone_url":"https://h/a/b.git"}}`,
		`{"object_attributes":{"iid":4,"target_branch":"env/dev","action":"update"},"project":{"git_http_url":"https://h/a/b.git"}}`,
		`{"number":-1,"pull_request":{"base":{"ref":"x"}},"repository":{"clone_url":"u"}}`,
		`{"number":1e400}`, `[]`, `null`, ``,
	} {
		f.Add([]byte(s))
	}
	parsers := map[string]func([]byte) (PullRequestEvent, error){
		"github": parseGitHubPullRequest, "gitlab": parseGitLabMergeRequest,
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for name, parse := range parsers {
			ev, err := parse(body)
			if err != nil {
				continue
			}
			if ev.Number <= 0 || ev.Base == "" || len(ev.URLs) == 0 {
				t.Fatalf("%s: incomplete event %+v from %q", name, ev, body)
			}
			_ = NormalizeURL(ev.URLs[0])
		}
	})
}
