package source

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/baton-gitops/baton/internal/testenv/gitserver"
)

// manualClock is a clock the test moves by hand.
type manualClock struct {
	mu  sync.Mutex // guards now
	now time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// After never fires: pollers under this clock poll only when triggered.
func (c *manualClock) After(time.Duration) <-chan time.Time { return nil }

const secretMarker = "body-marker-7f3a"

func sign(secret []byte, body string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(body))
	return hex.EncodeToString(m.Sum(nil))
}

func githubBody(url, ref string) string {
	return fmt.Sprintf(`{"ref":%q,"repository":{"clone_url":%q,"html_url":"https://forge.invalid/x"},"note":%q}`,
		ref, url, secretMarker)
}

func gitlabBody(url, ref string) string {
	return fmt.Sprintf(`{"object_kind":"push","ref":%q,"project":{"git_http_url":%q},"note":%q}`, ref, url, secretMarker)
}

func genericBody(url, ref string) string {
	return fmt.Sprintf(`{"repository":%q,"ref":%q,"note":%q}`, url, ref, secretMarker)
}

type webhookKind struct {
	name string
	// request builds a push request for url and ref, with the event header
	// and the signature (or token) sig; empty values leave a header out.
	request func(url, ref, event, sig string) *http.Request
	body    func(url, ref string) string
	sign    func(body string) string
	push    string // the provider's push event name
}

var (
	ghSecret      = []byte("github-secret")
	giteaSecret   = []byte("gitea-secret")
	gitlabToken   = []byte("gitlab-token")
	genericSecret = []byte("generic-secret")
)

func webhookKinds() []webhookKind {
	post := func(body string, headers map[string]string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/hooks/git", strings.NewReader(body))
		for k, v := range headers {
			if v != "" {
				r.Header.Set(k, v)
			}
		}
		return r
	}
	return []webhookKind{
		{name: "github", push: "push", body: githubBody,
			sign: func(b string) string { return "sha256=" + sign(ghSecret, b) },
			request: func(url, ref, event, sig string) *http.Request {
				return post(githubBody(url, ref), map[string]string{"X-GitHub-Event": event, "X-Hub-Signature-256": sig})
			}},
		{name: "gitea", push: "push", body: githubBody,
			sign: func(b string) string { return sign(giteaSecret, b) },
			request: func(url, ref, event, sig string) *http.Request {
				// Gitea sends GitHub's event header as well.
				return post(githubBody(url, ref), map[string]string{"X-Gitea-Event": event, "X-GitHub-Event": event,
					"X-Gitea-Signature": sig})
			}},
		{name: "gitlab", push: "Push Hook", body: gitlabBody,
			sign: func(string) string { return string(gitlabToken) },
			request: func(url, ref, event, sig string) *http.Request {
				return post(gitlabBody(url, ref), map[string]string{"X-Gitlab-Event": event, "X-Gitlab-Token": sig})
			}},
		{name: "generic", push: "", body: genericBody,
			sign: func(b string) string { return "sha256=" + sign(genericSecret, b) },
			request: func(url, ref, event, sig string) *http.Request {
				return post(genericBody(url, ref), map[string]string{DefaultGenericHeader: sig})
			}},
	}
}

func pending(p *Poller) bool { return len(p.trigger) == 1 }

func drain(p *Poller) {
	select {
	case <-p.trigger:
	default:
	}
}

func TestWebhookKinds(t *testing.T) {
	srv := startServer(t)
	srv.CreateRepo(t, "app", baseFiles)
	repo := openRepo(t, httpsSettings(t, srv, "app", "env/dev"), Options{})
	poller := NewPoller(repo, PollerOptions{Clock: &manualClock{}})
	var logs bytes.Buffer
	h, err := NewWebhookHandler(WebhookOptions{
		GitHubSecret: ghSecret, GiteaSecret: giteaSecret, GitLabToken: gitlabToken, GenericSecret: genericSecret,
		Targets: []WebhookTarget{poller}, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		RatePerSecond: 1000, Burst: 1000,
	})
	if err != nil {
		t.Fatal(err)
	}
	url := srv.HTTPURL("app")
	for _, k := range webhookKinds() {
		t.Run(k.name, func(t *testing.T) {
			valid := k.sign(k.body(url, "refs/heads/env/dev"))
			forged := k.sign(k.body(url, "refs/heads/env/other")) // signs another body
			if k.name == "gitlab" {
				forged = "not-the-token"
			}
			cases := []struct {
				name      string
				ref       string
				event     string
				sig       string
				status    int
				triggered bool
			}{
				{"valid push", "refs/heads/env/dev", k.push, valid, http.StatusOK, true},
				{"forged signature", "refs/heads/env/dev", k.push, forged, http.StatusUnauthorized, false},
				{"missing signature", "refs/heads/env/dev", k.push, "", http.StatusUnauthorized, false},
				{"unfollowed branch", "refs/heads/main", k.push, k.sign(k.body(url, "refs/heads/main")), http.StatusAccepted, false},
				{"tag", "refs/tags/v1", k.push, k.sign(k.body(url, "refs/tags/v1")), http.StatusAccepted, false},
			}
			if k.name != "generic" {
				cases = append(cases, struct {
					name      string
					ref       string
					event     string
					sig       string
					status    int
					triggered bool
				}{"other event", "refs/heads/env/dev", "ping", valid, http.StatusAccepted, false})
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					drain(poller)
					logs.Reset()
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, k.request(url, c.ref, c.event, c.sig))
					if rec.Code != c.status {
						t.Fatalf("status %d (%s), want %d", rec.Code, strings.TrimSpace(rec.Body.String()), c.status)
					}
					if pending(poller) != c.triggered {
						t.Fatalf("triggered = %v, want %v", pending(poller), c.triggered)
					}
					if c.status == http.StatusUnauthorized && !strings.Contains(logs.String(), "webhook refused") {
						t.Errorf("refusal not logged: %q", logs.String())
					}
					if strings.Contains(logs.String(), secretMarker) {
						t.Fatalf("the log shows the body: %s", logs.String())
					}
				})
			}
		})
	}
}

func TestWebhookMatchesTheSSHURLOfAnHTTPSFollower(t *testing.T) {
	srv := startServer(t)
	srv.CreateRepo(t, "app", baseFiles)
	repo := openRepo(t, httpsSettings(t, srv, "app", "env/dev"), Options{})
	poller := NewPoller(repo, PollerOptions{Clock: &manualClock{}})
	h, _ := NewWebhookHandler(WebhookOptions{GitHubSecret: ghSecret, Targets: []WebhookTarget{poller}})
	body := `{"ref":"refs/heads/env/dev","repository":{"ssh_url":"` + srv.SSHURL("app") + `"}}`
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
	r.Header.Set("X-GitHub-Event", "push")
	r.Header.Set("X-Hub-Signature-256", "sha256="+sign(ghSecret, body))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if rec.Code != http.StatusOK || !pending(poller) {
		t.Fatalf("status %d triggered %v", rec.Code, pending(poller))
	}
}

func TestWebhookRefusals(t *testing.T) {
	clock := &manualClock{now: time.Unix(1_700_000_000, 0)}
	var logs bytes.Buffer
	h, err := NewWebhookHandler(WebhookOptions{GitHubSecret: ghSecret, MaxBodyBytes: 64,
		RatePerSecond: 1, Burst: 2, Clock: clock, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	do := func(method, body string, headers ...string) int {
		r := httptest.NewRequest(method, "/", strings.NewReader(body))
		for i := 0; i+1 < len(headers); i += 2 {
			r.Header.Set(headers[i], headers[i+1])
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec.Code
	}
	if got := do(http.MethodGet, ""); got != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", got)
	}
	big := strings.Repeat("x", 200) + secretMarker
	if got := do(http.MethodPost, big, "X-GitHub-Event", "push", "X-Hub-Signature-256", "sha256="+sign(ghSecret, big)); got != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body: %d", got)
	}
	// GitLab is not configured: refused however it is signed.
	clock.advance(10 * time.Second)
	if got := do(http.MethodPost, "{}", "X-Gitlab-Event", "Push Hook", "X-Gitlab-Token", ""); got != http.StatusUnauthorized {
		t.Errorf("unconfigured provider: %d", got)
	}
	if got := do(http.MethodPost, "{}"); got != http.StatusUnauthorized {
		t.Errorf("no headers: %d", got)
	}
	// A valid signature over an unreadable payload.
	bad := `{"ref": 7}`
	if got := do(http.MethodPost, bad, "X-GitHub-Event", "push", "X-Hub-Signature-256", "sha256="+sign(ghSecret, bad)); got != http.StatusBadRequest {
		t.Errorf("unreadable payload: %d", got)
	}
	if strings.Contains(logs.String(), secretMarker) {
		t.Fatal("the log shows a body")
	}
	if _, err := NewWebhookHandler(WebhookOptions{}); err == nil {
		t.Error("a handler without any secret was created")
	}
}

// TestWebhookTriggersAnImmediatePoll runs the whole path: a commit lands on
// the real server, a signed push event arrives, the poller (whose interval
// never elapses under the manual clock) polls and sees the commit.
func TestWebhookTriggersAnImmediatePoll(t *testing.T) {
	srv := startServer(t)
	repo := srv.CreateRepo(t, "app", baseFiles)
	r := openRepo(t, httpsSettings(t, srv, "app", "env/dev"), Options{})
	poller := NewPoller(r, PollerOptions{Clock: &manualClock{}})
	results := make(chan PollResult, 4)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- poller.Run(ctx, func(res PollResult, _ error) { results <- res }) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	wait := func() PollResult {
		t.Helper()
		select {
		case res := <-results:
			return res
		case <-time.After(20 * time.Second):
			t.Fatal("no poll within 20s")
			return PollResult{}
		}
	}
	wait() // the poll at start

	head := repo.Commit(t, "env/dev", gitserver.Change{Write: map[string]string{"new": "1"}})
	hook := httptest.NewServer(mustHandler(t, WebhookOptions{GitHubSecret: ghSecret, Targets: []WebhookTarget{poller}}))
	t.Cleanup(hook.Close)
	body := githubBody(srv.HTTPURL("app"), "refs/heads/env/dev")
	req, _ := http.NewRequest(http.MethodPost, hook.URL, strings.NewReader(body))
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-Hub-Signature-256", "sha256="+sign(ghSecret, body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("webhook status %d", resp.StatusCode)
	}
	if dev := branchResult(t, wait(), "env/dev"); dev.Revision.Commit != head || !dev.Changed {
		t.Fatalf("triggered poll: %+v", dev)
	}
}

func mustHandler(t *testing.T, o WebhookOptions) http.Handler {
	t.Helper()
	h, err := NewWebhookHandler(o)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// Rate limits are per client and count verified requests apart from
// refused ones: a client flooding unsigned requests is cut off before its
// bodies are read, and never spends the budget of the forge's signed
// requests from another address, nor its own verified budget.
func TestWebhookRateLimitsArePerClientAndAfterTheSignature(t *testing.T) {
	clock := &manualClock{now: time.Unix(1_700_000_000, 0)}
	h, err := NewWebhookHandler(WebhookOptions{GitHubSecret: ghSecret, RatePerSecond: 1, Burst: 3,
		RefusalsPerSecond: 1, RefusalBurst: 5, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	body := githubBody("https://git.example/acme/deploy.git", "refs/heads/main")
	do := func(from, signature string) int {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		r.RemoteAddr = from
		r.Header.Set("X-GitHub-Event", "push")
		r.Header.Set("X-Hub-Signature-256", "sha256="+signature)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec.Code
	}
	valid, forged := sign(ghSecret, body), sign([]byte("guess"), body)
	// An attacker's forged requests: refused, then cut off.
	for i := range 5 {
		if got := do("203.0.113.9:40000", forged); got != http.StatusUnauthorized {
			t.Fatalf("forged request %d: %d, want 401", i, got)
		}
	}
	if got := do("203.0.113.9:40001", forged); got != http.StatusTooManyRequests {
		t.Fatalf("forged request past the refusal burst: %d, want 429", got)
	}
	// ...even once it signs (it is cut off until its refusals age).
	if got := do("203.0.113.9:40002", valid); got != http.StatusTooManyRequests {
		t.Fatalf("signed request from the cut-off client: %d, want 429", got)
	}
	// The forge, from another address, keeps its whole budget.
	for i := range 3 {
		if got := do("198.51.100.7:5000", valid); got != http.StatusAccepted {
			t.Fatalf("forge request %d: %d, want 202 (verified, no followed branch)", i, got)
		}
	}
	if got := do("198.51.100.7:5001", valid); got != http.StatusTooManyRequests {
		t.Fatalf("forge past its burst: %d, want 429", got)
	}
	// A client's refusals do not spend its verified budget.
	for range 4 {
		do("192.0.2.1:1", forged)
	}
	if got := do("192.0.2.1:2", valid); got != http.StatusAccepted {
		t.Fatalf("signed request after refusals under the limit: %d, want 202", got)
	}
	clock.advance(10 * time.Second)
	if got := do("203.0.113.9:40003", valid); got != http.StatusAccepted {
		t.Fatalf("after the refusals aged: %d, want 202", got)
	}
}

// The per-client state is bounded: a flood of addresses never grows it
// past maxClients.
func TestClientLimiterIsBounded(t *testing.T) {
	clock := &manualClock{now: time.Unix(1_700_000_000, 0)}
	l := newClientLimiter(1, 2, clock)
	for i := range 3 * maxClients {
		l.allow(fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255))
	}
	if n := len(l.buckets); n > maxClients {
		t.Fatalf("%d buckets, want at most %d", n, maxClients)
	}
}

type prTarget struct {
	mu     sync.Mutex
	events []PullRequestEvent
}

func (p *prTarget) PullRequestChanged(ev PullRequestEvent) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.events = append(p.events, ev)
	return ev.Base == "env/staging"
}

// Pull request events of the three forges, signed like pushes, reach the
// pull request targets with the number, the base branch and the
// repository's URLs; forged or unreadable ones do not.
func TestWebhookPullRequestEvents(t *testing.T) {
	target := &prTarget{}
	h, err := NewWebhookHandler(WebhookOptions{GitHubSecret: ghSecret, GiteaSecret: giteaSecret, GitLabToken: gitlabToken,
		PullRequests: []PullRequestTarget{target}})
	if err != nil {
		t.Fatal(err)
	}
	github := `{"action":"synchronize","number":12,"pull_request":{"number":12,"base":{"ref":"env/staging"},"head":{"ref":"scale"}},"repository":{"clone_url":"https://git.example/acme/deploy.git","html_url":"https://git.example/acme/deploy"}}`
	gitlab := `{"object_kind":"merge_request","project":{"git_http_url":"https://gitlab.example/acme/deploy.git","git_ssh_url":"git@gitlab.example:acme/deploy.git"},"object_attributes":{"iid":5,"target_branch":"env/prod","source_branch":"x","action":"update"}}`
	for _, tc := range []struct {
		name    string
		headers []string
		body    string
		status  int
		want    *PullRequestEvent
	}{
		{"github", []string{"X-GitHub-Event", "pull_request", "X-Hub-Signature-256", "sha256=" + sign(ghSecret, github)}, github, http.StatusOK,
			&PullRequestEvent{URLs: []string{"https://git.example/acme/deploy.git", "https://git.example/acme/deploy"}, Number: 12, Base: "env/staging", Action: "synchronize"}},
		{"gitea sync", []string{"X-Gitea-Event", "pull_request_sync", "X-Gitea-Signature", sign(giteaSecret, github)}, github, http.StatusOK,
			&PullRequestEvent{URLs: []string{"https://git.example/acme/deploy.git", "https://git.example/acme/deploy"}, Number: 12, Base: "env/staging", Action: "synchronize"}},
		{"gitlab, other base", []string{"X-Gitlab-Event", "Merge Request Hook", "X-Gitlab-Token", string(gitlabToken)}, gitlab, http.StatusAccepted,
			&PullRequestEvent{URLs: []string{"https://gitlab.example/acme/deploy.git", "git@gitlab.example:acme/deploy.git"}, Number: 5, Base: "env/prod", Action: "update"}},
		{"forged", []string{"X-GitHub-Event", "pull_request", "X-Hub-Signature-256", "sha256=" + sign([]byte("guess"), github)}, github, http.StatusUnauthorized, nil},
		{"unreadable", []string{"X-GitHub-Event", "pull_request", "X-Hub-Signature-256", "sha256=" + sign(ghSecret, `{"number":"x"}`)}, `{"number":"x"}`, http.StatusBadRequest, nil},
		{"review comment", []string{"X-Gitea-Event", "pull_request_comment", "X-Gitea-Signature", sign(giteaSecret, github)}, github, http.StatusAccepted, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target.mu.Lock()
			target.events = nil
			target.mu.Unlock()
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tc.body))
			for i := 0; i+1 < len(tc.headers); i += 2 {
				r.Header.Set(tc.headers[i], tc.headers[i+1])
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if rec.Code != tc.status {
				t.Fatalf("status %d (%s), want %d", rec.Code, strings.TrimSpace(rec.Body.String()), tc.status)
			}
			target.mu.Lock()
			defer target.mu.Unlock()
			switch {
			case tc.want == nil && len(target.events) != 0:
				t.Errorf("delivered %+v", target.events)
			case tc.want != nil && (len(target.events) != 1 || fmt.Sprint(target.events[0]) != fmt.Sprint(*tc.want)):
				t.Errorf("delivered %+v, want %+v", target.events, *tc.want)
			}
		})
	}
}
