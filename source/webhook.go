package source

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
)

// Webhook defaults.
const (
	// DefaultGenericHeader carries the generic webhook's signature:
	// "sha256=" followed by the hex HMAC-SHA256 of the body.
	DefaultGenericHeader = "X-Baton-Signature"
	// DefaultMaxBodyBytes bounds a webhook body; push payloads are a few
	// tens of kilobytes.
	DefaultMaxBodyBytes = 1 << 20
	// DefaultRatePerSecond and DefaultBurst bound the verified requests
	// one client (a remote IP address) may make.
	DefaultRatePerSecond = 10
	DefaultBurst         = 20
	// DefaultRefusalsPerSecond and DefaultRefusalBurst bound the requests
	// one client may have refused (bad signature, oversized or unreadable
	// body) before it is answered 429 without its body being read.
	DefaultRefusalsPerSecond = 1
	DefaultRefusalBurst      = 10
	// maxClients bounds the per-client rate limit state.
	maxClients = 4096
)

// WebhookTarget is what a verified push triggers: a Poller satisfies it.
type WebhookTarget interface {
	// Follows reports whether a push to branch of the repository known by
	// urls concerns the target.
	Follows(urls []string, branch string) bool
	// Trigger asks for a poll now; it must not block.
	Trigger()
}

// PullRequestTarget is told of verified pull request events: a Previewer
// is one.
type PullRequestTarget interface {
	// PullRequestChanged reports whether the event concerns the target,
	// which then refreshes what it knows of the pull request. It must not
	// block.
	PullRequestChanged(ev PullRequestEvent) bool
}

// WebhookOptions configures the webhook handler. A provider whose secret is
// empty is refused (401): no request is accepted unsigned.
type WebhookOptions struct {
	// GitHubSecret verifies X-Hub-Signature-256.
	GitHubSecret []byte
	// GitLabToken is compared with X-Gitlab-Token.
	GitLabToken []byte
	// GiteaSecret verifies X-Gitea-Signature.
	GiteaSecret []byte
	// GenericSecret verifies GenericHeader for payloads in Baton's own
	// format: {"repository": "<clone URL>", "ref": "refs/heads/<branch>"}.
	GenericSecret []byte
	// GenericHeader names the generic signature header; empty means
	// DefaultGenericHeader.
	GenericHeader string
	// MaxBodyBytes bounds the body; zero means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// RatePerSecond and Burst bound the verified requests of one client
	// (by remote address), counted after the signature check so that
	// nobody can spend a forge's budget with unsigned requests; zero means
	// the defaults. Requests over the limit get 429.
	RatePerSecond float64
	Burst         int
	// RefusalsPerSecond and RefusalBurst bound the refused requests of one
	// client; past them its requests get 429 before their body is read.
	// Zero means the defaults.
	RefusalsPerSecond float64
	RefusalBurst      int
	// Targets are asked whether they follow a pushed branch and triggered.
	Targets []WebhookTarget
	// PullRequests are told of pull request events (GitHub and Gitea
	// "pull_request", GitLab "Merge Request Hook"), signed like pushes.
	PullRequests []PullRequestTarget
	// Logger records refused requests (never their bodies). Nil discards.
	Logger *slog.Logger
	// Clock drives the rate limit; nil means the system clock.
	Clock Clock
}

// WebhookHandler receives push events from GitHub, GitLab, Gitea and a
// generic HMAC-signed sender and triggers an immediate poll of the followed
// repositories they concern; pull request events of the first three go to
// the PullRequests targets.
//
// Answers: 200 when a verified push triggered a poll or a pull request
// event concerned a target; 202 for verified events that need nothing
// (other events, other branches, tags); 401 for a missing or bad signature
// or token; 400 for an unreadable push or pull request payload;
// 405 for methods other than POST; 413 for an oversized body; 429 over a
// rate limit.
//
// Rate limits are per client, by the request's remote address: behind a
// proxy that is the proxy's, and its clients share one budget.
type WebhookHandler struct {
	opts     WebhookOptions
	log      *slog.Logger
	verified *clientLimiter // requests whose signature verified
	refused  *clientLimiter // requests refused before or at the check
}

// NewWebhookHandler checks the options and returns the handler.
func NewWebhookHandler(opts WebhookOptions) (*WebhookHandler, error) {
	if len(opts.GitHubSecret)+len(opts.GitLabToken)+len(opts.GiteaSecret)+len(opts.GenericSecret) == 0 {
		return nil, errors.New("webhook: no secret configured; every request would be refused")
	}
	if opts.GenericHeader == "" {
		opts.GenericHeader = DefaultGenericHeader
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.RatePerSecond <= 0 {
		opts.RatePerSecond = DefaultRatePerSecond
	}
	if opts.Burst <= 0 {
		opts.Burst = DefaultBurst
	}
	if opts.RefusalsPerSecond <= 0 {
		opts.RefusalsPerSecond = DefaultRefusalsPerSecond
	}
	if opts.RefusalBurst <= 0 {
		opts.RefusalBurst = DefaultRefusalBurst
	}
	if opts.Clock == nil {
		opts.Clock = realClock{}
	}
	h := &WebhookHandler{opts: opts, log: opts.Logger,
		verified: newClientLimiter(opts.RatePerSecond, opts.Burst, opts.Clock),
		refused:  newClientLimiter(opts.RefusalsPerSecond, opts.RefusalBurst, opts.Clock)}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	return h, nil
}

// provider knows how one sender signs and shapes its requests.
type provider struct {
	name   string
	secret []byte
	// verify checks the signature or token of body.
	verify func(r *http.Request, body, secret []byte) error
	// isPush tells push events from others.
	isPush func(r *http.Request) bool
	parse  func(body []byte) (PushEvent, error)
	// isPullRequest tells pull request events; nil for a sender that has
	// none.
	isPullRequest func(r *http.Request) bool
	parsePR       func(body []byte) (PullRequestEvent, error)
}

// detect picks the provider from the request's headers. Gitea also sends
// GitHub's headers, so it is recognised first.
func (h *WebhookHandler) detect(r *http.Request) (provider, bool) {
	hdr := r.Header
	switch {
	case hdr.Get("X-Gitea-Event") != "":
		// Gitea says "pull_request_sync" for a push to the head branch.
		return provider{"gitea", h.opts.GiteaSecret, verifyHMAC("X-Gitea-Signature", ""),
			eventIs("X-Gitea-Event", "push"), parseGitHubPush,
			eventIs("X-Gitea-Event", "pull_request", "pull_request_sync"), parseGitHubPullRequest}, true
	case hdr.Get("X-Gitlab-Event") != "":
		return provider{"gitlab", h.opts.GitLabToken, verifyToken("X-Gitlab-Token"),
			eventIs("X-Gitlab-Event", "Push Hook"), parseGitLabPush,
			eventIs("X-Gitlab-Event", "Merge Request Hook"), parseGitLabMergeRequest}, true
	case hdr.Get("X-GitHub-Event") != "":
		return provider{"github", h.opts.GitHubSecret, verifyHMAC("X-Hub-Signature-256", "sha256="),
			eventIs("X-GitHub-Event", "push"), parseGitHubPush,
			eventIs("X-GitHub-Event", "pull_request"), parseGitHubPullRequest}, true
	case hdr.Get(h.opts.GenericHeader) != "":
		return provider{name: "generic", secret: h.opts.GenericSecret, verify: verifyHMAC(h.opts.GenericHeader, "sha256="),
			isPush: func(*http.Request) bool { return true }, parse: parseGenericPush}, true
	}
	return provider{}, false
}

func eventIs(header string, want ...string) func(*http.Request) bool {
	return func(r *http.Request) bool {
		got := r.Header.Get(header)
		for _, w := range want {
			if got == w {
				return true
			}
		}
		return false
	}
}

// verifyHMAC checks header = prefix + hex(HMAC-SHA256(secret, body)). The
// prefix is optional for the generic header.
func verifyHMAC(header, prefix string) func(*http.Request, []byte, []byte) error {
	return func(r *http.Request, body, secret []byte) error {
		got := r.Header.Get(header)
		if got == "" {
			return fmt.Errorf("missing %s", header)
		}
		got = strings.TrimPrefix(got, prefix)
		sig, err := hex.DecodeString(got)
		if err != nil {
			return fmt.Errorf("%s is not hex", header)
		}
		mac := hmac.New(sha256.New, secret)
		mac.Write(body)
		if !hmac.Equal(sig, mac.Sum(nil)) {
			return fmt.Errorf("%s does not match the body", header)
		}
		return nil
	}
}

// verifyToken compares a shared token header in constant time.
func verifyToken(header string) func(*http.Request, []byte, []byte) error {
	return func(r *http.Request, _, secret []byte) error {
		got := r.Header.Get(header)
		if got == "" {
			return fmt.Errorf("missing %s", header)
		}
		if subtle.ConstantTimeCompare([]byte(got), secret) != 1 {
			return fmt.Errorf("%s does not match", header)
		}
		return nil
	}
}

func (h *WebhookHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	client := clientOf(r)
	if !h.refused.has(client) {
		h.log.Warn("webhook refused: too many refused requests from this client", "remote", r.RemoteAddr)
		http.Error(w, "too many requests", http.StatusTooManyRequests)
		return
	}
	p, ok := h.detect(r)
	if !ok {
		h.refuse(w, r, client, "unknown", "no recognised event or signature header")
		return
	}
	if len(p.secret) == 0 {
		h.refuse(w, r, client, p.name, "no secret configured for this provider")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.opts.MaxBodyBytes))
	if err != nil {
		h.refused.allow(client)
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			h.log.Warn("webhook refused: body too large", "provider", p.name, "remote", r.RemoteAddr,
				"limit", h.opts.MaxBodyBytes)
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "could not read body", http.StatusBadRequest)
		return
	}
	if err := p.verify(r, body, p.secret); err != nil {
		h.refuse(w, r, client, p.name, err.Error())
		return
	}
	if !h.verified.allow(client) {
		h.log.Warn("webhook refused: rate limit", "provider", p.name, "remote", r.RemoteAddr)
		http.Error(w, "too many requests", http.StatusTooManyRequests)
		return
	}
	if p.isPullRequest != nil && p.isPullRequest(r) {
		h.pullRequest(w, r, p, body)
		return
	}
	if !p.isPush(r) {
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintln(w, "ignored: not a push or pull request event")
		return
	}
	ev, err := p.parse(body)
	if err != nil {
		h.log.Warn("webhook push payload unreadable", "provider", p.name, "remote", r.RemoteAddr, "error", err)
		http.Error(w, "unreadable push payload: "+err.Error(), http.StatusBadRequest)
		return
	}
	triggered := 0
	if ev.Branch != "" {
		for _, t := range h.opts.Targets {
			if t.Follows(ev.URLs, ev.Branch) {
				t.Trigger()
				triggered++
			}
		}
	}
	if triggered == 0 {
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintln(w, "ignored: no followed branch")
		return
	}
	h.log.Debug("webhook triggered polls", "provider", p.name, "branch", ev.Branch, "polls", triggered)
	fmt.Fprintf(w, "triggered %d poll(s)\n", triggered)
}

// pullRequest hands a verified pull request event to the targets.
func (h *WebhookHandler) pullRequest(w http.ResponseWriter, r *http.Request, p provider, body []byte) {
	ev, err := p.parsePR(body)
	if err != nil {
		h.log.Warn("webhook pull request payload unreadable", "provider", p.name, "remote", r.RemoteAddr, "error", err)
		http.Error(w, "unreadable pull request payload: "+err.Error(), http.StatusBadRequest)
		return
	}
	taken := 0
	for _, t := range h.opts.PullRequests {
		if t.PullRequestChanged(ev) {
			taken++
		}
	}
	if taken == 0 {
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintln(w, "ignored: no preview concerns this pull request")
		return
	}
	h.log.Debug("webhook pull request event", "provider", p.name, "number", ev.Number, "base", ev.Base, "action", ev.Action)
	fmt.Fprintf(w, "pull request #%d: refreshing\n", ev.Number)
}

// refuse answers 401, counts the refusal against the client and logs
// why, never the body.
func (h *WebhookHandler) refuse(w http.ResponseWriter, r *http.Request, client, providerName, reason string) {
	h.refused.allow(client)
	h.log.Warn("webhook refused", "provider", providerName, "reason", reason, "remote", r.RemoteAddr)
	http.Error(w, "unauthorized", http.StatusUnauthorized)
}

// clientOf names the client of a request by its remote IP address (the
// port changes with every connection).
func clientOf(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
